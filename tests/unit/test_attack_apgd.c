/* test_attack_apgd.c - APGD on a model trained in the test (plain SGD on a synthetic
 * 4-class task): APGD-CE reaches at least PGD's loss with the same number of steps, and
 * targeted APGD-DLR finds misclassifications. */
#include "testutil.h"
#include "toy_task.h"

#include "attack/attack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double mean_loss(sat_model *m, const float *x, const int32_t *y, int64_t n, int64_t *correct) {
    float l[BATCH], z[BATCH * K];
    double s = 0;
    *correct = 0;
    for (int64_t b = 0; b < n; b += BATCH) {
        TU_CHECK(sat_model_input_gradient(m, x + b * SZ, y + b, BATCH, l, NULL, z));
        for (int i = 0; i < BATCH; i++) {
            s += l[i];
            int best = 0;
            for (int c = 1; c < K; c++)
                if (z[i * K + c] > z[i * K + best]) best = c;
            *correct += best == y[b + i];
        }
    }
    return s / (double)n;
}

static void test_apgd_vs_pgd(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model(ctx);
    float x[NTEST * SZ], xp[NTEST * SZ], xq[NTEST * SZ];
    int32_t y[NTEST];
    make_data(x, y, NTEST, 2);
    int64_t clean_ok, pgd_ok, apgd_ok;
    const double clean = mean_loss(m, x, y, NTEST, &clean_ok);
    assert_true(clean_ok >= NTEST * 9 / 10); /* the model learned the task */
    for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
        for (int32_t steps = 10; steps <= 40; steps *= 2) {
            sat_attack_opts o;
            TU_CHECK(sat_attack_opts_init(&o, sizeof o));
            o.norm = norm;
            o.eps = norm == SAT_NORM_LINF ? 0.1f : 0.4f;
            o.steps = steps;
            o.seed = 3;
            TU_CHECK(sat_attack(m, &o, x, y, NULL, NTEST, xp, NULL));
            o.method = SAT_ATTACK_APGD_CE;
            TU_CHECK(sat_attack(m, &o, x, y, NULL, NTEST, xq, NULL));
            const double pgd = mean_loss(m, xp, y, NTEST, &pgd_ok);
            const double apgd = mean_loss(m, xq, y, NTEST, &apgd_ok);
            if (!(apgd >= pgd)) fail_msg("norm %d steps %d: APGD-CE mean loss %g below PGD's %g", norm, steps, apgd, pgd);
            assert_true(pgd > clean);
        }
    }
}

static void test_apgd_targeted(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model(ctx);
    float x[NTEST * SZ], xa[NTEST * SZ];
    int32_t y[NTEST], t[NTEST];
    make_data(x, y, NTEST, 3);
    for (int i = 0; i < NTEST; i++) t[i] = (y[i] + 1 + i % 3) % K;
    int64_t clean_ok, adv_ok;
    mean_loss(m, x, y, NTEST, &clean_ok);
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.method = SAT_ATTACK_APGD_DLR;
    o.eps = 0.15f;
    o.steps = 30;
    TU_CHECK(sat_attack(m, &o, x, y, t, NTEST, xa, NULL));
    mean_loss(m, xa, y, NTEST, &adv_ok);
    assert_true(adv_ok < clean_ok);
    /* and the targeted DLR objective it maximises went up */
    float z0[NTEST * K], z1[NTEST * K];
    for (int64_t b = 0; b < NTEST; b += BATCH) {
        TU_CHECK(sat_model_forward(m, x + b * SZ, BATCH, z0 + b * K));
        TU_CHECK(sat_model_forward(m, xa + b * SZ, BATCH, z1 + b * K));
    }
    const double before = sat__loss_dlr_targeted(z0, y, t, NTEST, K, NULL, NULL);
    const double after = sat__loss_dlr_targeted(z1, y, t, NTEST, K, NULL, NULL);
    assert_true(after > before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apgd_vs_pgd),
        cmocka_unit_test(test_apgd_targeted),
    };
    return tu_run_group("test_attack_apgd", tests, sizeof tests / sizeof tests[0]);
}
