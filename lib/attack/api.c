/* api.c - the public attack calls: argument checks (all of them before anything is
 * written), the trace, and the hand-over to sat__attack_run. */
#include "attack/attack.h"

#include <string.h>

int32_t sat__attack_check_data(const sat__target *m, const float *x, const int32_t *labels, int64_t n,
                               const char *fn) {
    if (!x) return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: x is NULL", fn);
    if (!labels) return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: labels is NULL", fn);
    /* Any batch size: attacks and evaluation work in chunks of max_batch. */
    if (n < 1 || n > INT64_MAX / 4 / m->in_size)
        return sat__fail(m->err, SAT_E_SHAPE, "%s: batch of %lld examples is not positive or too large",
                         fn, (long long)n);
    if (!sat__all_finite(x, n * m->in_size))
        return sat__fail(m->err, SAT_E_NUMERIC, "%s: x contains NaN or Inf", fn);
    /* The threat model is the eps-ball inside [0,1]: for a pixel outside the box, x_adv
     * (clipped to it) would lie farther than eps from x. */
    for (int64_t i = 0; i < n * m->in_size; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: pixel %lld of x is %g, outside [0,1]", fn,
                             (long long)i, (double)x[i]);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= m->classes)
            return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: label %d at index %lld is not in 0..%d", fn,
                             labels[i], (long long)i, m->classes - 1);
    return SAT_OK;
}


static int32_t attack_checked(const sat__target *m, const sat__attack_cfg *cfg, const char *fn, const float *x,
                              const int32_t *labels, const int32_t *targets, int64_t n, float *x_adv,
                              sat_attack_trace *trace) {
    int32_t st = sat__attack_check_data(m, x, labels, n, fn);
    if (st) return st;
    if (!x_adv) return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: x_adv is NULL", fn);
    if (x_adv != x && sat__overlap(x_adv, n * m->in_size, x, n * m->in_size))
        return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: x_adv overlaps x (it may be x itself, not part of it)",
                         fn);
    if (cfg->uses_targets) {
        if (!targets)
            return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: a targeted attack needs targets", fn);
        for (int64_t i = 0; i < n; i++)
            if (targets[i] < 0 || targets[i] >= m->classes)
                return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: target %d at index %lld is not in 0..%d",
                                 fn, targets[i], (long long)i, m->classes - 1);
    }
    sat_attack_trace tr;
    memset(&tr, 0, sizeof tr);
    int64_t len = 0;
    if (trace) {
        if (trace->struct_size < sizeof tr)
            return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: trace struct_size %u is smaller than %zu", fn,
                             trace->struct_size, sizeof tr);
        st = sat__opts_copy(&tr, sizeof tr, trace, "sat_attack_trace", m->err);
        if (st) return st;
        if (tr.capacity < 0)
            return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: trace capacity %d is negative", fn, tr.capacity);
        if (tr.capacity > 0 && (!tr.loss || !tr.accuracy))
            return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: trace loss and accuracy must not be NULL", fn);
        const int64_t total = (int64_t)cfg->steps * cfg->restarts;
        len = total < tr.capacity ? total : tr.capacity;
    }

    sat__attack_out out;
    memset(&out, 0, sizeof out);
    void *work = sat__alloc(m->ctx, sat__attack_work_bytes(m, cfg, n));
    if (len > 0) {
        out.trace_obj = sat__calloc(m->ctx, (size_t)len, sizeof(double));
        out.trace_correct = sat__calloc(m->ctx, (size_t)len, sizeof(int64_t));
        out.trace_len = len;
    }
    if (!work || (len > 0 && (!out.trace_obj || !out.trace_correct))) {
        st = sat__fail(m->err, SAT_E_NOMEM, "%s: out of memory for scratch buffers", fn);
    } else {
        /* Every method runs steps x restarts iterations on every example. */
        sat__progress progress;
        sat__target reporting = *m;
        reporting.progress = &progress;
        st = sat__progress_begin(&progress, m->ctx, fn, n * cfg->steps * cfg->restarts, m->err);
        if (st == SAT_OK)
            st = sat__attack_run(&reporting, cfg, x, labels, targets, NULL, n, 0, NULL, x_adv, work, &out);
    }
    if (st == SAT_OK && trace) {
        for (int64_t i = 0; i < len; i++) {
            tr.loss[i] = (float)(out.trace_obj[i] / (double)n);
            tr.accuracy[i] = (float)((double)out.trace_correct[i] / (double)n);
        }
        trace->count = (int32_t)len;
    }
    sat__dealloc(m->ctx, work);
    sat__dealloc(m->ctx, out.trace_obj);
    sat__dealloc(m->ctx, out.trace_correct);
    return st;
}

int32_t sat__attack_target(const sat__target *m, const sat_attack_opts *opts, const char *fn, const float *x,
                           const int32_t *labels, const int32_t *targets, int64_t n, float *x_adv,
                           sat_attack_trace *trace) {
    sat__attack_cfg cfg;
    int32_t st = sat__attack_resolve(m, opts, &cfg);
    if (st) return st;
    return attack_checked(m, &cfg, fn, x, labels, targets, n, x_adv, trace);
}

int32_t sat_attack(sat_model *model, const sat_attack_opts *opts, const float *x, const int32_t *labels,
                   const int32_t *targets, int64_t n, float *x_adv, sat_attack_trace *trace) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_attack: model is NULL");
    sat__target m;
    sat__target_of_model(model, &m);
    return sat__attack_target(&m, opts, "sat_attack", x, labels, targets, n, x_adv, trace);
}

int32_t sat_pgd_attack(sat_model *model, const sat_attack_opts *opts, const float *x,
                       const int32_t *labels, int64_t n, float *x_adv, sat_attack_trace *trace) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_pgd_attack: model is NULL");
    sat__target m;
    sat__target_of_model(model, &m);
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_attack_opts", m.err);
        if (st) return st;
    }
    o.method = SAT_ATTACK_PGD;
    sat__attack_cfg cfg;
    int32_t st = sat__attack_resolve(&m, &o, &cfg);
    if (st) return st;
    /* A targeted PGD needs targets this call cannot take. */
    if (cfg.objective == SAT__OBJ_CE_T || cfg.objective == SAT__OBJ_MARGIN_T)
        return sat__fail(m.err, SAT_E_INVALID_ARG,
                         "sat_pgd_attack: targeted attacks need sat_attack (which takes targets)");
    return attack_checked(&m, &cfg, "sat_pgd_attack", x, labels, NULL, n, x_adv, trace);
}
