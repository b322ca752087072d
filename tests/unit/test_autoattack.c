/* test_autoattack.c - the AutoAttack sequence on a model trained in the test: the attacks run
 * in the reference order, robust accuracy never rises along it, its first entry is APGD-CE's
 * own result, the per-example outcomes, adversarial examples and counts agree with each
 * other and with the model, "plus" is at least as strong as "standard", and bad input is
 * refused with nothing written. */
#include "testutil.h"
#include "toy_task.h"

#include <math.h>
#include <string.h>

#define EPS 0.08f

static double linf(const float *a, const float *b, int64_t d) {
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) s = fmax(s, fabs((double)a[i] - (double)b[i]));
    return s;
}

static void run(sat_model *m, int32_t version, const float *x, const int32_t *y, float *xa, int32_t *outcome,
                sat_autoattack_result *r) {
    sat_autoattack_opts o;
    TU_CHECK(sat_autoattack_opts_init(&o, sizeof o));
    assert_int_equal(o.version, SAT_AA_STANDARD);
    assert_int_equal(o.norm, SAT_NORM_LINF);
    o.version = version;
    o.eps = EPS;
    o.seed = 2;
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    TU_CHECK(sat_autoattack(m, &o, x, y, NTEST, xa, outcome, r));
}

static void test_standard_sequence(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model(ctx);
    float x[NTEST * SZ], xa[NTEST * SZ], xp[NTEST * SZ];
    int32_t y[NTEST], outcome[NTEST];
    make_data(x, y, NTEST, 5);
    sat_autoattack_result r;
    run(m, SAT_AA_STANDARD, x, y, xa, outcome, &r);

    const int32_t order[] = {SAT_AA_ATTACK_APGD_CE, SAT_AA_ATTACK_APGD_T, SAT_AA_ATTACK_FAB_T, SAT_AA_ATTACK_SQUARE};
    print_message("clean %.3f, after APGD-CE %.3f, APGD-T %.3f, FAB-T %.3f, Square %.3f, flags %u\n",
                  (double)r.clean_accuracy, (double)r.accuracy_after[0], (double)r.accuracy_after[1],
                  (double)r.accuracy_after[2], (double)r.accuracy_after[3], r.flags);
    assert_int_equal(r.num_attacks, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(r.attacks[i], order[i]);
    assert_true(isnan(r.accuracy_after[4]));
    assert_int_equal(r.n, NTEST);
    const int64_t clean = count_correct(m, x, y, NTEST);
    assert_true(fabs(r.clean_accuracy - (double)clean / NTEST) < 1e-6);
    assert_true(r.accuracy_after[0] <= r.clean_accuracy);
    for (int i = 1; i < 4; i++) assert_true(r.accuracy_after[i] <= r.accuracy_after[i - 1]);
    assert_true(r.robust_accuracy == r.accuracy_after[3]);
    assert_true(r.robust_accuracy < r.clean_accuracy - 0.2f); /* eps large enough to matter */

    /* The outcomes add up to the accuracies, broken examples are adversarial points within
     * the ball and the box, robust ones come back unchanged. */
    int64_t count[6] = {0}, robust = 0, wrong = 0;
    for (int64_t i = 0; i < NTEST; i++) {
        const float *xi = x + i * SZ, *ai = xa + i * SZ;
        if (outcome[i] == SAT_AA_ROBUST || outcome[i] == SAT_AA_MISCLASSIFIED) {
            assert_memory_equal(xi, ai, sizeof(float) * SZ);
            robust += outcome[i] == SAT_AA_ROBUST;
            wrong += outcome[i] == SAT_AA_MISCLASSIFIED;
            continue;
        }
        assert_true(outcome[i] >= 0 && outcome[i] < 4);
        count[outcome[i]]++;
        assert_true(linf(xi, ai, SZ) <= EPS * (1 + 1e-6));
        for (int k = 0; k < SZ; k++) assert_true(ai[k] >= 0.0f && ai[k] <= 1.0f);
        assert_int_equal(count_correct(m, ai, y + i, 1), 0);
    }
    assert_int_equal(wrong, NTEST - clean);
    assert_true(fabs(r.robust_accuracy - (double)robust / NTEST) < 1e-6);
    int64_t left = clean;
    for (int s = 0; s < 4; s++) {
        left -= count[s];
        assert_true(fabs(r.accuracy_after[s] - (double)left / NTEST) < 1e-6);
    }
    assert_int_equal(r.square_only, count[3]);
    assert_true(count_correct(m, xa, y, NTEST) == robust);

    /* Its first attack is APGD-CE itself: the same result as sat_attack with the same seed
     * (up to one example, for float rounding of a different batch composition). */
    sat_attack_opts ao;
    TU_CHECK(sat_attack_opts_init(&ao, sizeof ao));
    ao.method = SAT_ATTACK_APGD_CE;
    ao.eps = EPS;
    ao.steps = 100;
    ao.seed = 2;
    TU_CHECK(sat_attack(m, &ao, x, y, NULL, NTEST, xp, NULL));
    const int64_t apgd = count_correct(m, xp, y, NTEST);
    assert_true(llabs(apgd - (int64_t)llround(r.accuracy_after[0] * NTEST)) <= 1);
}

static void test_versions(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model(ctx);
    float x[NTEST * SZ], xa[NTEST * SZ];
    int32_t y[NTEST], outcome[NTEST];
    make_data(x, y, NTEST, 6);
    sat_autoattack_result std_r, plus_r, rand_r;
    run(m, SAT_AA_STANDARD, x, y, xa, outcome, &std_r);
    run(m, SAT_AA_PLUS, x, y, xa, outcome, &plus_r);
    run(m, SAT_AA_RAND, x, y, xa, outcome, &rand_r);
    const int32_t plus_order[] = {SAT_AA_ATTACK_APGD_CE, SAT_AA_ATTACK_APGD_DLR, SAT_AA_ATTACK_FAB,
                                  SAT_AA_ATTACK_SQUARE,  SAT_AA_ATTACK_APGD_T,   SAT_AA_ATTACK_FAB_T};
    assert_int_equal(plus_r.num_attacks, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(plus_r.attacks[i], plus_order[i]);
    assert_int_equal(rand_r.num_attacks, 2);
    assert_int_equal(rand_r.attacks[0], SAT_AA_ATTACK_APGD_CE);
    assert_int_equal(rand_r.attacks[1], SAT_AA_ATTACK_APGD_DLR);
    /* plus repeats standard's runs (same seeds and streams) and adds more: never weaker. */
    assert_true(plus_r.robust_accuracy <= std_r.robust_accuracy + 1.0f / NTEST);
    assert_true(rand_r.robust_accuracy >= plus_r.robust_accuracy - 1.0f / NTEST);
}

static void test_bad_input(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = tu_model(ctx, "input 1 4 4\ndense 4\n", SAT_ACT_RELU, 8);
    float x[4 * SZ], xa[4 * SZ];
    int32_t y[4] = {0, 1, 2, 3}, outcome[4] = {9, 9, 9, 9};
    tu_fill_uniform(x, 4 * SZ, 0.0f, 1.0f, 1);
    memcpy(xa, x, sizeof xa);
    sat_autoattack_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    sat_autoattack_opts o;
    TU_CHECK(sat_autoattack_opts_init(&o, sizeof o));
    o.version = 3;
    assert_int_equal(sat_autoattack(m, &o, x, y, 4, xa, outcome, &r), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(m), "version"));
    o.version = SAT_AA_STANDARD;
    o.eps = 2.0f;
    assert_int_equal(sat_autoattack(m, &o, x, y, 4, xa, outcome, &r), SAT_E_INVALID_ARG);
    o.eps = 0.1f;
    assert_int_equal(sat_autoattack(m, &o, x, y, 4, NULL, outcome, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_autoattack(m, &o, x, y, 4, x, outcome, &r), SAT_E_INVALID_ARG);
    y[2] = 4;
    assert_int_equal(sat_autoattack(m, &o, x, y, 4, xa, outcome, &r), SAT_E_INVALID_ARG);
    y[2] = 2;
    assert_int_equal(sat_autoattack(m, &o, x, y, 0, xa, outcome, &r), SAT_E_SHAPE);
    assert_int_equal(sat_autoattack(NULL, &o, x, y, 4, xa, outcome, &r), SAT_E_INVALID_ARG);
    for (int i = 0; i < 4; i++) assert_int_equal(outcome[i], 9);
    assert_memory_equal(xa, x, sizeof xa);
    assert_int_equal(r.num_attacks, 0);
    /* A result struct from an older header (only its first fields) gets just those. */
    unsigned char small[sizeof(sat_autoattack_result)];
    memset(small, 0xab, sizeof small);
    const uint32_t prefix = 16; /* struct_size, num_attacks, n */
    memcpy(small, &prefix, sizeof prefix);
    TU_CHECK(sat_autoattack(m, &o, x, y, 4, NULL, NULL, (sat_autoattack_result *)small));
    int64_t n;
    memcpy(&n, small + 8, sizeof n);
    assert_int_equal(n, 4);
    for (size_t i = prefix; i < sizeof small; i++) assert_int_equal(small[i], 0xab);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_sequence),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_bad_input),
    };
    return tu_run_group("test_autoattack", tests, sizeof tests / sizeof tests[0]);
}
