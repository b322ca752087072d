/* model.c - the model handle: creation from a spec, views of its blocks, and the calls
 * that run the attack plan (input gradient) and the train plan (parameter gradients). */
#include "graph/graph.h"

#include <math.h>
#include <string.h>

#define MAX_BATCH_LIMIT 65536

static sat_model_opts model_defaults(void) {
    sat_model_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.activation = SAT_ACT_SILU;
    d.act_param = NAN;
    d.max_batch = 128;
    d.attack_backward_act = SAT_ACT_SAME;
    d.attack_backward_param = NAN;
    d.train_backward_act = SAT_ACT_SAME;
    d.train_backward_param = NAN;
    d.attack_bn_mode = SAT_BN_INFERENCE;
    d.seed = SAT_SEED_CONTEXT;
    return d;
}

int32_t sat_model_opts_init(sat_model_opts *opts, uint32_t struct_size) {
    sat_model_opts d = model_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_model_opts_init");
}

static int valid_backward(int32_t act, float param) {
    if (act == SAT_ACT_SAME) return 1;
    return act >= 0 && act < SAT_ACT_COUNT && (isnan(param) || (isfinite(param) && param > 0));
}

static int32_t check_opts(const sat_model_opts *o, char *err) {
    if (o->activation < 0 || o->activation >= SAT_ACT_COUNT)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: unknown activation %d", o->activation);
    if (!isnan(o->act_param) && !(isfinite(o->act_param) && o->act_param > 0))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: act_param must be positive or NaN");
    if (o->max_batch < 1 || o->max_batch > MAX_BATCH_LIMIT)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: max_batch %d not in 1..%d",
                         o->max_batch, MAX_BATCH_LIMIT);
    if (!valid_backward(o->attack_backward_act, o->attack_backward_param))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: bad attack_backward_act %d / param",
                         o->attack_backward_act);
    if (!valid_backward(o->train_backward_act, o->train_backward_param))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: bad train_backward_act %d / param",
                         o->train_backward_act);
    if (o->attack_bn_mode != SAT_BN_INFERENCE && o->attack_bn_mode != SAT_BN_BATCH)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: attack_bn_mode %d is not 0 or 1",
                         o->attack_bn_mode);
    return SAT_OK;
}

static int32_t model_destroy(sat_model *m, const char *fn) {
    if (!m) return SAT_OK;
    int32_t st = sat__check_no_children(&m->live_children, m->err, fn, "optimizers, trainers, executions");
    if (st) return st;
    sat_context *ctx = m->ctx;
    sat__dealloc(ctx, m->spec);
    sat__dealloc(ctx, m->nodes);
    sat__dealloc(ctx, m->params);
    sat__dealloc(ctx, m->grads);
    sat__dealloc(ctx, m->state);
    sat__dealloc(ctx, m->state_backup);
    sat__dealloc(ctx, m->consts);
    sat__dealloc(ctx, m->arena);
    sat__dealloc(ctx, m->ws);
    sat__dealloc(ctx, m->out_ptr);
    sat__dealloc(ctx, m->grad_ptr);
    sat__dealloc(ctx, m->grad_fresh);
    sat__dealloc(ctx, m->need_dx[0]);
    sat__dealloc(ctx, m->need_dx[1]);
    sat__dealloc(ctx, m);
    sat__child_detach(&ctx->live_children);
    return SAT_OK;
}

void sat_model_destroy(sat_model *m) { (void)model_destroy(m, "sat_model_destroy"); }

int32_t sat_model_destroy_checked(sat_model *m) { return model_destroy(m, "sat_model_destroy_checked"); }

/* Builds a model without initialising parameters (load and clone fill them). */
int32_t sat__model_build(sat_context *ctx, const char *spec, const sat_model_opts *opts,
                         sat_model **out) {
    char err[SAT_ERRMSG_SIZE];
    sat_model_opts o = model_defaults();
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_model_opts", err);
        if (st) return sat__fail_tls(st, "%s", err);
    }
    o.seed = sat__seed(ctx, o.seed);
    int32_t st = check_opts(&o, err);
    if (st) return sat__fail_tls(st, "%s", err);
    sat_model *m = sat__calloc(ctx, 1, sizeof *m);
    if (!m) return sat__fail_tls(SAT_E_NOMEM, "sat_model_create: out of memory");
    m->ctx = ctx;
    sat__child_attach(&ctx->live_children);
    m->opts = o;
    m->max_batch = o.max_batch;
    size_t len = strlen(spec);
    m->spec = sat__alloc(ctx, len + 1);
    if (!m->spec) {
        sat_model_destroy(m);
        return sat__fail_tls(SAT_E_NOMEM, "sat_model_create: out of memory");
    }
    memcpy(m->spec, spec, len + 1);
    st = sat__parse_spec(m, spec, m->err);
    if (st == SAT_OK) st = sat__plan(m, m->err);
    if (st == SAT_OK) {
        m->state_backup = sat__calloc(ctx, (size_t)(m->num_state ? m->num_state : 1), sizeof(float));
        if (!m->state_backup) st = sat__fail(m->err, SAT_E_NOMEM, "sat_model_create: out of memory");
    }
    if (st) {
        sat__copy_to_tls(m->err);
        sat_model_destroy(m);
        return st;
    }
    sat__log(ctx, SAT_LOG_INFO,
             "model: %d layers, %lld parameters, %lld state values; %.1f MiB of activations and "
             "gradients planned for batches up to %lld; GEMMs on %s; direct convolutions %s",
             (int)m->num_nodes, (long long)m->num_params, (long long)m->num_state,
             (double)m->arena_size * sizeof(float) / (1024.0 * 1024.0), (long long)m->max_batch, sat__gemm_path(),
             sat__conv_direct_available() ? "on (stride-1 layers)" : "off");
    *out = m;
    return SAT_OK;
}

int32_t sat_model_create(sat_context *ctx, const char *spec, const sat_model_opts *opts,
                         sat_model **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_create: out is NULL");
    *out = NULL;
    if (!ctx || !spec) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_create: ctx and spec must not be NULL");
    sat_model *m = NULL;
    int32_t st = sat__model_build(ctx, spec, opts, &m);
    if (st) return st;
    sat__init_params(m, m->opts.seed);
    *out = m;
    return SAT_OK;
}

const char *sat_model_last_error(const sat_model *m) { return m ? m->err : ""; }

int32_t sat_model_clone(const sat_model *m, sat_model **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_clone: out is NULL");
    *out = NULL;
    if (!m) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_clone: model is NULL");
    sat_model *c = NULL;
    int32_t st = sat__model_build(m->ctx, m->spec, &m->opts, &c);
    if (st) return st;
    memcpy(c->params, m->params, sizeof(float) * (size_t)m->num_params);
    memcpy(c->state, m->state, sizeof(float) * (size_t)m->num_state);
    *out = c;
    return SAT_OK;
}

int32_t sat_model_shape(const sat_model *m, int32_t *channels, int32_t *height, int32_t *width,
                        int32_t *num_classes) {
    if (!m) return SAT_E_INVALID_ARG;
    if (channels) *channels = m->in_c;
    if (height) *height = m->in_h;
    if (width) *width = m->in_w;
    if (num_classes) *num_classes = m->classes;
    return SAT_OK;
}

int64_t sat_model_max_batch(const sat_model *m) { return m ? m->max_batch : 0; }
const char *sat_model_spec(const sat_model *m) { return m ? m->spec : NULL; }
int64_t sat_model_param_count(const sat_model *m) { return m ? m->num_params : 0; }
float *sat_model_params(sat_model *m) { return m ? m->params : NULL; }
float *sat_model_grads(sat_model *m) { return m ? m->grads : NULL; }
int64_t sat_model_state_count(const sat_model *m) { return m ? m->num_state : 0; }
float *sat_model_state(sat_model *m) { return m ? m->state : NULL; }

int32_t sat_model_get_opts(const sat_model *m, sat_model_opts *opts) {
    if (!m || !opts || opts->struct_size < sizeof(uint32_t)) return SAT_E_INVALID_ARG;
    uint32_t size = opts->struct_size;
    size_t n = size < sizeof m->opts ? size : sizeof m->opts;
    memcpy(opts, &m->opts, n);
    opts->struct_size = size;
    return SAT_OK;
}

int32_t sat_model_set_backward(sat_model *m, int32_t attack_act, float attack_param, int32_t train_act,
                               float train_param) {
    if (!m) return SAT_E_INVALID_ARG;
    if (!valid_backward(attack_act, attack_param) || !valid_backward(train_act, train_param))
        return sat__fail(m->err, SAT_E_INVALID_ARG,
                         "sat_model_set_backward: unknown activation or non-positive parameter");
    m->opts.attack_backward_act = attack_act;
    m->opts.attack_backward_param = attack_param;
    m->opts.train_backward_act = train_act;
    m->opts.train_backward_param = train_param;
    return SAT_OK;
}

int32_t sat_model_decay_mask(const sat_model *m, uint8_t *mask) {
    if (!m || !mask) return SAT_E_INVALID_ARG;
    memset(mask, 0, (size_t)m->num_params);
    for (int i = 0; i < m->num_nodes; i++) {
        const sat_node *nd = &m->nodes[i];
        if (nd->p_w >= 0) memset(mask + nd->p_w, 1, (size_t)nd->n_w);
    }
    return SAT_OK;
}

/* x (and labels) of a batch of n examples, up to `most`. */
static int32_t check_examples(sat_model *m, const float *x, const int32_t *labels, int64_t n, int64_t most,
                              const char *fn) {
    if (!x) return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: x is NULL", fn);
    if (n < 1 || n > most)
        return sat__fail(m->err, SAT_E_SHAPE, "%s: batch of %lld is outside 1..%lld%s", fn, (long long)n,
                         (long long)most, most == m->max_batch ? " (the model's max_batch)" : "");
    if (!sat__all_finite(x, n * m->in_size))
        return sat__fail(m->err, SAT_E_NUMERIC, "%s: x contains NaN or Inf", fn);
    if (labels)
        for (int64_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= m->classes)
                return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: label %d at index %lld is not in 0..%d", fn,
                                 labels[i], (long long)i, m->classes - 1);
    return SAT_OK;
}

int32_t sat__check_batch(sat_model *m, const float *x, const int32_t *labels, int64_t n, const char *fn) {
    return check_examples(m, x, labels, n, m->max_batch, fn);
}

int32_t sat_model_forward(sat_model *m, const float *x, int64_t n, float *logits) {
    if (!m) return SAT_E_INVALID_ARG;
    if (!logits) return sat__fail(m->err, SAT_E_INVALID_ARG, "sat_model_forward: logits is NULL");
    /* Any n whose input and logits can be addressed: batches above max_batch run in chunks of
     * max_batch, with the same bits as one call per chunk (batch norm in inference mode
     * treats every example on its own). */
    const int64_t per_example = m->in_size > m->classes ? m->in_size : m->classes;
    int32_t st = check_examples(m, x, NULL, n, INT64_MAX / (int64_t)sizeof(float) / per_example, "sat_model_forward");
    if (st) return st;
    for (int64_t s = 0; s < n; s += m->max_batch) {
        const int64_t c = n - s < m->max_batch ? n - s : m->max_batch;
        const float *out;
        /* Only the first chunk can fail (its workspace), before any logits are written. */
        st = sat__forward(m, x + s * m->in_size, c, SAT__BN_INFER, &out);
        if (st) return st;
        memcpy(logits + s * m->classes, out, sizeof(float) * (size_t)(c * m->classes));
    }
    return SAT_OK;
}

int32_t sat_model_input_gradient(sat_model *m, const float *x, const int32_t *labels, int64_t n,
                                 float *losses, float *grad, float *logits) {
    if (!m) return SAT_E_INVALID_ARG;
    if (!labels) return sat__fail(m->err, SAT_E_INVALID_ARG, "sat_model_input_gradient: labels is NULL");
    int32_t st = sat__check_batch(m, x, labels, n, "sat_model_input_gradient");
    if (st) return st;
    const float *out;
    int32_t bn = m->opts.attack_bn_mode == SAT_BN_BATCH ? SAT__BN_BATCH : SAT__BN_INFER;
    st = sat__forward(m, x, n, bn, &out);
    if (st) return st;
    float *dlogits = m->arena + m->a_dlogits;
    float *l = m->arena + m->a_losses;
    sat__softmax_ce(out, labels, n, m->classes, 0.0f, l, grad ? dlogits : NULL, 1.0f);
    if (grad) {
        st = sat__backward(m, SAT__PLAN_ATTACK, dlogits, grad);
        if (st) return st;
    }
    if (losses) memcpy(losses, l, sizeof(float) * (size_t)n);
    if (logits) memcpy(logits, out, sizeof(float) * (size_t)(n * m->classes));
    return SAT_OK;
}

int32_t sat_model_train_backward(sat_model *m, const float *x, const int32_t *labels, int64_t n,
                                 float label_smoothing, float *loss, int64_t *correct) {
    if (!m) return SAT_E_INVALID_ARG;
    if (!labels) return sat__fail(m->err, SAT_E_INVALID_ARG, "sat_model_train_backward: labels is NULL");
    if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
        return sat__fail(m->err, SAT_E_INVALID_ARG,
                         "sat_model_train_backward: label_smoothing must be in [0,1)");
    int32_t st = sat__check_batch(m, x, labels, n, "sat_model_train_backward");
    if (st) return st;
    /* Keep the running statistics so that a step that produces NaN changes nothing. */
    memcpy(m->state_backup, m->state, sizeof(float) * (size_t)m->num_state);
    const float *out;
    st = sat__forward(m, x, n, SAT__BN_TRAIN, &out);
    if (st) return st;
    float *dlogits = m->arena + m->a_dlogits;
    double total = sat__softmax_ce(out, labels, n, m->classes, label_smoothing, NULL, dlogits,
                                   1.0f / (float)n);
    if (!isfinite(total)) {
        memcpy(m->state, m->state_backup, sizeof(float) * (size_t)m->num_state);
        return sat__fail(m->err, SAT_E_NUMERIC, "sat_model_train_backward: the loss is not finite");
    }
    if (correct) *correct = sat__count_correct(out, labels, n, m->classes);
    st = sat__backward(m, SAT__PLAN_TRAIN, dlogits, NULL);
    if (st) return st;
    if (loss) *loss = (float)(total / (double)n);
    return SAT_OK;
}
