/* batch_shape.c - the subgraph PyTorch exports for x.view(x.size(0), -1) when the batch is
 * dynamic: Shape(x) -> Gather(index 0) -> Unsqueeze(axis 0) -> Concat(axis 0) with a
 * constant [-1] or [K] -> the shape input of a Reshape. It computes [batch, features], which
 * is a flatten; the nodes of that arithmetic produce no layer of their own. */
#include "onnx/translate.h"

#include <string.h>

static const Onnx__NodeProto *node_at(const sat__onnx_tr *t, int32_t i) { return t->g->node[i]; }

/* The node producing the tensor called name, if it is an `op` with no other reader. */
static int producer(const sat__onnx_tr *t, const char *name, const char *op, int32_t *node) {
    const sat__onnx_entry *e = sat__onnx_find(t, name);
    if (!e || e->kind != SAT__T_NODE || e->uses != 1 || t->done[e->node]) return 0;
    *node = e->node;
    return strcmp(SAT__S(node_at(t, e->node)->op_type), op) == 0;
}

/* The one INT64 value of the constant called name. */
static int const_int(const sat__onnx_tr *t, const char *name, int64_t *v) {
    const sat__onnx_entry *e = sat__onnx_find(t, name);
    if (!e || e->kind != SAT__T_CONST || sat__onnx_tensor_count(e->tensor) != 1 ||
        !sat__onnx_tensor_is_int64(e->tensor, 1))
        return 0;
    *v = sat__onnx_tensor_int_at(e->tensor, 0);
    return 1;
}

/* 1 if nd's attributes are at most one, called name, an integer (or ints) all equal to want. */
static int only_attr(const Onnx__NodeProto *nd, const char *name, int64_t want) {
    if (nd->n_attribute == 0) return 1;
    const Onnx__AttributeProto *a = nd->attribute[0];
    if (nd->n_attribute > 1 || strcmp(SAT__S(a->name), name) != 0) return 0;
    if (a->has_i) return a->i == want;
    return a->n_ints == 1 && a->ints[0] == want;
}

int sat__onnx_batch_shape(sat__onnx_tr *t, int32_t reshape, int64_t *features) {
    const Onnx__NodeProto *r = node_at(t, reshape);
    int32_t c, u, g, s;
    int64_t zero = -1;
    if (r->n_input != 2 || !producer(t, r->input[1], "Concat", &c)) return 0;
    const Onnx__NodeProto *cn = node_at(t, c);
    if (cn->n_input != 2 || !only_attr(cn, "axis", 0) || !const_int(t, cn->input[1], features) ||
        !(*features == -1 || *features > 0) || !producer(t, cn->input[0], "Unsqueeze", &u))
        return 0;
    /* Unsqueeze's axes: an attribute before opset 13, an input since. */
    const Onnx__NodeProto *un = node_at(t, u);
    const int axes_ok = un->n_input == 2 ? un->n_attribute == 0 && const_int(t, un->input[1], &zero) && zero == 0
                                         : un->n_input == 1 && un->n_attribute == 1 && only_attr(un, "axes", 0);
    if (!axes_ok || !producer(t, un->input[0], "Gather", &g)) return 0;
    const Onnx__NodeProto *gn = node_at(t, g);
    if (gn->n_input != 2 || !only_attr(gn, "axis", 0) || !const_int(t, gn->input[1], &zero) || zero != 0 ||
        !producer(t, gn->input[0], "Shape", &s) || node_at(t, s)->n_attribute || node_at(t, s)->n_input != 1)
        return 0;
    t->done[s] = t->done[g] = t->done[u] = t->done[c] = 1;
    return 1;
}
