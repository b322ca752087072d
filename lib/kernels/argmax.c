/* argmax.c - the one argmax of the library. Predictions, accuracy counts, the margin and
 * DLR losses (the largest logit other than the label, the top three or four) and
 * AutoAttack's target classes are all made of it. Ties go to the lower index. */
#include "kernels/kernels.h"

int32_t sat__argmax(const float *z, int32_t k, int32_t skip, int32_t after) {
    int32_t best = -1;
    for (int32_t j = 0; j < k; j++) {
        if (j == skip) continue;
        /* Ranked at or before `after` in (value desc, index asc) order: taken already. */
        if (after >= 0 && (z[j] > z[after] || (z[j] == z[after] && j <= after))) continue;
        if (best < 0 || z[j] > z[best]) best = j;
    }
    return best;
}

void sat__top_k(const float *z, int32_t k, int32_t skip, int32_t count, int32_t *idx) {
    for (int32_t r = 0; r < count; r++) idx[r] = sat__argmax(z, k, skip, r > 0 ? idx[r - 1] : -1);
}

int64_t sat__count_correct(const float *logits, const int32_t *labels, int64_t n, int32_t classes) {
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) correct += sat__argmax(logits + i * classes, classes, -1, -1) == labels[i];
    return correct;
}
