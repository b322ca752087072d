/* gemm.c - single-precision GEMM through BLIS. The only file that includes blis.h, so the
 * rest of the library stays independent of the BLIS headers. */
/* blis.h uses pthread barriers, which strict C11 hides without a POSIX level. */
#define _POSIX_C_SOURCE 200809L

#include "kernels/kernels.h"

/* blis.h is not warning-clean under -Wextra -Wpedantic; its warnings are not ours. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <blis.h>
#pragma GCC diagnostic pop

/* Shapes are validated here because BLIS aborts the process on bad arguments. */
static int gemm_args_ok(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                        const float *a, int64_t lda, const float *b, int64_t ldb,
                        const float *c, int64_t ldc) {
    if (m < 0 || n < 0 || k < 0) return 0;
    if (m == 0 || n == 0) return 1;
    if (!c || ldc < n) return 0;
    if (k == 0) return 1;
    if (!a || !b) return 0;
    if (lda < (trans_a ? m : k)) return 0;
    if (ldb < (trans_b ? k : n)) return 0;
    return 1;
}

/* Multiply-adds per thread below which extra threads do not pay (about 0.1 ms of work). */
#define GEMM_MIN_MNK_PER_THREAD 2.0e6

static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        /* beta == 0 overwrites, so NaN or garbage in C does not survive (BLIS semantics). */
        if (beta == 0.0f)
            for (int64_t j = 0; j < n; j++) ci[j] = 0.0f;
        else
            for (int64_t j = 0; j < n; j++) ci[j] *= beta;
    }
}

void sat__gemm(const sat_context *ctx, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
               float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
               float *c, int64_t ldc) {
    if (!gemm_args_ok(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc)) return;
    if (m == 0 || n == 0) return;
    if (k == 0) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    /* Row-major storage expressed as BLIS strides; a transpose just swaps the strides. */
    inc_t rsa = trans_a ? 1 : (inc_t)lda, csa = trans_a ? (inc_t)lda : 1;
    inc_t rsb = trans_b ? 1 : (inc_t)ldb, csb = trans_b ? (inc_t)ldb : 1;
    /* BLIS starts its threads on every call and synchronises them with spinning barriers:
     * for small products that costs more than it saves, and on an oversubscribed machine a
     * descheduled thread stalls the others, so small GEMMs run on one thread. */
    dim_t nt = (dim_t)(ctx && ctx->num_threads > 0 ? ctx->num_threads : 1);
    if ((double)m * (double)n * (double)k < GEMM_MIN_MNK_PER_THREAD * (double)nt) nt = 1;
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(nt, &rntm);
    float al = alpha, be = beta;
    /* BLIS does not write through a and b; its typed API is just not const-qualified. */
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &al,
                 (float *)a, rsa, csa, (float *)b, rsb, csb, &be, c, (inc_t)ldc, 1, NULL, &rntm);
}
