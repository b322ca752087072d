/* testutil_onnx.c - small ONNX models built in memory (see testutil_onnx.h). */
#include "testutil_onnx.h"

#include <string.h>

static char *dup_str(const char *s) {
    char *p = tu_alloc(strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

/* Appends one pointer to a protobuf-c repeated field (a tu_alloc'ed array grown by one). */
static void push(void ***arr, size_t *n, void *item) {
    void **bigger = tu_alloc((*n + 1) * sizeof *bigger);
    if (*n) memcpy(bigger, *arr, *n * sizeof *bigger);
    bigger[(*n)++] = item;
    *arr = bigger;
}

tu_onnx *tu_onnx_new(const char *name, int rank, const int64_t *dims) {
    tu_onnx *g = tu_alloc(sizeof *g);
    onnx__model_proto__init(&g->model);
    onnx__graph_proto__init(&g->graph);
    g->model.has_ir_version = 1;
    g->model.ir_version = 8;
    g->model.graph = &g->graph;
    g->graph.name = dup_str("test");
    Onnx__OperatorSetIdProto *opset = tu_alloc(sizeof *opset);
    onnx__operator_set_id_proto__init(opset);
    opset->has_version = 1;
    opset->version = 13;
    push((void ***)&g->model.opset_import, &g->model.n_opset_import, opset);

    Onnx__TensorShapeProto *shape = tu_alloc(sizeof *shape);
    onnx__tensor_shape_proto__init(shape);
    for (int k = 0; k < rank; k++) {
        Onnx__TensorShapeProto__Dimension *d = tu_alloc(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (k == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = dup_str("N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[k];
        }
        push((void ***)&shape->dim, &shape->n_dim, d);
    }
    Onnx__TypeProto__Tensor *tt = tu_alloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    Onnx__TypeProto *ty = tu_alloc(sizeof *ty);
    onnx__type_proto__init(ty);
    ty->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    ty->tensor_type = tt;
    Onnx__ValueInfoProto *in = tu_alloc(sizeof *in);
    onnx__value_info_proto__init(in);
    in->name = dup_str(name);
    in->type = ty;
    push((void ***)&g->graph.input, &g->graph.n_input, in);
    return g;
}

static Onnx__TensorProto *new_tensor(tu_onnx *g, const char *name, int ndims, const int64_t *dims, int type) {
    Onnx__TensorProto *t = tu_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = dup_str(name);
    t->has_data_type = 1;
    t->data_type = type;
    t->n_dims = (size_t)ndims;
    t->dims = tu_alloc(sizeof(int64_t) * (size_t)(ndims ? ndims : 1));
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndims);
    push((void ***)&g->graph.initializer, &g->graph.n_initializer, t);
    return t;
}

static size_t count_of(int ndims, const int64_t *dims) {
    size_t n = 1;
    for (int k = 0; k < ndims; k++) n *= (size_t)dims[k];
    return n;
}

Onnx__TensorProto *tu_onnx_init(tu_onnx *g, const char *name, int ndims, const int64_t *dims, const float *vals,
                                int raw) {
    Onnx__TensorProto *t = new_tensor(g, name, ndims, dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    const size_t n = count_of(ndims, dims);
    float *copy = tu_alloc(sizeof(float) * (n ? n : 1));
    memcpy(copy, vals, sizeof(float) * n);
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.len = n * sizeof(float);
        t->raw_data.data = (uint8_t *)copy;
    } else {
        t->n_float_data = n;
        t->float_data = copy;
    }
    return t;
}

void tu_onnx_init_i64(tu_onnx *g, const char *name, int count, const int64_t *vals) {
    const int64_t dims[1] = {count};
    Onnx__TensorProto *t = new_tensor(g, name, 1, dims, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    t->n_int64_data = (size_t)count;
    t->int64_data = tu_alloc(sizeof(int64_t) * (size_t)count);
    memcpy(t->int64_data, vals, sizeof(int64_t) * (size_t)count);
}

static void split(const char *list, char ***out, size_t *n) {
    char *copy = dup_str(list);
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
        push((void ***)out, n, p);
}

Onnx__NodeProto *tu_onnx_node(tu_onnx *g, const char *op, const char *name, const char *inputs,
                              const char *outputs) {
    Onnx__NodeProto *n = tu_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = dup_str(op);
    n->name = dup_str(name);
    split(inputs, &n->input, &n->n_input);
    split(outputs, &n->output, &n->n_output);
    push((void ***)&g->graph.node, &g->graph.n_node, n);
    return n;
}

static Onnx__AttributeProto *new_attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = tu_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = dup_str(name);
    a->has_type = 1;
    a->type = type;
    push((void ***)&n->attribute, &n->n_attribute, a);
    return a;
}

void tu_onnx_attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void tu_onnx_attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = tu_alloc(sizeof(int64_t) * (size_t)count);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

void tu_onnx_attr_float(Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void tu_onnx_output(tu_onnx *g, const char *name) {
    Onnx__ValueInfoProto *out = tu_alloc(sizeof *out);
    onnx__value_info_proto__init(out);
    out->name = dup_str(name);
    push((void ***)&g->graph.output, &g->graph.n_output, out);
}

uint8_t *tu_onnx_pack(tu_onnx *g, size_t *size) {
    *size = onnx__model_proto__get_packed_size(&g->model);
    uint8_t *buf = tu_alloc(*size ? *size : 1);
    onnx__model_proto__pack(&g->model, buf);
    return buf;
}

int32_t tu_onnx_load(sat_context *ctx, tu_onnx *g, const sat_onnx_import_opts *opts, sat_model **out) {
    size_t size = 0;
    uint8_t *buf = tu_onnx_pack(g, &size);
    *out = NULL;
    int32_t st = sat_model_load_onnx_buffer(ctx, buf, size, opts, out);
    if (st == SAT_OK) tu_own_model(*out);
    return st;
}
