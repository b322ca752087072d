/* softmax_ce.c - softmax cross-entropy with label smoothing, in double per example so
 * that the log-sum-exp (softmax.c) and the loss stay accurate for large logits. */
#include "kernels/kernels.h"

#include <math.h>

double sat__softmax_ce(const float *logits, const int32_t *labels, int64_t n, int64_t classes,
                       float smoothing, float *losses, float *dlogits, float scale) {
    double total = 0.0;
    if (classes <= 0) return 0.0;
    const double s = smoothing, off = s / (double)classes;
    for (int64_t i = 0; i < n; i++) {
        const float *l = logits + i * classes;
        const int32_t y = labels[i];
        /* Invalid labels are rejected upstream; here they contribute nothing. */
        if (y < 0 || y >= classes) {
            if (losses) losses[i] = 0.0f;
            if (dlogits)
                for (int64_t j = 0; j < classes; j++) dlogits[i * classes + j] = 0.0f;
            continue;
        }
        const double lse = sat__logsumexp(l, classes);
        double suml = 0.0;
        for (int64_t j = 0; j < classes; j++) suml += l[j];
        /* sum_j t_j (lse - l_j) with t = (1-s) onehot + s/classes */
        const double loss = lse - (1.0 - s) * l[y] - off * suml;
        total += loss;
        if (losses) losses[i] = (float)loss;
        if (dlogits) {
            float *d = dlogits + i * classes;
            for (int64_t j = 0; j < classes; j++) {
                double p = exp((double)l[j] - lse);
                double t = off + (j == y ? 1.0 - s : 0.0);
                d[j] = (float)((double)scale * (p - t));
            }
        }
    }
    return total;
}
