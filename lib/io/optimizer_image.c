/* optimizer_image.c - the optimizer's part of a checkpoint, written and read the same way
 * by trainer checkpoints (checkpoint.c) and model-and-optimizer checkpoints
 * (optimizer_checkpoint.c):
 *   OPTM  kind, step, the flat state block
 *   OCTL  the runtime settings: base learning rate, per-parameter scales, freeze mask
 * OCTL is optional on reading: files written before it keep the handle's settings. */
#include "io/io.h"
#include "train/train.h"

#include <math.h>
#include <string.h>

#define OPTM_FIXED 24u /* kind, reserved, step, count */
#define OCTL_FIXED 16u /* lr, reserved, count */

void sat__wb_optimizer_sections(sat__wbuf *b, const sat_optimizer *opt) {
    size_t mark = sat__wb_section_begin(b, SAT__TAG_OPTM);
    sat__wb_u32(b, (uint32_t)opt->opts.kind);
    sat__wb_u32(b, 0);
    sat__wb_u64(b, (uint64_t)opt->step);
    sat__wb_u64(b, (uint64_t)opt->state_count);
    sat__wb_floats(b, opt->state, opt->state_count);
    sat__wb_section_end(b, mark);

    const int64_t np = opt->model->num_params;
    mark = sat__wb_section_begin(b, SAT__TAG_OCTL);
    sat__wb_f32(b, opt->opts.lr);
    sat__wb_u32(b, 0);
    sat__wb_u64(b, (uint64_t)np);
    if (opt->lr_scale) {
        sat__wb_floats(b, opt->lr_scale, np);
    } else {
        for (int64_t i = 0; i < np; i++) sat__wb_f32(b, 1.0f);
    }
    if (opt->frozen) {
        sat__wb_bytes(b, opt->frozen, (size_t)np);
    } else {
        static const uint8_t zeros[4096];
        for (int64_t i = 0; i < np; i += (int64_t)sizeof zeros)
            sat__wb_bytes(b, zeros, (size_t)(np - i < (int64_t)sizeof zeros ? np - i : (int64_t)sizeof zeros));
    }
    sat__wb_section_end(b, mark);
}

int32_t sat__tail_block(const sat__section *s, uint32_t fixed, const char *name, const char *what,
                        int64_t *count, const unsigned char **data, char *err) {
    if (s->len < fixed)
        return sat__fail(err, SAT_E_FORMAT, "%s: %s section is %llu bytes, too short", what, name,
                         (unsigned long long)s->len);
    uint64_t n = sat__rd_u64(s->data + fixed - 8);
    uint64_t bytes = s->len - fixed;
    if (bytes % 4 != 0 || n != bytes / 4)
        return sat__fail(err, SAT_E_FORMAT, "%s: %s section claims %llu values but holds %llu bytes",
                         what, name, (unsigned long long)n, (unsigned long long)bytes);
    int64_t bad = sat__rd_first_nonfinite(s->data + fixed, (int64_t)n);
    if (bad >= 0)
        return sat__fail(err, SAT_E_FORMAT, "%s: %s value %lld is NaN or Inf", what, name, (long long)bad);
    *count = (int64_t)n;
    *data = s->data + fixed;
    return SAT_OK;
}

static int32_t decode_control(const sat__section *s, const char *what, sat__optimizer_image *oi, char *err) {
    if (s->len < OCTL_FIXED)
        return sat__fail(err, SAT_E_FORMAT, "%s: optimizer settings section is %llu bytes, too short", what,
                         (unsigned long long)s->len);
    const uint64_t n = sat__rd_u64(s->data + 8);
    /* 4 bytes of scale and 1 byte of flag per parameter; n is bounded by the bytes present. */
    if ((s->len - OCTL_FIXED) % 5 != 0 || n != (s->len - OCTL_FIXED) / 5)
        return sat__fail(err, SAT_E_FORMAT, "%s: optimizer settings section claims %llu parameters but holds "
                         "%llu bytes", what, (unsigned long long)n, (unsigned long long)(s->len - OCTL_FIXED));
    oi->lr = sat__rd_f32(s->data);
    if (!(isfinite(oi->lr) && oi->lr > 0.0f) || sat__rd_u32(s->data + 4) != 0)
        return sat__fail(err, SAT_E_FORMAT, "%s: stored learning rate is not finite and > 0", what);
    oi->num_params = (int64_t)n;
    oi->scales = s->data + OCTL_FIXED;
    oi->frozen = oi->scales + 4 * n;
    for (uint64_t i = 0; i < n; i++) {
        const float v = sat__rd_f32(oi->scales + 4 * i);
        if (!(isfinite(v) && v >= 0.0f))
            return sat__fail(err, SAT_E_FORMAT, "%s: learning-rate scale %llu is not finite and >= 0", what,
                             (unsigned long long)i);
        if (oi->frozen[i] > 1)
            return sat__fail(err, SAT_E_FORMAT, "%s: freeze flag %llu is %u, not 0 or 1", what,
                             (unsigned long long)i, (unsigned)oi->frozen[i]);
        oi->scaled |= v != 1.0f;
        oi->any_frozen |= oi->frozen[i];
    }
    oi->has_control = 1;
    return SAT_OK;
}

int32_t sat__optimizer_image_decode(const sat__image *img, const char *what, sat__optimizer_image *oi,
                                    char *err) {
    memset(oi, 0, sizeof *oi);
    const sat__section *optm = sat__image_find(img, SAT__TAG_OPTM);
    if (!optm) return sat__fail(err, SAT_E_FORMAT, "%s: the optimizer section is missing", what);
    int32_t st = sat__tail_block(optm, OPTM_FIXED, "optimizer", what, &oi->count, &oi->state, err);
    if (st) return st;
    oi->kind = sat__rd_u32(optm->data);
    oi->step = (int64_t)sat__rd_u64(optm->data + 8);
    if (oi->step < 0) return sat__fail(err, SAT_E_FORMAT, "%s: negative optimizer step count", what);
    const sat__section *octl = sat__image_find(img, SAT__TAG_OCTL);
    return octl ? decode_control(octl, what, oi, err) : SAT_OK;
}

int32_t sat__optimizer_image_match(const sat__optimizer_image *oi, const sat_optimizer *opt, const char *what,
                                   char *err) {
    if (oi->kind != (uint32_t)opt->opts.kind || oi->count != opt->state_count)
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: optimizer kind %u with %lld state values; the handle's is kind %d with %lld", what,
                         oi->kind, (long long)oi->count, opt->opts.kind, (long long)opt->state_count);
    if (oi->has_control && oi->num_params != opt->model->num_params)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: optimizer settings for %lld parameters, the model has %lld",
                         what, (long long)oi->num_params, (long long)opt->model->num_params);
    return SAT_OK;
}

int32_t sat__optimizer_image_reserve(const sat__optimizer_image *oi, sat_optimizer *opt, const char *what,
                                     char *err) {
    if (!oi->has_control) return SAT_OK;
    int32_t st = oi->scaled ? sat__optimizer_own_scales(opt, what, err) : SAT_OK;
    if (!st && oi->any_frozen) st = sat__optimizer_own_frozen(opt, what, err);
    return st;
}

void sat__optimizer_image_apply(const sat__optimizer_image *oi, sat_optimizer *opt) {
    sat__rd_floats(opt->state, oi->state, opt->state_count);
    opt->step = oi->step;
    if (!oi->has_control) return;
    opt->opts.lr = oi->lr;
    /* An image of all-1 scales (no freeze) leaves the handle's block, if any, all 1 (all 0);
     * otherwise sat__optimizer_image_reserve made the block. */
    if (oi->scaled)
        sat__rd_floats(opt->lr_scale, oi->scales, oi->num_params);
    else if (opt->lr_scale)
        for (int64_t i = 0; i < oi->num_params; i++) opt->lr_scale[i] = 1.0f;
    if (oi->any_frozen)
        memcpy(opt->frozen, oi->frozen, (size_t)oi->num_params);
    else if (opt->frozen)
        memset(opt->frozen, 0, (size_t)oi->num_params);
}
