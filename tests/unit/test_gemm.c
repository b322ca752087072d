/* test_gemm.c - sat__gemm (BLIS) against the reference GEMM: every transpose
 * combination, odd shapes, padded leading dimensions, alpha/beta, 1 and 2 threads, and
 * empty dimensions; bit-identical results however a product is split. All of it on every
 * kernel path the CPU can run. */
#include "testutil.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t m, n, k;
} shape;

/* Checks one call; the leading dimensions are padded by `pad` to exercise strides. */
static void check_case(const sat_context *ctx, int ta, int tb, shape s, int64_t pad, float alpha,
                       float beta, uint64_t seed) {
    const int64_t arows = ta ? s.k : s.m, acols = ta ? s.m : s.k;
    const int64_t brows = tb ? s.n : s.k, bcols = tb ? s.k : s.n;
    const int64_t lda = acols + pad, ldb = bcols + pad, ldc = s.n + pad;
    const int64_t na = arows * lda + 1, nb = brows * ldb + 1, nc = s.m * ldc + 1;
    float *a = tu_alloc((size_t)na * sizeof *a), *b = tu_alloc((size_t)nb * sizeof *b);
    float *c = tu_alloc((size_t)nc * sizeof *c), *cref = tu_alloc((size_t)nc * sizeof *c);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(cref);
    tu_fill_uniform(a, na, -1.0f, 1.0f, seed);
    tu_fill_uniform(b, nb, -1.0f, 1.0f, seed + 1);
    tu_fill_uniform(c, nc, -1.0f, 1.0f, seed + 2);
    memcpy(cref, c, (size_t)nc * sizeof *c);
    sat__gemm(ctx, ta, tb, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc);
    sat__gemm_ref(ta, tb, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, cref, ldc);
    /* Entries are sums of k products of values in [-1,1]: error scales with k. */
    const float tol = 1e-5f * (float)(s.k + 4) * (fabsf(alpha) + 1.0f);
    for (int64_t i = 0; i < s.m; i++) {
        for (int64_t j = 0; j < ldc; j++) {
            float got = c[i * ldc + j], want = cref[i * ldc + j];
            if (j >= s.n) {
                /* padding between rows must be untouched */
                if (got != want) fail_msg("padding written at (%ld,%ld)", (long)i, (long)j);
                continue;
            }
            if (!(fabsf(got - want) <= tol))
                fail_msg("ta=%d tb=%d %ldx%ldx%ld a=%g b=%g: (%ld,%ld) %g vs %g", ta, tb,
                         (long)s.m, (long)s.n, (long)s.k, alpha, beta, (long)i, (long)j, got, want);
        }
    }
    assert_true(c[nc - 1] == cref[nc - 1]);
    tu_free(a);
    tu_free(b);
    tu_free(c);
    tu_free(cref);
}

static void run_all(int32_t threads) {
    sat_context *ctx = tu_context(threads, 1);
    const shape shapes[] = {{1, 1, 1}, {17, 33, 5}, {128, 300, 75}, {3, 1, 7}, {1, 9, 2}, {64, 64, 64}};
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.5f, 0.25f}};
    uint64_t seed = 10;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t ai = 0; ai < sizeof ab / sizeof ab[0]; ai++)
                    for (int64_t pad = 0; pad <= 3; pad += 3)
                        check_case(ctx, ta, tb, shapes[si], pad, ab[ai][0], ab[ai][1], seed++);
    /* Large enough that the threaded BLIS path is taken (small products use one thread). */
    const shape big = {160, 301, 97};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) check_case(ctx, ta, tb, big, 1, 0.75f, -0.5f, seed++);
}

static void test_gemm_one_thread(void **state) {
    (void)state;
    run_all(1);
}

static void test_gemm_two_threads(void **state) {
    (void)state;
    run_all(2);
}

/* Every output element must come out with the same bits however the product is split:
 * across 1-3 threads, and into row or column blocks of any size (what a chunked batch
 * does to a layer's GEMM: fewer rows for a dense layer, fewer columns for a convolution).
 * A kernel choice that depends on the block's shape (BLIS's "sup" path) breaks this. */
static void split_case(int ta, int tb, int64_t m, int64_t n, int64_t k, float beta) {
    sat_context *ctx[3] = {tu_context(1, 1), tu_context(2, 1), tu_context(3, 1)};
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    float *a = tu_alloc(sizeof(float) * (size_t)(m * k)), *b = tu_alloc(sizeof(float) * (size_t)(k * n));
    float *c0 = tu_alloc(sizeof(float) * (size_t)(m * n)), *c = tu_alloc(sizeof(float) * (size_t)(m * n));
    float *init = tu_alloc(sizeof(float) * (size_t)(m * n));
    tu_fill_uniform(a, m * k, -1, 1, 3);
    tu_fill_uniform(b, k * n, -1, 1, 4);
    tu_fill_uniform(init, m * n, -1, 1, 5);
    const size_t bytes = sizeof(float) * (size_t)(m * n);
    memcpy(c0, init, bytes);
    sat__gemm(ctx[0], ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c0, n);
    for (int t = 1; t < 3; t++) {
        memcpy(c, init, bytes);
        sat__gemm(ctx[t], ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n);
        if (memcmp(c, c0, bytes) != 0) fail_msg("%d threads differ, %ldx%ldx%ld", t + 1, (long)m, (long)n, (long)k);
    }
    const int64_t blocks[] = {1, 3, 7, 16, 29, 64};
    for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
        const int64_t bs = blocks[bi];
        memcpy(c, init, bytes); /* row blocks */
        for (int64_t i = 0; i < m; i += bs) {
            const int64_t rows = m - i < bs ? m - i : bs;
            sat__gemm(ctx[bi % 3], ta, tb, rows, n, k, 1.0f, a + (ta ? i : i * lda), lda, b, ldb, beta, c + i * n, n);
        }
        if (memcmp(c, c0, bytes) != 0) fail_msg("row blocks of %ld differ, %ldx%ldx%ld", (long)bs, (long)m, (long)n, (long)k);
        memcpy(c, init, bytes); /* column blocks */
        for (int64_t j = 0; j < n; j += bs) {
            const int64_t cols = n - j < bs ? n - j : bs;
            sat__gemm(ctx[bi % 3], ta, tb, m, cols, k, 1.0f, a, lda, b + (tb ? j * ldb : j), ldb, beta, c + j, n);
        }
        if (memcmp(c, c0, bytes) != 0) fail_msg("column blocks of %ld differ, %ldx%ldx%ld", (long)bs, (long)m, (long)n, (long)k);
    }
    tu_free(a), tu_free(b), tu_free(c0), tu_free(c), tu_free(init);
    for (int t = 0; t < 3; t++) tu_release(ctx[t]);
}

static void test_gemm_split_bit_identical(void **state) {
    (void)state;
    /* the shapes of the models' layers: a convolution's W x col (c_out x pixels, k = c_in
     * k k), its data and weight gradients, and dense layers over a batch */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) split_case(ta, tb, 64, 300, 75, 0.0f);
    split_case(0, 0, 16, 1024, 144, 0.0f); /* resnet20 16 -> 16, 3x3, one 32x32 example */
    split_case(1, 0, 144, 1024, 16, 0.0f); /* its input gradient */
    split_case(0, 1, 16, 144, 1024, 1.0f); /* its weight gradient, accumulated */
    split_case(0, 1, 128, 10, 1024, 0.0f); /* dense 1024 -> 10 over a batch of 128 */
    split_case(0, 0, 128, 1024, 10, 0.0f); /* its input gradient */
    split_case(0, 1, 8, 1024, 3136, 1.0f); /* madry-cnn's dense 3136 -> 1024, small batch */
}

static void test_gemm_empty(void **state) {
    (void)state;
    sat_context *ctx = tu_context(2, 1);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 1, 1, 1, 1, 1};
    float c[6], cref[6];
    /* k = 0: C = beta C, for both implementations. */
    for (int i = 0; i < 6; i++) c[i] = cref[i] = (float)i + 1.0f;
    sat__gemm(ctx, 0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.5f, c, 3);
    sat__gemm_ref(0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.5f, cref, 3);
    for (int i = 0; i < 6; i++) {
        assert_float_equal(c[i], 0.5f * ((float)i + 1.0f), 0.0f);
        assert_float_equal(cref[i], c[i], 0.0f);
    }
    /* k = 0 and beta = 0 clears C even if it held NaN. */
    for (int i = 0; i < 6; i++) c[i] = cref[i] = NAN;
    sat__gemm(ctx, 1, 1, 2, 3, 0, 1.0f, NULL, 2, NULL, 0, 0.0f, c, 3);
    sat__gemm_ref(1, 1, 2, 3, 0, 1.0f, NULL, 2, NULL, 0, 0.0f, cref, 3);
    for (int i = 0; i < 6; i++) {
        assert_true(c[i] == 0.0f);
        assert_true(cref[i] == 0.0f);
    }
    /* beta = 0 with k > 0 also ignores NaN in C. */
    for (int i = 0; i < 6; i++) c[i] = NAN;
    sat__gemm(ctx, 0, 0, 2, 3, 1, 2.0f, a, 1, b, 3, 0.0f, c, 3);
    for (int i = 0; i < 6; i++) assert_float_equal(c[i], 2.0f * a[i / 3], 0.0f);
    /* m = 0 or n = 0: nothing is touched. */
    for (int i = 0; i < 6; i++) c[i] = 7.0f;
    sat__gemm(ctx, 0, 0, 0, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 3);
    sat__gemm(ctx, 0, 0, 2, 0, 2, 1.0f, a, 2, b, 0, 0.0f, c, 0);
    sat__gemm_ref(0, 0, 0, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 3);
    for (int i = 0; i < 6; i++) assert_true(c[i] == 7.0f);
    /* Inconsistent leading dimensions are refused rather than handed to BLIS. */
    sat__gemm(ctx, 0, 0, 2, 3, 2, 1.0f, a, 1, b, 3, 0.0f, c, 3);
    sat__gemm(ctx, 0, 0, 2, 3, 2, 1.0f, a, 2, b, 2, 0.0f, c, 3);
    sat__gemm(ctx, 0, 0, 2, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 2);
    sat__gemm(ctx, 0, 0, -1, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 3);
    for (int i = 0; i < 6; i++) assert_true(c[i] == 7.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_one_thread),
        cmocka_unit_test(test_gemm_two_threads),
        cmocka_unit_test(test_gemm_split_bit_identical),
        cmocka_unit_test(test_gemm_empty),
    };
    return tu_run_on_every_path("test_gemm", tests, sizeof tests / sizeof tests[0]);
}
