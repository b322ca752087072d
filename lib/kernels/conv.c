/* conv.c - 2-D convolution as im2col + GEMM, one example at a time so the scratch is one
 * column matrix [c_in*k*k, h_out*w_out] whatever the batch. 1x1 stride-1 unpadded
 * convolutions use the input directly as the column matrix. */
#include "kernels/kernels.h"

#include <string.h>

int sat__conv_geom_init(sat_conv_geom *g) {
    if (!g || g->c_in < 1 || g->h_in < 1 || g->w_in < 1 || g->c_out < 1 || g->k < 1 ||
        g->stride < 1 || g->pad < 0)
        return 0;
    int64_t hn = (int64_t)g->h_in + 2 * (int64_t)g->pad - g->k;
    int64_t wn = (int64_t)g->w_in + 2 * (int64_t)g->pad - g->k;
    if (hn < 0 || wn < 0) return 0;
    g->h_out = (int32_t)(hn / g->stride + 1);
    g->w_out = (int32_t)(wn / g->stride + 1);
    return 1;
}

static int is_pointwise(const sat_conv_geom *g) {
    return g->k == 1 && g->stride == 1 && g->pad == 0;
}

int64_t sat__conv_workspace(const sat_conv_geom *g, int64_t n) {
    (void)n; /* examples are processed one at a time */
    if (is_pointwise(g)) return 0;
    return (int64_t)g->c_in * g->k * g->k * g->h_out * g->w_out;
}

/* Output columns ow whose input column ow*s - pad + kj lies inside [0, w): [lo, hi). */
static void valid_range(int64_t off, int64_t s, int64_t w, int64_t wo, int64_t *lo,
                        int64_t *hi) {
    /* need 0 <= ow*s + off < w */
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = (w - off + s - 1) / s; /* smallest ow with ow*s + off >= w */
    if (w - off <= 0) h = 0;
    if (h > wo) h = wo;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

typedef struct {
    const sat_conv_geom *g;
    const float *img; /* im2col: input image; col2im: column matrix */
    float *out;       /* im2col: column matrix; col2im: image */
} conv_job;

/* im2col over a range of input channels (disjoint rows of the column matrix). */
static void im2col_range(void *arg, int64_t c0, int64_t c1) {
    const conv_job *job = arg;
    const sat_conv_geom *g = job->g;
    const int64_t k = g->k, s = g->stride, pad = g->pad, h = g->h_in, w = g->w_in;
    const int64_t ho = g->h_out, wo = g->w_out, p = ho * wo;
    for (int64_t c = c0; c < c1; c++) {
        const float *xc = job->img + c * h * w;
        for (int64_t ki = 0; ki < k; ki++) {
            for (int64_t kj = 0; kj < k; kj++) {
                float *row = job->out + ((c * k + ki) * k + kj) * p;
                int64_t lo, hi;
                valid_range(kj - pad, s, w, wo, &lo, &hi);
                for (int64_t oh = 0; oh < ho; oh++) {
                    float *r = row + oh * wo;
                    int64_t ih = oh * s - pad + ki;
                    if (ih < 0 || ih >= h) {
                        memset(r, 0, (size_t)wo * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + ih * w;
                    const int64_t off = kj - pad;
                    for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0.0f;
                    if (s == 1)
                        for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow + off];
                    else
                        for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow * s + off];
                    for (int64_t ow = hi; ow < wo; ow++) r[ow] = 0.0f;
                }
            }
        }
    }
}

/* col2im over a range of channels: each image channel only receives its own rows, so the
 * ranges write disjoint memory and the sums do not depend on the thread count. */
static void col2im_range(void *arg, int64_t c0, int64_t c1) {
    const conv_job *job = arg;
    const sat_conv_geom *g = job->g;
    const int64_t k = g->k, s = g->stride, pad = g->pad, h = g->h_in, w = g->w_in;
    const int64_t ho = g->h_out, wo = g->w_out, p = ho * wo;
    for (int64_t c = c0; c < c1; c++) {
        float *xc = job->out + c * h * w;
        memset(xc, 0, (size_t)(h * w) * sizeof *xc);
        for (int64_t ki = 0; ki < k; ki++) {
            for (int64_t kj = 0; kj < k; kj++) {
                const float *row = job->img + ((c * k + ki) * k + kj) * p;
                int64_t lo, hi;
                valid_range(kj - pad, s, w, wo, &lo, &hi);
                for (int64_t oh = 0; oh < ho; oh++) {
                    int64_t ih = oh * s - pad + ki;
                    if (ih < 0 || ih >= h) continue;
                    const float *r = row + oh * wo;
                    float *xr = xc + ih * w;
                    const int64_t off = kj - pad;
                    if (s == 1)
                        for (int64_t ow = lo; ow < hi; ow++) xr[ow + off] += r[ow];
                    else
                        for (int64_t ow = lo; ow < hi; ow++) xr[ow * s + off] += r[ow];
                }
            }
        }
    }
}

void sat__conv_forward(const sat_context *ctx, const sat_conv_geom *g, const float *x,
                       const float *w, const float *b, float *y, int64_t n, float *ws) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t in_sz = (int64_t)g->c_in * g->h_in * g->w_in, out_sz = g->c_out * p;
    const int pw = is_pointwise(g);
    for (int64_t i = 0; i < n; i++) {
        const float *col = x + i * in_sz;
        if (!pw) {
            conv_job job = {g, x + i * in_sz, ws};
            sat__parallel_for(ctx, g->c_in, im2col_range, &job);
            col = ws;
        }
        float *yi = y + i * out_sz;
        float beta = 0.0f;
        if (b) {
            for (int64_t o = 0; o < g->c_out; o++)
                for (int64_t q = 0; q < p; q++) yi[o * p + q] = b[o];
            beta = 1.0f;
        }
        sat__gemm(ctx, 0, 0, g->c_out, p, kk, 1.0f, w, kk, col, p, beta, yi, p);
    }
}

void sat__conv_backward_data(const sat_context *ctx, const sat_conv_geom *g, const float *dy,
                             const float *w, float *dx, int64_t n, float *ws) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t in_sz = (int64_t)g->c_in * g->h_in * g->w_in, out_sz = g->c_out * p;
    const int pw = is_pointwise(g);
    for (int64_t i = 0; i < n; i++) {
        const float *dyi = dy + i * out_sz;
        if (pw) {
            sat__gemm(ctx, 1, 0, kk, p, g->c_out, 1.0f, w, kk, dyi, p, 0.0f, dx + i * in_sz, p);
            continue;
        }
        sat__gemm(ctx, 1, 0, kk, p, g->c_out, 1.0f, w, kk, dyi, p, 0.0f, ws, p);
        conv_job job = {g, ws, dx + i * in_sz};
        sat__parallel_for(ctx, g->c_in, col2im_range, &job);
    }
}

void sat__conv_backward_weights(const sat_context *ctx, const sat_conv_geom *g, const float *x,
                                const float *dy, float *dw, float *db, int64_t n, float *ws) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t in_sz = (int64_t)g->c_in * g->h_in * g->w_in, out_sz = g->c_out * p;
    const int pw = is_pointwise(g);
    if (n <= 0) {
        memset(dw, 0, (size_t)(g->c_out * kk) * sizeof *dw);
    }
    for (int64_t i = 0; i < n; i++) {
        const float *col = x + i * in_sz;
        if (!pw) {
            conv_job job = {g, x + i * in_sz, ws};
            sat__parallel_for(ctx, g->c_in, im2col_range, &job);
            col = ws;
        }
        /* dW += dY_i col_i^T; the first example overwrites. */
        sat__gemm(ctx, 0, 1, g->c_out, kk, p, 1.0f, dy + i * out_sz, p, col, p,
                  i == 0 ? 0.0f : 1.0f, dw, kk);
    }
    if (db) {
        for (int64_t o = 0; o < g->c_out; o++) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const float *d = dy + i * out_sz + o * p;
                for (int64_t q = 0; q < p; q++) s += d[q];
            }
            db[o] = (float)s;
        }
    }
}
