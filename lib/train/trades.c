/* trades.c - the TRADES objective (Zhang et al. 2019) and its parameter gradient:
 *   L = (1/n) sum_i [ CE_s(z_i, y_i) + beta * KL(p(z_i) || p(z'_i)) ],  z = f(x), z' = f(x')
 * The gradient flows through both f(x) and f(x'):
 *   dKL/dz'_c = p'_c - p_c
 *   dKL/dz_c  = p_c (log p_c - log p'_c - KL)
 * The executor keeps one forward at a time, so: forward x (keep z), forward x' (keep z'),
 * backward of the KL term into the parameters (kept in grad_acc), forward x again, backward
 * of CE + the KL term through z, then add the two gradients. */
#include "train/train.h"

#include <math.h>
#include <string.h>

/* log-softmax of one row in double. */
static void log_softmax(const float *l, double *out, int64_t k) {
    double mx = l[0], se = 0.0;
    for (int64_t j = 1; j < k; j++) mx = l[j] > mx ? l[j] : mx;
    for (int64_t j = 0; j < k; j++) se += exp((double)l[j] - mx);
    const double lse = mx + log(se);
    for (int64_t j = 0; j < k; j++) out[j] = (double)l[j] - lse;
}

#define TRADES_MAX_CLASSES 1024 /* per-row scratch on the stack */

int32_t sat__trades_loss_grad(sat_trainer *t, const float *x, const float *x_adv, const int32_t *labels,
                              int64_t n, int32_t bn, double *loss, int64_t *correct_clean,
                              int64_t *correct_adv) {
    sat_model *m = t->model;
    const int64_t k = m->classes;
    if (k > TRADES_MAX_CLASSES)
        return sat__fail(t->err, SAT_E_UNSUPPORTED, "TRADES supports at most %d classes", TRADES_MAX_CLASSES);
    const double beta = t->opts.trades_beta;
    const float inv_n = 1.0f / (float)n;
    /* Only the forward on x' updates running statistics; the ones on x use batch statistics. */
    const int32_t bn_x = bn == SAT__BN_TRAIN ? SAT__BN_BATCH : bn;
    float *z = t->logits_a, *zp = t->logits_b;
    const float *out;

    int32_t st = sat__forward(m, x, n, bn_x, &out);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    memcpy(z, out, sizeof(float) * (size_t)(n * k));
    st = sat__forward(m, x_adv, n, bn, &out);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    memcpy(zp, out, sizeof(float) * (size_t)(n * k));

    /* KL per example, its gradient through z' now (backward below) and through z later. */
    double lp[TRADES_MAX_CLASSES], lq[TRADES_MAX_CLASSES];
    double kl_total = 0.0;
    float *dzp = t->dlogits;
    for (int64_t i = 0; i < n; i++) {
        log_softmax(z + i * k, lp, k);
        log_softmax(zp + i * k, lq, k);
        double kl = 0.0;
        for (int64_t j = 0; j < k; j++) kl += exp(lp[j]) * (lp[j] - lq[j]);
        kl_total += kl;
        for (int64_t j = 0; j < k; j++) {
            dzp[i * k + j] = (float)(beta * (exp(lq[j]) - exp(lp[j])) / (double)n);
        }
    }
    if (!isfinite(kl_total))
        return sat__fail(t->err, SAT_E_NUMERIC, "sat_train_step: the TRADES KL term is not finite");
    if (correct_adv) *correct_adv = sat__count_correct(zp, labels, n, (int32_t)k);
    if (correct_clean) *correct_clean = sat__count_correct(z, labels, n, (int32_t)k);
    st = sat__backward(m, SAT__PLAN_TRAIN, dzp, NULL);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    memcpy(t->grad_acc, m->grads, sizeof(float) * (size_t)m->num_params);

    /* CE on x plus the KL term through z. */
    st = sat__forward(m, x, n, bn_x, &out);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    const double ce_total = sat__softmax_ce(out, labels, n, k, t->opts.label_smoothing, NULL, dzp, inv_n);
    if (!isfinite(ce_total))
        return sat__fail(t->err, SAT_E_NUMERIC, "sat_train_step: the TRADES cross-entropy is not finite");
    /* The z-side KL gradient is recomputed (n*k exps) rather than stored. */
    for (int64_t i = 0; i < n; i++) {
        log_softmax(z + i * k, lp, k);
        log_softmax(zp + i * k, lq, k);
        double kl = 0.0;
        for (int64_t j = 0; j < k; j++) kl += exp(lp[j]) * (lp[j] - lq[j]);
        for (int64_t j = 0; j < k; j++)
            dzp[i * k + j] += (float)(beta * exp(lp[j]) * (lp[j] - lq[j] - kl) / (double)n);
    }
    st = sat__backward(m, SAT__PLAN_TRAIN, dzp, NULL);
    if (st) return sat__fail(t->err, st, "%s", m->err);
    sat__axpy(1.0f, t->grad_acc, m->grads, m->num_params);
    *loss = (ce_total + beta * kl_total) / (double)n;
    return SAT_OK;
}
