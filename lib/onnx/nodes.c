/* nodes.c - the translation of each supported ONNX op into spec lines and weight copies.
 *
 * Every attribute a node carries is either understood or refused: an attribute this file
 * does not know could change what the node computes, so it is SAT_E_UNSUPPORTED rather
 * than ignored. Weights must be initializers (or Constant nodes); their shapes are checked
 * against the layers libsat builds when they are copied (import.c). */
#include "onnx/translate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* libsat's batch-norm epsilon (PyTorch's default); another one is folded into the variance. */
#define SAT_BN_EPS 1e-5f
/* normalize holds at most this many channels (ops.c). */
#define NORMALIZE_MAX_CHANNELS 64

typedef sat__onnx_tr tr;

static const Onnx__NodeProto *node_at(const tr *t, int32_t i) { return t->g->node[i]; }
static int is_op(const Onnx__NodeProto *nd, const char *op) { return strcmp(SAT__S(nd->op_type), op) == 0; }

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t k = 0; k < nd->n_attribute; k++)
        if (strcmp(SAT__S(nd->attribute[k]->name), name) == 0) return nd->attribute[k];
    return NULL;
}

/* Refuses an attribute not in `known` (NULL-terminated). */
static int32_t check_attrs(const tr *t, int32_t i, const char *const *known) {
    const Onnx__NodeProto *nd = node_at(t, i);
    for (size_t k = 0; k < nd->n_attribute; k++) {
        const char *name = SAT__S(nd->attribute[k]->name);
        int ok = 0;
        for (const char *const *p = known; *p && !ok; p++) ok = strcmp(*p, name) == 0;
        if (!ok) return UNSUPPORTED(i, "attribute '%s' is not supported", name);
    }
    return SAT_OK;
}

static int32_t attr_int(const tr *t, int32_t i, const char *name, int64_t def, int64_t *out) {
    const Onnx__AttributeProto *a = attr(node_at(t, i), name);
    *out = def;
    if (!a) return SAT_OK;
    if (!a->has_i) return MALFORMED(i, "attribute '%s' is not an integer", name);
    *out = a->i;
    return SAT_OK;
}

static int32_t attr_float(const tr *t, int32_t i, const char *name, float def, float *out) {
    const Onnx__AttributeProto *a = attr(node_at(t, i), name);
    *out = def;
    if (!a) return SAT_OK;
    if (!a->has_f || !isfinite(a->f)) return MALFORMED(i, "attribute '%s' is not a finite float", name);
    *out = a->f;
    return SAT_OK;
}

/* An ints attribute with `n` values all equal (absent: def); *out the value. */
static int32_t attr_uniform(const tr *t, int32_t i, const char *name, size_t n, int64_t def, int64_t *out) {
    const Onnx__AttributeProto *a = attr(node_at(t, i), name);
    *out = def;
    if (!a) return SAT_OK;
    if (a->n_ints != n) return UNSUPPORTED(i, "attribute '%s' needs %zu values, has %zu", name, n,
                                           a->n_ints);
    for (size_t k = 0; k < n; k++)
        if (a->ints[k] != a->ints[0])
            return UNSUPPORTED(i, "attribute '%s': only equal values (square windows, the same "
                               "stride and padding on every side) are supported", name);
    *out = a->ints[0];
    return SAT_OK;
}

/* auto_pad: NOTSET, or VALID with no pads. */
static int32_t check_auto_pad(const tr *t, int32_t i, int64_t pad) {
    const Onnx__AttributeProto *a = attr(node_at(t, i), "auto_pad");
    if (!a) return SAT_OK;
    const size_t n = a->has_s ? a->s.len : 0;
    if ((n == 6 && memcmp(a->s.data, "NOTSET", 6) == 0) || (n == 5 && memcmp(a->s.data, "VALID", 5) == 0 && !pad))
        return SAT_OK;
    return UNSUPPORTED(i, "auto_pad other than NOTSET (or VALID without pads) is not supported");
}

/* ---- inputs and outputs ---- */

static sat__onnx_entry *input(const tr *t, int32_t i, size_t k) {
    const Onnx__NodeProto *nd = node_at(t, i);
    return k < nd->n_input && *nd->input[k] ? sat__onnx_find(t, nd->input[k]) : NULL;
}

/* The layer holding input k (a computed tensor, not a constant). */
static int32_t layer_in(const tr *t, int32_t i, size_t k, int32_t *layer) {
    const sat__onnx_entry *e = input(t, i, k);
    if (!e) return MALFORMED(i, "input %zu is missing", k);
    if (e->kind == SAT__T_CONST)
        return UNSUPPORTED(i, "input '%s' is a constant where a computed tensor is expected", e->name);
    if (e->layer < 0) return UNSUPPORTED(i, "input '%s' comes from a node that was not translated",
                                         e->name);
    *layer = e->layer;
    return SAT_OK;
}

/* Input k as a float constant of rank 1..ndim_max (0: any) with *count values; NULL out
 * when optional and absent. */
static int32_t const_in(const tr *t, int32_t i, size_t k, int optional, const Onnx__TensorProto **out,
                        int64_t *count) {
    *out = NULL;
    *count = 0;
    const sat__onnx_entry *e = input(t, i, k);
    if (!e && optional) return SAT_OK;
    if (!e) return MALFORMED(i, "input %zu is missing", k);
    if (e->kind != SAT__T_CONST)
        return UNSUPPORTED(i, "input '%s' must be an initializer (weights computed in the graph are not "
                           "supported)", e->name);
    const int64_t n = sat__onnx_tensor_count(e->tensor);
    if (n < 0) return MALFORMED(i, "initializer '%s' has bad dims", e->name);
    if (!sat__onnx_tensor_is_float(e->tensor, n))
        return UNSUPPORTED(i, "initializer '%s' is not float data of %lld values stored in the file",
                           e->name, (long long)n);
    *out = e->tensor;
    *count = n;
    return SAT_OK;
}

static void set_out(tr *t, int32_t i, int32_t layer) {
    sat__onnx_entry *e = sat__onnx_find(t, node_at(t, i)->output[0]);
    e->layer = layer;
    t->done[i] = 1;
}

/* Outputs after the first (a Dropout's mask, a MaxPool's indices, a BatchNormalization's
 * training statistics) must not be read. */
static int32_t only_first_output(const tr *t, int32_t i) {
    const Onnx__NodeProto *nd = node_at(t, i);
    for (size_t k = 1; k < nd->n_output; k++) {
        const sat__onnx_entry *e = *nd->output[k] ? sat__onnx_find(t, nd->output[k]) : NULL;
        if (e && e->uses) return UNSUPPORTED(i, "output %zu ('%s') is used; only the first is "
                                             "supported", k, e->name);
    }
    return SAT_OK;
}

static int32_t emitted(tr *t, int32_t i, int32_t layer) {
    if (layer < 0) return sat__fail(t->err, SAT_E_NOMEM, "out of memory");
    set_out(t, i, layer);
    return SAT_OK;
}

static void copy(tr *t, int32_t layer, int32_t role, const Onnx__TensorProto *src, int32_t i, int32_t transpose,
                 float scale, float add) {
    const sat__onnx_copy c = {layer, role, src, SAT__S(node_at(t, i)->name), transpose, scale, add, 0};
    sat__onnx_copy_add(t, &c);
}

/* ---- activations ---- */

/* An activation layer; alpha, SmoothReLU's learnable a, goes into the parameter block
 * (NULL, or the activation replaced: the layer's initial value). */
static int32_t emit_act(tr *t, int32_t i, int32_t in, int32_t kind, float param, const Onnx__TensorProto *alpha) {
    if (kind == t->swap.from) {
        kind = t->swap.to;
        param = t->swap.param;
        alpha = NULL;
    }
    const char *name = sat_activation_name(kind);
    const int32_t layer = isnan(param) ? sat__onnx_emit(t, in, "act %s", name)
                                       : sat__onnx_emit(t, in, "act %s param=%.9g", name, param);
    if (layer >= 0 && alpha && kind == SAT_ACT_SMOOTHRELU) copy(t, layer, SAT_TENSOR_ACT_ALPHA, alpha, i, 0, 1.0f, 0.0f);
    return emitted(t, i, layer);
}

static int32_t act_node(tr *t, int32_t i, int32_t kind) {
    static const char *const known[] = {"alpha", NULL};
    static const char *const none[] = {NULL};
    const int has_alpha = kind == SAT_ACT_ELU || kind == SAT_ACT_CELU;
    int32_t st = check_attrs(t, i, has_alpha ? known : none);
    float alpha = NAN;
    if (!st && has_alpha) st = attr_float(t, i, "alpha", 1.0f, &alpha);
    if (!st && has_alpha && !(alpha > 0)) st = UNSUPPORTED(i, "alpha %g: only a positive one is "
                                                           "supported", alpha);
    int32_t in = 0;
    if (!st) st = layer_in(t, i, 0, &in);
    return st ? st : emit_act(t, i, in, kind, alpha, NULL);
}

/* ---- an activation written as a subgraph of elementwise ops (activation.c) ---- */

static int elementwise(const Onnx__NodeProto *nd) {
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sigmoid"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (is_op(nd, ops[k])) return 1;
    return 0;
}

/* Ops that may also be part of an activation's subgraph: parametric softplus's Softplus,
 * SmoothReLU's Relu and Log. */
static int in_subgraph(const Onnx__NodeProto *nd) {
    return elementwise(nd) || is_op(nd, "Softplus") || is_op(nd, "Relu") || is_op(nd, "Log");
}

static const Onnx__TensorProto *scalar_of(void *user, const char *name) {
    const sat__onnx_entry *e = sat__onnx_find(user, name);
    return e && e->kind == SAT__T_CONST ? e->tensor : NULL;
}

static int is_scalar(const tr *t, const char *name) {
    const Onnx__TensorProto *c = scalar_of((void *)t, name);
    return c && sat__onnx_tensor_count(c) == 1 && sat__onnx_tensor_is_float(c, 1);
}

#define REGION_MAX 32

/* 1 if some needed node outside `in` (or the graph output) reads the tensor called name. */
static int read_outside(const tr *t, const char *name, const int32_t *nodes, const uint8_t *in, int32_t count) {
    if (strcmp(name, t->output) == 0) return 1;
    for (int32_t j = 0; j < (int32_t)t->g->n_node; j++) {
        if (!t->needed[j]) continue;
        int inside = 0;
        for (int32_t r = 0; r < count && !inside; r++) inside = nodes[r] == j && in[r];
        if (inside) continue;
        const Onnx__NodeProto *nd = node_at(t, j);
        for (size_t k = 0; k < nd->n_input; k++)
            if (strcmp(nd->input[k], name) == 0) return 1;
    }
    return 0;
}

/* Tries the elementwise subgraph that starts at node i and reads the layer tensor x:
 * the nodes that compute a function of x alone, and among them the largest one whose
 * intermediate values nobody else reads and whose values are a known activation. */
static int32_t region(tr *t, int32_t i, const sat__onnx_entry *x, int *matched) {
    int32_t nodes[REGION_MAX], count = 0;
    const char *known[REGION_MAX + 1];
    int32_t nknown = 0;
    known[nknown++] = x->name;
    *matched = 0;
    for (int32_t j = i; j < (int32_t)t->g->n_node && count < REGION_MAX; j++) {
        const Onnx__NodeProto *nd = node_at(t, j);
        if (!t->needed[j] || t->done[j] || !in_subgraph(nd) || nd->n_attribute) continue;
        int reads_x = 0, ok = nd->n_input >= 1;
        for (size_t k = 0; k < nd->n_input && ok; k++) {
            int found = 0;
            for (int32_t q = 0; q < nknown && !found; q++) found = strcmp(known[q], nd->input[k]) == 0;
            reads_x |= found;
            ok = found || is_scalar(t, nd->input[k]);
        }
        if (!ok || !reads_x) continue;
        nodes[count++] = j;
        known[nknown++] = nd->output[0];
    }
    if (count == 0 || nodes[0] != i) return SAT_OK;
    for (int32_t sink = count - 1; sink >= 0; sink--) {
        uint8_t in[REGION_MAX] = {0};
        in[sink] = 1;
        for (int32_t r = sink; r >= 0; r--) {
            if (!in[r]) continue;
            const Onnx__NodeProto *nd = node_at(t, nodes[r]);
            for (size_t k = 0; k < nd->n_input; k++)
                for (int32_t q = 0; q < r; q++)
                    if (strcmp(node_at(t, nodes[q])->output[0], nd->input[k]) == 0) in[q] = 1;
        }
        if (!in[0]) continue;
        int closed = 1;
        for (int32_t r = 0; r < sink && closed; r++)
            if (in[r] && read_outside(t, node_at(t, nodes[r])->output[0], nodes, in, count)) closed = 0;
        if (!closed) continue;
        Onnx__NodeProto *sub[REGION_MAX];
        int32_t n = 0;
        for (int32_t r = 0; r <= sink; r++)
            if (in[r]) sub[n++] = t->g->node[nodes[r]];
        sat__onnx_fn fn;
        if (!sat__onnx_recognise(sub, n, x->name, node_at(t, nodes[sink])->output[0], scalar_of, t, &fn))
            continue;
        for (int32_t r = 0; r < sink; r++)
            if (in[r]) t->done[nodes[r]] = 1;
        *matched = 1;
        if (fn.kind == SAT__ONNX_FN_SIGMOID) return emitted(t, nodes[sink], sat__onnx_emit(t, x->layer, "sigmoid"));
        return emit_act(t, nodes[sink], x->layer, fn.kind, fn.param, fn.param_src);
    }
    return SAT_OK;
}

/* Add, Sub, Mul, Div, Pow, Erf, Tanh, Sigmoid: an activation's subgraph, else the sum or
 * the product of two computed tensors (a residual connection, a squeeze-excitation gate). */
static int32_t elementwise_node(tr *t, int32_t i) {
    const Onnx__NodeProto *nd = node_at(t, i);
    if (nd->n_attribute) return check_attrs(t, i, (const char *const[]){NULL});
    const sat__onnx_entry *x = NULL;
    for (size_t k = 0; k < nd->n_input && !x; k++) {
        const sat__onnx_entry *e = input(t, i, k);
        if (e && e->kind != SAT__T_CONST && e->layer >= 0) x = e;
    }
    if (!x) return UNSUPPORTED(i, "no input is a computed tensor");
    int matched = 0;
    int32_t st = region(t, i, x, &matched);
    if (st || matched) return st;
    const sat__onnx_entry *a = input(t, i, 0), *b = input(t, i, 1);
    const int two_layers = nd->n_input == 2 && a && b && a->kind != SAT__T_CONST && b->kind != SAT__T_CONST &&
                           a->layer >= 0 && b->layer >= 0;
    if (two_layers && (is_op(nd, "Add") || is_op(nd, "Mul")))
        return emitted(t, i, sat__onnx_emit(t, a->layer, "%s L%d", is_op(nd, "Add") ? "add" : "mul", b->layer));
    return UNSUPPORTED(i, "only as part of an activation (SiLU, GELU, parametric softplus, SmoothReLU), an input "
                          "normalisation, or as Add / Mul of two computed tensors");
}

/* Relu: the start of SmoothReLU's subgraph (Relu, Mul, Add, Log, Div, Sub), else a ReLU. */
static int32_t relu(tr *t, int32_t i) {
    const Onnx__NodeProto *nd = node_at(t, i);
    const sat__onnx_entry *x = input(t, i, 0);
    if (nd->n_input == 1 && !nd->n_attribute && x && x->kind != SAT__T_CONST && x->layer >= 0) {
        int matched = 0;
        int32_t st = region(t, i, x, &matched);
        if (st || matched) return st;
    }
    return act_node(t, i, SAT_ACT_RELU);
}

/* 1 if node i's axes are 2, 3 (or -2, -1): an input since opset 13, an attribute before. */
static int unit_hw_axes(const tr *t, int32_t i) {
    const Onnx__NodeProto *nd = node_at(t, i);
    int64_t axes[2];
    if (nd->n_input == 2 && !nd->n_attribute) {
        const sat__onnx_entry *a = input(t, i, 1);
        if (!a || a->kind != SAT__T_CONST || sat__onnx_tensor_count(a->tensor) != 2 ||
            !sat__onnx_tensor_is_int64(a->tensor, 2))
            return 0;
        for (int k = 0; k < 2; k++) axes[k] = sat__onnx_tensor_int_at(a->tensor, k);
    } else if (nd->n_input == 1 && nd->n_attribute == 1) {
        const Onnx__AttributeProto *a = attr(nd, "axes");
        if (!a || a->n_ints != 2) return 0;
        for (int k = 0; k < 2; k++) axes[k] = a->ints[k];
    } else {
        return 0;
    }
    return (axes[0] == 2 && axes[1] == 3) || (axes[0] == -2 && axes[1] == -1);
}

/* Unsqueeze of a computed [N, C] tensor to [N, C, 1, 1] (a squeeze-excitation gate before
 * its Mul): libsat's [C] already is C x 1 x 1, so the output is the input's layer, which is
 * checked to be one. An Unsqueeze of what is not a layer is left to a Reshape's batch size
 * (batch_shape.c). */
static int32_t unsqueeze(tr *t, int32_t i) {
    const sat__onnx_entry *x = input(t, i, 0);
    if (!x || x->kind == SAT__T_CONST || x->layer < 0) return SAT_OK;
    if (!unit_hw_axes(t, i))
        return UNSUPPORTED(i, "only axes 2, 3 of an [N, C] tensor (a gate before its Mul), or as the batch size of "
                              "a Reshape to [batch, features] (x.view(x.size(0), -1))");
    const sat__onnx_copy c = {x->layer, -1, NULL, SAT__S(node_at(t, i)->name), 0, 1.0f, 0.0f, SAT__ONNX_VECTOR};
    sat__onnx_copy_add(t, &c);
    set_out(t, i, x->layer);
    return SAT_OK;
}

/* ---- layers with weights ---- */

static int32_t conv(tr *t, int32_t i) {
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    int32_t st = check_attrs(t, i, known);
    const Onnx__TensorProto *w = NULL, *b = NULL;
    int64_t nw = 0, nb = 0, group = 1, stride = 1, pad = 0, dil = 1, kshape = 0;
    int32_t in = 0;
    if (!st) st = layer_in(t, i, 0, &in);
    if (!st) st = const_in(t, i, 1, 0, &w, &nw);
    if (!st) st = const_in(t, i, 2, 1, &b, &nb);
    if (st) return st;
    if (w->n_dims != 4)
        return UNSUPPORTED(i, "only 2-D convolutions are supported (weight of rank %zu)", w->n_dims);
    if (w->dims[2] != w->dims[3] || w->dims[0] < 1 || w->dims[2] < 1)
        return UNSUPPORTED(i, "only square kernels are supported (kernel %lld x %lld)",
                           (long long)w->dims[2], (long long)w->dims[3]);
    const int64_t k = w->dims[2];
    st = attr_int(t, i, "group", 1, &group);
    if (!st) st = attr_uniform(t, i, "strides", 2, 1, &stride);
    if (!st) st = attr_uniform(t, i, "pads", 4, 0, &pad);
    if (!st) st = attr_uniform(t, i, "dilations", 2, 1, &dil);
    if (!st) st = attr_uniform(t, i, "kernel_shape", 2, k, &kshape);
    if (!st) st = check_auto_pad(t, i, pad);
    if (st) return st;
    if (dil != 1) return UNSUPPORTED(i, "dilation %lld is not supported", (long long)dil);
    if (kshape != k) return MALFORMED(i, "kernel_shape %lld differs from the weight's %lld",
                                      (long long)kshape, (long long)k);
    if (group < 1 || stride < 1 || pad < 0 || k > 65536 || stride > 65536 || pad > 65536 || group > 65536 ||
        w->dims[0] > 65536)
        return UNSUPPORTED(i, "group, stride, padding or size out of range");
    if (b && nb != w->dims[0])
        return MALFORMED(i, "bias of %lld values for %lld outputs", (long long)nb, (long long)w->dims[0]);
    int32_t layer = sat__onnx_emit(t, in, "conv %lld k=%lld s=%lld p=%lld g=%lld bias=%d", (long long)w->dims[0],
                                   (long long)k, (long long)stride, (long long)pad, (long long)group, b ? 1 : 0);
    copy(t, layer, SAT_TENSOR_WEIGHT, w, i, 0, 1.0f, 0.0f);
    if (b) copy(t, layer, SAT_TENSOR_BIAS, b, i, 0, 1.0f, 0.0f);
    return emitted(t, i, layer);
}

/* A dense layer: weight [K, N] (transposed) or [N, K], bias of N values or one. */
static int32_t dense(tr *t, int32_t i, int32_t in, const Onnx__TensorProto *w, int transposed,
                     const Onnx__TensorProto *b, int64_t nb, float alpha, float beta, int32_t out_node) {
    if (w->n_dims != 2 || w->dims[0] < 1 || w->dims[1] < 1)
        return UNSUPPORTED(i, "only a 2-D weight is supported");
    const int64_t units = transposed ? w->dims[1] : w->dims[0];
    if (units > 65536 * 16) return UNSUPPORTED(i, "%lld outputs is too many", (long long)units);
    if (b && nb != 1 && nb != units)
        return UNSUPPORTED(i, "a bias of %lld values for %lld outputs", (long long)nb, (long long)units);
    int32_t layer = sat__onnx_emit(t, in, "dense %lld bias=%d", (long long)units, b ? 1 : 0);
    copy(t, layer, SAT_TENSOR_WEIGHT, w, i, transposed, alpha, 0.0f);
    if (b) copy(t, layer, SAT_TENSOR_BIAS, b, i, 0, beta, 0.0f);
    t->done[i] = 1;
    return emitted(t, out_node, layer);
}

static int32_t gemm(tr *t, int32_t i) {
    static const char *const known[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL};
    int32_t st = check_attrs(t, i, known);
    float alpha = 1, beta = 1;
    int64_t ta = 0, tb = 0;
    if (!st) st = attr_float(t, i, "alpha", 1.0f, &alpha);
    if (!st) st = attr_float(t, i, "beta", 1.0f, &beta);
    if (!st) st = attr_int(t, i, "transA", 0, &ta);
    if (!st) st = attr_int(t, i, "transB", 0, &tb);
    if (!st && ta) st = UNSUPPORTED(i, "transA=1 is not supported");
    int32_t in = 0;
    const Onnx__TensorProto *w = NULL, *b = NULL;
    int64_t nw = 0, nb = 0;
    if (!st) st = layer_in(t, i, 0, &in);
    if (!st) st = const_in(t, i, 1, 0, &w, &nw);
    if (!st) st = const_in(t, i, 2, 1, &b, &nb);
    return st ? st : dense(t, i, in, w, !tb, b, nb, alpha, beta, i);
}

/* MatMul by a constant [K, N], and an Add of a constant bias if that is its only reader. */
static int32_t matmul(tr *t, int32_t i) {
    int32_t st = check_attrs(t, i, (const char *const[]){NULL});
    int32_t in = 0;
    const Onnx__TensorProto *w = NULL, *b = NULL;
    int64_t nw = 0, nb = 0;
    if (!st) st = layer_in(t, i, 0, &in);
    if (!st) st = const_in(t, i, 1, 0, &w, &nw);
    if (st) return st;
    const sat__onnx_entry *y = sat__onnx_find(t, node_at(t, i)->output[0]);
    int32_t out_node = i;
    for (int32_t j = i + 1; y->uses == 1 && j < (int32_t)t->g->n_node; j++) {
        const Onnx__NodeProto *nd = node_at(t, j);
        if (!t->needed[j] || nd->n_input != 2) continue;
        const int first = strcmp(nd->input[0], y->name) == 0;
        if (!first && strcmp(nd->input[1], y->name) != 0) continue;
        const sat__onnx_entry *c = input(t, j, first ? 1 : 0);
        if (is_op(nd, "Add") && nd->n_attribute == 0 && c && c->kind == SAT__T_CONST) {
            nb = sat__onnx_tensor_count(c->tensor);
            if (nb >= 1 && sat__onnx_tensor_is_float(c->tensor, nb)) {
                b = c->tensor;
                out_node = j;
            }
        }
        break;
    }
    return dense(t, i, in, w, 1, b, nb, 1.0f, 1.0f, out_node);
}

static int32_t batchnorm(tr *t, int32_t i) {
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "is_test", "spatial",
                                        "consumed_inputs", NULL};
    int32_t st = check_attrs(t, i, known);
    float eps = SAT_BN_EPS;
    int64_t training = 0, is_test = 1, spatial = 1;
    if (!st) st = attr_float(t, i, "epsilon", SAT_BN_EPS, &eps);
    if (!st) st = attr_int(t, i, "training_mode", 0, &training);
    if (!st) st = attr_int(t, i, "is_test", 1, &is_test);
    if (!st) st = attr_int(t, i, "spatial", 1, &spatial);
    if (!st && (training || !is_test || !spatial))
        st = UNSUPPORTED(i, "only inference (running statistics per channel) is supported");
    if (!st) st = only_first_output(t, i);
    int32_t in = 0;
    const Onnx__TensorProto *p[4];
    int64_t n[4];
    if (!st) st = layer_in(t, i, 0, &in);
    for (size_t k = 0; k < 4 && !st; k++) st = const_in(t, i, k + 1, 0, &p[k], &n[k]);
    if (st) return st;
    for (size_t k = 1; k < 4; k++)
        if (n[k] != n[0]) return MALFORMED(i, "scale, bias, mean and var differ in length");
    if (!(eps >= 0)) return UNSUPPORTED(i, "epsilon %g", eps);
    int32_t layer = sat__onnx_emit(t, in, "bn");
    static const int32_t roles[4] = {SAT_TENSOR_BN_SCALE, SAT_TENSOR_BN_SHIFT, SAT_TENSOR_RUNNING_MEAN,
                                     SAT_TENSOR_RUNNING_VAR};
    /* (x - mean) / sqrt(var + eps): the same with libsat's eps and var + eps - 1e-5. */
    for (size_t k = 0; k < 4; k++) copy(t, layer, roles[k], p[k], i, 0, 1.0f, k == 3 ? eps - SAT_BN_EPS : 0.0f);
    return emitted(t, i, layer);
}

/* ---- pooling and shapes ---- */

static int32_t pool(tr *t, int32_t i, int is_max) {
    static const char *const kmax[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                       "storage_order", "strides", NULL};
    static const char *const kavg[] = {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads",
                                       "strides", NULL};
    int32_t st = check_attrs(t, i, is_max ? kmax : kavg);
    int64_t k = 0, stride = 0, pad = 0, ceil = 0, dil = 1;
    if (!st && !attr(node_at(t, i), "kernel_shape")) st = MALFORMED(i, "kernel_shape is missing");
    if (!st) st = attr_uniform(t, i, "kernel_shape", 2, 0, &k);
    if (!st) st = attr_uniform(t, i, "strides", 2, 1, &stride);
    if (!st) st = attr_uniform(t, i, "pads", 4, 0, &pad);
    if (!st) st = attr_uniform(t, i, "dilations", 2, 1, &dil);
    if (!st) st = attr_int(t, i, "ceil_mode", 0, &ceil);
    if (!st) st = check_auto_pad(t, i, pad);
    if (!st) st = only_first_output(t, i);
    if (st) return st;
    if (ceil || dil != 1) return UNSUPPORTED(i, "ceil_mode and dilations are not supported");
    if (k < 1 || k > 65536 || stride < 1 || stride > 65536 || pad < 0 || pad > 65536)
        return UNSUPPORTED(i, "kernel, stride or padding out of range");
    if (!is_max && pad) return UNSUPPORTED(i, "average pooling with padding is not supported");
    int32_t in = 0;
    st = layer_in(t, i, 0, &in);
    if (st) return st;
    if (is_max)
        return emitted(t, i, sat__onnx_emit(t, in, "maxpool k=%lld s=%lld p=%lld", (long long)k, (long long)stride,
                                            (long long)pad));
    return emitted(t, i, sat__onnx_emit(t, in, "avgpool k=%lld s=%lld", (long long)k, (long long)stride));
}

static int32_t flatten(tr *t, int32_t i) {
    static const char *const known[] = {"axis", NULL};
    int64_t axis = 1;
    int32_t in = 0;
    int32_t st = check_attrs(t, i, known);
    if (!st) st = attr_int(t, i, "axis", 1, &axis);
    if (!st && axis != 1) st = UNSUPPORTED(i, "only axis=1 (keep the batch) is supported");
    if (!st) st = layer_in(t, i, 0, &in);
    return st ? st : emitted(t, i, sat__onnx_emit(t, in, "flatten"));
}

/* Reshape to [batch, features] by a constant shape: a flatten, whose size is checked. */
static int32_t reshape(tr *t, int32_t i) {
    static const char *const known[] = {"allowzero", NULL};
    int32_t st = check_attrs(t, i, known);
    int32_t in = 0;
    if (!st) st = layer_in(t, i, 0, &in);
    if (st) return st;
    const sat__onnx_entry *s = input(t, i, 1);
    int64_t a = 0, b = 0;
    if (s && s->kind == SAT__T_CONST) {
        if (!sat__onnx_tensor_is_int64(s->tensor, 2) || sat__onnx_tensor_count(s->tensor) != 2)
            return UNSUPPORTED(i, "only a reshape to 2-D (batch x features) is supported");
        a = sat__onnx_tensor_int_at(s->tensor, 0);
        b = sat__onnx_tensor_int_at(s->tensor, 1);
    } else if (!sat__onnx_batch_shape(t, i, &b)) {
        return UNSUPPORTED(i, "only a constant target shape, or [x.size(0), K] as PyTorch exports it, is "
                              "supported");
    }
    if (a < -1 || b < -1 || b == 0 || (a == -1 && b == -1))
        return UNSUPPORTED(i, "target shape [%lld, %lld]: only [batch, features] is supported",
                           (long long)a, (long long)b);
    int32_t layer = sat__onnx_emit(t, in, "flatten");
    if (b > 0) {
        const sat__onnx_copy c = {layer, -1, NULL, SAT__S(node_at(t, i)->name), 0, 1.0f, 0.0f, b};
        sat__onnx_copy_add(t, &c);
    }
    return emitted(t, i, layer);
}

/* 1 if c is one BOOL false (ONNX keeps BOOL in raw_data bytes or in int32_data). */
static int is_false(const Onnx__TensorProto *c) {
    if (sat__onnx_tensor_count(c) != 1 || !c->has_data_type || c->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL)
        return 0;
    if (c->has_raw_data) return c->raw_data.len == 1 && c->raw_data.data[0] == 0;
    return c->n_int32_data == 1 && c->int32_data[0] == 0;
}

/* Identity, and Dropout in inference: the output is the input's layer. */
static int32_t alias(tr *t, int32_t i) {
    static const char *const known[] = {"ratio", "seed", "is_test", NULL};
    int32_t st = check_attrs(t, i, known);
    int32_t in = 0;
    if (!st) st = only_first_output(t, i);
    if (!st && is_op(node_at(t, i), "Dropout")) {
        const sat__onnx_entry *mode = input(t, i, 2);
        if (mode && !(mode->kind == SAT__T_CONST && is_false(mode->tensor)))
            st = UNSUPPORTED(i, "only inference (training_mode absent or a constant false) is "
                             "supported");
    }
    if (!st) st = layer_in(t, i, 0, &in);
    if (st) return st;
    set_out(t, i, in);
    return SAT_OK;
}

/* ReduceMean over the two spatial axes: `x.mean(dim=(2, 3))` in PyTorch, global average
 * pooling as many networks write it. With keepdims 0 the result is [N, C], which the layers
 * that read it (a Gemm, or an Unsqueeze back to [N, C, 1, 1]) take as libsat's C x 1 x 1. */
static int32_t spatial_mean(tr *t, int32_t i) {
    static const char *const known[] = {"axes", "keepdims", NULL};
    const Onnx__AttributeProto *axes = attr(node_at(t, i), "axes");
    int64_t keepdims = 1;
    int32_t in = 0, st = check_attrs(t, i, known);
    if (!st) st = attr_int(t, i, "keepdims", 1, &keepdims);
    if (st) return st;
    if (node_at(t, i)->n_input > 1)
        return UNSUPPORTED(i, "axes given as an input (opset 18) are not supported");
    int spatial = axes && axes->n_ints == 2;
    for (size_t k = 0; spatial && k < 2; k++) {
        const int64_t a = axes->ints[k];
        spatial = (a == 2 || a == 3 || a == -2 || a == -1) &&
                  (a < 0 ? a + 4 : a) != (axes->ints[1 - k] < 0 ? axes->ints[1 - k] + 4 : axes->ints[1 - k]);
    }
    if (!spatial) return UNSUPPORTED(i, "only the mean over the two spatial axes (2, 3) is supported");
    if (keepdims != 0 && keepdims != 1) return MALFORMED(i, "keepdims %lld is not 0 or 1", (long long)keepdims);
    st = layer_in(t, i, 0, &in);
    return st ? st : emitted(t, i, sat__onnx_emit(t, in, "gap"));
}

int32_t sat__onnx_node(sat__onnx_tr *t, int32_t i) {
    const Onnx__NodeProto *nd = node_at(t, i);
    if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") != 0)
        return UNSUPPORTED(i, "ops of domain '%s' are not supported", nd->domain);
    if (is_op(nd, "Constant")) {
        if (!sat__onnx_find(t, nd->output[0]) || sat__onnx_find(t, nd->output[0])->kind != SAT__T_CONST)
            return UNSUPPORTED(i, "only a Constant with a 'value' tensor is supported");
        t->done[i] = 1;
        return SAT_OK;
    }
    /* An Identity of a constant is that constant (build_table in translate.c). */
    if (is_op(nd, "Identity") && sat__onnx_find(t, nd->output[0]) &&
        sat__onnx_find(t, nd->output[0])->kind == SAT__T_CONST) {
        t->done[i] = 1;
        return SAT_OK;
    }
    /* The batch-size arithmetic of a Reshape: claimed by the Reshape (batch_shape.c), which
     * comes later; walk() refuses what no Reshape claimed. */
    if (is_op(nd, "Unsqueeze")) return unsqueeze(t, i);
    if (is_op(nd, "Shape") || is_op(nd, "Gather") || is_op(nd, "Concat")) return SAT_OK;
    if (is_op(nd, "Conv")) return conv(t, i);
    if (is_op(nd, "Gemm")) return gemm(t, i);
    if (is_op(nd, "MatMul")) return matmul(t, i);
    if (is_op(nd, "BatchNormalization")) return batchnorm(t, i);
    if (is_op(nd, "Relu")) return relu(t, i);
    if (is_op(nd, "Softplus")) return act_node(t, i, SAT_ACT_SOFTPLUS);
    if (is_op(nd, "Elu")) return act_node(t, i, SAT_ACT_ELU);
    if (is_op(nd, "Celu")) return act_node(t, i, SAT_ACT_CELU);
    if (is_op(nd, "MaxPool")) return pool(t, i, 1);
    if (is_op(nd, "AveragePool")) return pool(t, i, 0);
    if (is_op(nd, "GlobalAveragePool")) {
        int32_t in = 0, st = check_attrs(t, i, (const char *const[]){NULL});
        if (!st) st = layer_in(t, i, 0, &in);
        return st ? st : emitted(t, i, sat__onnx_emit(t, in, "gap"));
    }
    if (is_op(nd, "ReduceMean")) return spatial_mean(t, i);
    if (is_op(nd, "Flatten")) return flatten(t, i);
    if (is_op(nd, "Reshape")) return reshape(t, i);
    if (is_op(nd, "Identity") || is_op(nd, "Dropout")) return alias(t, i);
    if (elementwise(nd)) return elementwise_node(t, i);
    return UNSUPPORTED(i, "this op is not supported");
}

/* ---- the input normalisation ---- */

/* The values of c broadcast per channel against the input (rank r, `channels`): c's
 * dims right-aligned, 1 everywhere but the channel axis. 0 if it does not broadcast so. */
static int per_channel(const Onnx__TensorProto *c, int32_t rank, int64_t channels, int64_t count) {
    if ((int32_t)c->n_dims > rank) return 0;
    for (size_t k = 0; k < c->n_dims; k++) {
        const int32_t axis = rank - (int32_t)c->n_dims + (int32_t)k;
        if (c->dims[k] != 1 && !(axis == 1 && c->dims[k] == channels)) return 0;
    }
    return count == 1 || count == channels;
}

int32_t sat__onnx_normalize(sat__onnx_tr *t) {
    sat__onnx_entry *x = NULL;
    for (int32_t e = 0; e < t->num_ents && !x; e++)
        if (t->ents[e].kind == SAT__T_INPUT) x = &t->ents[e];
    const int64_t channels = t->input_channels;
    if (channels > NORMALIZE_MAX_CHANNELS) return SAT_OK;
    double a[NORMALIZE_MAX_CHANNELS], b[NORMALIZE_MAX_CHANNELS];
    for (int c = 0; c < channels; c++) a[c] = 1, b[c] = 0;
    int32_t folded = 0, last = -1;
    for (;;) {
        int32_t j = -1;
        for (int32_t q = 0; q < (int32_t)t->g->n_node && x->uses == 1 && j < 0; q++) {
            const Onnx__NodeProto *nd = node_at(t, q);
            if (t->needed[q] && nd->n_input == 2 && strcmp(nd->input[0], x->name) == 0) j = q;
        }
        if (j < 0) break;
        const Onnx__NodeProto *nd = node_at(t, j);
        const int sub = is_op(nd, "Sub"), div = is_op(nd, "Div"), mul = is_op(nd, "Mul"), add = is_op(nd, "Add");
        const sat__onnx_entry *k = input(t, j, 1);
        if (!(sub || div || mul || add) || nd->n_attribute || !k || k->kind != SAT__T_CONST) break;
        const int64_t n = sat__onnx_tensor_count(k->tensor);
        if (n < 1 || !sat__onnx_tensor_is_float(k->tensor, n) || !per_channel(k->tensor, t->input_rank, channels, n))
            break;
        for (int c = 0; c < channels; c++) {
            const double v = sat__onnx_tensor_at(k->tensor, n == 1 ? 0 : c);
            if (sub) b[c] -= v;
            if (add) b[c] += v;
            if (mul) a[c] *= v, b[c] *= v;
            if (div) a[c] /= v, b[c] /= v;
        }
        t->done[j] = 1;
        folded++;
        last = j;
        x = sat__onnx_find(t, nd->output[0]);
    }
    if (!folded) return SAT_OK;
    /* a x + b = (x - mean) / std with std = 1 / a, mean = -b / a. */
    char mean[NORMALIZE_MAX_CHANNELS * 18], std[NORMALIZE_MAX_CHANNELS * 18];
    size_t lm = 0, ls = 0;
    for (int c = 0; c < channels; c++) {
        if (!(a[c] > 0) || !isfinite(a[c]) || !isfinite(b[c]) || !isfinite(1.0 / a[c]))
            return UNSUPPORTED(last, "the input normalisation has a scale that is not positive and "
                               "finite");
        lm += (size_t)snprintf(mean + lm, sizeof mean - lm, "%s%.9g", c ? "," : "", -b[c] / a[c]);
        ls += (size_t)snprintf(std + ls, sizeof std - ls, "%s%.9g", c ? "," : "", 1.0 / a[c]);
    }
    return emitted(t, last, sat__onnx_emit(t, 0, "normalize mean=%s std=%s", mean, std));
}
