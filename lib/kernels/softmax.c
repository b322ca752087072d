/* softmax.c - the one softmax of the library: a row's log-sum-exp in double, shifted by
 * the row's maximum so that large logits cannot overflow. log p_j = z_j - lse and
 * p_j = exp(z_j - lse); cross-entropy (softmax_ce.c) and the KL divergence of TRADES and
 * of its attack are made of it. */
#include "kernels/kernels.h"

#include <math.h>

double sat__logsumexp(const float *z, int64_t k) {
    double m = z[0];
    for (int64_t j = 1; j < k; j++)
        if (z[j] > m) m = z[j];
    double se = 0.0;
    for (int64_t j = 0; j < k; j++) se += exp((double)z[j] - m);
    return m + log(se);
}

double sat__kl_softmax(const float *zp, const float *zq, int64_t k, double scale, float *dzq, float *dzp) {
    const double lse_p = sat__logsumexp(zp, k), lse_q = sat__logsumexp(zq, k);
    double kl = 0.0;
    for (int64_t j = 0; j < k; j++) {
        const double lp = (double)zp[j] - lse_p, lq = (double)zq[j] - lse_q;
        kl += exp(lp) * (lp - lq);
    }
    for (int64_t j = 0; dzq && j < k; j++) {
        const double lp = (double)zp[j] - lse_p, lq = (double)zq[j] - lse_q;
        dzq[j] += (float)(scale * (exp(lq) - exp(lp)));
    }
    for (int64_t j = 0; dzp && j < k; j++) {
        const double lp = (double)zp[j] - lse_p, lq = (double)zq[j] - lse_q;
        dzp[j] += (float)(scale * exp(lp) * (lp - lq - kl));
    }
    return kl;
}
