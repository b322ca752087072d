/* callback.c - a model outside libsat, given by the host as C callbacks (logits of a batch,
 * and optionally the input gradient for given dL/dlogits), seen through the attack
 * interface so that every attack runs on it unchanged. */
#include "attack/attack.h"

#include <string.h>

#define MAX_BATCH_LIMIT 65536

struct sat_callback_model {
    sat_context *ctx;
    sat_callback_model_opts o;
    float *logits; /* [max_batch x num_classes], what the logits callback writes */
    char err[SAT_ERRMSG_SIZE];
};

static sat_callback_model_opts callback_defaults(void) {
    sat_callback_model_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.max_batch = 128;
    return d;
}

int32_t sat_callback_model_opts_init(sat_callback_model_opts *opts, uint32_t struct_size) {
    sat_callback_model_opts d = callback_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_callback_model_opts_init");
}

static int32_t check_opts(const sat_callback_model_opts *o) {
    static const char *const what = "sat_callback_model_create";
    if (o->channels < 1 || o->height < 1 || o->width < 1)
        return sat__fail_tls(SAT_E_INVALID_ARG, "%s: input shape %dx%dx%d must be positive", what, o->channels,
                             o->height, o->width);
    if ((int64_t)o->channels * o->height * o->width > ((int64_t)1 << 30))
        return sat__fail_tls(SAT_E_INVALID_ARG, "%s: input of %dx%dx%d values is too large", what, o->channels,
                             o->height, o->width);
    if (o->num_classes < 2 || o->num_classes > MAX_BATCH_LIMIT)
        return sat__fail_tls(SAT_E_INVALID_ARG, "%s: num_classes %d is not in 2..%d", what, o->num_classes,
                             MAX_BATCH_LIMIT);
    if (o->max_batch < 1 || o->max_batch > MAX_BATCH_LIMIT)
        return sat__fail_tls(SAT_E_INVALID_ARG, "%s: max_batch %d is not in 1..%d", what, o->max_batch,
                             MAX_BATCH_LIMIT);
    if (!o->logits_fn) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: logits_fn is NULL", what);
    if (o->reserved0 != 0) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: reserved0 must be 0", what);
    return SAT_OK;
}

int32_t sat_callback_model_create(sat_context *ctx, const sat_callback_model_opts *opts,
                                  sat_callback_model **out) {
    static const char *const what = "sat_callback_model_create";
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: out is NULL", what);
    *out = NULL;
    if (!ctx) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: ctx is NULL", what);
    if (!opts)
        return sat__fail_tls(SAT_E_INVALID_ARG, "%s: opts is NULL (the input shape and callbacks are required)",
                             what);
    sat_callback_model_opts o = callback_defaults();
    char err[SAT_ERRMSG_SIZE];
    int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_callback_model_opts", err);
    if (st) return sat__fail_tls(st, "%s", err);
    st = check_opts(&o);
    if (st) return st;
    sat_callback_model *m = sat__calloc(ctx, 1, sizeof *m);
    if (m) m->logits = sat__alloc(ctx, sizeof(float) * (size_t)o.max_batch * (size_t)o.num_classes);
    if (!m || !m->logits) {
        if (m) sat__dealloc(ctx, m);
        return sat__fail_tls(SAT_E_NOMEM, "%s: out of memory", what);
    }
    m->ctx = ctx;
    sat__child_attach(&ctx->live_children);
    m->o = o;
    m->o.struct_size = sizeof m->o;
    *out = m;
    return SAT_OK;
}

void sat_callback_model_destroy(sat_callback_model *model) {
    if (!model) return;
    sat_context *ctx = model->ctx;
    sat__dealloc(ctx, model->logits);
    sat__dealloc(ctx, model);
    sat__child_detach(&ctx->live_children);
}

const char *sat_callback_model_last_error(const sat_callback_model *model) {
    return model ? model->err : "";
}

static int32_t callback_forward(void *self, const float *x, int64_t n, int32_t bn, const float **logits) {
    (void)bn; /* the host's model decides its own batch-norm behaviour */
    sat_callback_model *m = self;
    const int32_t rc = m->o.logits_fn(m->o.user, x, n, m->logits);
    if (rc != 0)
        return sat__fail(m->err, SAT_E_ABORTED, "callback model: the logits callback returned %d", rc);
    *logits = m->logits;
    return SAT_OK;
}

static int32_t callback_backward(void *self, const float *x, int64_t n, const float *dlogits, float *dx) {
    sat_callback_model *m = self;
    const int32_t rc = m->o.input_grad_fn(m->o.user, x, n, dlogits, dx);
    if (rc != 0)
        return sat__fail(m->err, SAT_E_ABORTED, "callback model: the input-gradient callback returned %d", rc);
    return SAT_OK;
}

void sat__target_of_callback(sat_callback_model *m, sat__target *t) {
    t->ctx = m->ctx;
    t->err = m->err;
    t->channels = m->o.channels;
    t->height = m->o.height;
    t->width = m->o.width;
    t->classes = m->o.num_classes;
    t->in_size = (int64_t)m->o.channels * m->o.height * m->o.width;
    t->max_batch = m->o.max_batch;
    t->has_grad = m->o.input_grad_fn != NULL;
    t->attack_bn = SAT_BN_INFERENCE;
    t->deterministic = 0; /* the host's model may be randomised */
    t->progress = NULL;
    t->self = m;
    t->forward = callback_forward;
    t->backward = callback_backward;
}

int32_t sat_callback_attack(sat_callback_model *model, const sat_attack_opts *opts, const float *x,
                            const int32_t *labels, const int32_t *targets, int64_t n, float *x_adv,
                            sat_attack_trace *trace) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_callback_attack: model is NULL");
    sat__target t;
    sat__target_of_callback(model, &t);
    return sat__attack_target(&t, opts, "sat_callback_attack", x, labels, targets, n, x_adv, trace);
}
