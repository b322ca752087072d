/* opts.c - attack options: defaults, and the checks that turn a caller's sat_attack_opts
 * into a complete sat__attack_cfg (default step sizes, batch-norm mode, objective). */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

static sat_attack_opts attack_defaults(void) {
    sat_attack_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.method = SAT_ATTACK_PGD;
    d.norm = SAT_NORM_LINF;
    d.loss = SAT_LOSS_CE;
    d.eps = 8.0f / 255.0f;
    d.step_size = 0.0f; /* automatic */
    d.steps = 10;
    d.restarts = 1;
    d.random_start = 1;
    d.targeted = 0;
    d.bn_mode = -1;
    d.seed = SAT_SEED_CONTEXT;
    return d;
}

int32_t sat_attack_opts_init(sat_attack_opts *opts, uint32_t struct_size) {
    sat_attack_opts d = attack_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_attack_opts_init");
}

int32_t sat__attack_resolve(const sat__target *m, const sat_attack_opts *opts, sat__attack_cfg *cfg) {
    static const char *const what = "sat_attack_opts";
    char *err = m->err;
    sat_attack_opts o = attack_defaults();
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, what, err);
        if (st) return st;
    }
    if (o.method < SAT_ATTACK_FGSM || o.method > SAT_ATTACK_SQUARE)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown method %d", what, o.method);
    if (o.norm != SAT_NORM_LINF && o.norm != SAT_NORM_L2)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown norm %d", what, o.norm);
    if (o.loss != SAT_LOSS_CE && o.loss != SAT_LOSS_MARGIN)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown loss %d", what, o.loss);
    /* Linf radii live in [0,1]; an L2 radius can reach the diagonal of the pixel box. */
    const double eps_max = o.norm == SAT_NORM_LINF ? 1.0 : sqrt((double)m->in_size);
    if (!(o.eps >= 0.0f && (double)o.eps <= eps_max))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: eps %g is not in [0, %g]", what, (double)o.eps,
                         eps_max);
    if (!(isfinite(o.step_size) && o.step_size >= 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: step_size %g must be finite and > 0 (or 0 for the automatic step)",
                         what, (double)o.step_size);
    const int fgsm = o.method == SAT_ATTACK_FGSM;
    if (!fgsm && o.steps < 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: steps %d must be at least 1", what, o.steps);
    if (o.restarts < 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: restarts %d must be at least 1", what, o.restarts);
    const int32_t steps = fgsm ? 1 : o.steps;
    /* The trace counts steps x restarts in an int32_t. */
    if ((int64_t)steps * o.restarts > INT32_MAX)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: steps x restarts exceeds %d", what, INT32_MAX);
    if (o.random_start != 0 && o.random_start != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: random_start %d is not 0 or 1", what,
                         o.random_start);
    if (o.targeted != 0 && o.targeted != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: targeted %d is not 0 or 1", what, o.targeted);
    if (o.bn_mode != -1 && o.bn_mode != SAT_BN_INFERENCE && o.bn_mode != SAT_BN_BATCH)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: bn_mode %d is not -1, 0 or 1", what, o.bn_mode);
    if (o.method == SAT_ATTACK_APGD_DLR && m->classes < 4)
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: APGD-DLR needs at least 4 classes, the model has %d", what, m->classes);

    if (!m->has_grad && o.method != SAT_ATTACK_SQUARE)
        return sat__fail(err, SAT_E_UNSUPPORTED,
                         "%s: method %d needs input gradients, which this model does not give "
                         "(only SAT_ATTACK_SQUARE runs on logits alone)", what, o.method);

    memset(cfg, 0, sizeof *cfg);
    cfg->method = o.method;
    cfg->norm = o.norm;
    cfg->eps = o.eps;
    cfg->steps = steps;
    cfg->restarts = o.restarts;
    cfg->random_start = o.random_start;
    cfg->seed = sat__seed(m->ctx, o.seed);
    cfg->keep_last = 0;
    cfg->eot = 1;
    const int32_t bn = o.bn_mode == -1 ? m->attack_bn : o.bn_mode;
    cfg->bn = bn == SAT_BN_BATCH ? SAT__BN_BATCH : SAT__BN_INFER;
    switch (o.method) {
    case SAT_ATTACK_APGD_DLR:
        /* AutoAttack's APGD-T: a targeted loss whose success is any misclassification. */
        cfg->objective = SAT__OBJ_DLR_T;
        cfg->hit_target = 0;
        break;
    case SAT_ATTACK_APGD_CE:
        cfg->objective = o.targeted ? SAT__OBJ_CE_T : SAT__OBJ_CE;
        cfg->hit_target = o.targeted;
        break;
    case SAT_ATTACK_FAB:
        /* FAB-T linearises towards the target but, as in AutoAttack, succeeds on any
         * misclassification; the margin is what its trace reports. */
        cfg->objective = SAT__OBJ_MARGIN;
        cfg->hit_target = 0;
        cfg->uses_targets = o.targeted;
        break;
    case SAT_ATTACK_SQUARE:
        /* Square's loss is the margin (Andriushchenko et al.), towards the target when
         * targeted. */
        cfg->objective = o.targeted ? SAT__OBJ_MARGIN_T : SAT__OBJ_MARGIN;
        cfg->hit_target = o.targeted;
        break;
    default:
        if (o.loss == SAT_LOSS_CE)
            cfg->objective = o.targeted ? SAT__OBJ_CE_T : SAT__OBJ_CE;
        else
            cfg->objective = o.targeted ? SAT__OBJ_MARGIN_T : SAT__OBJ_MARGIN;
        cfg->hit_target = o.targeted;
        break;
    }
    if (cfg->objective == SAT__OBJ_CE_T || cfg->objective == SAT__OBJ_MARGIN_T ||
        cfg->objective == SAT__OBJ_DLR_T)
        cfg->uses_targets = 1;
    if (o.step_size > 0.0f)
        cfg->step = o.step_size;
    else if (fgsm)
        cfg->step = o.random_start ? 1.25f * o.eps : o.eps; /* FGSM / Fast-AT */
    else if (o.method == SAT_ATTACK_PGD)
        cfg->step = 2.5f * o.eps / (float)steps;             /* Madry et al. */
    else
        cfg->step = 2.0f * o.eps;                            /* APGD's initial step */
    return SAT_OK;
}
