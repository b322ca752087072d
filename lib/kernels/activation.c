/* activation.c - the activations of sat.h: forward, derivative and parameter gradient.
 * Every form stays finite for any finite input (|x| up to FLT_MAX for a moderate param):
 * exponentials only ever see non-positive arguments. */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

/* Logistic sigmoid from e = exp(-|z|) <= 1, so no overflow in either direction. */
static inline float sig_from(float z, float e) {
    float r = 1.0f / (1.0f + e);
    return z >= 0.0f ? r : e * r;
}

static inline float softplus_f(float z) {
    return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z)));
}

/* exp(t) for t <= 0 in a branch-free form GCC vectorises (libm's expf is a call, which
 * keeps the loops scalar): t = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial
 * to degree 7 (relative error below 1e-8, under 1.5 ulp after rounding), times 2^n built
 * in the exponent bits. Below -87.3 (2^n would leave the normal range) it returns 0, where
 * expf returns at most 1e-38. No contraction under ISO C, so vector and scalar iterations
 * give the same bits for the same input. */
static inline float exp_nonpos(float t) {
    const float tc = t < -87.3f ? -87.3f : t;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float kf = tc * 1.44269504088896341f + shifter;
    int32_t kbits;
    memcpy(&kbits, &kf, sizeof kbits);
    const float nf = kf - shifter;
    const float r = (tc - nf * 0.693359375f) - nf * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* In unsigned arithmetic: for a NaN t, kbits is negative and a signed shift would be
     * undefined (the result is NaN anyway, through p). */
    const uint32_t ebits = ((uint32_t)kbits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &ebits, sizeof scale);
    return t < -87.3f ? 0.0f : p * scale;
}

/* Beyond |z| = 200, exp(-|z|) is 0 in float, so clamping is exact and keeps z * s(1-s)
 * from becoming inf * 0. */
static inline float clamp200(float z) { return fminf(fmaxf(z, -200.0f), 200.0f); }

#define GELU_TANH_C 0.7978845608f
#define GELU_TANH_K 0.044715f

/* x Phi(x) with erfc on the negative side keeps the relative accuracy of the tail. */
static inline float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static inline float gelu_d(float x) {
    /* Phi(x) + x phi(x); x*x overflowing to inf gives exp(-inf) = 0, never NaN. */
    float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
    return 0.5f * erfcf(-x * 0.70710678118654752f) + x * pdf;
}

/* 0.5 x (1 + tanh u) == x sigmoid(2u): no cancellation for negative u. Beyond |x| = 30,
 * u > 900 and the sigmoid is exactly 0 or 1, so clamping x there is exact. */
static inline float gelu_tanh_f(float x) {
    float xc = fminf(fmaxf(x, -30.0f), 30.0f);
    float z = 2.0f * GELU_TANH_C * (xc + GELU_TANH_K * xc * xc * xc);
    return x * sig_from(z, expf(-fabsf(z)));
}
static inline float gelu_tanh_d(float x) {
    float xc = fminf(fmaxf(x, -30.0f), 30.0f);
    float z = 2.0f * GELU_TANH_C * (xc + GELU_TANH_K * xc * xc * xc);
    float e = expf(-fabsf(z));
    float s = sig_from(z, e);
    float ss = e / ((1.0f + e) * (1.0f + e)); /* s (1 - s) without cancellation */
    float du = GELU_TANH_C * (1.0f + 3.0f * GELU_TANH_K * xc * xc);
    return s + 2.0f * xc * ss * du;
}

/* SmoothReLU in double: z = a x cannot overflow, and z - log1p(z) for small z uses its
 * series instead of cancelling. g(z) = z - log1p(z), so f = g(a x) / a. */
static inline double srelu_g(double z) {
    return z < 1e-3 ? z * z * (0.5 - z * (1.0 / 3.0 - z * 0.25)) : z - log1p(z);
}
/* h(z) = log1p(z) - z/(1+z), so df/da = h(a x) / a^2. */
static inline double srelu_h(double z) {
    return z < 1e-3 ? z * z * (0.5 - z * (2.0 / 3.0 - z * 0.75)) : log1p(z) - z / (1.0 + z);
}

/* SiLU, the paper's best activation, is on every step's critical path: its loops are
 * compiled for AVX-512, AVX2 and the baseline, and the widest the CPU runs is used (or the
 * level a test or benchmark selected, below). The bodies are written once and inlined into
 * each variant; without contraction they give the same bits at every level. */
#if defined(__x86_64__) && defined(__GNUC__)
#define SAT_SIMD_VARIANTS 1
#endif

/* Highest level in use: a test or benchmark may lower it to run another CPU's loops. */
static int simd_cap = SAT_SIMD_AVX512;

int sat__simd_cpu_level(void) {
#ifdef SAT_SIMD_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return SAT_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2")) return SAT_SIMD_AVX2;
#endif
    return SAT_SIMD_BASE;
}

void sat__simd_select(int level) { simd_cap = level < SAT_SIMD_BASE ? SAT_SIMD_BASE : level; }

int sat__simd_level(void) {
    const int cpu = sat__simd_cpu_level();
    return simd_cap < cpu ? simd_cap : cpu;
}

const char *sat__simd_name(int level) {
    return level >= SAT_SIMD_AVX512 ? "avx512" : level == SAT_SIMD_AVX2 ? "avx2" : "baseline";
}

static inline __attribute__((always_inline)) void silu_forward_body(float b, const float *x, float *y,
                                                                    int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float z = b * x[i];
        const float e = exp_nonpos(-fabsf(z));
        const float r = 1.0f / (1.0f + e);
        y[i] = x[i] * (z >= 0.0f ? r : e * r);
    }
}

/* d/dx x s(bx) = s + bx s (1 - s), s (1 - s) = e / (1 + e)^2 without cancellation. */
static inline __attribute__((always_inline)) void silu_backward_body(float b, const float *x,
                                                                     const float *dy, float *dx,
                                                                     int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float zb = b * x[i];
        /* clamp200 without fminf/fmaxf calls, which would keep the loop scalar */
        const float z = zb < -200.0f ? -200.0f : (zb > 200.0f ? 200.0f : zb);
        const float e = exp_nonpos(-fabsf(z));
        const float r = 1.0f / (1.0f + e);
        const float s = z >= 0.0f ? r : e * r;
        dx[i] = dy[i] * (s + z * (e * r * r));
    }
}

#ifdef SAT_SIMD_VARIANTS
__attribute__((target("avx512f"))) static void silu_forward_avx512(float b, const float *x, float *y,
                                                                   int64_t n) {
    silu_forward_body(b, x, y, n);
}
__attribute__((target("avx2"))) static void silu_forward_avx2(float b, const float *x, float *y, int64_t n) {
    silu_forward_body(b, x, y, n);
}
__attribute__((target("avx512f"))) static void silu_backward_avx512(float b, const float *x, const float *dy,
                                                                    float *dx, int64_t n) {
    silu_backward_body(b, x, dy, dx, n);
}
__attribute__((target("avx2"))) static void silu_backward_avx2(float b, const float *x, const float *dy,
                                                                 float *dx, int64_t n) {
    silu_backward_body(b, x, dy, dx, n);
}
#endif

static void silu_forward(float b, const float *x, float *y, int64_t n) {
#ifdef SAT_SIMD_VARIANTS
    const int level = sat__simd_level();
    if (level == SAT_SIMD_AVX512) {
        silu_forward_avx512(b, x, y, n);
        return;
    }
    if (level == SAT_SIMD_AVX2) {
        silu_forward_avx2(b, x, y, n);
        return;
    }
#endif
    silu_forward_body(b, x, y, n);
}

static void silu_backward(float b, const float *x, const float *dy, float *dx, int64_t n) {
#ifdef SAT_SIMD_VARIANTS
    const int level = sat__simd_level();
    if (level == SAT_SIMD_AVX512) {
        silu_backward_avx512(b, x, dy, dx, n);
        return;
    }
    if (level == SAT_SIMD_AVX2) {
        silu_backward_avx2(b, x, dy, dx, n);
        return;
    }
#endif
    silu_backward_body(b, x, dy, dx, n);
}

void sat__act_forward(int32_t act, float param, const float *x, float *y, int64_t n) {
    switch (act) {
    case SAT_ACT_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case SAT_ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) y[i] = softplus_f(x[i]);
        break;
    case SAT_ACT_PSOFTPLUS: {
        const float a = param, ia = 1.0f / param;
        for (int64_t i = 0; i < n; i++) y[i] = ia * softplus_f(a * x[i]);
        break;
    }
    case SAT_ACT_SILU:
        silu_forward(param, x, y, n);
        break;
    case SAT_ACT_GELU:
        for (int64_t i = 0; i < n; i++) y[i] = gelu_f(x[i]);
        break;
    case SAT_ACT_GELU_TANH:
        for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh_f(x[i]);
        break;
    case SAT_ACT_ELU: {
        const float a = param;
        for (int64_t i = 0; i < n; i++) {
            float em = a * expm1f(fminf(x[i], 0.0f));
            y[i] = x[i] > 0.0f ? x[i] : em;
        }
        break;
    }
    case SAT_ACT_CELU: {
        const float a = param, ia = 1.0f / param;
        for (int64_t i = 0; i < n; i++) {
            float em = a * expm1f(fminf(x[i], 0.0f) * ia);
            y[i] = x[i] > 0.0f ? x[i] : em;
        }
        break;
    }
    case SAT_ACT_SMOOTHRELU: {
        const double a = param;
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] >= 0.0f ? (float)(srelu_g(a * x[i]) / a) : 0.0f;
        break;
    }
    default: /* unknown kinds are rejected upstream; identity keeps this total */
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
        break;
    }
}

void sat__act_backward(int32_t act, float param, const float *x, const float *dy, float *dx,
                       int64_t n) {
    switch (act) {
    case SAT_ACT_RELU:
        for (int64_t i = 0; i < n; i++) {
            const float d = dy[i]; /* unconditional load lets the select vectorise */
            dx[i] = x[i] > 0.0f ? d : 0.0f;
        }
        break;
    case SAT_ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) {
            float z = x[i];
            dx[i] = dy[i] * sig_from(z, expf(-fabsf(z)));
        }
        break;
    case SAT_ACT_PSOFTPLUS: {
        const float a = param;
        for (int64_t i = 0; i < n; i++) {
            float z = a * x[i];
            dx[i] = dy[i] * sig_from(z, expf(-fabsf(z)));
        }
        break;
    }
    case SAT_ACT_SILU:
        silu_backward(param, x, dy, dx, n);
        break;
    case SAT_ACT_GELU:
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_d(x[i]);
        break;
    case SAT_ACT_GELU_TANH:
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_tanh_d(x[i]);
        break;
    case SAT_ACT_ELU: {
        const float a = param;
        for (int64_t i = 0; i < n; i++) {
            float d = a * expf(fminf(x[i], 0.0f));
            dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : d);
        }
        break;
    }
    case SAT_ACT_CELU: {
        const float ia = 1.0f / param;
        for (int64_t i = 0; i < n; i++) {
            float d = expf(fminf(x[i], 0.0f) * ia);
            dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : d);
        }
        break;
    }
    case SAT_ACT_SMOOTHRELU: {
        /* f' = a x / (1 + a x) = 1 - 1/(1 + a x) */
        const double a = param;
        for (int64_t i = 0; i < n; i++) {
            double z = a * x[i];
            dx[i] = x[i] >= 0.0f ? (float)(dy[i] * (z / (1.0 + z))) : 0.0f;
        }
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i];
        break;
    }
}

double sat__act_param_grad(int32_t act, float param, const float *x, const float *dy, int64_t n) {
    if (act != SAT_ACT_SMOOTHRELU) return 0.0;
    const double a = param, ia2 = 1.0 / ((double)param * param);
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (x[i] >= 0.0f) acc += (double)dy[i] * srelu_h(a * x[i]);
    return acc * ia2;
}

void sat__sigmoid_forward(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = sig_from(x[i], expf(-fabsf(x[i])));
}

void sat__sigmoid_backward(const float *x, const float *dy, float *dx, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float s = sig_from(x[i], expf(-fabsf(x[i])));
        dx[i] = dy[i] * s * (1.0f - s);
    }
}
