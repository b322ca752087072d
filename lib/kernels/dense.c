/* dense.c - fully connected layer, W stored [out, in] as in PyTorch. */
#include "kernels/kernels.h"

void sat__dense_forward(const sat_context *ctx, const float *x, const float *w, const float *b,
                        float *y, int64_t n, int64_t in, int64_t out) {
    if (n <= 0 || out <= 0) return;
    /* Seed y with the bias so the GEMM accumulates onto it (beta = 1): one pass over y. */
    float beta = 0.0f;
    if (b) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < out; j++) y[i * out + j] = b[j];
        beta = 1.0f;
    }
    sat__gemm(ctx, 0, 1, n, out, in, 1.0f, x, in, w, in, beta, y, out);
}

void sat__dense_backward(const sat_context *ctx, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db, int64_t n, int64_t in, int64_t out) {
    if (dx) sat__gemm(ctx, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
    if (dw) sat__gemm(ctx, 1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    if (db) {
        for (int64_t j = 0; j < out; j++) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) s += dy[i * out + j];
            db[j] = (float)s;
        }
    }
}
