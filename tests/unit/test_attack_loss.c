/* test_attack_loss.c - the attack module's building blocks: objective values on known
 * logits, their logit gradients against finite differences, the projection and step
 * geometry, random starts, and APGD's checkpoint schedule. */
#include "testutil.h"

#include "attack/attack.h"

#include <math.h>
#include <string.h>

#define K 6

/* The reference logits of the KL objective. */
static const float ref[K] = {0.5f, -0.7f, 1.3f, 0.2f, 2.2f, -1.0f};

static double objective_at(int32_t obj, const float *z, int32_t y, int32_t t) {
    float v;
    sat__attack_objective(obj, z, &y, &t, ref, 1, K, &v, NULL);
    return v;
}

static void test_known_values(void **state) {
    (void)state;
    /* sorted: z2=4 > z0=3 > z5=2 > z1=1 > z3=0 > z4=-1 */
    const float z[K] = {3, 1, 4, 0, -1, 2};
    const double lse = log(exp(3) + exp(1) + exp(4) + exp(0) + exp(-1) + exp(2));
    assert_true(fabs(objective_at(SAT__OBJ_CE, z, 1, 0) - (lse - 1)) < 1e-5);
    assert_true(fabs(objective_at(SAT__OBJ_CE_T, z, 1, 3) + (lse - 0)) < 1e-5);
    /* margin: best other class minus the label's logit */
    assert_true(fabs(objective_at(SAT__OBJ_MARGIN, z, 0, 0) - (4 - 3)) < 1e-6);
    assert_true(fabs(objective_at(SAT__OBJ_MARGIN, z, 2, 0) - (3 - 4)) < 1e-6);
    assert_true(fabs(objective_at(SAT__OBJ_MARGIN_T, z, 0, 5) - (2 - 4)) < 1e-6);
    /* DLR: -(z_y - max_other) / (pi1 - pi3) */
    assert_true(fabs(objective_at(SAT__OBJ_DLR, z, 0, 0) - (-(3.0 - 4.0) / (4.0 - 2.0))) < 1e-6);
    assert_true(fabs(objective_at(SAT__OBJ_DLR, z, 2, 0) - (-(4.0 - 3.0) / (4.0 - 2.0))) < 1e-6);
    /* targeted DLR: -(z_y - z_t) / (pi1 - (pi3 + pi4)/2) */
    assert_true(fabs(objective_at(SAT__OBJ_DLR_T, z, 0, 3) - (-(3.0 - 0.0) / (4.0 - 1.5))) < 1e-6);
    /* scale invariance of DLR, the point of the loss */
    float z10[K];
    for (int j = 0; j < K; j++) z10[j] = 10.0f * z[j] + 7.0f;
    assert_true(fabs(objective_at(SAT__OBJ_DLR_T, z10, 0, 3) - objective_at(SAT__OBJ_DLR_T, z, 0, 3)) < 1e-5);
    /* KL(p || q) with p = softmax(ref), q = softmax(z); zero at z = ref + any constant */
    const double lse_r = log(exp(0.5) + exp(-0.7) + exp(1.3) + exp(0.2) + exp(2.2) + exp(-1.0));
    double kl = 0;
    for (int j = 0; j < K; j++) {
        const double lp = ref[j] - lse_r, lq = z[j] - lse;
        kl += exp(lp) * (lp - lq);
    }
    assert_true(fabs(objective_at(SAT__OBJ_KL, z, 0, 0) - kl) < 1e-5);
    float shifted[K];
    for (int j = 0; j < K; j++) shifted[j] = ref[j] + 3.0f;
    assert_true(fabs(objective_at(SAT__OBJ_KL, shifted, 0, 0)) < 1e-6);
}

/* d obj / d logits against central differences for every objective. */
static void test_gradients(void **state) {
    (void)state;
    float z[K] = {0.3f, -1.2f, 2.1f, 0.9f, -0.4f, 1.6f};
    for (int32_t obj = 0; obj < SAT__OBJ_COUNT; obj++) {
        for (int32_t y = 0; y < K; y++) {
            const int32_t t = (y + 2) % K;
            float g[K], v;
            sat__attack_objective(obj, z, &y, &t, ref, 1, K, &v, g);
            for (int j = 0; j < K; j++) {
                const float h = 1e-3f;
                float zp[K], zm[K];
                memcpy(zp, z, sizeof z);
                memcpy(zm, z, sizeof z);
                zp[j] += h;
                zm[j] -= h;
                const double fd = (objective_at(obj, zp, y, t) - objective_at(obj, zm, y, t)) / (2.0 * h);
                if (fabs(fd - g[j]) > 2e-3) fail_msg("objective %d label %d logit %d: analytic %g, numeric %g", obj, y, j, g[j], fd);
            }
        }
    }
}

static double l2(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s);
}

static void test_geometry(void **state) {
    (void)state;
    enum { D = 50 };
    float x[D], xa[D], g[D];
    tu_fill_uniform(x, D, 0.0f, 1.0f, 1);
    tu_fill_uniform(g, D, -1.0f, 1.0f, 2);
    x[0] = 0.0f;
    x[1] = 1.0f;
    g[2] = 0.0f;
    /* Linf: a sign step of eps lands on the projected corner exactly */
    const float eps = 0.1f;
    memcpy(xa, x, sizeof x);
    sat__attack_ascend(SAT_NORM_LINF, eps, g, xa, D);
    sat__attack_project(SAT_NORM_LINF, eps, x, xa, D);
    for (int i = 0; i < D; i++) {
        float want = g[i] > 0 ? x[i] + eps : (g[i] < 0 ? x[i] - eps : x[i]);
        want = fminf(fmaxf(want, 0.0f), 1.0f);
        assert_true(fabsf(xa[i] - want) < 1e-7f);
    }
    /* a far point is pulled back to the box-clipped ball */
    for (int i = 0; i < D; i++) xa[i] = x[i] + 3.0f * g[i];
    sat__attack_project(SAT_NORM_LINF, eps, x, xa, D);
    assert_true(tu_max_abs_diff(xa, x, D) <= eps + 1e-7f);
    /* L2: the step has length `step` and the projection scales onto the sphere */
    memcpy(xa, x, sizeof x);
    for (int i = 0; i < D; i++) xa[i] = 0.5f;
    float x5[D];
    memcpy(x5, xa, sizeof xa);
    sat__attack_ascend(SAT_NORM_L2, 0.2f, g, xa, D);
    assert_true(fabs(l2(xa, x5, D) - 0.2) < 1e-6);
    sat__attack_ascend(SAT_NORM_L2, 5.0f, g, xa, D);
    sat__attack_project(SAT_NORM_L2, 0.3f, x5, xa, D);
    assert_true(fabs(l2(xa, x5, D) - 0.3) < 1e-5);
    assert_true(l2(xa, x5, D) <= 0.3);
    /* a zero gradient does not move an L2 iterate */
    float zero[D] = {0};
    memcpy(xa, x5, sizeof x5);
    sat__attack_ascend(SAT_NORM_L2, 0.2f, zero, xa, D);
    assert_true(memcmp(xa, x5, sizeof x5) == 0);
}

static void test_random_start(void **state) {
    (void)state;
    enum { D = 400 };
    float x[D], a[D], b[D], c[D];
    tu_fill_uniform(x, D, 0.0f, 1.0f, 3);
    const float eps = 0.05f;
    sat__attack_random_start(SAT_NORM_LINF, eps, 9, 0, 17, x, a, D);
    sat__attack_random_start(SAT_NORM_LINF, eps, 9, 0, 17, x, b, D);
    sat__attack_random_start(SAT_NORM_LINF, eps, 9, 1, 17, x, c, D);
    assert_true(memcmp(a, b, sizeof a) == 0);          /* pure function of its coordinates */
    assert_true(memcmp(a, c, sizeof a) != 0);          /* restarts draw different points */
    assert_true(tu_max_abs_diff(a, x, D) <= eps + 1e-7f);
    /* uniform in the cube: mean offset near 0 and mean |offset| near eps/2 where unclipped */
    double s = 0, sa = 0;
    int cnt = 0;
    for (int i = 0; i < D; i++)
        if (x[i] > eps && x[i] < 1 - eps) {
            s += a[i] - x[i];
            sa += fabs(a[i] - x[i]);
            cnt++;
        }
    assert_true(cnt > 300);
    assert_true(fabs(s / cnt) < 0.1 * eps);
    assert_true(fabs(sa / cnt - eps / 2) < 0.1 * eps);
    for (int i = 0; i < D; i++) x[i] = 0.5f;
    sat__attack_random_start(SAT_NORM_L2, 0.4f, 9, 0, 3, x, a, D);
    /* uniform in the volume of a 400-dimensional ball: almost always near the sphere */
    const double r = l2(a, x, D);
    assert_true(r <= 0.4 + 1e-6 && r > 0.9 * 0.4);
    /* TRADES' start: x + sigma N(0,1), with the same key and indices as the L2 normals */
    const float sigma = 0.01f;
    sat__attack_noise_start(sigma, 9, 0, 3, x, b, D);
    double m = 0, v = 0;
    for (int i = 0; i < D; i++) {
        m += b[i] - x[i];
        v += ((double)b[i] - x[i]) * ((double)b[i] - x[i]);
    }
    m /= D;
    v = v / D - m * m;
    assert_true(fabs(m) < 0.2 * sigma);
    assert_true(fabs(sqrt(v) - sigma) < 0.15 * sigma);
    /* same normals as the L2 start: the directions agree */
    double dot = 0, nb = 0;
    for (int i = 0; i < D; i++) {
        dot += ((double)a[i] - x[i]) * ((double)b[i] - x[i]);
        nb += ((double)b[i] - x[i]) * ((double)b[i] - x[i]);
    }
    assert_true(dot / (r * sqrt(nb)) > 0.999);
    sat__attack_noise_start(sigma, 9, 1, 3, x, c, D);
    assert_true(memcmp(b, c, sizeof b) != 0);
}

static void test_apgd_schedule(void **state) {
    (void)state;
    int32_t it[16];
    const int32_t want[] = {22, 41, 57, 70, 80, 87, 93, 99};
    assert_int_equal(sat__apgd_checkpoints(100, it, 16), 8);
    for (int i = 0; i < 8; i++) assert_int_equal(it[i], want[i]);
    /* short runs: every interval is at least one iteration */
    assert_int_equal(sat__apgd_checkpoints(1, it, 16), 1);
    assert_int_equal(it[0], 1);
    assert_int_equal(sat__apgd_checkpoints(10, it, 16), 9); /* 2, 3, ..., 10 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),  cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_geometry),      cmocka_unit_test(test_random_start),
        cmocka_unit_test(test_apgd_schedule),
    };
    return tu_run_group("test_attack_loss", tests, sizeof tests / sizeof tests[0]);
}
