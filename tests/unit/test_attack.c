/* test_attack.c - attack behaviour: the closed-form optimum on a linear classifier, the
 * ball and box constraints, PGD against FGSM, targeted attacks, restarts, and that
 * attacks leave the model alone and are reproducible across seeds, threads and chunking. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D 16

static sat_attack_opts opts_of(int32_t method, int32_t norm, float eps, int32_t steps, int32_t random_start) {
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.method = method;
    o.norm = norm;
    o.eps = eps;
    o.steps = steps;
    o.random_start = random_start;
    return o;
}

static void run(sat_model *m, const sat_attack_opts *o, const float *x, const int32_t *y, const int32_t *t,
                int64_t n, float *xa) {
    int32_t st = sat_attack(m, o, x, y, t, n, xa, NULL);
    if (st) fail_msg("sat_attack -> %d: %s", st, sat_model_last_error(m));
}

/* Per-example CE losses (attack plan) and predictions; n <= 64. */
static void losses_at(sat_model *m, const float *x, const int32_t *y, int64_t n, float *loss, int32_t *pred) {
    int32_t k;
    sat_model_shape(m, NULL, NULL, NULL, &k);
    float logits[64 * 8];
    TU_CHECK(sat_model_input_gradient(m, x, y, n, loss, NULL, logits));
    if (pred)
        for (int64_t i = 0; i < n; i++) {
            int32_t b = 0;
            for (int32_t c = 1; c < k; c++)
                if (logits[i * k + c] > logits[i * k + b]) b = c;
            pred[i] = b;
        }
}

static double mean(const float *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

/* ---- the linear classifier: the optimum is known ---- */

#define NL 4

typedef struct linear {
    sat_context *ctx;
    sat_model *m;
    float w[2][D], b[2];
} linear;

static void linear_setup(linear *L) {
    L->ctx = tu_context(1, 5);
    L->m = tu_model(L->ctx, "input 1 1 16\ndense 2\n", SAT_ACT_SILU, 8);
    assert_int_equal(sat_model_param_count(L->m), 2 * D + 2);
    tu_fill_uniform(&L->w[0][0], 2 * D, -1.0f, 1.0f, 11);
    for (int j = 0; j < D; j++)
        if (fabsf(L->w[0][j] - L->w[1][j]) < 0.05f) L->w[1][j] += 0.2f; /* no zero direction */
    L->b[0] = 0.1f;
    L->b[1] = -0.2f;
    float *p = sat_model_params(L->m);
    memcpy(p, L->w, sizeof L->w); /* W [2, D] then the bias */
    memcpy(p + 2 * D, L->b, sizeof L->b);
}

static double linear_loss(const linear *L, const float *x, int32_t y) {
    double z[2];
    for (int c = 0; c < 2; c++) {
        z[c] = L->b[c];
        for (int j = 0; j < D; j++) z[c] += (double)L->w[c][j] * x[j];
    }
    const double mx = z[0] > z[1] ? z[0] : z[1];
    return mx + log(exp(z[0] - mx) + exp(z[1] - mx)) - z[y];
}

/* x* = clip(x + eps sign(w_other - w_label)) (Linf) or x + eps u, u = w_diff/|w_diff| (L2). */
static void linear_optimum(const linear *L, int32_t norm, float eps, const float *x, int32_t y, float *xs) {
    double nrm = 0;
    for (int j = 0; j < D; j++) {
        const double d = L->w[1 - y][j] - L->w[y][j];
        nrm += d * d;
    }
    nrm = sqrt(nrm);
    for (int j = 0; j < D; j++) {
        const double d = L->w[1 - y][j] - L->w[y][j];
        const double v = norm == SAT_NORM_LINF ? x[j] + eps * (d > 0 ? 1 : -1) : x[j] + eps * d / nrm;
        xs[j] = (float)(v < 0 ? 0 : (v > 1 ? 1 : v));
    }
}

static void check_linear(linear *L, const sat_attack_opts *o, const float *x, const int32_t *y) {
    float xa[NL * D], xs[D], loss[NL];
    run(L->m, o, x, y, NULL, NL, xa);
    losses_at(L->m, xa, y, NL, loss, NULL);
    for (int i = 0; i < NL; i++) {
        linear_optimum(L, o->norm, o->eps, x + i * D, y[i], xs);
        const double want = linear_loss(L, xs, y[i]);
        if (fabs(loss[i] - want) > 1e-4 || tu_max_abs_diff(xs, xa + i * D, D) > 1e-5f)
            fail_msg("method %d norm %d start %d example %d: loss %g, optimum %g, max diff %g", o->method,
                     o->norm, o->random_start, i, loss[i], want, tu_max_abs_diff(xs, xa + i * D, D));
    }
}

static void test_linear_optimum(void **state) {
    (void)state;
    linear L;
    linear_setup(&L);
    const int32_t y[NL] = {0, 1, 0, 1};
    float x[NL * D], xin[NL * D];
    tu_fill_uniform(x, NL * D, 0.0f, 1.0f, 21); /* some coordinates near 0/1: the box binds */
    x[3] = 0.0f;
    x[D + 5] = 1.0f;
    tu_fill_uniform(xin, NL * D, 0.35f, 0.65f, 22); /* the box never binds for L2 eps 0.3 */
    const int32_t methods[] = {SAT_ATTACK_FGSM, SAT_ATTACK_PGD, SAT_ATTACK_APGD_CE};
    for (int k = 0; k < 3; k++) {
        sat_attack_opts o = opts_of(methods[k], SAT_NORM_LINF, 0.1f, 10, 0);
        check_linear(&L, &o, x, y);
        o.norm = SAT_NORM_L2;
        o.eps = 0.3f;
        check_linear(&L, &o, xin, y);
    }
    /* Linf from a random start: the steps still reach the corner */
    sat_attack_opts o = opts_of(SAT_ATTACK_PGD, SAT_NORM_LINF, 0.1f, 10, 1);
    check_linear(&L, &o, x, y);
    o.method = SAT_ATTACK_APGD_CE;
    check_linear(&L, &o, x, y);
}

/* ---- a small nonlinear model ---- */

#define CNN "input 2 4 4\nconv 4 k=3 p=1\nact\nflatten\ndense 12\nact\ndense 5\n"
#define NN 8

static void nonlinear_data(float *x, int32_t *y, int64_t n, int64_t size, int32_t classes, uint64_t seed) {
    tu_fill_uniform(x, n * size, 0.0f, 1.0f, seed);
    for (int64_t i = 0; i < n * size; i += 7) x[i] = (i / 7) % 2 ? 1.0f : 0.0f; /* on the box faces */
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)((i * 3 + seed) % (uint64_t)classes);
}

static void test_ball_and_box(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, CNN, SAT_ACT_SILU, 8);
    const int64_t size = 32;
    float x[NN * 32], xa[NN * 32];
    int32_t y[NN], t[NN];
    nonlinear_data(x, y, NN, size, 5, 1);
    for (int i = 0; i < NN; i++) t[i] = (y[i] + 1) % 5;
    const int32_t methods[] = {SAT_ATTACK_FGSM, SAT_ATTACK_PGD, SAT_ATTACK_APGD_CE, SAT_ATTACK_APGD_DLR};
    for (int k = 0; k < 4; k++)
        for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++)
            for (int32_t steps = 1; steps <= 6; steps++) {
                const float eps = norm == SAT_NORM_LINF ? 0.05f : 0.5f;
                sat_attack_opts o = opts_of(methods[k], norm, eps, steps, 1);
                o.restarts = 2;
                /* large steps make the projection do the work */
                if (steps > 3) o.step_size = 4 * eps;
                run(m, &o, x, y, t, NN, xa);
                int moved = 0;
                for (int i = 0; i < NN; i++) {
                    const float *a = xa + i * size, *c = x + i * size;
                    double s2 = 0;
                    for (int64_t j = 0; j < size; j++) {
                        assert_true(a[j] >= 0.0f && a[j] <= 1.0f);
                        s2 += ((double)a[j] - c[j]) * ((double)a[j] - c[j]);
                        moved |= a[j] != c[j];
                    }
                    if (norm == SAT_NORM_LINF)
                        assert_true(tu_max_abs_diff(a, c, size) <= eps + 1e-6f);
                    else
                        assert_true(sqrt(s2) <= eps + 1e-5);
                }
                assert_true(moved);
            }
}

static void test_pgd_beats_fgsm(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 8);
    sat_model *m = tu_model(ctx, "input 1 4 4\ndense 32\nact\ndense 32\nact\ndense 4\n", SAT_ACT_SILU, 16);
    float x[16 * 16], xf[16 * 16], xp[16 * 16], lf[16], lp[16];
    int32_t y[16];
    nonlinear_data(x, y, 16, 16, 4, 2);
    sat_attack_opts o = opts_of(SAT_ATTACK_FGSM, SAT_NORM_LINF, 8.0f / 255.0f, 1, 0);
    run(m, &o, x, y, NULL, 16, xf);
    o.method = SAT_ATTACK_PGD;
    for (int32_t steps = 5; steps <= 40; steps *= 2) {
        o.steps = steps;
        run(m, &o, x, y, NULL, 16, xp);
        losses_at(m, xf, y, 16, lf, NULL);
        losses_at(m, xp, y, 16, lp, NULL);
        if (mean(lp, 16) < mean(lf, 16))
            fail_msg("PGD-%d mean loss %g below FGSM's %g", steps, mean(lp, 16), mean(lf, 16));
    }
    float l0[16];
    losses_at(m, x, y, 16, l0, NULL);
    assert_true(mean(lf, 16) > mean(l0, 16)); /* and FGSM itself raises the loss */
}

/* Softmax probability of class c for each example. */
static void prob_of(sat_model *m, const float *x, int64_t n, const int32_t *c, float *p) {
    float logits[NN * 5];
    TU_CHECK(sat_model_forward(m, x, n, logits));
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * 5;
        double s = 0;
        for (int j = 0; j < 5; j++) s += exp(z[j]);
        p[i] = (float)(exp(z[c[i]]) / s);
    }
}

static void test_targeted(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 9);
    sat_model *m = tu_model(ctx, CNN, SAT_ACT_SILU, 8);
    float x[NN * 32], xa[NN * 32], p0[NN], p1[NN];
    int32_t y[NN], t[NN];
    nonlinear_data(x, y, NN, 32, 5, 3);
    for (int i = 0; i < NN; i++) t[i] = (y[i] + 2) % 5;
    prob_of(m, x, NN, t, p0);
    for (int32_t loss = SAT_LOSS_CE; loss <= SAT_LOSS_MARGIN; loss++) {
        sat_attack_opts o = opts_of(SAT_ATTACK_PGD, SAT_NORM_LINF, 0.1f, 10, 0);
        o.targeted = 1;
        o.loss = loss;
        run(m, &o, x, y, t, NN, xa);
        prob_of(m, xa, NN, t, p1);
        for (int i = 0; i < NN; i++)
            if (!(p1[i] > p0[i])) fail_msg("loss %d example %d: p(target) %g -> %g", loss, i, p0[i], p1[i]);
    }
}

static void test_restarts_keep_worst(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 10);
    sat_model *m = tu_model(ctx, CNN, SAT_ACT_SILU, 8);
    float x[NN * 32], a1[NN * 32], a3[NN * 32], l1[NN], l3[NN];
    int32_t y[NN], p1[NN], p3[NN];
    nonlinear_data(x, y, NN, 32, 5, 4);
    for (int32_t method = SAT_ATTACK_PGD; method <= SAT_ATTACK_APGD_CE; method++) {
        sat_attack_opts o = opts_of(method, SAT_NORM_LINF, 0.03f, 3, 1);
        o.seed = 1234;
        run(m, &o, x, y, NULL, NN, a1);
        o.restarts = 3;
        run(m, &o, x, y, NULL, NN, a3);
        losses_at(m, a1, y, NN, l1, p1);
        losses_at(m, a3, y, NN, l3, p3);
        int differ = 0;
        for (int i = 0; i < NN; i++) {
            const int hit1 = p1[i] != y[i], hit3 = p3[i] != y[i];
            /* misclassified first, then the higher loss */
            assert_true(hit3 >= hit1);
            if (hit3 == hit1) assert_true(l3[i] >= l1[i]);
            differ |= memcmp(a1 + i * 32, a3 + i * 32, sizeof(float) * 32) != 0;
        }
        assert_true(differ); /* the later restarts found something better somewhere */
    }
}

/* ---- the model is untouched and results are reproducible ---- */

#define BN_SPEC "input 1 4 4\nconv 4 k=3\nbn\nact\nflatten\ndense 6\nbn\nact\ndense 4\n"

static void test_model_unchanged(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 11);
    sat_model *m = tu_model(ctx, BN_SPEC, SAT_ACT_SILU, 8);
    float x[NN * 16], xa[NN * 16];
    int32_t y[NN], t[NN];
    nonlinear_data(x, y, NN, 16, 4, 5);
    for (int i = 0; i < NN; i++) t[i] = (y[i] + 1) % 4;
    /* one training forward so that the running statistics are not the initial ones */
    TU_CHECK(sat_model_train_backward(m, x, y, NN, 0.0f, NULL, NULL));
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    assert_true(ns > 0);
    float *p0 = tu_alloc(sizeof(float) * (size_t)np), *s0 = tu_alloc(sizeof(float) * (size_t)ns);
    memcpy(p0, sat_model_params(m), sizeof(float) * (size_t)np);
    memcpy(s0, sat_model_state(m), sizeof(float) * (size_t)ns);
    for (int32_t method = SAT_ATTACK_FGSM; method <= SAT_ATTACK_APGD_DLR; method++)
        for (int32_t bn = -1; bn <= SAT_BN_BATCH; bn++) {
            sat_attack_opts o = opts_of(method, SAT_NORM_LINF, 0.1f, 4, 1);
            o.bn_mode = bn;
            run(m, &o, x, y, t, NN, xa);
            assert_true(memcmp(p0, sat_model_params(m), sizeof(float) * (size_t)np) == 0);
            assert_true(memcmp(s0, sat_model_state(m), sizeof(float) * (size_t)ns) == 0);
        }
}

#define NR 10

/* x_adv of every method and norm for one context/max_batch, concatenated; `few` runs only
 * PGD-Linf and APGD-DLR-L2 (slices 2 and 7), since tiny multi-threaded GEMMs are slow. */
static void all_attacks(int32_t threads, int32_t max_batch, uint64_t seed, float *out, int few) {
    sat_context *ctx = tu_context(threads, 12);
    sat_model *m = tu_model(ctx, CNN, SAT_ACT_GELU, max_batch);
    float x[NR * 32];
    int32_t y[NR], t[NR];
    nonlinear_data(x, y, NR, 32, 5, 6);
    for (int i = 0; i < NR; i++) t[i] = (y[i] + 3) % 5;
    int k = 0;
    for (int32_t method = SAT_ATTACK_FGSM; method <= SAT_ATTACK_APGD_DLR; method++)
        for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++, k++) {
            if (few && k != 2 && k != 7) continue;
            sat_attack_opts o = opts_of(method, norm, norm == SAT_NORM_LINF ? 0.05f : 0.4f, 5, 1);
            o.restarts = 2;
            o.seed = seed;
            run(m, &o, x, y, t, NR, out + k * NR * 32);
        }
    tu_release(m);
    tu_release(ctx);
}

static void test_reproducible(void **state) {
    (void)state;
    const size_t len = 8 * NR * 32;
    float *a = tu_alloc(sizeof(float) * len), *b = tu_alloc(sizeof(float) * len);
    const size_t slice = NR * 32;
    all_attacks(1, 16, 77, a, 0);
    all_attacks(1, 16, 77, b, 0);
    assert_true(memcmp(a, b, sizeof(float) * len) == 0); /* same seed */
    all_attacks(1, 4, 77, b, 0);
    assert_true(memcmp(a, b, sizeof(float) * len) == 0); /* chunks of 4, 4, 2 */
    all_attacks(1, 16, 78, b, 0);
    assert_true(memcmp(a, b, sizeof(float) * len) != 0); /* another seed, other random starts */
    memset(b, 0, sizeof(float) * len);
    all_attacks(2, 16, 77, b, 1); /* 2 threads */
    assert_true(memcmp(a + 2 * slice, b + 2 * slice, sizeof(float) * slice) == 0);
    assert_true(memcmp(a + 7 * slice, b + 7 * slice, sizeof(float) * slice) == 0);
}

static void test_in_place(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 13);
    sat_model *m = tu_model(ctx, CNN, SAT_ACT_SILU, 4);
    float x[NR * 32], xa[NR * 32];
    int32_t y[NR];
    nonlinear_data(x, y, NR, 32, 5, 7);
    sat_attack_opts o = opts_of(SAT_ATTACK_PGD, SAT_NORM_LINF, 0.05f, 5, 1);
    run(m, &o, x, y, NULL, NR, xa);
    run(m, &o, x, y, NULL, NR, x); /* x_adv == x, across three chunks */
    assert_true(memcmp(x, xa, sizeof x) == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_optimum),  cmocka_unit_test(test_ball_and_box),
        cmocka_unit_test(test_pgd_beats_fgsm),  cmocka_unit_test(test_targeted),
        cmocka_unit_test(test_restarts_keep_worst), cmocka_unit_test(test_model_unchanged),
        cmocka_unit_test(test_in_place),
    };
    const struct CMUnitTest every_path[] = {cmocka_unit_test(test_reproducible)};
    const int failed = tu_run_group("test_attack", tests, sizeof tests / sizeof tests[0]);
    return failed + tu_run_on_every_path("test_attack", every_path, sizeof every_path / sizeof every_path[0]);
}
