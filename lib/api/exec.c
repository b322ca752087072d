/* exec.c - the public execution handle: argument checks around the executor, so that a
 * host can run any loss (forward, then backward from its own dL/dlogits) and several
 * threads can run one model's weights at once. */
#include "graph/graph.h"

#include <string.h>

#define EXEC_MAX_BATCH_LIMIT 65536

static sat_exec_opts exec_defaults(void) {
    sat_exec_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = SAT_EXEC_TRAIN;
    d.max_batch = 0;
    return d;
}

int32_t sat_exec_opts_init(sat_exec_opts *opts, uint32_t struct_size) {
    sat_exec_opts d = exec_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_exec_opts_init");
}

int32_t sat_exec_create(sat_model *m, const sat_exec_opts *opts, sat_exec **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_exec_create: out is NULL");
    *out = NULL;
    if (!m) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_exec_create: model is NULL");
    char err[SAT_ERRMSG_SIZE];
    sat_exec_opts o = exec_defaults();
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_exec_opts", err);
        if (st) return sat__fail_tls(st, "sat_exec_create: %s", err);
    }
    if (o.kind != SAT_EXEC_INFERENCE && o.kind != SAT_EXEC_INPUT_GRAD && o.kind != SAT_EXEC_TRAIN)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_exec_create: unknown kind %d", o.kind);
    if (o.max_batch < 0 || o.max_batch > EXEC_MAX_BATCH_LIMIT)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_exec_create: max_batch %lld not in 0..%d",
                             (long long)o.max_batch, EXEC_MAX_BATCH_LIMIT);
    int32_t st = sat__exec_create(m, o.kind, o.max_batch ? o.max_batch : m->max_batch, 0, out, err);
    if (st) return sat__fail_tls(st, "sat_exec_create: %s", err);
    return SAT_OK;
}

void sat_exec_destroy(sat_exec *e) {
    if (!e || e->owned_by_model) return;
    sat__exec_free(e);
}

const char *sat_exec_last_error(const sat_exec *e) { return e ? e->err : ""; }

int64_t sat_exec_last_batch(const sat_exec *e) { return e && e->run_valid ? e->run_n : 0; }

sat_exec *sat_model_exec(sat_model *m) { return m ? sat__model_exec(m) : NULL; }

int32_t sat_exec_forward(sat_exec *e, const float *x, int64_t n, int32_t bn_mode, float *logits) {
    if (!e) return SAT_E_INVALID_ARG;
    static const char fn[] = "sat_exec_forward";
    sat_model *m = e->m;
    if (bn_mode != SAT_BN_INFERENCE && bn_mode != SAT_BN_BATCH && bn_mode != SAT_BN_TRAIN)
        return sat__fail(e->err, SAT_E_INVALID_ARG, "%s: bn_mode %d is not SAT_BN_INFERENCE, _BATCH or _TRAIN", fn,
                         bn_mode);
    if (bn_mode == SAT_BN_TRAIN && e->kind != SAT_EXEC_TRAIN)
        return sat__fail(e->err, SAT_E_STATE, "%s: SAT_BN_TRAIN writes the model: it needs a SAT_EXEC_TRAIN execution",
                         fn);
    int32_t st = sat__check_examples(m, x, NULL, n, e->max_batch, fn, e->err);
    if (st) return st;
    if (logits && sat__overlap(logits, n * m->classes, x, n * m->in_size))
        return sat__fail(e->err, SAT_E_INVALID_ARG, "%s: logits overlaps x", fn);
    /* A forward that fails past the checks (workspace) leaves nothing a backward could use. */
    e->run_valid = 0;
    /* Inference-mode batch norm folds into the convolutions unless a parameter-gradient
     * backward may follow, which needs its input (fold.c). */
    const int32_t infer = e->kind == SAT_EXEC_TRAIN ? SAT__BN_INFER : SAT__BN_FOLD;
    const int32_t bn = bn_mode == SAT_BN_TRAIN ? SAT__BN_TRAIN : bn_mode == SAT_BN_BATCH ? SAT__BN_BATCH : infer;
    const float *out;
    st = sat__exec_fwd(e, x, n, bn, &out);
    if (st) return st;
    if (logits) memcpy(logits, out, sizeof(float) * (size_t)(n * m->classes));
    return SAT_OK;
}

int32_t sat_exec_backward(sat_exec *e, const float *dlogits, float *dx, float *param_grads) {
    if (!e) return SAT_E_INVALID_ARG;
    static const char fn[] = "sat_exec_backward";
    sat_model *m = e->m;
    if (!dlogits) return sat__fail(e->err, SAT_E_INVALID_ARG, "%s: dlogits is NULL", fn);
    if (!dx && !param_grads)
        return sat__fail(e->err, SAT_E_INVALID_ARG, "%s: dx and param_grads are both NULL: nothing to compute", fn);
    if (e->kind == SAT_EXEC_INFERENCE)
        return sat__fail(e->err, SAT_E_STATE, "%s: a SAT_EXEC_INFERENCE execution plans no backward", fn);
    if (param_grads && e->kind != SAT_EXEC_TRAIN)
        return sat__fail(e->err, SAT_E_STATE, "%s: parameter gradients need a SAT_EXEC_TRAIN execution", fn);
    if (!e->run_valid)
        return sat__fail(e->err, SAT_E_STATE, "%s: no forward to run backward from (call sat_exec_forward first)",
                         fn);
    if (!sat__all_finite(dlogits, e->run_n * m->classes))
        return sat__fail(e->err, SAT_E_NUMERIC, "%s: dlogits contains NaN or Inf", fn);
    /* Parameters no gradient reaches (a branch that does not lead to the logits) get 0. */
    if (param_grads) memset(param_grads, 0, sizeof(float) * (size_t)m->num_params);
    return sat__exec_bwd(e, param_grads ? SAT__PLAN_TRAIN : SAT__PLAN_ATTACK, dlogits, dx, param_grads);
}
