/* translate.c - walks an ONNX graph and writes the libsat spec that computes the same
 * function, with the list of initializers to copy into the model's blocks.
 *
 * Only the nodes the graph output depends on are translated (a Dropout's mask or a
 * BatchNormalization's training outputs are left out), in the file's order, which ONNX
 * requires to be topological. Each spec line is labelled L<index> and reads its producer
 * by from=, so a tensor that several nodes read (a residual branch) needs no special case.
 * Identity and Dropout produce no line: their output is the layer of their input. */
#include "onnx/translate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODE_OUTPUTS 16
#define MAX_NODE_INPUTS 64

static int by_name(const void *a, const void *b) {
    return strcmp(((const sat__onnx_entry *)a)->name, ((const sat__onnx_entry *)b)->name);
}

sat__onnx_entry *sat__onnx_find(const sat__onnx_tr *t, const char *name) {
    sat__onnx_entry key;
    key.name = name;
    return bsearch(&key, t->ents, (size_t)t->num_ents, sizeof key, by_name);
}

int32_t sat__onnx_fail(const sat__onnx_tr *t, int32_t status, int32_t i, const char *fmt, ...) {
    char what[SAT_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *nd = t->g->node[i];
    return sat__fail(t->err, status, "node '%s' (%s): %s", SAT__S(nd->name), SAT__S(nd->op_type), what);
}

static int grow(const sat_context *ctx, void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *bigger = sat__alloc(ctx, cap2 * elem);
    if (!bigger) return 0;
    if (*buf) memcpy(bigger, *buf, *cap * elem);
    sat__dealloc(ctx, *buf);
    *buf = bigger;
    *cap = cap2;
    return 1;
}

int32_t sat__onnx_emit(sat__onnx_tr *t, int32_t in0, const char *fmt, ...) {
    sat__onnx_plan *p = t->plan;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char tail[64];
    int m = in0 >= 0 ? snprintf(tail, sizeof tail, " from=L%d name=L%d\n", (int)in0, (int)p->layers)
                     : snprintf(tail, sizeof tail, " name=L%d\n", (int)p->layers);
    if (n < 0 || (size_t)n >= sizeof line || !grow(t->ctx, (void **)&p->spec, &p->cap, p->len + n + m + 1, 1)) {
        p->failed = 1;
        return -1;
    }
    memcpy(p->spec + p->len, line, (size_t)n);
    memcpy(p->spec + p->len + n, tail, (size_t)m + 1);
    p->len += (size_t)(n + m);
    return p->layers++;
}

void sat__onnx_copy_add(sat__onnx_tr *t, const sat__onnx_copy *c) {
    sat__onnx_plan *p = t->plan;
    size_t cap = (size_t)p->cap_copies;
    if (!grow(t->ctx, (void **)&p->copies, &cap, (size_t)p->num_copies + 1, sizeof *c)) {
        p->failed = 1;
        return;
    }
    p->cap_copies = (int32_t)cap;
    p->copies[p->num_copies++] = *c;
}

void sat__onnx_plan_free(const sat_context *ctx, sat__onnx_plan *plan) {
    sat__dealloc(ctx, plan->spec);
    sat__dealloc(ctx, plan->copies);
    memset(plan, 0, sizeof *plan);
}

/* The table of tensor names: initializers, Constant outputs, node outputs, the input. */
static int32_t build_table(sat__onnx_tr *t) {
    const Onnx__GraphProto *g = t->g;
    if (g->n_node > SAT__ONNX_MAX_NODES || g->n_initializer > SAT__ONNX_MAX_TENSORS)
        return sat__fail(t->err, SAT_E_UNSUPPORTED, "the graph has %zu nodes and %zu initializers; at most %d and "
                         "%d are read", g->n_node, g->n_initializer, SAT__ONNX_MAX_NODES, SAT__ONNX_MAX_TENSORS);
    size_t total = g->n_initializer + g->n_input;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        if (nd->n_output < 1 || nd->n_output > MAX_NODE_OUTPUTS || nd->n_input > MAX_NODE_INPUTS)
            return UNSUPPORTED((int32_t)i, "%zu inputs and %zu outputs (1 to %d outputs and at most %d "
                               "inputs are read)", nd->n_input, nd->n_output, MAX_NODE_OUTPUTS,
                               MAX_NODE_INPUTS);
        /* Every op translated writes its first output; a node without one has nothing to hold it. */
        if (!*nd->output[0]) return UNSUPPORTED((int32_t)i, "the first output has no name");
        total += nd->n_output;
    }
    t->ents = sat__calloc(t->ctx, total ? total : 1, sizeof *t->ents);
    t->needed = sat__calloc(t->ctx, g->n_node + 1, 1);
    t->done = sat__calloc(t->ctx, g->n_node + 1, 1);
    if (!t->ents || !t->needed || !t->done) return sat__fail(t->err, SAT_E_NOMEM, "out of memory");
    int32_t n = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        if (!g->initializer[i]->name || !*g->initializer[i]->name)
            return sat__fail(t->err, SAT_E_FORMAT, "initializer %zu has no name", i);
        t->ents[n++] = (sat__onnx_entry){g->initializer[i]->name, SAT__T_CONST, g->initializer[i], -1, -1, 0};
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        const int is_const = strcmp(SAT__S(nd->op_type), "Constant") == 0;
        for (size_t k = 0; k < nd->n_output; k++) {
            if (!*nd->output[k]) continue; /* an optional output left out */
            const Onnx__TensorProto *value = NULL;
            if (is_const && nd->n_attribute == 1 && nd->attribute[0]->t &&
                strcmp(SAT__S(nd->attribute[0]->name), "value") == 0)
                value = nd->attribute[0]->t;
            t->ents[n++] = (sat__onnx_entry){nd->output[k], value ? SAT__T_CONST : SAT__T_NODE, value, (int32_t)i,
                                             -1, 0};
        }
    }
    t->num_ents = n;
    qsort(t->ents, (size_t)n, sizeof *t->ents, by_name);
    for (int32_t i = 1; i < n; i++)
        if (strcmp(t->ents[i - 1].name, t->ents[i].name) == 0)
            return sat__fail(t->err, SAT_E_FORMAT, "tensor '%s' is defined twice", t->ents[i].name);
    /* Graph inputs that are initializers too (IR version 3 lists them) are weights. */
    const Onnx__ValueInfoProto *input = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = SAT__S(g->input[i]->name);
        if (sat__onnx_find(t, name)) continue;
        if (input)
            return sat__fail(t->err, SAT_E_UNSUPPORTED, "the graph has more than one input ('%s' and '%s'); a "
                             "classifier has one", SAT__S(input->name), name);
        input = g->input[i];
    }
    if (!input) return sat__fail(t->err, SAT_E_UNSUPPORTED, "the graph has no input that is not an initializer");
    if (!*SAT__S(input->name)) return sat__fail(t->err, SAT_E_FORMAT, "the graph input has no name");
    t->ents[n++] = (sat__onnx_entry){input->name, SAT__T_INPUT, NULL, -1, 0, 0};
    t->num_ents = n;
    qsort(t->ents, (size_t)n, sizeof *t->ents, by_name);
    /* PyTorch's exporter writes an initializer equal to an earlier one as an Identity of it:
     * such an output is that constant (nodes come in topological order, so chains resolve). */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        if (strcmp(SAT__S(nd->op_type), "Identity") != 0 || nd->n_input != 1) continue;
        const sat__onnx_entry *src = sat__onnx_find(t, SAT__S(nd->input[0]));
        sat__onnx_entry *out = sat__onnx_find(t, nd->output[0]);
        if (src && out && src->kind == SAT__T_CONST) {
            out->kind = SAT__T_CONST;
            out->tensor = src->tensor;
        }
    }
    return SAT_OK;
}

/* "input C H W" from the graph input's type: float, rank 2 (N x F), 3 (N x C x L) or 4,
 * every size but the batch fixed. */
static int32_t emit_input(sat__onnx_tr *t) {
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < t->g->n_input && !in; i++) {
        const sat__onnx_entry *e = sat__onnx_find(t, SAT__S(t->g->input[i]->name));
        if (e && e->kind == SAT__T_INPUT) in = t->g->input[i];
    }
    const Onnx__TypeProto *ty = in->type;
    if (!ty || ty->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !ty->tensor_type ||
        !ty->tensor_type->has_elem_type || ty->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return sat__fail(t->err, SAT_E_UNSUPPORTED, "graph input '%s': only a float tensor is supported", in->name);
    const Onnx__TensorShapeProto *sh = ty->tensor_type->shape;
    if (!sh || sh->n_dim < 2 || sh->n_dim > 4)
        return sat__fail(t->err, SAT_E_UNSUPPORTED, "graph input '%s': needs a shape of rank 2 to 4 (N x F, N x C x "
                         "L or N x C x H x W), has %s", in->name, sh ? "another rank" : "none");
    int64_t d[3] = {1, 1, 1};
    for (size_t k = 1; k < sh->n_dim; k++) {
        const Onnx__TensorShapeProto__Dimension *dim = sh->dim[k];
        if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || dim->dim_value < 1 ||
            dim->dim_value > 65536)
            return sat__fail(t->err, SAT_E_UNSUPPORTED, "graph input '%s': dimension %zu is dynamic or outside "
                             "1..65536 (only the batch may vary)", in->name, k);
        d[k - 1] = dim->dim_value;
    }
    t->input_rank = (int32_t)sh->n_dim;
    t->input_channels = d[0];
    return sat__onnx_emit(t, -1, "input %lld %lld %lld", (long long)d[0], (long long)d[1], (long long)d[2]) < 0
               ? sat__fail(t->err, SAT_E_NOMEM, "out of memory")
               : SAT_OK;
}

/* Marks the nodes the output depends on and counts the readers of each tensor among them;
 * checks that every name read is defined before it is read. */
static int32_t mark_needed(sat__onnx_tr *t) {
    const Onnx__GraphProto *g = t->g;
    if (g->n_output != 1)
        return sat__fail(t->err, SAT_E_UNSUPPORTED, "the graph has %zu outputs; a classifier has one", g->n_output);
    t->output = SAT__S(g->output[0]->name);
    sat__onnx_entry *out = sat__onnx_find(t, t->output);
    if (!out) return sat__fail(t->err, SAT_E_FORMAT, "the graph output '%s' is not produced", t->output);
    out->uses++;
    if (out->kind == SAT__T_NODE) t->needed[out->node] = 1;
    /* Backwards over the file's order: a needed node's producers come before it. */
    for (int32_t i = (int32_t)g->n_node - 1; i >= 0; i--) {
        if (!t->needed[i]) continue;
        const Onnx__NodeProto *nd = g->node[i];
        for (size_t k = 0; k < nd->n_input; k++) {
            if (!*nd->input[k]) continue; /* an optional input left out */
            sat__onnx_entry *e = sat__onnx_find(t, nd->input[k]);
            if (!e) return MALFORMED(i, "input '%s' is not defined", nd->input[k]);
            if (e->node >= i) return MALFORMED(i, "input '%s' is produced later (the nodes are not in "
                                               "topological order)", nd->input[k]);
            e->uses++;
            if (e->node >= 0) t->needed[e->node] = 1;
        }
    }
    return SAT_OK;
}

static int32_t walk(sat__onnx_tr *t) {
    int32_t st = build_table(t);
    if (!st) st = emit_input(t);
    if (!st) st = mark_needed(t);
    if (!st) st = sat__onnx_normalize(t);
    for (int32_t i = 0; !st && i < (int32_t)t->g->n_node; i++)
        if (t->needed[i] && !t->done[i]) st = sat__onnx_node(t, i);
    for (int32_t i = 0; !st && i < (int32_t)t->g->n_node; i++)
        if (t->needed[i] && !t->done[i])
            st = UNSUPPORTED(i, "only as the batch size of a Reshape to [batch, features] (x.view(x.size(0), -1))");
    if (!st && t->plan->failed) st = sat__fail(t->err, SAT_E_NOMEM, "out of memory");
    if (st) return st;
    const sat__onnx_entry *out = sat__onnx_find(t, t->output);
    if (out->layer < 1 || out->layer != t->plan->layers - 1)
        return sat__fail(t->err, SAT_E_UNSUPPORTED, "the graph output '%s' is %s", t->output,
                         out->layer == 0 ? "the input itself" : "not the result of the last layer");
    return SAT_OK;
}

int32_t sat__onnx_translate(const sat_context *ctx, const Onnx__ModelProto *model, const sat__onnx_act_swap *swap,
                            sat__onnx_plan *plan, char *err) {
    memset(plan, 0, sizeof *plan);
    sat__onnx_tr t;
    memset(&t, 0, sizeof t);
    t.ctx = ctx;
    t.g = model->graph;
    t.plan = plan;
    t.swap = *swap;
    t.err = err;
    int32_t st = walk(&t);
    sat__dealloc(ctx, t.ents);
    sat__dealloc(ctx, t.needed);
    sat__dealloc(ctx, t.done);
    if (st) sat__onnx_plan_free(ctx, plan);
    return st;
}
