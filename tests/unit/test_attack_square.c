/* test_attack_square.c - the Square attack: every query stays in the eps-ball and the pixel
 * box, the margin loss never increases (the objective it maximises never falls), the p
 * schedule is the paper's, it needs logits only, and on a trained model it comes within a
 * few points of APGD-CE's robust accuracy. */
#include "testutil.h"
#include "toy_task.h"

#include "attack/attack.h"

#include <math.h>
#include <string.h>

static void test_p_schedule(void **state) {
    (void)state;
    /* p_init 0.8, halved after queries 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000. */
    assert_true(sat__square_p(0) == 0.8);
    assert_true(sat__square_p(10) == 0.8);
    assert_true(sat__square_p(11) == 0.4);
    assert_true(sat__square_p(50) == 0.4);
    assert_true(sat__square_p(51) == 0.2);
    assert_true(sat__square_p(4999) == 0.8 / 128);
    assert_true(sat__square_p(8001) == 0.8 / 512);
}

static double dist(int32_t norm, const float *a, const float *b, int64_t d) {
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) {
        const double v = fabs((double)a[i] - (double)b[i]);
        s = norm == SAT_NORM_LINF ? (v > s ? v : s) : s + v * v;
    }
    return norm == SAT_NORM_LINF ? s : sqrt(s);
}

/* Ball, box and a monotone trace, on an image large enough for the L2 patterns (3x12x12). */
static void test_square_ball_box_monotone(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 5);
    sat_model *m = tu_model(ctx, "input 3 12 12\nconv 8 k=3 s=2\nact\ndense 10\n", SAT_ACT_SILU, 16);
    enum { N = 16, D = 3 * 12 * 12, Q = 300 };
    float *x = tu_alloc(sizeof(float) * N * D), *xa = tu_alloc(sizeof(float) * N * D);
    float loss[Q], acc[Q];
    int32_t y[N];
    tu_fill_uniform(x, N * D, 0.0f, 1.0f, 6);
    for (int i = 0; i < N; i++) y[i] = i % 10;
    for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
        sat_attack_opts o;
        TU_CHECK(sat_attack_opts_init(&o, sizeof o));
        o.method = SAT_ATTACK_SQUARE;
        o.norm = norm;
        o.eps = norm == SAT_NORM_LINF ? 0.05f : 0.5f;
        o.steps = Q;
        sat_attack_trace tr = {sizeof tr, Q, 0, 0, loss, acc};
        TU_CHECK(sat_attack(m, &o, x, y, NULL, N, xa, &tr));
        assert_int_equal(tr.count, Q);
        for (int i = 0; i < N; i++) assert_true(dist(norm, xa + i * D, x + i * D, D) <= o.eps * (1 + 1e-6));
        for (int i = 0; i < N * D; i++) assert_true(xa[i] >= 0.0f && xa[i] <= 1.0f);
        for (int s = 1; s < Q; s++) {
            if (!(loss[s] >= loss[s - 1])) fail_msg("norm %d: objective fell at query %d: %g -> %g", norm, s, (double)loss[s - 1], (double)loss[s]);
            assert_true(acc[s] <= acc[s - 1]);
        }
        assert_true(loss[Q - 1] > loss[0]); /* and it did rise */
    }
}

/* Robust examples left by `method` with `steps` (APGD-CE: iterations, Square: queries) on
 * the n points of x (d values each); the adversarial points are left in xa. */
static int64_t robust_after(sat_model *m, sat_attack_opts *o, int32_t method, int32_t steps, const float *x,
                            const int32_t *y, int64_t n, int64_t d, float *xa) {
    o->method = method;
    o->steps = steps;
    TU_CHECK(sat_attack(m, o, x, y, NULL, n, xa, NULL));
    return count_correct_d(m, xa, y, n, d);
}

/* On the trained toy task at 12x12 pixels, Linf Square with AutoAttack's 5000 queries comes
 * within a few points of APGD-CE (100 steps), and the same seed gives the same points. In L2
 * it must at least break examples: on this MLP, whose classes differ by constant 3x3 blocks,
 * the L2 patterns (a positive and a negative half per window) are a poor fit and Square stays
 * far behind APGD (75-78 against 27-28 robust of 128, seeds 0-9). AutoAttack's reference
 * implementation does no better: it cannot run at 12x12 as published (its L2 start grid
 * overruns the image), and with that grid bounded it left 89, 90 and 89 robust (seeds 0-2) on
 * this test's model, so libsat must leave at most 90. test_square_l2_vs_reference compares
 * with the unmodified reference at 20x20. */
static void test_square_close_to_apgd(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model_scaled(ctx, 3);
    enum { N = 128, D = SZ * 9 };
    float *x = tu_alloc(sizeof(float) * N * D), *xa = tu_alloc(sizeof(float) * N * D), *xb = tu_alloc(sizeof(float) * N * D);
    int32_t y[N];
    make_data_scaled(x, y, N, 7, 3);
    const int64_t clean = count_correct_d(m, x, y, N, D);
    assert_true(clean >= N * 9 / 10);
    for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
        sat_attack_opts o;
        TU_CHECK(sat_attack_opts_init(&o, sizeof o));
        o.norm = norm;
        o.eps = norm == SAT_NORM_LINF ? 0.08f : 0.9f;
        o.seed = 9;
        const int64_t apgd = robust_after(m, &o, SAT_ATTACK_APGD_CE, 100, x, y, N, D, xa);
        const int64_t square = robust_after(m, &o, SAT_ATTACK_SQUARE, 5000, x, y, N, D, xa);
        print_message("norm %d: clean %lld, APGD-CE %lld, Square %lld of %d\n", norm, (long long)clean,
                      (long long)apgd, (long long)square, N);
        assert_true(apgd < clean - N / 5); /* APGD had something to find */
        if (norm == SAT_NORM_LINF) assert_true(square <= apgd + 6); /* 4.7 points */
        else assert_true(square <= 90); /* the reference's worst seed */
        TU_CHECK(sat_attack(m, &o, x, y, NULL, N, xb, NULL));
        assert_memory_equal(xa, xb, sizeof(float) * N * D);
    }
}

/* L2 Square is as strong as AutoAttack's reference implementation (square.py, norm 'L2',
 * p_init 0.8, 5000 queries, resc_schedule=False) on the same model and points: the toy task at
 * 20x20 pixels, eps 0.9. Measured on this test's model (exported to PyTorch 1.13), the
 * reference left 124, 123 and 123 of 128 robust for seeds 0, 1, 2; libsat leaves 118-120 for
 * seeds 0, 3, 6, 9, and APGD-CE (both implementations) 104. The bound is the reference's worst
 * seed: a libsat Square weaker than the reference fails here. */
static void test_square_l2_vs_reference(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model_scaled(ctx, 5);
    enum { N = 128, D = SZ * 25 };
    float *x = tu_alloc(sizeof(float) * N * D), *xa = tu_alloc(sizeof(float) * N * D);
    int32_t y[N];
    make_data_scaled(x, y, N, 7, 5);
    assert_int_equal(count_correct_d(m, x, y, N, D), N);
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.norm = SAT_NORM_L2;
    o.eps = 0.9f;
    o.seed = 0;
    const int64_t apgd = robust_after(m, &o, SAT_ATTACK_APGD_CE, 100, x, y, N, D, xa);
    const int64_t square = robust_after(m, &o, SAT_ATTACK_SQUARE, 5000, x, y, N, D, xa);
    print_message("L2 at 20x20: APGD-CE %lld, Square %lld of %d (reference Square: 123-124)\n", (long long)apgd,
                  (long long)square, N);
    assert_true(apgd >= 100 && apgd <= 108); /* the model is the one the reference was run on */
    assert_true(square <= 124);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p_schedule),
        cmocka_unit_test(test_square_ball_box_monotone),
        cmocka_unit_test(test_square_close_to_apgd),
        cmocka_unit_test(test_square_l2_vs_reference),
    };
    return tu_run_group("test_attack_square", tests, sizeof tests / sizeof tests[0]);
}
