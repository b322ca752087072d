/* elementwise.c - addition, axpy, channel-wise multiplication, dropout and the model's
 * input normalisation. */
#include "kernels/kernels.h"

void sat__add(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void sat__axpy(float alpha, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void sat__mul_channels_forward(const float *x, const float *g, float *y, int64_t n, int64_t c, int64_t hw) {
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float gv = g[pl];
        for (int64_t j = 0; j < hw; j++) y[pl * hw + j] = x[pl * hw + j] * gv;
    }
}

void sat__mul_channels_backward(const float *x, const float *g, const float *dy, float *dx, float *dg, int64_t n,
                                int64_t c, int64_t hw) {
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float *dp = dy + pl * hw;
        if (dx)
            for (int64_t j = 0; j < hw; j++) dx[pl * hw + j] = dp[j] * g[pl];
        if (dg) {
            float acc = 0.0f;
            for (int64_t j = 0; j < hw; j++) acc += dp[j] * x[pl * hw + j];
            dg[pl] = acc;
        }
    }
}

static float dropout_factor(uint64_t key, uint64_t stream, float p, uint64_t index) {
    return sat__rng_uniform(key, stream, index) >= p ? 1.0f / (1.0f - p) : 0.0f;
}

void sat__dropout_forward(uint64_t key, uint64_t stream, float p, const float *x, float *y, int64_t e0, int64_t n,
                          int64_t size, int64_t group) {
    for (int64_t i = 0; i < n * size; i++)
        y[i] = x[i] * dropout_factor(key, stream, p, (uint64_t)((e0 * size + i) / group));
}

void sat__dropout_backward(uint64_t key, uint64_t stream, float p, const float *dy, float *dx, int64_t e0,
                           int64_t n, int64_t size, int64_t group) {
    for (int64_t i = 0; i < n * size; i++)
        dx[i] = dy[i] * dropout_factor(key, stream, p, (uint64_t)((e0 * size + i) / group));
}

void sat__normalize_forward(const float *x, const float *mean, const float *std, float *y,
                            int64_t n, int64_t c, int64_t hw) {
    for (int64_t i = 0; i < n; i++) {
        for (int64_t ch = 0; ch < c; ch++) {
            const float m = mean[ch], sd = std[ch];
            const float *xp = x + (i * c + ch) * hw;
            float *yp = y + (i * c + ch) * hw;
            for (int64_t j = 0; j < hw; j++) yp[j] = (xp[j] - m) / sd;
        }
    }
}

void sat__normalize_backward(const float *dy, const float *std, float *dx, int64_t n, int64_t c,
                             int64_t hw) {
    for (int64_t i = 0; i < n; i++) {
        for (int64_t ch = 0; ch < c; ch++) {
            const float sd = std[ch];
            const float *dp = dy + (i * c + ch) * hw;
            float *gp = dx + (i * c + ch) * hw;
            for (int64_t j = 0; j < hw; j++) gp[j] = dp[j] / sd;
        }
    }
}
