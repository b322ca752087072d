/* toy_task.h - a model trained in the test itself, for the attack tests that need a model
 * which really classifies: plain SGD on a synthetic 4-class task of 4x4 images. Included by
 * the test programs that use it (static functions: each test is its own program). */
#ifndef SAT_TOY_TASK_H
#define SAT_TOY_TASK_H

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define SZ 16
#define K 4
#define NTRAIN 256
#define NTEST 64
#define BATCH 32

/* Class c: a fixed prototype in [0.2, 0.8]^16 plus uniform noise of +-0.15, clipped; with
 * up > 1 each pixel becomes an up x up block (a (4 up) x (4 up) image). */
static void make_data_scaled(float *x, int32_t *y, int64_t n, uint64_t seed, int up) {
    float proto[K * SZ], noise[SZ];
    const int side = 4 * up;
    tu_fill_uniform(proto, K * SZ, 0.2f, 0.8f, 99);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)((i * 7 + seed) % K);
        tu_fill_uniform(noise, SZ, -0.15f, 0.15f, seed * 100000 + (uint64_t)i);
        for (int r = 0; r < side; r++)
            for (int c = 0; c < side; c++) {
                const int j = (r / up) * 4 + c / up;
                const float v = proto[y[i] * SZ + j] + noise[j];
                x[(i * side + r) * side + c] = v < 0 ? 0 : (v > 1 ? 1 : v);
            }
    }
}

static void make_data(float *x, int32_t *y, int64_t n, uint64_t seed) { make_data_scaled(x, y, n, seed, 1); }

/* An MLP (two hidden SiLU layers of 32) trained by 300 SGD steps on the task at scale up. */
static sat_model *train_model_scaled(sat_context *ctx, int up) {
    char spec[96];
    snprintf(spec, sizeof spec, "input 1 %d %d\ndense 32\nact\ndense 32\nact\ndense 4\n", 4 * up, 4 * up);
    sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, BATCH);
    const int64_t d = (int64_t)SZ * up * up;
    float *x = tu_alloc(sizeof(float) * (size_t)(NTRAIN * d));
    int32_t y[NTRAIN];
    make_data_scaled(x, y, NTRAIN, 1, up);
    float *p = sat_model_params(m);
    const float *g = sat_model_grads(m);
    const int64_t np = sat_model_param_count(m);
    for (int step = 0; step < 300; step++) {
        const int64_t b = (step * BATCH) % NTRAIN;
        TU_CHECK(sat_model_train_backward(m, x + b * d, y + b, BATCH, 0.0f, NULL, NULL));
        for (int64_t i = 0; i < np; i++) p[i] -= 0.1f * g[i];
    }
    tu_free(x);
    return m;
}

static sat_model *train_model(sat_context *ctx) { return train_model_scaled(ctx, 1); }

/* How many of the n examples (d values each) the model classifies as their label. */
static int64_t count_correct_d(sat_model *m, const float *x, const int32_t *y, int64_t n, int64_t d) {
    float z[BATCH * K];
    int64_t correct = 0;
    for (int64_t b = 0; b < n; b += BATCH) {
        const int64_t nb = n - b < BATCH ? n - b : BATCH;
        TU_CHECK(sat_model_forward(m, x + b * d, nb, z));
        for (int64_t i = 0; i < nb; i++) {
            int best = 0;
            for (int c = 1; c < K; c++)
                if (z[i * K + c] > z[i * K + best]) best = c;
            correct += best == y[b + i];
        }
    }
    return correct;
}

static int64_t count_correct(sat_model *m, const float *x, const int32_t *y, int64_t n) {
    return count_correct_d(m, x, y, n, SZ);
}

#endif
