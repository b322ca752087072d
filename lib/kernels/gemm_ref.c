/* gemm_ref.c - portable reference GEMM (double accumulation) with sat__gemm's contract;
 * the tests measure the BLIS path against it. */
#include "kernels/kernels.h"

void sat__gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc) {
    if (m <= 0 || n <= 0 || k < 0 || !c || ldc < n) return;
    if (k > 0 && (!a || !b || lda < (trans_a ? m : k) || ldb < (trans_b ? k : n))) return;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) {
                double av = trans_a ? a[p * lda + i] : a[i * lda + p];
                double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                acc += av * bv;
            }
            double prev = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)((double)alpha * acc + prev);
        }
    }
}
