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
/* Weight gradients sum over all groups. The sum is cut into at most this many chunks of
 * consecutive groups, a number that does not depend on the thread count; each chunk sums
 * into its own buffer and the buffers are added in order, so lanes can take chunks in
 * parallel without changing a bit. */
#define CONV_DW_CHUNKS 8

/* How a batch of n runs through one convolution: groups of gr examples, each one GEMM;
 * a lane (one thread) takes whole groups with its own slot of the workspace. */
typedef struct conv_split {
    int64_t kk, p, in_sz, out_sz; /* column rows, output pixels, floats per example */
    int64_t gr, groups;           /* examples per group, groups in the batch */
    int64_t chunks;               /* weight-gradient chunks */
    int64_t slot;                 /* workspace floats per lane */
    int64_t partials;             /* workspace floats for chunks 1.. of the weight gradient */
} conv_split;

/* Examples per group: a pure function of the geometry and n. */
static int64_t conv_group(const sat_conv_geom *g, int64_t n) {
    const int64_t kk = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    if (p < 1) return 1; /* geometry not initialised: nothing sensible to group */
    int64_t gr = (CONV_TARGET_COLS + p - 1) / p;
    if (gr > n) gr = n;
    while (gr > 1 && (kk + g->c_out) * gr * p > CONV_MAX_GROUP_FLOATS) gr--;
    return gr < 1 ? 1 : gr;
}

/* With backward 0 only what a forward uses: no weight-gradient tables or partial sums. */
static conv_split conv_split_of(const sat_conv_geom *g, int64_t n, int backward) {
    conv_split c;
    c.kk = (int64_t)g->c_in * g->k * g->k;
    c.p = (int64_t)g->h_out * g->w_out;
    c.in_sz = (int64_t)g->c_in * g->h_in * g->w_in;
    c.out_sz = g->c_out * c.p;
    c.gr = conv_group(g, n);
    c.groups = n > 0 ? (n + c.gr - 1) / c.gr : 0;
    c.chunks = c.groups < CONV_DW_CHUNKS ? c.groups : CONV_DW_CHUNKS;
    if (c.gr == 1)
        c.slot = is_pointwise(g) ? 0 : c.kk * c.p;
    else
        c.slot = (c.kk + g->c_out) * c.gr * c.p; /* column matrix, then the GEMM's [c_out, G*P] */
    if (backward && sat__conv_direct_fits(g, SAT_CONV_DIRECT_WEIGHTS)) {
        const int64_t tab = sat__conv_direct_weights_scratch(g);
        if (tab > c.slot) c.slot = tab;
    }
    c.partials = backward && c.chunks > 1 ? (c.chunks - 1) * g->c_out * c.kk : 0;
    return c;
}

int64_t sat__conv_workspace(const sat_conv_geom *g, int64_t n, int64_t lanes, int backward) {
    const int64_t direct = g->direct ? sat__conv_direct_workspace(g, backward) : 0;
    if (!backward && sat__conv_direct_fits(g, SAT_CONV_DIRECT_FORWARD)) return direct;
    const conv_split c = conv_split_of(g, n, backward);
    const int64_t split = c.partials + (lanes < 1 ? 1 : lanes) * c.slot;
    return split > direct ? split : direct;
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

/* One group of the forward pass: im2col, one GEMM, scatter to NCHW (+ bias). ctx is NULL
 * inside a lane, so everything below runs on the lane's own thread. */
static void forward_group(const sat_context *ctx, const sat_conv_geom *g, const conv_split *c, const float *x,
                          const float *w, const float *b, float *y, int64_t grp, int64_t n, float *ws) {
    const int64_t i0 = grp * c->gr, cnt = n - i0 < c->gr ? n - i0 : c->gr, p = c->p, kk = c->kk;
    if (c->gr == 1) {
        const float *src = x + i0 * c->in_sz;
        if (!is_pointwise(g)) {
            im2col_group(ctx, g, src, 1, ws, p);
            src = ws;
        }
        float *yi = y + i0 * c->out_sz;
        float beta = 0.0f;
        if (b) {
            for (int64_t o = 0; o < g->c_out; o++)
                for (int64_t q = 0; q < p; q++) yi[o * p + q] = b[o];
            beta = 1.0f;
        }
        sat__gemm(ctx, 0, 0, g->c_out, p, kk, 1.0f, w, kk, src, p, beta, yi, p);
        return;
    }
    const int64_t ld = c->gr * p;
    float *const col = ws, *const res = ws + kk * ld;
    im2col_group(ctx, g, x + i0 * c->in_sz, cnt, col, ld);
    sat__gemm(ctx, 0, 0, g->c_out, cnt * p, kk, 1.0f, w, kk, col, ld, 0.0f, res, ld);
    group_job sj = {g, res, y + i0 * c->out_sz, b, ld, g->c_out};
    group_for(ctx, cnt * g->c_out, cnt * c->out_sz, scatter_range, &sj);
}

/* Copies dY of a group into [c_out, G*P] layout. */
static void gather_dy(const sat_context *ctx, const sat_conv_geom *g, const float *dy, int64_t cnt,
                      float *res, int64_t ld) {
    group_job j = {g, dy, res, NULL, ld, g->c_out};
    group_for(ctx, cnt * g->c_out, cnt * (int64_t)g->c_out * g->h_out * g->w_out, gather_range, &j);
}

/* One group of the input gradient: gather dY, one GEMM, col2im. */
static void backward_data_group(const sat_context *ctx, const sat_conv_geom *g, const conv_split *c,
                                const float *dy, const float *w, float *dx, int64_t grp, int64_t n, float *ws) {
    const int64_t i0 = grp * c->gr, cnt = n - i0 < c->gr ? n - i0 : c->gr, p = c->p, kk = c->kk;
    if (c->gr == 1) {
        const float *dyi = dy + i0 * c->out_sz;
        if (is_pointwise(g)) {
            sat__gemm(ctx, 1, 0, kk, p, g->c_out, 1.0f, w, kk, dyi, p, 0.0f, dx + i0 * c->in_sz, p);
            return;
        }
        sat__gemm(ctx, 1, 0, kk, p, g->c_out, 1.0f, w, kk, dyi, p, 0.0f, ws, p);
        col2im_group(ctx, g, ws, p, 1, dx + i0 * c->in_sz);
        return;
    }
    const int64_t ld = c->gr * p;
    float *const col = ws, *const res = ws + kk * ld;
    gather_dy(ctx, g, dy + i0 * c->out_sz, cnt, res, ld);
    sat__gemm(ctx, 1, 0, kk, cnt * p, g->c_out, 1.0f, w, kk, res, ld, 0.0f, col, ld);
    col2im_group(ctx, g, col, ld, cnt, dx + i0 * c->in_sz);
}

/* One weight-gradient chunk: acc = sum over its groups of dY_group col_group^T. */
static void weights_chunk(const sat_context *ctx, const sat_conv_geom *g, const conv_split *c, const float *x,
                          const float *dy, float *acc, int64_t chunk, int64_t n, float *ws) {
    const int64_t g0 = chunk * c->groups / c->chunks, g1 = (chunk + 1) * c->groups / c->chunks;
    const int64_t p = c->p, kk = c->kk;
    if (sat__conv_direct_fits(g, SAT_CONV_DIRECT_WEIGHTS)) {
        sat__conv_direct_weights(g, x, dy, acc, g0 * c->gr, g1 * c->gr < n ? g1 * c->gr : n, ws);
        return;
    }
    for (int64_t grp = g0; grp < g1; grp++) {
        const int64_t i0 = grp * c->gr, cnt = n - i0 < c->gr ? n - i0 : c->gr;
        const float beta = grp == g0 ? 0.0f : 1.0f; /* the chunk's first group overwrites */
        if (c->gr == 1) {
            const float *src = x + i0 * c->in_sz;
            if (!is_pointwise(g)) {
                im2col_group(ctx, g, src, 1, ws, p);
                src = ws;
            }
            sat__gemm(ctx, 0, 1, g->c_out, kk, p, 1.0f, dy + i0 * c->out_sz, p, src, p, beta, acc, kk);
            continue;
        }
        const int64_t ld = c->gr * p;
        float *const col = ws, *const res = ws + kk * ld;
        im2col_group(ctx, g, x + i0 * c->in_sz, cnt, col, ld);
        gather_dy(ctx, g, dy + i0 * c->out_sz, cnt, res, ld);
        sat__gemm(ctx, 0, 1, g->c_out, kk, cnt * p, 1.0f, res, ld, col, ld, beta, acc, kk);
    }
}

/* Units of work (groups, or weight-gradient chunks) spread over lanes: with several
 * threads and several units, each thread takes a contiguous run of whole units and does
 * them alone, one pool hand-off per layer; otherwise the units run one after another and
 * each spreads its own im2col, GEMM and scatter over the pool. Either way a unit computes
 * the same bits. */
enum { CONV_FORWARD, CONV_BACKWARD_DATA, CONV_WEIGHTS };

typedef struct lane_job {
    int kind;
    const sat_conv_geom *g;
    const conv_split *c;
    const float *x, *w, *b, *dy;
    float *out; /* y, dx or dw */
    float *ws;
    int64_t n, units, lanes;
} lane_job;

static float *chunk_target(const lane_job *j, int64_t chunk) {
    return chunk == 0 ? j->out : j->ws + (chunk - 1) * j->g->c_out * j->c->kk;
}

static void run_unit(const sat_context *ctx, const lane_job *j, int64_t u, float *slot) {
    if (j->kind == CONV_FORWARD)
        forward_group(ctx, j->g, j->c, j->x, j->w, j->b, j->out, u, j->n, slot);
    else if (j->kind == CONV_BACKWARD_DATA)
        backward_data_group(ctx, j->g, j->c, j->dy, j->w, j->out, u, j->n, slot);
    else
        weights_chunk(ctx, j->g, j->c, j->x, j->dy, chunk_target(j, u), u, j->n, slot);
}

static void lane_range(void *arg, int64_t l0, int64_t l1) {
    const lane_job *j = arg;
    for (int64_t l = l0; l < l1; l++) {
        float *slot = j->ws + j->c->partials + l * j->c->slot;
        for (int64_t u = l * j->units / j->lanes; u < (l + 1) * j->units / j->lanes; u++) run_unit(NULL, j, u, slot);
    }
}

static void run_lanes(const sat_context *ctx, lane_job *j, int64_t ws_lanes) {
    int64_t lanes = ctx && ctx->pool ? ctx->num_threads : 1;
    if (lanes > ws_lanes) lanes = ws_lanes;
    if (lanes > j->units) lanes = j->units;
    if (lanes > 1) {
        j->lanes = lanes;
        sat__parallel_for(ctx, lanes, lane_range, j);
        return;
    }
    for (int64_t u = 0; u < j->units; u++) run_unit(ctx, j, u, j->ws + j->c->partials);
}

void sat__conv_forward(const sat_context *ctx, const sat_conv_geom *g, const float *x, const float *w,
                       const float *b, float *y, int64_t n, float *ws, int64_t ws_lanes, int backward) {
    if (sat__conv_direct_fits(g, SAT_CONV_DIRECT_FORWARD)) {
        sat__conv_direct_forward(ctx, g, x, w, b, y, n, ws);
        return;
    }
    const conv_split c = conv_split_of(g, n, backward);
    lane_job j = {CONV_FORWARD, g, &c, x, w, b, NULL, y, ws, n, c.groups, 1};
    run_lanes(ctx, &j, ws_lanes);
}

void sat__conv_backward_data(const sat_context *ctx, const sat_conv_geom *g, const float *dy, const float *w,
                             float *dx, int64_t n, float *ws, int64_t ws_lanes) {
    if (sat__conv_direct_fits(g, SAT_CONV_DIRECT_DATA)) {
        sat__conv_direct_backward_data(ctx, g, dy, w, dx, n, ws);
        return;
    }
    const conv_split c = conv_split_of(g, n, 1);
    lane_job j = {CONV_BACKWARD_DATA, g, &c, NULL, w, NULL, dy, dx, ws, n, c.groups, 1};
    run_lanes(ctx, &j, ws_lanes);
}

void sat__conv_backward_weights(const sat_context *ctx, const sat_conv_geom *g, const float *x, const float *dy,
                                float *dw, float *db, int64_t n, float *ws, int64_t ws_lanes) {
    const conv_split c = conv_split_of(g, n, 1);
    const int64_t nw = g->c_out * c.kk;
    if (n <= 0) memset(dw, 0, (size_t)nw * sizeof *dw);
    lane_job j = {CONV_WEIGHTS, g, &c, x, NULL, NULL, dy, dw, ws, n, c.chunks, 1};
    run_lanes(ctx, &j, ws_lanes);
    /* dW = chunk 0 + chunk 1 + ..., always in this order. */
    for (int64_t k = 1; k < c.chunks; k++) {
        const float *part = chunk_target(&j, k);
        for (int64_t i = 0; i < nw; i++) dw[i] += part[i];
    }
    if (db) {
        for (int64_t o = 0; o < g->c_out; o++) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const float *d = dy + i * c.out_sz + o * c.p;
                for (int64_t q = 0; q < c.p; q++) s += d[q];
            }
            db[o] = (float)s;
        }
    }
}
