/* optimizer_control.c - what a host changes on an optimizer while it trains: the base
 * learning rate, a per-parameter learning-rate scale (parameter groups are ranges of the
 * flat block, e.g. a layer's weights) and a freeze mask. The update loops in optimizer.c
 * read them at every step; a checkpoint saves them with the optimizer state. */
#include "train/train.h"

#include <math.h>
#include <string.h>

int32_t sat_optimizer_set_lr(sat_optimizer *opt, float lr) {
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_optimizer_set_lr: opt is NULL");
    if (!(isfinite(lr) && lr > 0.0f))
        return sat__fail(opt->err, SAT_E_INVALID_ARG, "sat_optimizer_set_lr: lr must be finite and > 0 (got %g)",
                         (double)lr);
    opt->opts.lr = lr;
    return SAT_OK;
}

float sat_optimizer_base_lr(const sat_optimizer *opt) { return opt ? opt->opts.lr : NAN; }

/* Checks that [offset, offset+count) lies in the parameter block. */
static int32_t check_range(sat_optimizer *opt, int64_t offset, int64_t count, const char *fn) {
    const int64_t np = opt->model->num_params;
    if (offset < 0 || count < 0 || offset > np || count > np - offset)
        return sat__fail(opt->err, SAT_E_INVALID_ARG,
                         "%s: range [%lld, %lld + %lld) is not inside the %lld parameters", fn, (long long)offset,
                         (long long)offset, (long long)count, (long long)np);
    return SAT_OK;
}

int32_t sat__optimizer_own_scales(sat_optimizer *opt, const char *fn, char *err) {
    if (opt->lr_scale) return SAT_OK;
    const int64_t np = opt->model->num_params;
    float *scales = sat__alloc(opt->model->ctx, sizeof(float) * (size_t)(np ? np : 1));
    if (!scales)
        return sat__fail(err, SAT_E_NOMEM, "%s: out of memory for %lld learning-rate scales", fn, (long long)np);
    for (int64_t i = 0; i < np; i++) scales[i] = 1.0f;
    opt->lr_scale = scales;
    return SAT_OK;
}

int32_t sat__optimizer_own_frozen(sat_optimizer *opt, const char *fn, char *err) {
    if (opt->frozen) return SAT_OK;
    const int64_t np = opt->model->num_params;
    opt->frozen = sat__calloc(opt->model->ctx, (size_t)(np ? np : 1), 1);
    if (!opt->frozen)
        return sat__fail(err, SAT_E_NOMEM, "%s: out of memory for a freeze mask of %lld parameters", fn,
                         (long long)np);
    return SAT_OK;
}

int32_t sat_optimizer_set_lr_scale(sat_optimizer *opt, int64_t offset, int64_t count, float scale) {
    const char *fn = "sat_optimizer_set_lr_scale";
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: opt is NULL", fn);
    int32_t st = check_range(opt, offset, count, fn);
    if (st) return st;
    if (!(isfinite(scale) && scale >= 0.0f))
        return sat__fail(opt->err, SAT_E_INVALID_ARG, "%s: scale must be finite and >= 0 (got %g)", fn,
                         (double)scale);
    if (!opt->lr_scale && (scale == 1.0f || count == 0)) return SAT_OK; /* already so */
    if ((st = sat__optimizer_own_scales(opt, fn, opt->err))) return st;
    for (int64_t i = offset; i < offset + count; i++) opt->lr_scale[i] = scale;
    return SAT_OK;
}

int32_t sat_optimizer_get_lr_scale(const sat_optimizer *opt, float *scales) {
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_optimizer_get_lr_scale: opt is NULL");
    if (!scales)
        return sat__fail(((sat_optimizer *)opt)->err, SAT_E_INVALID_ARG,
                         "sat_optimizer_get_lr_scale: scales is NULL");
    const int64_t np = opt->model->num_params;
    if (opt->lr_scale)
        memcpy(scales, opt->lr_scale, sizeof(float) * (size_t)np);
    else
        for (int64_t i = 0; i < np; i++) scales[i] = 1.0f;
    return SAT_OK;
}

int32_t sat_optimizer_set_frozen(sat_optimizer *opt, const uint8_t *mask) {
    const char *fn = "sat_optimizer_set_frozen";
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: opt is NULL", fn);
    const int64_t np = opt->model->num_params;
    /* Checked whole before the first byte is taken, so a bad mask changes nothing. */
    int64_t frozen = 0;
    for (int64_t i = 0; mask && i < np; i++) {
        if (mask[i] > 1)
            return sat__fail(opt->err, SAT_E_INVALID_ARG, "%s: mask[%lld] is %u, not 0 or 1", fn, (long long)i,
                             (unsigned)mask[i]);
        frozen += mask[i];
    }
    if (frozen == 0) { /* nothing frozen: no mask */
        sat__dealloc(opt->model->ctx, opt->frozen);
        opt->frozen = NULL;
        return SAT_OK;
    }
    int32_t st = sat__optimizer_own_frozen(opt, fn, opt->err);
    if (st) return st;
    memcpy(opt->frozen, mask, (size_t)np);
    return SAT_OK;
}

int32_t sat_optimizer_get_frozen(const sat_optimizer *opt, uint8_t *mask) {
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_optimizer_get_frozen: opt is NULL");
    if (!mask)
        return sat__fail(((sat_optimizer *)opt)->err, SAT_E_INVALID_ARG, "sat_optimizer_get_frozen: mask is NULL");
    const size_t np = (size_t)opt->model->num_params;
    if (opt->frozen)
        memcpy(mask, opt->frozen, np);
    else
        memset(mask, 0, np);
    return SAT_OK;
}
