/* test_activations.c - every activation against closed forms evaluated in long double
 * (wide enough that exp(1e4) is finite), derivatives against central differences of those
 * closed forms, SmoothReLU's parameter gradient by differences in the parameter, and
 * finiteness out to |x| = 1e30. */
#include "testutil.h"

#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

typedef long double ld;

static ld ref_f(int32_t act, ld a, ld x) {
    switch (act) {
    case SAT_ACT_RELU: return x > 0 ? x : 0;
    case SAT_ACT_SOFTPLUS: return log1pl(expl(x));
    /* (1/a) log(1+exp(a x)), rewritten for x > 0 so exp(a x) stays representable */
    case SAT_ACT_PSOFTPLUS: return x > 0 ? x + log1pl(expl(-a * x)) / a : log1pl(expl(a * x)) / a;
    case SAT_ACT_SILU: return x / (1 + expl(-a * x));
    case SAT_ACT_GELU: return 0.5L * x * erfcl(-x / sqrtl(2.0L));
    case SAT_ACT_GELU_TANH: {
        ld u = 0.7978845608L * (x + 0.044715L * x * x * x);
        return 0.5L * x * (1 + tanhl(u));
    }
    case SAT_ACT_ELU: return x > 0 ? x : a * (expl(x) - 1);
    case SAT_ACT_CELU: return (x > 0 ? x : 0) + fminl(0, a * (expl(x / a) - 1));
    case SAT_ACT_SMOOTHRELU: return x >= 0 ? x - log1pl(a * x) / a : 0;
    default: return NAN;
    }
}

static const ld points[] = {-1e4L, -50, -1, -1e-3L, 0, 1e-3L, 1, 50, 1e4L, -3.7L, 0.42L, 2.5L};
#define NPOINTS ((int)(sizeof points / sizeof points[0]))

typedef struct {
    int32_t act;
    float param;
} act_case;

static const act_case cases[] = {
    {SAT_ACT_RELU, 0}, {SAT_ACT_SOFTPLUS, 0}, {SAT_ACT_PSOFTPLUS, 10}, {SAT_ACT_PSOFTPLUS, 0.5f},
    {SAT_ACT_SILU, 1}, {SAT_ACT_SILU, 2.5f}, {SAT_ACT_GELU, 0}, {SAT_ACT_GELU_TANH, 0},
    {SAT_ACT_ELU, 1}, {SAT_ACT_ELU, 0.5f}, {SAT_ACT_CELU, 1}, {SAT_ACT_CELU, 2},
    {SAT_ACT_SMOOTHRELU, 400}, {SAT_ACT_SMOOTHRELU, 1},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Points where the derivative jumps (or, for SmoothReLU, where f is only C^1). */
static int is_kink(int32_t act, ld x) {
    return x == 0 && (act == SAT_ACT_RELU || act == SAT_ACT_ELU || act == SAT_ACT_CELU ||
                      act == SAT_ACT_SMOOTHRELU);
}

static void test_forward_closed_forms(void **state) {
    (void)state;
    for (int c = 0; c < NCASES; c++) {
        float x[NPOINTS], y[NPOINTS];
        for (int i = 0; i < NPOINTS; i++) x[i] = (float)points[i];
        sat__act_forward(cases[c].act, cases[c].param, x, y, NPOINTS);
        for (int i = 0; i < NPOINTS; i++) {
            ld want = ref_f(cases[c].act, cases[c].param, x[i]);
            if (!isfinite(y[i]) || !(fabsl(y[i] - want) <= 2e-6L * fabsl(want) + 1e-30L))
                fail_msg("act %d (param %g) f(%g) = %.9g, want %.9Lg", cases[c].act,
                         cases[c].param, x[i], y[i], want);
        }
    }
}

static void test_backward_finite_differences(void **state) {
    (void)state;
    for (int c = 0; c < NCASES; c++) {
        const int32_t act = cases[c].act;
        const ld a = cases[c].param;
        float x[NPOINTS], dy[NPOINTS], dx[NPOINTS];
        for (int i = 0; i < NPOINTS; i++) {
            x[i] = (float)points[i];
            dy[i] = (i % 2) ? 1.0f : -0.75f;
        }
        sat__act_backward(act, cases[c].param, x, dy, dx, NPOINTS);
        for (int i = 0; i < NPOINTS; i++) {
            if (!isfinite(dx[i])) fail_msg("act %d: f'(%g) not finite", act, x[i]);
            if (is_kink(act, x[i])) continue;
            ld xi = x[i], h = 1e-7L * fmaxl(1, fabsl(xi));
            ld fd = (ref_f(act, a, xi + h) - ref_f(act, a, xi - h)) / (2 * h) * dy[i];
            if (!(fabsl(dx[i] - fd) <= 1e-5L * fabsl(fd) + 1e-6L))
                fail_msg("act %d (param %g) f'(%g) * %g = %.9g, differences give %.9Lg", act,
                         cases[c].param, x[i], dy[i], dx[i], fd);
        }
    }
}

/* The conventions at the kinks: the right derivative for x > 0 branches only. */
static void test_backward_at_zero(void **state) {
    (void)state;
    const float x = 0.0f, dy = 1.0f;
    float dx;
    sat__act_backward(SAT_ACT_RELU, 0, &x, &dy, &dx, 1);
    assert_float_equal(dx, 0.0f, 0.0f);
    sat__act_backward(SAT_ACT_ELU, 0.5f, &x, &dy, &dx, 1);
    assert_float_equal(dx, 0.5f, 1e-7f);
    sat__act_backward(SAT_ACT_CELU, 2.0f, &x, &dy, &dx, 1);
    assert_float_equal(dx, 1.0f, 1e-7f);
    sat__act_backward(SAT_ACT_SMOOTHRELU, 400.0f, &x, &dy, &dx, 1);
    assert_float_equal(dx, 0.0f, 0.0f);
}

/* Far out every activation is x or a constant and its derivative 1 or 0. */
static void test_extremes_stay_finite(void **state) {
    (void)state;
    const float xs[] = {1e30f, -1e30f, 3e38f, -3e38f};
    const float dys[] = {1, 1, 1, 1};
    for (int c = 0; c < NCASES; c++) {
        const int32_t act = cases[c].act;
        const float a = cases[c].param;
        /* SmoothReLU and parametric softplus scale x by a; keep a x finite. */
        const int n = (act == SAT_ACT_PSOFTPLUS || act == SAT_ACT_SILU) && a > 1 ? 2 : 4;
        float y[4], dx[4];
        sat__act_forward(act, a, xs, y, n);
        sat__act_backward(act, a, xs, dys, dx, n);
        for (int i = 0; i < n; i++) {
            if (!isfinite(y[i]) || !isfinite(dx[i]))
                fail_msg("act %d (param %g) at %g: f %g f' %g", act, a, xs[i], y[i], dx[i]);
            if (xs[i] > 0) {
                assert_true(fabsf(y[i] - xs[i]) <= 1e-6f * xs[i]);
                assert_float_equal(dx[i], 1.0f, 1e-6f);
            } else {
                float lim = (act == SAT_ACT_ELU || act == SAT_ACT_CELU) ? -a : 0.0f;
                assert_float_equal(y[i], lim, 1e-6f);
                assert_float_equal(dx[i], 0.0f, 1e-6f);
            }
        }
        double pg = sat__act_param_grad(act, a, xs, dys, n);
        assert_true(isfinite(pg));
    }
}

static void test_smoothrelu_param_grad(void **state) {
    (void)state;
    const float as[] = {400.0f, 1.0f, 20.0f};
    enum { N = 64 };
    float x[N], dy[N];
    tu_fill_uniform(x, N, -0.5f, 1.5f, 7);
    tu_fill_uniform(dy, N, -1.0f, 1.0f, 8);
    x[0] = 0.0f;
    x[1] = 1e-6f;
    x[2] = 1e-3f;
    x[3] = 50.0f;
    for (int t = 0; t < 3; t++) {
        const ld a = as[t], h = 1e-6L * a;
        ld fp = 0, fm = 0;
        for (int i = 0; i < N; i++) {
            fp += dy[i] * ref_f(SAT_ACT_SMOOTHRELU, a + h, x[i]);
            fm += dy[i] * ref_f(SAT_ACT_SMOOTHRELU, a - h, x[i]);
        }
        ld fd = (fp - fm) / (2 * h);
        double got = sat__act_param_grad(SAT_ACT_SMOOTHRELU, as[t], x, dy, N);
        if (!(fabsl(got - fd) <= 1e-6L * fabsl(fd) + 1e-12L))
            fail_msg("a=%g: param grad %.12g, differences %.12Lg", as[t], got, fd);
    }
    /* Activations without a learnable parameter report zero. */
    for (int c = 0; c < NCASES; c++)
        if (cases[c].act != SAT_ACT_SMOOTHRELU)
            assert_true(sat__act_param_grad(cases[c].act, cases[c].param, x, dy, N) == 0.0);
}

/* The executor may run activations in place; long arrays cover any vectorised tails. */
static void test_in_place_and_long(void **state) {
    (void)state;
    enum { N = 1003 };
    static float x[N], y[N], d[N], dx[N], dy[N];
    for (int c = 0; c < NCASES; c++) {
        tu_fill_uniform(x, N, -6.0f, 6.0f, 11 + (uint64_t)c);
        tu_fill_uniform(dy, N, -1.0f, 1.0f, 12);
        sat__act_forward(cases[c].act, cases[c].param, x, y, N);
        sat__act_backward(cases[c].act, cases[c].param, x, dy, dx, N);
        for (int i = 0; i < N; i++) d[i] = x[i];
        sat__act_forward(cases[c].act, cases[c].param, d, d, N);
        assert_true(tu_max_abs_diff(d, y, N) == 0.0f);
        for (int i = 0; i < N; i++) {
            ld want = ref_f(cases[c].act, cases[c].param, x[i]);
            if (!(fabsl(y[i] - want) <= 2e-6L * fabsl(want) + 1e-6L))
                fail_msg("act %d f(%g) = %.9g want %.9Lg", cases[c].act, x[i], y[i], want);
        }
        for (int i = 0; i < N; i++) d[i] = dy[i];
        sat__act_backward(cases[c].act, cases[c].param, x, d, d, N);
        assert_true(tu_max_abs_diff(d, dx, N) == 0.0f);
    }
}

/* SiLU's loops exist for AVX-512, AVX2 and the baseline (kernels.h); a CPU runs the widest
 * it has. Every level this CPU can run must give the baseline's bits (any NaN counting as
 * one value), so a model computes the same on a machine without AVX-512. */
/* Equal bits, or both NaN (a NaN's sign and payload depend on the instructions). */
static int same_bits(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }

static void test_simd_levels_agree(void **state) {
    (void)state;
    enum { N = 1003 };
    static float x[N], dy[N], y[3][N], dx[3][N];
    tu_fill_uniform(x, N, -90.0f, 90.0f, 21);
    tu_fill_uniform(dy, N, -1.0f, 1.0f, 22);
    const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 88.0f, -88.0f, 87.4f, -87.4f, 200.5f, -200.5f,
                              3e38f, -3e38f, INFINITY, -INFINITY, NAN, 1e-7f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) x[7 * i + 3] = specials[i];
    const float params[] = {1.0f, 2.5f};
    const int top = sat__simd_cpu_level();
    print_message("activation loops this CPU runs: baseline up to %s\n", sat__simd_name(top));
    for (int p = 0; p < 2; p++) {
        for (int level = SAT_SIMD_BASE; level <= top; level++) {
            sat__simd_select(level);
            assert_int_equal(sat__simd_level(), level);
            sat__act_forward(SAT_ACT_SILU, params[p], x, y[level], N);
            sat__act_backward(SAT_ACT_SILU, params[p], x, dy, dx[level], N);
            if (level == SAT_SIMD_BASE) continue;
            for (int i = 0; i < N; i++)
                if (!same_bits(y[level][i], y[0][i]) || !same_bits(dx[level][i], dx[0][i]))
                    fail_msg("SiLU(%g; b = %g) on %s loops: f %.9g, f' dy %.9g; baseline %.9g, %.9g", x[i],
                             params[p], sat__simd_name(level), y[level][i], dx[level][i], y[0][i], dx[0][i]);
        }
    }
    sat__simd_select(SAT_SIMD_AVX512);
    assert_int_equal(sat__simd_level(), top);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_closed_forms),
        cmocka_unit_test(test_backward_finite_differences),
        cmocka_unit_test(test_backward_at_zero),
        cmocka_unit_test(test_extremes_stay_finite),
        cmocka_unit_test(test_smoothrelu_param_grad),
        cmocka_unit_test(test_in_place_and_long),
        cmocka_unit_test(test_simd_levels_agree),
    };
    return tu_run_group("test_activations", tests, sizeof tests / sizeof tests[0]);
}
