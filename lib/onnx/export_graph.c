/* export_graph.c - the parts of an exported ONNX graph (nodes, attributes, initializers,
 * names), all allocated in one arena from the model's context allocator. */
#include "onnx/export.h"

#include <stdio.h>
#include <string.h>

#define CHUNK_SIZE ((size_t)64 << 10)
#define ARENA_ALIGN 16

struct sat__onnx_out_chunk {
    sat__onnx_out_chunk *next;
    size_t used, cap;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

/* Bounds of what one layer adds: the longest form (GELU's tanh form, 9 nodes) plus the
 * reshapes of its inputs; its tensors (batch norm's 4) plus shared constants. */
#define NODES_PER_LAYER 16
#define INITS_PER_LAYER 8
#define SHARED_INITS 16

void *sat__onnx_out_alloc(sat__onnx_out *o, size_t size) {
    if (o->status) return NULL;
    size = (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    sat__onnx_out_chunk *c = o->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
        c = sat__alloc(o->m->ctx, sizeof *c + cap);
        if (!c) {
            o->status = SAT_E_NOMEM;
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = o->chunks;
        o->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

const char *sat__onnx_out_name(sat__onnx_out *o, const char *prefix, const char *suffix) {
    char buf[SAT__ONNX_NAME_MAX];
    snprintf(buf, sizeof buf, suffix ? "%s.%s" : "%s", prefix, suffix);
    char *s = sat__onnx_out_alloc(o, strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

/* ---- the names of layers ---- */

/* A label is an ONNX name of its own when it cannot be taken for another name: letters,
 * digits, '_' and '-' only (so no "<layer>.<suffix>" name of another layer equals it),
 * not a reserved name, and not the generated name of another layer. */
static int label_usable(const sat_model *m, const char *label, char generated[][SAT__ONNX_NAME_MAX]) {
    if (!*label || !strcmp(label, "input") || !strcmp(label, "logits") || !strcmp(label, "const")) return 0;
    for (const char *p = label; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return 0;
    for (int32_t i = 0; i < m->num_nodes; i++)
        if (!strcmp(label, generated[i])) return 0;
    return 1;
}

/* Layer i's generated name: what it is and its index ("conv3", "silu5"). */
static void generated_name(const sat_model *m, int32_t i, char *out) {
    const sat_node *nd = &m->nodes[i];
    const char *what = nd->op == SAT_OP_ACT && sat__act_name(nd->act) ? sat__act_name(nd->act) : sat__ops[nd->op].name;
    snprintf(out, SAT__ONNX_NAME_MAX, "%s%d", what, i);
}

static int32_t name_layers(sat__onnx_out *o) {
    const sat_model *m = o->m;
    char(*generated)[SAT__ONNX_NAME_MAX] = sat__alloc(m->ctx, (size_t)m->num_nodes * SAT__ONNX_NAME_MAX);
    if (!generated) return o->status = SAT_E_NOMEM;
    for (int32_t i = 0; i < m->num_nodes; i++) generated_name(m, i, generated[i]);
    for (int32_t i = 0; i < m->num_nodes && !o->status; i++) {
        const char *label = m->nodes[i].name;
        const char *name = label_usable(m, label, generated) ? label : generated[i];
        o->layer_name[i] = i == 0 ? "input" : sat__onnx_out_name(o, name, NULL);
    }
    sat__dealloc(m->ctx, generated);
    return o->status;
}

int32_t sat__onnx_out_begin(sat__onnx_out *o, const sat_model *m, char *err) {
    memset(o, 0, sizeof *o);
    o->m = m;
    o->err = err;
    const size_t layers = (size_t)m->num_nodes;
    o->graph = sat__onnx_out_alloc(o, sizeof *o->graph);
    o->layer_name = sat__onnx_out_alloc(o, layers * sizeof *o->layer_name);
    o->tensor = sat__onnx_out_alloc(o, layers * sizeof *o->tensor);
    o->rank = sat__onnx_out_alloc(o, layers * sizeof *o->rank);
    o->node_cap = NODES_PER_LAYER * layers;
    o->init_cap = INITS_PER_LAYER * layers + SHARED_INITS;
    Onnx__GraphProto init = ONNX__GRAPH_PROTO__INIT;
    if (o->graph) {
        *o->graph = init;
        o->graph->node = sat__onnx_out_alloc(o, o->node_cap * sizeof *o->graph->node);
        o->graph->initializer = sat__onnx_out_alloc(o, o->init_cap * sizeof *o->graph->initializer);
    }
    if (!o->status) name_layers(o);
    if (o->status) sat__onnx_out_end(o);
    return o->status;
}

void sat__onnx_out_end(sat__onnx_out *o) {
    while (o->chunks) {
        sat__onnx_out_chunk *next = o->chunks->next;
        sat__dealloc(o->m->ctx, o->chunks);
        o->chunks = next;
    }
}

/* ---- nodes and attributes ---- */

Onnx__NodeProto *sat__onnx_out_node(sat__onnx_out *o, const char *op_type, const char *const *inputs, size_t count,
                                const char *output) {
    Onnx__NodeProto *nd = sat__onnx_out_alloc(o, sizeof *nd);
    char **in = sat__onnx_out_alloc(o, count * sizeof *in);
    char **out = sat__onnx_out_alloc(o, sizeof *out);
    if (o->status || !output) return NULL;
    for (size_t i = 0; i < count; i++) {
        if (!inputs[i]) return NULL; /* a name that could not be made */
        in[i] = (char *)inputs[i];
    }
    if (o->graph->n_node == o->node_cap) { /* the bound above is wrong: a bug */
        o->status = SAT_E_INTERNAL;
        return NULL;
    }
    Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
    *nd = init;
    nd->op_type = (char *)op_type;
    nd->name = (char *)output;
    nd->n_input = count;
    nd->input = in;
    nd->n_output = 1;
    nd->output = out;
    out[0] = (char *)output;
    o->graph->node[o->graph->n_node++] = nd;
    return nd;
}

static Onnx__AttributeProto *attr(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name,
                                  Onnx__AttributeProto__AttributeType type) {
    if (!nd) return NULL;
    Onnx__AttributeProto *a = sat__onnx_out_alloc(o, sizeof *a);
    Onnx__AttributeProto **list = sat__onnx_out_alloc(o, (nd->n_attribute + 1) * sizeof *list);
    if (!a || !list) return NULL;
    Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;
    *a = init;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    if (nd->n_attribute) memcpy(list, nd->attribute, nd->n_attribute * sizeof *list);
    list[nd->n_attribute++] = a;
    nd->attribute = list;
    return a;
}

void sat__onnx_out_attr_int(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return;
    a->has_i = 1;
    a->i = v;
}

void sat__onnx_out_attr_float(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name, float v) {
    Onnx__AttributeProto *a = attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return;
    a->has_f = 1;
    a->f = v;
}

void sat__onnx_out_attr_ints(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name, int64_t v, size_t count) {
    Onnx__AttributeProto *a = attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = sat__onnx_out_alloc(o, count * sizeof *ints);
    if (!a || !ints) return;
    for (size_t i = 0; i < count; i++) ints[i] = v;
    a->n_ints = count;
    a->ints = ints;
}

/* ---- initializers ---- */

static Onnx__TensorProto *initializer(sat__onnx_out *o, const char *name, const int64_t *dims, size_t ndim,
                                      int32_t type) {
    Onnx__TensorProto *t = sat__onnx_out_alloc(o, sizeof *t);
    int64_t *d = sat__onnx_out_alloc(o, ndim * sizeof *d);
    if (o->status || !name) return NULL;
    if (o->graph->n_initializer == o->init_cap) {
        o->status = SAT_E_INTERNAL;
        return NULL;
    }
    Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
    *t = init;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = type;
    if (ndim) memcpy(d, dims, ndim * sizeof *d);
    t->n_dims = ndim;
    t->dims = d;
    o->graph->initializer[o->graph->n_initializer++] = t;
    return t;
}

const char *sat__onnx_out_floats(sat__onnx_out *o, const char *name, const int64_t *dims, size_t ndim,
                             const float *data) {
    Onnx__TensorProto *t = initializer(o, name, dims, ndim, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    if (!t) return NULL;
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++) count *= (size_t)dims[i];
    /* float_data, not raw_data: protobuf-c writes it little-endian on any host */
    t->n_float_data = count;
    t->float_data = (float *)data;
    return name;
}

static const Onnx__TensorProto *find_initializer(const sat__onnx_out *o, const char *name) {
    for (size_t i = 0; i < o->graph->n_initializer; i++)
        if (!strcmp(o->graph->initializer[i]->name, name)) return o->graph->initializer[i];
    return NULL;
}

const char *sat__onnx_out_scalar(sat__onnx_out *o, const char *name, float v) {
    if (o->status) return NULL;
    const Onnx__TensorProto *t = find_initializer(o, name);
    if (t) return t->name;
    float *value = sat__onnx_out_alloc(o, sizeof *value);
    if (!value) return NULL;
    *value = v;
    return sat__onnx_out_floats(o, sat__onnx_out_name(o, name, NULL), NULL, 0, value);
}

const char *sat__onnx_out_hw_axes(sat__onnx_out *o) {
    static const char name[] = "const.hw_axes";
    if (o->status) return NULL;
    const Onnx__TensorProto *t = find_initializer(o, name);
    if (t) return t->name;
    const int64_t dims[1] = {2};
    int64_t *axes = sat__onnx_out_alloc(o, 2 * sizeof *axes);
    Onnx__TensorProto *made = initializer(o, name, dims, 1, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    if (!made) return NULL;
    axes[0] = 2;
    axes[1] = 3;
    made->n_int64_data = 2;
    made->int64_data = axes;
    return made->name;
}
