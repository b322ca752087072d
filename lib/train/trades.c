/* trades.c - the TRADES objective (Zhang et al. 2019) and its parameter gradient:
 *   L = (1/n) sum_i [ CE_s(z_i, y_i) + beta * KL(p(z_i) || p(z'_i)) ],  z = f(x), z' = f(x')
 * The gradient flows through both f(x) and f(x'):
 *   dKL/dz'_c = p'_c - p_c
 *   dKL/dz_c  = p_c (log p_c - log p'_c - KL)
 * f(x) runs on the trainer's second execution and f(x') on the model's own, so each keeps
 * what its backward needs: forward x, forward x', backward of the KL term through z' into
 * the parameters (kept in grad_acc), backward of CE + the KL term through z, which adds the
 * two gradients range by range as they become final (sat__last_backward). */
#include "train/train.h"

#include <math.h>
#include <string.h>

int32_t sat__trades_loss_grad(sat_trainer *t, const float *x, const float *x_adv, const int32_t *labels,
                              int64_t n, int32_t bn, double *loss, int64_t *correct_clean,
                              int64_t *correct_adv) {
    sat_model *m = t->model;
    const int64_t k = m->classes;
    const double beta = t->opts.trades_beta;
    const float inv_n = 1.0f / (float)n;
    /* Only the forward on x' updates running statistics; the ones on x use batch statistics. */
    const int32_t bn_x = bn == SAT__BN_TRAIN ? SAT__BN_BATCH : bn;
    float *z = t->logits_a, *zp = t->logits_b;
    const float *out;

    int32_t st = sat__exec_fwd(t->clean_exec, x, n, bn_x, &out);
    if (st) return sat__fail(t->err, st, "%s", t->clean_exec->err);
    memcpy(z, out, sizeof(float) * (size_t)(n * k));
    st = sat__forward(m, x_adv, n, bn, &out);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    memcpy(zp, out, sizeof(float) * (size_t)(n * k));

    /* KL per example, its gradient through z' now (backward below) and through z later. */
    const double scale = beta / (double)n;
    double kl_total = 0.0;
    float *dzp = t->dlogits;
    memset(dzp, 0, sizeof(float) * (size_t)(n * k));
    for (int64_t i = 0; i < n; i++) kl_total += sat__kl_softmax(z + i * k, zp + i * k, k, scale, dzp + i * k, NULL);
    if (!isfinite(kl_total))
        return sat__fail(t->err, SAT_E_NUMERIC, "%s: the TRADES KL term is not finite", t->call);
    if (correct_adv) *correct_adv = sat__count_correct(zp, labels, n, (int32_t)k);
    if (correct_clean) *correct_clean = sat__count_correct(z, labels, n, (int32_t)k);
    st = sat__backward(m, SAT__PLAN_TRAIN, dzp, NULL);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    memcpy(t->grad_acc, m->grads, sizeof(float) * (size_t)m->num_params);

    /* CE on x plus the KL term through z. */
    const double ce_total = sat__softmax_ce(z, labels, n, k, t->opts.label_smoothing, NULL, dzp, inv_n);
    if (!isfinite(ce_total))
        return sat__fail(t->err, SAT_E_NUMERIC, "%s: the TRADES cross-entropy is not finite", t->call);
    /* The z-side KL gradient is recomputed (n*k exps) rather than stored. */
    for (int64_t i = 0; i < n; i++) sat__kl_softmax(z + i * k, zp + i * k, k, scale, NULL, dzp + i * k);
    st = sat__last_backward(t, t->clean_exec, t->grad_acc);
    if (st) return st;
    *loss = (ce_total + beta * kl_total) / (double)n;
    return SAT_OK;
}
