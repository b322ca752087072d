/* test_attack_fab.c - FAB against answers known in closed form. On a linear classifier the
 * closest adversarial point is the projection onto the nearest decision hyperplane: FAB (and
 * FAB-T towards that class) must find it, in Linf and L2. The projection itself is checked
 * where the box is active; on a trained model FAB's points stay in the ball and the box and
 * those it reports as adversarial are. */
#include "testutil.h"
#include "toy_task.h"

#include "attack/attack.h"

#include <math.h>
#include <string.h>

#define D 16
#define C3 3

/* A 3-class linear model z = W x + b with W, b filled from a seed; class 2 is made
 * unreachable near the test points (a large negative bias). */
static sat_model *linear_model(sat_context *ctx, float *w, float *bias) {
    sat_model *m = tu_model(ctx, "input 1 4 4\ndense 3\n", SAT_ACT_RELU, 8);
    tu_fill_uniform(w, C3 * D, -1.0f, 1.0f, 11);
    bias[0] = 0.0f;
    bias[1] = 0.0f;
    bias[2] = -100.0f;
    float *p = sat_model_params(m);
    assert_int_equal(sat_model_param_count(m), C3 * D + C3);
    memcpy(p, w, sizeof(float) * C3 * D);
    memcpy(p + C3 * D, bias, sizeof(float) * C3);
    return m;
}

/* Distance from x to the boundary between classes y and j, in the norm dual to `dual`
 * (L1 for Linf, L2 for L2), and the gap f = z_j - z_y. */
static double boundary_distance(const float *w, const float *bias, const float *x, int y, int j, int32_t norm,
                                double *gap) {
    double f = bias[j] - bias[y], nrm = 0.0;
    for (int i = 0; i < D; i++) {
        const double v = (double)w[j * D + i] - (double)w[y * D + i];
        f += v * x[i];
        nrm += norm == SAT_NORM_LINF ? fabs(v) : v * v;
    }
    if (gap) *gap = f;
    return fabs(f) / (norm == SAT_NORM_LINF ? nrm : sqrt(nrm));
}

static double distance(int32_t norm, const float *a, const float *b) {
    double s = 0.0;
    for (int i = 0; i < D; i++) {
        const double v = fabs((double)a[i] - (double)b[i]);
        s = norm == SAT_NORM_LINF ? (v > s ? v : s) : s + v * v;
    }
    return norm == SAT_NORM_LINF ? s : sqrt(s);
}

static void check_closed_form(int targeted) {
    sat_context *ctx = tu_context(1, 0);
    float w[C3 * D], bias[C3];
    sat_model *m = linear_model(ctx, w, bias);
    enum { N = 6 };
    float x[N * D], xa[N * D], z[N * C3];
    int32_t y[N], t[N];
    /* Points near the middle of the box, so the box never binds. */
    tu_fill_uniform(x, N * D, 0.4f, 0.6f, 12);
    TU_CHECK(sat_model_forward(m, x, N, z));
    for (int i = 0; i < N; i++) {
        y[i] = z[i * C3] > z[i * C3 + 1] ? 0 : 1;
        t[i] = 1 - y[i];
    }
    for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
        sat_attack_opts o;
        TU_CHECK(sat_attack_opts_init(&o, sizeof o));
        o.method = SAT_ATTACK_FAB;
        o.norm = norm;
        o.eps = norm == SAT_NORM_LINF ? 1.0f : 4.0f; /* large: every point is reachable */
        o.steps = 100;
        o.targeted = targeted;
        TU_CHECK(sat_attack(m, &o, x, y, targeted ? t : NULL, N, xa, NULL));
        for (int i = 0; i < N; i++) {
            double gap;
            const double best = boundary_distance(w, bias, x + i * D, y[i], t[i], norm, &gap);
            const double got = distance(norm, xa + i * D, x + i * D);
            assert_true(best > 1e-3);
            if (!(got >= best * (1.0 - 1e-4) && got <= best * 1.01))
                fail_msg("norm %d example %d: FAB distance %g, closed form %g", norm, i, got, best);
            /* The closed-form point: x - f w_d / ||w_d||^2 (L2) or x - sign(f) best sign(w_d)
             * (Linf), with w_d = w_t - w_y. */
            double wn2 = 0.0;
            for (int k = 0; k < D; k++) wn2 += pow((double)w[t[i] * D + k] - (double)w[y[i] * D + k], 2);
            for (int k = 0; k < D; k++) {
                const double wd = (double)w[t[i] * D + k] - (double)w[y[i] * D + k];
                const double step = norm == SAT_NORM_L2 ? -gap * wd / wn2
                                                        : -(gap > 0 ? 1 : -1) * best * (wd > 0 ? 1 : -1);
                if (fabs(x[i * D + k] + step - xa[i * D + k]) > 0.03 * best)
                    fail_msg("norm %d example %d pixel %d: FAB %g, closed form %g", norm, i, k,
                             (double)xa[i * D + k], x[i * D + k] + step);
            }
        }
        /* and every point it returns is adversarial */
        TU_CHECK(sat_model_forward(m, xa, N, z));
        for (int i = 0; i < N; i++) assert_int_equal(z[i * C3 + t[i]] > z[i * C3 + y[i]], 1);
    }
}

static void test_fab_linear_closed_form(void **state) {
    (void)state;
    check_closed_form(0);
}

static void test_fab_t_linear_closed_form(void **state) {
    (void)state;
    check_closed_form(1);
}

/* FAB's eps is a success threshold: with eps below the closed-form distance nothing is
 * found and x itself comes back. */
static void test_fab_eps_threshold(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    float w[C3 * D], bias[C3], x[D], xa[D], z[C3];
    sat_model *m = linear_model(ctx, w, bias);
    tu_fill_uniform(x, D, 0.4f, 0.6f, 13);
    TU_CHECK(sat_model_forward(m, x, 1, z));
    int32_t y = z[0] > z[1] ? 0 : 1;
    const double best = boundary_distance(w, bias, x, y, 1 - y, SAT_NORM_L2, NULL);
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.method = SAT_ATTACK_FAB;
    o.norm = SAT_NORM_L2;
    o.steps = 50;
    o.restarts = 2;
    o.eps = (float)(best * 0.9);
    TU_CHECK(sat_attack(m, &o, x, &y, NULL, 1, xa, NULL));
    assert_true(tu_max_abs_diff(x, xa, D) == 0.0f);
    o.eps = (float)(best * 1.1);
    TU_CHECK(sat_attack(m, &o, x, &y, NULL, 1, xa, NULL));
    assert_true(distance(SAT_NORM_L2, x, xa) <= best * 1.02);
}

/* The projection where the box binds: the result lies in the box and on the hyperplane,
 * and in Linf every moving coordinate moves by the same amount or to its bound. */
static void test_projection_box(void **state) {
    (void)state;
    enum { N = 64 };
    float t[N], w[N], d[N];
    sat__fab_pair work[N];
    tu_fill_uniform(t, N, 0.0f, 1.0f, 21);
    tu_fill_uniform(w, N, -1.0f, 1.0f, 22);
    w[5] = 0.0f;
    double wt = 0.0, reach = 0.0;
    for (int i = 0; i < N; i++) {
        wt += (double)w[i] * t[i];
        reach += w[i] > 0 ? w[i] * (double)t[i] : -w[i] * (1.0 - t[i]); /* largest decrease */
    }
    for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
        const double b = wt - 0.8 * reach; /* reachable, but only with saturated coordinates */
        sat__fab_project(norm, t, w, b, d, N, work);
        double wz = 0.0, lambda = 0.0;
        for (int i = 0; i < N; i++) {
            const double z = (double)t[i] + d[i];
            assert_true(z >= -1e-6 && z <= 1.0 + 1e-6);
            wz += (double)w[i] * z;
            if (norm == SAT_NORM_LINF && fabs(d[i]) > lambda) lambda = fabs(d[i]);
        }
        assert_true(fabs(wz - b) < 1e-4 * reach);
        assert_true(d[5] == 0.0f);
        int saturated = 0;
        for (int i = 0; i < N && norm == SAT_NORM_LINF; i++) {
            if (w[i] == 0.0f) continue;
            const double room = w[i] > 0 ? t[i] : 1.0 - t[i];
            const int at_bound = fabs(fabs(d[i]) - room) < 1e-6;
            saturated += at_bound && room < lambda - 1e-6;
            assert_true(at_bound || fabs(fabs(d[i]) - lambda) < 1e-6);
            assert_true((d[i] < 0) == (w[i] > 0) || d[i] == 0.0f);
        }
        if (norm == SAT_NORM_LINF) assert_true(saturated > 0);
        /* Out of reach: the box corner that lowers <w, .> the most. */
        sat__fab_project(norm, t, w, wt - 1.5 * reach, d, N, work);
        for (int i = 0; i < N; i++) {
            const float corner = w[i] > 0 ? 0.0f : (w[i] < 0 ? 1.0f : t[i]);
            assert_true(fabsf(t[i] + d[i] - corner) < 1e-6f);
        }
    }
}

/* On a trained model: FAB's points stay in the ball and the box, and examples it reports as
 * broken (prediction changed) are broken when evaluated again. */
static void test_fab_trained_model(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 4);
    sat_model *m = train_model(ctx);
    float x[NTEST * SZ], xa[NTEST * SZ];
    int32_t y[NTEST];
    make_data(x, y, NTEST, 2);
    const int64_t clean = count_correct(m, x, y, NTEST);
    for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
        sat_attack_opts o;
        TU_CHECK(sat_attack_opts_init(&o, sizeof o));
        o.method = SAT_ATTACK_FAB;
        o.norm = norm;
        o.eps = norm == SAT_NORM_LINF ? 0.1f : 0.4f;
        o.steps = 30;
        o.restarts = 2;
        TU_CHECK(sat_attack(m, &o, x, y, NULL, NTEST, xa, NULL));
        for (int64_t i = 0; i < NTEST; i++) {
            const double r = distance(norm, xa + i * SZ, x + i * SZ);
            assert_true(r <= o.eps * (1.0 + 1e-6));
            for (int k = 0; k < SZ; k++) assert_true(xa[i * SZ + k] >= 0.0f && xa[i * SZ + k] <= 1.0f);
        }
        const int64_t robust = count_correct(m, xa, y, NTEST);
        if (!(robust < clean)) fail_msg("norm %d: FAB broke nothing (%lld of %lld)", norm, (long long)robust, (long long)clean);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fab_linear_closed_form),
        cmocka_unit_test(test_fab_t_linear_closed_form),
        cmocka_unit_test(test_fab_eps_threshold),
        cmocka_unit_test(test_projection_box),
        cmocka_unit_test(test_fab_trained_model),
    };
    return tu_run_group("test_attack_fab", tests, sizeof tests / sizeof tests[0]);
}
