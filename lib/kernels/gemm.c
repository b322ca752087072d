/* gemm.c - single-precision GEMM through BLIS. The only file that includes blis.h, so the
 * rest of the library stays independent of the BLIS headers.
 *
 * Which kernels multiply (the "GEMM path"): BLIS picks a configuration from the CPU it
 * recognises at run time. A CPU newer than the installed BLIS (Debian's 0.9.0 does not know
 * AMD family 0x1A, Zen 5) falls back to the "generic" configuration, whose portable C
 * micro-kernel runs at a fraction of the machine's speed (about 12-30 GFLOP/s instead of
 * 150+ on one Zen 5 core). In that case, when the CPU has AVX-512, the GEMMs run through a
 * copy of BLIS's context in which only the single-precision micro-kernel and its block
 * sizes are replaced by the 16x16 AVX-512 kernel below: BLIS still packs and blocks as
 * usual. Everywhere else BLIS's own choice runs. The choice is made once (pthread_once)
 * and is the same for every context; docs/performance.md has the measurements behind it.
 *
 * Bit-identical results for any thread count and batch chunking: every output element must
 * be summed in the same order however the product is split. BLIS's packed path does that
 * (each element is one accumulator running over k in KC blocks whose bounds depend on k
 * only), but its small/unpacked "sup" path picks kernels from m, n and k, so splitting a
 * product or chunking a batch changed which kernel, and which order, summed an element.
 * Every call therefore switches sup off in its rntm_t.
 *
 * Threads: the library's worker pool splits C into blocks of whole micro-tiles and every
 * block is one single-threaded BLIS call (see gemm_block_range). */
/* blis.h uses pthread barriers, which strict C11 hides without a POSIX level. */
#define _POSIX_C_SOURCE 200809L

#include "kernels/kernels.h"

#include "kernels/blis_include.h"

#include <pthread.h>
#include <stdio.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SAT_HAVE_AVX512_UKR 1
#endif

#ifdef SAT_HAVE_AVX512_UKR
/* Micro-tile: MR rows of C by NR columns; packed A holds MR values per k, packed B NR.
 * 16 x 16 uses BLIS's reference packing kernels for 16 (there are none for 32) and keeps
 * 16 accumulators, one broadcast of A per FMA. */
#define UKR_MR 16
#define UKR_NR 16

__attribute__((target("avx512f"))) static void sgemm_avx512_16x16(
    dim_t m, dim_t n, dim_t k, float *restrict alpha, float *restrict a, float *restrict b,
    float *restrict beta, float *restrict c, inc_t rs_c, inc_t cs_c, auxinfo_t *restrict data,
    cntx_t *restrict cntx) {
    (void)data, (void)cntx;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512 c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
    for (dim_t p = 0; p < k; p++) {
        const __m512 bv = _mm512_loadu_ps(b);
#define SAT_UKR_ROW(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), bv, c##i);
        SAT_UKR_ROW(0) SAT_UKR_ROW(1) SAT_UKR_ROW(2) SAT_UKR_ROW(3)
        SAT_UKR_ROW(4) SAT_UKR_ROW(5) SAT_UKR_ROW(6) SAT_UKR_ROW(7)
        SAT_UKR_ROW(8) SAT_UKR_ROW(9) SAT_UKR_ROW(10) SAT_UKR_ROW(11)
        SAT_UKR_ROW(12) SAT_UKR_ROW(13) SAT_UKR_ROW(14) SAT_UKR_ROW(15)
#undef SAT_UKR_ROW
        a += UKR_MR;
        b += UKR_NR;
    }
    const __m512 al = _mm512_set1_ps(*alpha);
    const float be = *beta;
    const __m512 acc[UKR_MR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15};
    if (m == UKR_MR && n == UKR_NR && cs_c == 1) {
        for (int i = 0; i < UKR_MR; i++) {
            float *ci = c + i * rs_c;
            __m512 v = _mm512_mul_ps(al, acc[i]);
            /* beta == 0 overwrites: whatever C held (even NaN) does not survive. */
            if (be != 0.0f) v = _mm512_fmadd_ps(_mm512_set1_ps(be), _mm512_loadu_ps(ci), v);
            _mm512_storeu_ps(ci, v);
        }
        return;
    }
    /* Edge tiles and general strides: through a local tile. */
    float tile[UKR_MR * UKR_NR] __attribute__((aligned(64)));
    for (int i = 0; i < UKR_MR; i++) _mm512_store_ps(tile + i * UKR_NR, _mm512_mul_ps(al, acc[i]));
    for (dim_t i = 0; i < m; i++) {
        for (dim_t j = 0; j < n; j++) {
            float *cij = c + i * rs_c + j * cs_c;
            *cij = be == 0.0f ? tile[i * UKR_NR + j] : tile[i * UKR_NR + j] + be * *cij;
        }
    }
}
#endif

/* The path every GEMM runs on, chosen once: the BLIS context passed to every call, and its name. */
static cntx_t own_cntx;
static const cntx_t *gemm_cntx;
static char gemm_path[64];
static pthread_once_t gemm_cntx_once = PTHREAD_ONCE_INIT;

static int own_ukr_available(void) {
#ifdef SAT_HAVE_AVX512_UKR
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef SAT_HAVE_AVX512_UKR
/* own_cntx = base with the float micro-kernel and its block sizes replaced by the 16x16
 * AVX-512 kernel; the other types keep base's. */
static void own_cntx_build(const cntx_t *base) {
    own_cntx = *base;
    /* MC x KC of A (256 KiB) stays in L2, a KC x NR sliver of B (16 KiB) in L1. */
    blksz_t bs[5];
    const bszid_t ids[5] = {BLIS_MR, BLIS_NR, BLIS_MC, BLIS_KC, BLIS_NC};
    const dim_t sval[5] = {UKR_MR, UKR_NR, 256, 256, 4080};
    for (int i = 0; i < 5; i++) {
        bs[i] = *bli_cntx_get_blksz(ids[i], (cntx_t *)base);
        bli_blksz_set_def(sval[i], BLIS_FLOAT, &bs[i]);
        bli_blksz_set_max(sval[i], BLIS_FLOAT, &bs[i]);
    }
    bli_cntx_set_blkszs(BLIS_NAT, 5, BLIS_NC, &bs[4], BLIS_NR, BLIS_KC, &bs[3], BLIS_KR, BLIS_MC, &bs[2],
                        BLIS_MR, BLIS_NR, &bs[1], BLIS_NR, BLIS_MR, &bs[0], BLIS_MR, &own_cntx);
    /* BLIS stores kernels as void pointers (void_fp); the conversion is what BLIS itself does. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
    bli_cntx_set_l3_nat_ukrs(1, BLIS_GEMM_UKR, BLIS_FLOAT, (void_fp)sgemm_avx512_16x16, TRUE, &own_cntx);
#pragma GCC diagnostic pop
}
#endif

/* base: a BLIS context or NULL for the native one; name: what base is called. */
static int gemm_path_set(const cntx_t *base, const char *name, int own_ukr) {
    if (own_ukr && !own_ukr_available()) return 0;
    if (!base) base = bli_gks_query_nat_cntx();
#ifdef SAT_HAVE_AVX512_UKR
    if (own_ukr) {
        own_cntx_build(base);
        gemm_cntx = &own_cntx;
        snprintf(gemm_path, sizeof gemm_path, "own-avx512-16x16 on blis-%s", name);
        return 1;
    }
#endif
    gemm_cntx = base;
    snprintf(gemm_path, sizeof gemm_path, "blis-%s", name);
    return 1;
}

static void gemm_cntx_init(void) {
    const arch_t native = bli_arch_query_id();
    gemm_path_set(NULL, bli_arch_string(native), native == BLIS_ARCH_GENERIC && own_ukr_available());
}

int sat__gemm_select(const void *blis_cntx, const char *name, int own_ukr) {
    pthread_once(&gemm_cntx_once, gemm_cntx_init);
    if (!blis_cntx) name = bli_arch_string(bli_arch_query_id());
    return gemm_path_set(blis_cntx, name ? name : "?", own_ukr);
}

void sat__gemm_select_default(void) {
    pthread_once(&gemm_cntx_once, gemm_cntx_init);
    gemm_cntx_init();
}

const char *sat__gemm_path(void) {
    pthread_once(&gemm_cntx_once, gemm_cntx_init);
    return gemm_path;
}

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

/* Multiply-adds per thread below which extra threads do not pay (about 0.05 ms of work). */
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

/* One BLIS call on one thread. */
static void blis_call(int64_t m, int64_t n, int64_t k, float alpha, const float *a, inc_t rsa, inc_t csa,
                      const float *b, inc_t rsb, inc_t csb, float beta, float *c, int64_t ldc) {
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    bli_rntm_disable_l3_sup(&rntm); /* shape-dependent kernels: see the top of this file */
    float al = alpha, be = beta;
    /* BLIS does not write through a and b; its typed API is just not const-qualified. */
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &al, (float *)a, rsa, csa,
                 (float *)b, rsb, csb, &be, c, (inc_t)ldc, 1, (cntx_t *)gemm_cntx, &rntm);
}

/* Threads split C into blocks of GEMM_SPLIT rows or columns (a multiple of the micro-tile,
 * so every micro-tile and its k order are the same as in one call: the bits do not depend
 * on the thread count) and each runs BLIS on one thread. The library's pool sleeps while it
 * waits; BLIS's own threads spin in barriers, which on a machine busy with other programs
 * can stall a step for a whole scheduler slice whenever one of them is descheduled. */
#define GEMM_SPLIT 16

typedef struct gemm_job {
    int64_t m, n, k, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    inc_t rsa, csa, rsb, csb;
    int split_n;
} gemm_job;

static void gemm_block_range(void *arg, int64_t b0, int64_t b1) {
    const gemm_job *j = arg;
    const int64_t dim = j->split_n ? j->n : j->m;
    const int64_t lo = b0 * GEMM_SPLIT, hi = b1 * GEMM_SPLIT < dim ? b1 * GEMM_SPLIT : dim;
    if (lo >= hi) return;
    if (j->split_n)
        blis_call(j->m, hi - lo, j->k, j->alpha, j->a, j->rsa, j->csa, j->b + lo * j->csb, j->rsb, j->csb,
                  j->beta, j->c + lo, j->ldc);
    else
        blis_call(hi - lo, j->n, j->k, j->alpha, j->a + lo * j->rsa, j->rsa, j->csa, j->b, j->rsb, j->csb,
                  j->beta, j->c + lo * j->ldc, j->ldc);
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
    pthread_once(&gemm_cntx_once, gemm_cntx_init);
    /* Row-major storage expressed as BLIS strides; a transpose just swaps the strides. */
    gemm_job j = {m, n, k, ldc, alpha, beta, a, b, c,
                  trans_a ? 1 : (inc_t)lda, trans_a ? (inc_t)lda : 1,
                  trans_b ? 1 : (inc_t)ldb, trans_b ? (inc_t)ldb : 1, n >= m};
    /* Small products run on the calling thread: a hand-off costs more than it saves. */
    const int nt = ctx && ctx->num_threads > 1 && ctx->pool ? ctx->num_threads : 1;
    const int64_t blocks = ((j.split_n ? n : m) + GEMM_SPLIT - 1) / GEMM_SPLIT;
    if (nt == 1 || blocks < 2 || (double)m * (double)n * (double)k < GEMM_MIN_MNK_PER_THREAD * (double)nt) {
        gemm_block_range(&j, 0, blocks);
        return;
    }
    sat__parallel_for(ctx, blocks, gemm_block_range, &j);
}
