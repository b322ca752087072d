/* measure.c - what evaluation and AutoAttack measure besides attacks: predictions of the
 * deployed model, the clean-point gradient checks for gradient masking, and AutoAttack's
 * choice of target classes. */
#include "attack/attack.h"

#include <string.h>

/* Predictions with batch norm in inference mode, in chunks of max_batch. */
int32_t sat__predict(const sat__target *m, const float *x, int64_t n, int32_t *pred, float *logits_out) {
    const int32_t k = m->classes;
    for (int64_t s = 0; s < n; s += m->max_batch) {
        const int64_t nc = n - s < m->max_batch ? n - s : m->max_batch;
        const float *z;
        int32_t st = m->forward(m->self, x + s * m->in_size, nc, SAT__BN_INFER, &z);
        if (st) return st;
        for (int64_t i = 0; i < nc; i++) pred[s + i] = sat__argmax(z + i * k, k, -1, -1);
        if (logits_out) memcpy(logits_out + s * k, z, sizeof(float) * (size_t)(nc * k));
    }
    return SAT_OK;
}

/* Input gradient of CE at the clean point (attack plan): ORs SAT_FLAG_ZERO_GRAD if some
 * example's gradient is exactly zero, SAT_FLAG_NONFINITE_GRAD if some value is NaN/Inf. */
int32_t sat__gradient_flags(const sat__target *m, const float *x, const int32_t *labels, int64_t n, float *grad,
                            float *dlogits, uint32_t *flags) {
    const int64_t d = m->in_size;
    const int32_t bn = m->attack_bn == SAT_BN_BATCH ? SAT__BN_BATCH : SAT__BN_INFER;
    for (int64_t s = 0; s < n; s += m->max_batch) {
        const int64_t nc = n - s < m->max_batch ? n - s : m->max_batch;
        const float *z;
        int32_t st = m->forward(m->self, x + s * d, nc, bn, &z);
        if (st) return st;
        sat__loss_ce(z, labels + s, nc, m->classes, NULL, dlogits);
        st = m->backward(m->self, x + s * d, nc, dlogits, grad);
        if (st) return st;
        for (int64_t i = 0; i < nc; i++) {
            const float *g = grad + i * d;
            if (!sat__all_finite(g, d)) *flags |= SAT_FLAG_NONFINITE_GRAD;
            int64_t j = 0;
            while (j < d && g[j] == 0.0f) j++;
            if (j == d) *flags |= SAT_FLAG_ZERO_GRAD;
        }
    }
    return SAT_OK;
}

/* The t-th largest clean logit of each example other than its label: AutoAttack's targets. */
void sat__pick_targets(const float *logits, const int32_t *labels, int64_t nc, int32_t classes,
                         int32_t t, int32_t *targets) {
    for (int64_t i = 0; i < nc; i++) {
        const float *z = logits + i * classes;
        int32_t chosen = -1;
        /* rank r: the best class strictly after rank r-1 */
        for (int32_t r = 0; r <= t; r++) chosen = sat__argmax(z, classes, labels[i], chosen);
        targets[i] = chosen >= 0 ? chosen : (labels[i] + 1) % classes;
    }
}

