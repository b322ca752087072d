/* import.c - the public calls that build a model from an ONNX file or buffer: unpack
 * (reader.c), translate the graph into a spec (translate.c), build the model from it with
 * the ordinary model code, and copy the initializers into the blocks at the places the
 * layer introspection reports, checking each against the layer's shape. */
#include "graph/graph.h"
#include "io/io.h"
#include "onnx/onnx.h"

#include <math.h>
#include <string.h>

static sat_onnx_import_opts import_defaults(void) {
    sat_onnx_import_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.replace_act_from = -1;
    d.replace_act_to = SAT_ACT_SILU;
    d.replace_act_param = NAN;
    d.max_batch = 128;
    return d;
}

int32_t sat_onnx_import_opts_init(sat_onnx_import_opts *opts, uint32_t struct_size) {
    sat_onnx_import_opts d = import_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_onnx_import_opts_init");
}

static int32_t check_opts(const sat_onnx_import_opts *o, char *err) {
    if (o->replace_act_from < -1 || o->replace_act_from >= SAT_ACT_COUNT)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_onnx_import_opts: unknown replace_act_from %d",
                         o->replace_act_from);
    if (o->replace_act_to < 0 || o->replace_act_to >= SAT_ACT_COUNT)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_onnx_import_opts: unknown replace_act_to %d", o->replace_act_to);
    if (!isnan(o->replace_act_param) && !(isfinite(o->replace_act_param) && o->replace_act_param > 0))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_onnx_import_opts: replace_act_param must be positive or NaN");
    if (o->max_batch < 1 || o->max_batch > 65536)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_onnx_import_opts: max_batch %d not in 1..65536", o->max_batch);
    return SAT_OK;
}

/* Where a copy goes: the layer's tensor of its role. */
static const sat_tensor_info *target(const sat_layer_info *li, int32_t role, int *in_state) {
    for (int32_t k = 0; k < li->num_params; k++)
        if (li->params[k].role == role) return (*in_state = 0, &li->params[k]);
    for (int32_t k = 0; k < li->num_state; k++)
        if (li->state[k].role == role) return (*in_state = 1, &li->state[k]);
    return NULL;
}

/* The source's shape as the tensor's: dims equal (a transposed 2-D source reversed), or a
 * 1-D tensor filled from as many values or from one. */
static int fits(const sat__onnx_copy *c, const sat_tensor_info *ti, int64_t count) {
    const Onnx__TensorProto *s = c->src;
    if (ti->ndim == 1) return count == ti->count || count == 1;
    if ((int32_t)s->n_dims != ti->ndim) return 0;
    for (int32_t d = 0; d < ti->ndim; d++) {
        const int32_t from = c->transpose ? ti->ndim - 1 - d : d;
        if (s->dims[from] != ti->shape[d]) return 0;
    }
    return 1;
}

static int32_t fill(sat_model *m, const sat__onnx_copy *c, int64_t *copied, char *err) {
    sat_layer_info li;
    li.struct_size = sizeof li;
    if (sat_model_layer_info(m, c->layer, &li) != SAT_OK)
        return sat__fail(err, SAT_E_INTERNAL, "layer %d of the translation is missing", c->layer);
    if (!c->src && c->channels == SAT__ONNX_VECTOR) {
        if (li.height != 1 || li.width != 1)
            return sat__fail(err, SAT_E_UNSUPPORTED, "node '%s': only an [N, C] tensor is unsqueezed to [N, C, 1, 1] "
                             "(a tensor of %d x %d x %d)", c->node, li.channels, li.height, li.width);
        return SAT_OK;
    }
    if (!c->src) {
        if ((int64_t)li.channels * li.height * li.width != c->channels)
            return sat__fail(err, SAT_E_FORMAT, "node '%s': reshape to %lld features of a tensor of %d x %d x %d",
                             c->node, (long long)c->channels, li.channels, li.height, li.width);
        return SAT_OK;
    }
    int in_state = 0;
    const sat_tensor_info *ti = target(&li, c->role, &in_state);
    const int64_t count = sat__onnx_tensor_count(c->src);
    if (!ti) return sat__fail(err, SAT_E_INTERNAL, "layer %d has no tensor of role %d", c->layer, c->role);
    if (!fits(c, ti, count))
        return sat__fail(err, SAT_E_FORMAT, "node '%s': initializer '%s' (%lld values) does not fit the layer's %s "
                         "tensor of %lld values (layer %d x %d x %d)", c->node, SAT__S(c->src->name), (long long)count,
                         li.op_name, (long long)ti->count, li.channels, li.height, li.width);
    float *dst = (in_state ? m->state : m->params) + ti->offset;
    const int64_t rows = ti->ndim == 2 ? ti->shape[0] : 1, cols = ti->ndim == 2 ? ti->shape[1] : 1;
    for (int64_t j = 0; j < ti->count; j++) {
        /* A transposed [K, N] source: element (n, k) of the [N, K] tensor is src[k * N + n]. */
        const int64_t from = count == 1 ? 0 : c->transpose ? (j % cols) * rows + j / cols : j;
        const double v = sat__onnx_tensor_at(c->src, from) * c->scale + c->add;
        if (!isfinite((float)v))
            return sat__fail(err, SAT_E_NUMERIC, "node '%s': initializer '%s' holds NaN, Inf or a value beyond "
                             "float", c->node, SAT__S(c->src->name));
        if (c->role == SAT_TENSOR_RUNNING_VAR && v < 0)
            return sat__fail(err, SAT_E_UNSUPPORTED, "node '%s': variance %g with epsilon below libsat's 1e-5 would "
                             "be negative", c->node, v);
        dst[j] = (float)v;
    }
    *copied += ti->count;
    return SAT_OK;
}

/* Tensors the file does not give: SmoothReLU's alpha when an activation is replaced by it
 * keeps its initial value. */
static int64_t alpha_floats(const sat_model *m, const sat__onnx_plan *plan) {
    int64_t n = 0;
    for (int32_t i = 0; i < m->num_nodes; i++)
        if (m->nodes[i].p_alpha >= 0) n++;
    for (int32_t k = 0; k < plan->num_copies; k++)
        if (plan->copies[k].src && plan->copies[k].role == SAT_TENSOR_ACT_ALPHA) n--;
    return n;
}

static int32_t build(sat_context *ctx, const sat__onnx_plan *plan, const sat_onnx_import_opts *o, sat_model **out,
                     char *err) {
    sat_model_opts mo = sat__model_defaults();
    mo.max_batch = o->max_batch;
    sat_model *m = NULL;
    int32_t st = sat__model_build(ctx, plan->spec, &mo, &m);
    if (st == SAT_E_INVALID_ARG)
        return sat__fail(err, SAT_E_UNSUPPORTED, "the graph translates into a model libsat cannot build: %s",
                         sat_last_error());
    if (st) return sat__fail(err, st, "%s", sat_last_error());
    sat__init_params(m, m->opts.seed);
    int64_t copied = 0;
    for (int32_t k = 0; k < plan->num_copies && !st; k++) st = fill(m, &plan->copies[k], &copied, err);
    if (!st && copied + alpha_floats(m, plan) != m->num_params + m->num_state)
        st = sat__fail(err, SAT_E_INTERNAL, "the initializers fill %lld of %lld values", (long long)copied,
                       (long long)(m->num_params + m->num_state));
    if (st) {
        sat__model_free(m);
        return st;
    }
    *out = m;
    return SAT_OK;
}

static int32_t import(sat_context *ctx, const uint8_t *data, size_t size, const sat_onnx_import_opts *opts,
                      const char *what, sat_model **out) {
    char err[SAT_ERRMSG_SIZE];
    sat_onnx_import_opts o = import_defaults();
    int32_t st = opts ? sat__opts_copy(&o, sizeof o, opts, "sat_onnx_import_opts", err) : SAT_OK;
    if (!st) st = check_opts(&o, err);
    if (st) return sat__fail_tls(st, "%s", err);
    Onnx__ModelProto *model = NULL;
    st = sat__onnx_unpack(ctx, data, size, what, &model, err);
    if (st) return sat__fail_tls(st, "%s", err);
    sat__onnx_plan plan;
    const sat__onnx_act_swap swap = {o.replace_act_from, o.replace_act_to, o.replace_act_param};
    st = sat__onnx_translate(ctx, model, &swap, &plan, err);
    if (!st) {
        st = build(ctx, &plan, &o, out, err);
        sat__onnx_plan_free(ctx, &plan);
    }
    sat__onnx_free(ctx, model);
    if (st) return sat__fail_tls(st, "%s: %s", what, err);
    sat__clear_tls_error();
    return SAT_OK;
}

int32_t sat_model_load_onnx(sat_context *ctx, const char *path, const sat_onnx_import_opts *opts, sat_model **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_load_onnx: out is NULL");
    *out = NULL;
    if (!ctx || !path || !*path)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_load_onnx: ctx and path must not be NULL or empty");
    char err[SAT_ERRMSG_SIZE];
    unsigned char *data = NULL;
    size_t size = 0;
    int32_t st = sat__read_file(ctx, path, &data, &size, err);
    if (st) return sat__fail_tls(st, "sat_model_load_onnx: %s", err);
    st = import(ctx, data, size, opts, path, out);
    sat__dealloc(ctx, data);
    return st;
}

int32_t sat_model_load_onnx_buffer(sat_context *ctx, const void *buf, size_t size, const sat_onnx_import_opts *opts,
                                   sat_model **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_load_onnx_buffer: out is NULL");
    *out = NULL;
    if (!ctx || !buf)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_load_onnx_buffer: ctx and buf must not be NULL");
    if ((uint64_t)size > SAT__MAX_FILE_SIZE)
        return sat__fail_tls(SAT_E_FORMAT, "ONNX buffer: %zu bytes is over the 4 GiB limit", size);
    return import(ctx, buf, size, opts, "sat_model_load_onnx_buffer", out);
}
