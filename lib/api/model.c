/* model.c - the model handle: creation from a spec, views of its blocks, and the calls
 * that run the attack plan (input gradient) and the train plan (parameter gradients). */
#include "graph/graph.h"

#include <math.h>
#include <string.h>

static int32_t model_destroy(sat_model *m, const char *fn) {
    if (!m) return SAT_OK;
    int32_t st = sat__check_no_children(&m->live_children, m->err, fn, "optimizers, trainers, executions");
    if (st) return st;
    sat__model_free(m);
    return SAT_OK;
}

void sat_model_destroy(sat_model *m) { (void)model_destroy(m, "sat_model_destroy"); }

int32_t sat_model_destroy_checked(sat_model *m) { return model_destroy(m, "sat_model_destroy_checked"); }

int32_t sat_model_opts_init(sat_model_opts *opts, uint32_t struct_size) {
    sat_model_opts d = sat__model_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_model_opts_init");
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
    if (!sat__model_check_backward(attack_act, attack_param) || !sat__model_check_backward(train_act, train_param))
        return sat__fail(m->err, SAT_E_INVALID_ARG,
                         "sat_model_set_backward: unknown activation or non-positive parameter");
    m->opts.attack_backward_act = attack_act;
    m->opts.attack_backward_param = attack_param;
    m->opts.train_backward_act = train_act;
    m->opts.train_backward_param = train_param;
    /* An execution planned without overrides keeps no ReLU inputs: its next forward plans
     * it again, and a backward of a pass it ran before fails clearly (executor.c). */
    return SAT_OK;
}

int32_t sat_model_set_activation_checkpointing(sat_model *m, int32_t on) {
    if (!m) return SAT_E_INVALID_ARG;
    if (on != 0 && on != 1)
        return sat__fail(m->err, SAT_E_INVALID_ARG, "sat_model_set_activation_checkpointing: %d is not 0 or 1", on);
    m->opts.activation_checkpointing = on; /* each execution is planned again by its next forward */
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

int32_t sat_model_forward(sat_model *m, const float *x, int64_t n, float *logits) {
    if (!m) return SAT_E_INVALID_ARG;
    if (!logits) return sat__fail(m->err, SAT_E_INVALID_ARG, "sat_model_forward: logits is NULL");
    /* Any n whose input and logits can be addressed: batches above max_batch run in chunks of
     * max_batch, with the same bits as one call per chunk (batch norm in inference mode
     * treats every example on its own). */
    const int64_t per_example = m->in_size > m->classes ? m->in_size : m->classes;
    int32_t st = sat__check_examples(m, x, NULL, n, INT64_MAX / (int64_t)sizeof(float) / per_example, "sat_model_forward",
                                     m->err);
    if (st) return st;
    /* Later chunks read x after earlier ones wrote their logits. */
    if (sat__overlap(logits, n * m->classes, x, n * m->in_size))
        return sat__fail(m->err, SAT_E_INVALID_ARG, "sat_model_forward: logits overlaps x");
    for (int64_t s = 0; s < n; s += m->max_batch) {
        const int64_t c = n - s < m->max_batch ? n - s : m->max_batch;
        const float *out;
        /* Only the first chunk can fail (its workspace), before any logits are written. */
        st = sat__forward(m, x + s * m->in_size, c, SAT__BN_FOLD, &out);
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
    if ((grad && sat__overlap(grad, n * m->in_size, x, n * m->in_size)) ||
        (logits && sat__overlap(logits, n * m->classes, x, n * m->in_size)) ||
        (losses && sat__overlap(losses, n, x, n * m->in_size)))
        return sat__fail(m->err, SAT_E_INVALID_ARG,
                         "sat_model_input_gradient: an output buffer overlaps x");
    const float *out;
    int32_t bn = m->opts.attack_bn_mode == SAT_BN_BATCH ? SAT__BN_BATCH : SAT__BN_FOLD;
    st = sat__forward(m, x, n, bn, &out);
    if (st) return st;
    sat_exec *e = m->own_exec; /* made by the forward */
    float *dlogits = e->arena + e->a_dlogits;
    float *l = e->arena + e->a_losses;
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
    float *dlogits = m->own_exec->arena + m->own_exec->a_dlogits;
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
