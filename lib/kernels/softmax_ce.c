/* softmax_ce.c - softmax cross-entropy with label smoothing, in double per example so
 * that the log-sum-exp and the loss stay accurate for large logits. */
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
        double m = l[0], suml = 0.0;
        for (int64_t j = 1; j < classes; j++)
            if (l[j] > m) m = l[j];
        double se = 0.0;
        for (int64_t j = 0; j < classes; j++) {
            se += exp((double)l[j] - m);
            suml += l[j];
        }
        const double lse = m + log(se);
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

int64_t sat__count_correct(const float *logits, const int32_t *labels, int64_t n, int32_t classes) {
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * classes;
        int32_t best = 0;
        for (int32_t c = 1; c < classes; c++)
            if (row[c] > row[best]) best = c;
        correct += best == labels[i];
    }
    return correct;
}
