/* export.c - the public calls that write a model as ONNX, to a file and to memory: the
 * options, the model around the graph (opset, input and output), packing. */
#include "onnx/export.h"

#include "io/io.h"

#include <string.h>

static sat_onnx_export_opts export_defaults(void) {
    sat_onnx_export_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.opset = SAT__ONNX_OPSET_MIN;
    d.batch_dim = 0; /* symbolic */
    return d;
}

int32_t sat_onnx_export_opts_init(sat_onnx_export_opts *opts, uint32_t struct_size) {
    sat__clear_tls_error();
    sat_onnx_export_opts d = export_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_onnx_export_opts_init");
}

static int32_t opts_import(const sat_onnx_export_opts *opts, const char *fn, sat_onnx_export_opts *out, char *err) {
    *out = export_defaults();
    if (!opts) return SAT_OK;
    int32_t st = sat__opts_copy(out, sizeof *out, opts, fn, err);
    if (st) return st;
    if (out->opset < 1 || out->batch_dim < 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: opset must be >= 1 and batch_dim >= 0, got %d and %d", fn,
                         out->opset, out->batch_dim);
    if (out->opset < SAT__ONNX_OPSET_MIN || out->opset > SAT__ONNX_OPSET_MAX)
        return sat__fail(err, SAT_E_UNSUPPORTED, "%s: opset %d is not written; opsets %d to %d are", fn, out->opset,
                         SAT__ONNX_OPSET_MIN, SAT__ONNX_OPSET_MAX);
    return SAT_OK;
}

/* The IR version each opset came with: 7 for 13 and 14, 8 from 15 (ONNX 1.10). */
static int64_t ir_version(int32_t opset) { return opset <= 14 ? 7 : 8; }

/* A float tensor value [batch, dims...] of the graph's interface. */
static Onnx__ValueInfoProto *interface(sat__onnx_out *o, const char *name, int32_t batch_dim, const int32_t *dims,
                                       size_t ndim) {
    Onnx__ValueInfoProto *v = sat__onnx_out_alloc(o, sizeof *v);
    Onnx__TypeProto *type = sat__onnx_out_alloc(o, sizeof *type);
    Onnx__TypeProto__Tensor *tensor = sat__onnx_out_alloc(o, sizeof *tensor);
    Onnx__TensorShapeProto *shape = sat__onnx_out_alloc(o, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = sat__onnx_out_alloc(o, (ndim + 1) * sizeof *dim);
    for (size_t d = 0; d <= ndim && !o->status; d++) dim[d] = sat__onnx_out_alloc(o, sizeof *dim[d]);
    if (o->status) return NULL;
    const Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
    const Onnx__TypeProto ti = ONNX__TYPE_PROTO__INIT;
    const Onnx__TypeProto__Tensor tti = ONNX__TYPE_PROTO__TENSOR__INIT;
    const Onnx__TensorShapeProto si = ONNX__TENSOR_SHAPE_PROTO__INIT;
    const Onnx__TensorShapeProto__Dimension di = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    for (size_t d = 0; d <= ndim; d++) {
        *dim[d] = di;
        if (d == 0 && batch_dim == 0) {
            dim[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[d]->dim_param = "batch";
        } else {
            dim[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[d]->dim_value = d == 0 ? batch_dim : dims[d - 1];
        }
    }
    *shape = si;
    shape->n_dim = ndim + 1;
    shape->dim = dim;
    *tensor = tti;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor->shape = shape;
    *type = ti;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    *v = vi;
    v->name = (char *)name;
    v->type = type;
    return v;
}

/* The graph's input and output: [batch, C, H, W] pixels in [0, 1], [batch, classes] logits.
 * The last layer's tensor becomes "logits": its last node is renamed, or one more node
 * flattens it. */
static void add_interface(sat__onnx_out *o, int32_t batch_dim) {
    const sat_model *m = o->m;
    const int32_t last = m->num_nodes - 1;
    const int32_t in_dims[3] = {m->in_c, m->in_h, m->in_w}, out_dims[1] = {m->classes};
    Onnx__GraphProto *g = o->graph;
    if (o->rank[last] == 2) {
        g->node[g->n_node - 1]->output[0] = "logits";
    } else {
        const char *in[1] = {o->tensor[last]};
        sat__onnx_out_attr_int(o, sat__onnx_out_node(o, "Flatten", in, 1, "logits"), "axis", 1);
    }
    Onnx__ValueInfoProto **input = sat__onnx_out_alloc(o, sizeof *input);
    Onnx__ValueInfoProto **output = sat__onnx_out_alloc(o, sizeof *output);
    if (o->status) return;
    input[0] = interface(o, "input", batch_dim, in_dims, 3);
    output[0] = interface(o, "logits", batch_dim, out_dims, 1);
    g->n_input = g->n_output = 1;
    g->input = input;
    g->output = output;
}

/* The packed model, in memory from alloc (the user's allocator or the context's); status
 * and message into err. */
static int32_t export_model(const sat_model *m, const sat_onnx_export_opts *user_opts, const char *fn,
                            void *(*alloc)(const sat_context *, size_t), void **buf_out, size_t *size_out,
                            char *err) {
    sat_onnx_export_opts opts;
    int32_t st = opts_import(user_opts, fn, &opts, err);
    if (st) return st;
    sat__onnx_out o;
    st = sat__onnx_out_begin(&o, m, err);
    if (st) return sat__fail(err, st, "%s: out of memory for the ONNX graph", fn);
    for (int32_t i = 0; i < m->num_nodes && !st && !o.status; i++) st = sat__onnx_out_layer(&o, i, fn);
    if (!st && !o.status) add_interface(&o, opts.batch_dim);

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = opts.opset;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = ir_version(opts.opset);
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "libsat";
    model.producer_version = (char *)sat_version_string();
    model.doc_string = m->spec; /* where the graph came from, for a reader */
    model.graph = o.graph;
    o.graph->name = "libsat";

    size_t size = 0;
    unsigned char *buf = NULL;
    if (!st && !o.status) {
        size = onnx__model_proto__get_packed_size(&model);
        /* protobuf's own limit: a message over 2 GiB cannot be read back */
        if (size > (size_t)INT32_MAX)
            st = sat__fail(err, SAT_E_UNSUPPORTED, "%s: the model needs %zu bytes, over protobuf's 2 GiB limit", fn,
                           size);
        else if (!(buf = alloc(m->ctx, size)))
            o.status = SAT_E_NOMEM;
        else
            onnx__model_proto__pack(&model, buf);
    }
    if (!st && o.status == SAT_E_NOMEM) st = sat__fail(err, SAT_E_NOMEM, "%s: out of memory for the ONNX graph", fn);
    if (!st && o.status) st = sat__fail(err, o.status, "%s: the ONNX graph outgrew its bounds", fn);
    sat__onnx_out_end(&o);
    if (st) return st;
    *buf_out = buf;
    *size_out = size;
    return SAT_OK;
}

static void *user_alloc(const sat_context *ctx, size_t size) {
    (void)ctx;
    return sat__user_alloc(size);
}

int32_t sat_model_save_onnx_buffer(const sat_model *model, const sat_onnx_export_opts *opts, void **buf_out,
                                   size_t *size_out) {
    static const char fn[] = "sat_model_save_onnx_buffer";
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: model is NULL", fn);
    /* The message buffer is the one thing a failed call may change on the handle. */
    char *err = ((sat_model *)model)->err;
    if (!buf_out || !size_out)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: buf_out and size_out must not be NULL", fn);
    /* sat_free releases what the user allocator (malloc) gave */
    return export_model(model, opts, fn, user_alloc, buf_out, size_out, err);
}

int32_t sat_model_save_onnx(const sat_model *model, const char *path, const sat_onnx_export_opts *opts) {
    static const char fn[] = "sat_model_save_onnx";
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: model is NULL", fn);
    char *err = ((sat_model *)model)->err;
    if (!path || !*path) return sat__fail(err, SAT_E_INVALID_ARG, "%s: path is NULL or empty", fn);
    void *buf = NULL;
    size_t size = 0;
    int32_t st = export_model(model, opts, fn, sat__alloc, &buf, &size, err);
    if (st) return st;
    st = sat__write_file_atomic(path, buf, size, err);
    sat__dealloc(model->ctx, buf);
    return st;
}
