/* test_eval.c - sat_evaluate: accuracies against direct forward passes and attacks, the
 * gradient-masking flags on constructed models, chunking, and the options contract. */
#include "testutil.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define SPEC "input 1 3 3\ndense 10\nact\ndense 5\n"
#define N 30
#define SZ 9
#define K 5

static void argmax_all(const float *z, int64_t n, int32_t *pred) {
    for (int64_t i = 0; i < n; i++) {
        int32_t b = 0;
        for (int32_t c = 1; c < K; c++)
            if (z[i * K + c] > z[i * K + b]) b = c;
        pred[i] = b;
    }
}

static void data(float *x, int32_t *y) {
    tu_fill_uniform(x, N * SZ, 0.0f, 1.0f, 17);
    for (int i = 0; i < N; i++) y[i] = (i * 3) % K;
}

static void test_defaults(void **state) {
    (void)state;
    sat_eval_opts o;
    memset(&o, 0x77, sizeof o);
    TU_CHECK(sat_eval_opts_init(&o, sizeof o));
    assert_int_equal(o.norm, SAT_NORM_LINF);
    assert_true(o.eps == 8.0f / 255.0f);
    assert_true(o.step_size == 0.0f);
    assert_int_equal(o.num_steps, 3);
    assert_int_equal(o.steps[0], 1);
    assert_int_equal(o.steps[1], 10);
    assert_int_equal(o.steps[2], 20);
    for (int i = 3; i < SAT_EVAL_MAX_STEPS; i++) assert_int_equal(o.steps[i], 0);
    assert_int_equal(o.restarts, 1);
    assert_int_equal(o.apgd, 0);
    assert_int_equal(o.apgd_steps, 100);
    assert_int_equal(o.apgd_targets, 3);
    assert_int_equal(o.batch, 0);
    assert_true(o.seed == SAT_SEED_CONTEXT);
}

static void test_accuracies(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 21);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    float x[N * SZ], z[N * K], xa[N * SZ];
    int32_t y[N], pred[N];
    data(x, y);
    /* half the labels are the model's own predictions, so the clean accuracy is mid-range */
    for (int64_t b = 0; b < N; b += 6) TU_CHECK(sat_model_forward(m, x + b * SZ, 6, z + b * K));
    argmax_all(z, N, pred);
    for (int i = 0; i < N; i += 2) y[i] = pred[i];
    int clean = 0;
    for (int i = 0; i < N; i++) clean += pred[i] == y[i];

    sat_eval_opts o;
    TU_CHECK(sat_eval_opts_init(&o, sizeof o));
    o.eps = 0.1f;
    o.apgd = 1;
    o.apgd_steps = 10;
    sat_eval_result r;
    r.struct_size = sizeof r;
    TU_CHECK(sat_evaluate(m, &o, x, y, N, &r));
    assert_true(r.n == N);
    assert_int_equal(r.num_steps, 3);
    assert_true(r.clean_accuracy == (float)((double)clean / N));
    for (int k = 0; k < 3; k++) assert_true(r.robust_accuracy[k] <= r.clean_accuracy);
    assert_true(isnan(r.robust_accuracy[3]));
    assert_true(r.fgsm_accuracy <= r.clean_accuracy);
    assert_true(r.apgd_accuracy <= r.clean_accuracy);
    assert_true(r.robust_accuracy[2] < r.clean_accuracy); /* eps 0.1 does flip some */
    assert_int_equal(r.flags & (SAT_FLAG_ZERO_GRAD | SAT_FLAG_NONFINITE_GRAD), 0);

    /* PGD-10 accuracy equals: correct clean AND correct at sat_attack's PGD-10 point */
    sat_attack_opts a;
    TU_CHECK(sat_attack_opts_init(&a, sizeof a));
    a.eps = 0.1f;
    a.steps = 10;
    TU_CHECK(sat_attack(m, &a, x, y, NULL, N, xa, NULL));
    int32_t adv[N];
    for (int64_t b = 0; b < N; b += 6) TU_CHECK(sat_model_forward(m, xa + b * SZ, 6, z + b * K));
    argmax_all(z, N, adv);
    int robust = 0;
    for (int i = 0; i < N; i++) robust += pred[i] == y[i] && adv[i] == y[i];
    assert_true(r.robust_accuracy[1] == (float)((double)robust / N));

    /* chunking is invisible: batch 7 (and max_batch 8 underneath) gives the same numbers */
    sat_eval_result r2;
    r2.struct_size = sizeof r2;
    o.batch = 7;
    TU_CHECK(sat_evaluate(m, &o, x, y, N, &r2));
    assert_true(memcmp(&r, &r2, offsetof(sat_eval_result, reserved0)) == 0);

    /* an older, smaller result struct gets only its prefix */
    unsigned char buf[sizeof(sat_eval_result) + 8];
    memset(buf, 0xee, sizeof buf);
    sat_eval_result *small = (sat_eval_result *)(void *)buf;
    small->struct_size = (uint32_t)offsetof(sat_eval_result, fgsm_accuracy);
    TU_CHECK(sat_evaluate(m, &o, x, y, N, small));
    assert_int_equal(small->struct_size, offsetof(sat_eval_result, fgsm_accuracy));
    assert_true(small->clean_accuracy == r.clean_accuracy);
    for (size_t i = offsetof(sat_eval_result, fgsm_accuracy); i < sizeof buf; i++) assert_int_equal(buf[i], 0xee);
}

static void test_zero_gradient_flag(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 22);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 16);
    /* all-zero first-layer weights: the output does not depend on the input at all */
    memset(sat_model_params(m), 0, sizeof(float) * 10 * SZ);
    float x[N * SZ];
    int32_t y[N];
    data(x, y);
    sat_eval_result r;
    r.struct_size = sizeof r;
    TU_CHECK(sat_evaluate(m, NULL, x, y, N, &r));
    assert_true(r.flags & SAT_FLAG_ZERO_GRAD);
    assert_false(r.flags & SAT_FLAG_NONFINITE_GRAD);
    /* nothing can move the prediction, so every attack leaves the clean accuracy */
    for (int k = 0; k < 3; k++) assert_true(r.robust_accuracy[k] == r.clean_accuracy);
    assert_true(r.fgsm_accuracy == r.clean_accuracy);
    assert_true(isnan(r.apgd_accuracy));
    assert_false(r.flags & (SAT_FLAG_NOT_CONVERGED | SAT_FLAG_ONE_STEP_STRONGER));
}

/* A linear model and labels = its predictions; PGD with a tiny fixed step barely moves in
 * 2 or 3 steps but reaches the optimum in 200, while FGSM jumps the full eps at once. */
static void test_convergence_flags(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 23);
    sat_model *m = tu_model(ctx, "input 1 3 3\ndense 5\n", SAT_ACT_SILU, 32);
    float x[N * SZ], z[N * K];
    int32_t y[N];
    data(x, y);
    TU_CHECK(sat_model_forward(m, x, N, z));
    argmax_all(z, N, y);
    sat_eval_opts o;
    TU_CHECK(sat_eval_opts_init(&o, sizeof o));
    o.eps = 0.3f;
    o.step_size = 0.003f;
    o.num_steps = 2;
    o.steps[0] = 200;
    o.steps[1] = 2; /* listed out of order: the flag compares the two largest k */
    sat_eval_result r;
    r.struct_size = sizeof r;
    TU_CHECK(sat_evaluate(m, &o, x, y, N, &r));
    assert_true(r.clean_accuracy == 1.0f);
    assert_true(r.robust_accuracy[0] < r.robust_accuracy[1] - 0.05f);
    assert_true(r.flags & SAT_FLAG_NOT_CONVERGED);
    assert_false(r.flags & SAT_FLAG_ONE_STEP_STRONGER); /* PGD-200 is as strong as FGSM */
    assert_false(r.flags & SAT_FLAG_ZERO_GRAD);
    /* only weak multi-step attacks: FGSM beats them all */
    o.steps[0] = 3;
    TU_CHECK(sat_evaluate(m, &o, x, y, N, &r));
    assert_true(r.fgsm_accuracy < r.robust_accuracy[0] - 0.05f);
    assert_true(r.flags & SAT_FLAG_ONE_STEP_STRONGER);
    assert_false(r.flags & SAT_FLAG_NOT_CONVERGED);
    /* with a sensible step both curves agree and neither flag is raised */
    o.step_size = 0.0f;
    o.steps[0] = 40;
    o.steps[1] = 20;
    TU_CHECK(sat_evaluate(m, &o, x, y, N, &r));
    assert_false(r.flags & (SAT_FLAG_NOT_CONVERGED | SAT_FLAG_ONE_STEP_STRONGER));
}

static void test_bad_arguments(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 24);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    float x[N * SZ];
    int32_t y[N];
    data(x, y);
    sat_eval_result r, keep;
    memset(&r, 0x3c, sizeof r);
    r.struct_size = sizeof r;
    keep = r;
    sat_eval_opts o;
    assert_int_equal(sat_evaluate(NULL, NULL, x, y, N, &r), SAT_E_INVALID_ARG);
    assert_int_equal(sat_evaluate(m, NULL, x, y, N, NULL), SAT_E_INVALID_ARG);
    struct {
        const char *what;
        int field;
    } cases[] = {{"num_steps 0", 0}, {"num_steps 17", 1}, {"steps[1] 0", 2}, {"eps NaN", 3},
                 {"restarts 0", 4},  {"norm 5", 5},       {"step Inf", 6},   {"batch -1", 7},
                 {"apgd_steps 0", 8}, {"apgd 2", 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TU_CHECK(sat_eval_opts_init(&o, sizeof o));
        o.apgd = 1;
        switch (cases[i].field) {
        case 0: o.num_steps = 0; break;
        case 1: o.num_steps = SAT_EVAL_MAX_STEPS + 1; break;
        case 2: o.steps[1] = 0; break;
        case 3: o.eps = NAN; break;
        case 4: o.restarts = 0; break;
        case 5: o.norm = 5; break;
        case 6: o.step_size = INFINITY; break;
        case 7: o.batch = -1; break;
        case 8: o.apgd_steps = 0; break;
        default: o.apgd = 2; break;
        }
        if (sat_evaluate(m, &o, x, y, N, &r) != SAT_E_INVALID_ARG) fail_msg("%s accepted", cases[i].what);
        assert_true(sat_model_last_error(m)[0] != '\0');
        assert_true(memcmp(&r, &keep, sizeof r) == 0);
    }
    x[4] = INFINITY;
    assert_int_equal(sat_evaluate(m, NULL, x, y, N, &r), SAT_E_NUMERIC);
    x[4] = 0.5f;
    y[7] = K;
    assert_int_equal(sat_evaluate(m, NULL, x, y, N, &r), SAT_E_INVALID_ARG);
    assert_true(memcmp(&r, &keep, sizeof r) == 0);
    r.struct_size = 2;
    y[7] = 0;
    assert_int_equal(sat_evaluate(m, NULL, x, y, N, &r), SAT_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_accuracies),
        cmocka_unit_test(test_zero_gradient_flag), cmocka_unit_test(test_convergence_flags),
        cmocka_unit_test(test_bad_arguments),
    };
    return tu_run_group("test_eval", tests, sizeof tests / sizeof tests[0]);
}
