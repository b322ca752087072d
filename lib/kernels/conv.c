/* conv.c - 2-D convolution as im2col + GEMM. Small images are processed in groups of G
 * examples whose column matrices sit side by side, [c_in*k*k, G*h_out*w_out], so that each
 * GEMM is large enough to run near peak; the GEMM result [c_out, G*P] is then scattered
 * to NCHW. With G = 1, 1x1 stride-1 unpadded convolutions use the input directly as the
 * column matrix and the output is written in place. */
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

/* Columns per GEMM worth aiming for, and a cap on the grouped column matrix (floats) so
 * wide layers do not need a huge workspace. */
#define CONV_TARGET_COLS 2048
#define CONV_MAX_GROUP_FLOATS (1 << 22)

/* Examples per group: a pure function of the geometry and n, shared by the workspace
 * query and the three kernels. */
static int64_t conv_group(const sat_conv_geom *g, int64_t n) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    if (p < 1) return 1; /* geometry not initialised: nothing sensible to group */
    int64_t gr = (CONV_TARGET_COLS + p - 1) / p;
    if (gr > n) gr = n;
    while (gr > 1 && (kk + g->c_out) * gr * p > CONV_MAX_GROUP_FLOATS) gr--;
    return gr < 1 ? 1 : gr;
}

int64_t sat__conv_workspace(const sat_conv_geom *g, int64_t n) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t gr = conv_group(g, n);
    if (gr == 1) return is_pointwise(g) ? 0 : kk * p;
    return (kk + g->c_out) * gr * p; /* column matrix, then the GEMM's [c_out, G*P] */
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
    int64_t ld;       /* row stride of the column matrix */
} conv_job;

/* im2col over a range of input channels (disjoint rows of the column matrix). */
static void im2col_range(void *arg, int64_t c0, int64_t c1) {
    const conv_job *job = arg;
    const sat_conv_geom *g = job->g;
    const int64_t k = g->k, s = g->stride, pad = g->pad, h = g->h_in, w = g->w_in;
    const int64_t ho = g->h_out, wo = g->w_out;
    for (int64_t c = c0; c < c1; c++) {
        const float *xc = job->img + c * h * w;
        for (int64_t ki = 0; ki < k; ki++) {
            for (int64_t kj = 0; kj < k; kj++) {
                float *row = job->out + ((c * k + ki) * k + kj) * job->ld;
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
                        memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof *r);
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
    const int64_t ho = g->h_out, wo = g->w_out;
    for (int64_t c = c0; c < c1; c++) {
        float *xc = job->out + c * h * w;
        memset(xc, 0, (size_t)(h * w) * sizeof *xc);
        for (int64_t ki = 0; ki < k; ki++) {
            for (int64_t kj = 0; kj < k; kj++) {
                const float *row = job->img + ((c * k + ki) * k + kj) * job->ld;
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

/* Work over a whole group of examples in one hand-off to the worker pool: task t is
 * (example t / per, item t % per), and every task writes its own rows or planes, so the
 * results do not depend on the thread count. */
typedef struct group_job {
    const sat_conv_geom *g;
    const float *src;
    float *dst;
    const float *bias;
    int64_t ld, per;
} group_job;

static void group_for(const sat_context *ctx, int64_t tasks, int64_t floats, sat_range_fn fn, group_job *j) {
    if (!ctx || ctx->num_threads <= 1 || floats < 32768)
        fn(j, 0, tasks);
    else
        sat__parallel_for(ctx, tasks, fn, j);
}

/* im2col of a group: task = (example, input channel). */
static void im2col_group_range(void *arg, int64_t t0, int64_t t1) {
    const group_job *gj = arg;
    const sat_conv_geom *g = gj->g;
    const int64_t p = (int64_t)g->h_out * g->w_out, in_sz = (int64_t)g->c_in * g->h_in * g->w_in;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t j = t / g->c_in, c = t % g->c_in;
        conv_job job = {g, gj->src + j * in_sz, gj->dst + j * p, gj->ld};
        im2col_range(&job, c, c + 1);
    }
}

/* col2im of a group: task = (example, input channel); each writes its own image plane. */
static void col2im_group_range(void *arg, int64_t t0, int64_t t1) {
    const group_job *gj = arg;
    const sat_conv_geom *g = gj->g;
    const int64_t p = (int64_t)g->h_out * g->w_out, in_sz = (int64_t)g->c_in * g->h_in * g->w_in;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t j = t / g->c_in, c = t % g->c_in;
        conv_job job = {g, gj->src + j * p, gj->dst + j * in_sz, gj->ld};
        col2im_range(&job, c, c + 1);
    }
}

/* GEMM result [c_out, G*P] (+ bias) to NCHW: task = (example, output channel). */
static void scatter_range(void *arg, int64_t t0, int64_t t1) {
    const group_job *gj = arg;
    const sat_conv_geom *g = gj->g;
    const int64_t p = (int64_t)g->h_out * g->w_out;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t j = t / g->c_out, o = t % g->c_out;
        const float bo = gj->bias ? gj->bias[o] : 0.0f;
        const float *r = gj->src + o * gj->ld + j * p;
        float *yo = gj->dst + (j * g->c_out + o) * p;
        for (int64_t q = 0; q < p; q++) yo[q] = r[q] + bo;
    }
}

/* dY of a group (NCHW) to [c_out, G*P]: task = (example, output channel). */
static void gather_range(void *arg, int64_t t0, int64_t t1) {
    const group_job *gj = arg;
    const sat_conv_geom *g = gj->g;
    const int64_t p = (int64_t)g->h_out * g->w_out;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t j = t / g->c_out, o = t % g->c_out;
        memcpy(gj->dst + o * gj->ld + j * p, gj->src + (j * g->c_out + o) * p, (size_t)p * sizeof(float));
    }
}

static void im2col_group(const sat_context *ctx, const sat_conv_geom *g, const float *x, int64_t cnt,
                         float *col, int64_t ld) {
    group_job j = {g, x, col, NULL, ld, g->c_in};
    group_for(ctx, cnt * g->c_in, cnt * (int64_t)g->c_in * g->k * g->k * g->h_out * g->w_out, im2col_group_range, &j);
}

static void col2im_group(const sat_context *ctx, const sat_conv_geom *g, const float *col, int64_t ld,
                         int64_t cnt, float *dx) {
    group_job j = {g, col, dx, NULL, ld, g->c_in};
    group_for(ctx, cnt * g->c_in, cnt * (int64_t)g->c_in * g->k * g->k * g->h_out * g->w_out, col2im_group_range, &j);
}

void sat__conv_forward(const sat_context *ctx, const sat_conv_geom *g, const float *x,
                       const float *w, const float *b, float *y, int64_t n, float *ws) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t in_sz = (int64_t)g->c_in * g->h_in * g->w_in, out_sz = g->c_out * p;
    const int64_t gr = conv_group(g, n), ld = gr * p;
    float *const col = ws, *const res = ws + kk * ld;
    for (int64_t i0 = 0; i0 < n; i0 += gr) {
        const int64_t cnt = n - i0 < gr ? n - i0 : gr;
        if (gr == 1) {
            const float *src = x + i0 * in_sz;
            if (!is_pointwise(g)) {
                im2col_group(ctx, g, src, 1, col, p);
                src = col;
            }
            float *yi = y + i0 * out_sz;
            float beta = 0.0f;
            if (b) {
                for (int64_t o = 0; o < g->c_out; o++)
                    for (int64_t q = 0; q < p; q++) yi[o * p + q] = b[o];
                beta = 1.0f;
            }
            sat__gemm(ctx, 0, 0, g->c_out, p, kk, 1.0f, w, kk, src, p, beta, yi, p);
            continue;
        }
        im2col_group(ctx, g, x + i0 * in_sz, cnt, col, ld);
        sat__gemm(ctx, 0, 0, g->c_out, cnt * p, kk, 1.0f, w, kk, col, ld, 0.0f, res, ld);
        group_job sj = {g, res, y + i0 * out_sz, b, ld, g->c_out};
        group_for(ctx, cnt * g->c_out, cnt * out_sz, scatter_range, &sj);
    }
}

/* Copies dY of a group into [c_out, G*P] layout. */
static void gather_dy(const sat_context *ctx, const sat_conv_geom *g, const float *dy, int64_t cnt,
                      float *res, int64_t ld) {
    group_job j = {g, dy, res, NULL, ld, g->c_out};
    group_for(ctx, cnt * g->c_out, cnt * (int64_t)g->c_out * g->h_out * g->w_out, gather_range, &j);
}

void sat__conv_backward_data(const sat_context *ctx, const sat_conv_geom *g, const float *dy,
                             const float *w, float *dx, int64_t n, float *ws) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t in_sz = (int64_t)g->c_in * g->h_in * g->w_in, out_sz = g->c_out * p;
    const int64_t gr = conv_group(g, n), ld = gr * p;
    float *const col = ws, *const res = ws + kk * ld;
    for (int64_t i0 = 0; i0 < n; i0 += gr) {
        const int64_t cnt = n - i0 < gr ? n - i0 : gr;
        if (gr == 1) {
            const float *dyi = dy + i0 * out_sz;
            if (is_pointwise(g)) {
                sat__gemm(ctx, 1, 0, kk, p, g->c_out, 1.0f, w, kk, dyi, p, 0.0f, dx + i0 * in_sz,
                          p);
                continue;
            }
            sat__gemm(ctx, 1, 0, kk, p, g->c_out, 1.0f, w, kk, dyi, p, 0.0f, col, p);
            col2im_group(ctx, g, col, p, 1, dx + i0 * in_sz);
            continue;
        }
        gather_dy(ctx, g, dy + i0 * out_sz, cnt, res, ld);
        sat__gemm(ctx, 1, 0, kk, cnt * p, g->c_out, 1.0f, w, kk, res, ld, 0.0f, col, ld);
        col2im_group(ctx, g, col, ld, cnt, dx + i0 * in_sz);
    }
}

void sat__conv_backward_weights(const sat_context *ctx, const sat_conv_geom *g, const float *x,
                                const float *dy, float *dw, float *db, int64_t n, float *ws) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    const int64_t in_sz = (int64_t)g->c_in * g->h_in * g->w_in, out_sz = g->c_out * p;
    const int64_t gr = conv_group(g, n), ld = gr * p;
    float *const col = ws, *const res = ws + kk * ld;
    if (n <= 0) memset(dw, 0, (size_t)(g->c_out * kk) * sizeof *dw);
    for (int64_t i0 = 0; i0 < n; i0 += gr) {
        const int64_t cnt = n - i0 < gr ? n - i0 : gr;
        /* dW += dY_group col_group^T; the first group overwrites. */
        const float beta = i0 == 0 ? 0.0f : 1.0f;
        if (gr == 1) {
            const float *src = x + i0 * in_sz;
            if (!is_pointwise(g)) {
                im2col_group(ctx, g, src, 1, col, p);
                src = col;
            }
            sat__gemm(ctx, 0, 1, g->c_out, kk, p, 1.0f, dy + i0 * out_sz, p, src, p, beta, dw,
                      kk);
            continue;
        }
        im2col_group(ctx, g, x + i0 * in_sz, cnt, col, ld);
        gather_dy(ctx, g, dy + i0 * out_sz, cnt, res, ld);
        sat__gemm(ctx, 0, 1, g->c_out, kk, cnt * p, 1.0f, res, ld, col, ld, beta, dw, kk);
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
