/* test_kernels_grad.c - analytic gradients of the layer kernels against central
 * differences of J = sum(r * y) for a random r, accumulated in double; convolution
 * against a direct loop; batch-norm running statistics against a direct computation. */
#include "testutil.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- finite-difference harness ----
 * A problem computes its output from whatever its input arrays currently hold; the
 * harness perturbs one input element at a time. */
typedef struct problem problem;
struct problem {
    void (*run)(const problem *p, float *out);
    const sat_context *ctx;
    const sat_conv_geom *g;
    const float *in[4]; /* the kernel's inputs (some are perturbed through the harness) */
    float *ws;
    int64_t d[8];       /* shapes, meaning depends on the kernel */
    int32_t k, s;
    const int32_t *labels;
    float smooth, scale;
};

static double objective(const problem *p, float *out, const float *r, int64_t nout) {
    p->run(p, out);
    double j = 0.0;
    for (int64_t i = 0; i < nout; i++) j += (double)r[i] * out[i];
    return j;
}

/* Compares grad (analytic dJ/dv for v = var[0..nv)) with differences of step h. The error
 * bound is relative to the largest gradient entry so that tiny entries are not judged
 * by their own size. */
static void check_grad(const char *what, const problem *p, float *var, int64_t nv,
                       const float *grad, const float *r, int64_t nout, float h, double tol) {
    float *out = tu_alloc((size_t)nout * sizeof *out);
    assert_non_null(out);
    double gmax = 0.0;
    for (int64_t i = 0; i < nv; i++) gmax = fmax(gmax, fabs(grad[i]));
    if (gmax < 1e-3) gmax = 1e-3;
    for (int64_t i = 0; i < nv; i++) {
        const float v = var[i];
        const float vp = v + h, vm = v - h;
        var[i] = vp;
        double jp = objective(p, out, r, nout);
        var[i] = vm;
        double jm = objective(p, out, r, nout);
        var[i] = v;
        double fd = (jp - jm) / ((double)vp - (double)vm);
        if (!(fabs(fd - grad[i]) <= tol * (fabs(fd) + gmax)))
            fail_msg("%s[%ld]: analytic %.7g, differences %.7g", what, (long)i, grad[i], fd);
    }
    tu_free(out);
}

static float *alloc_fill(int64_t n, float lo, float hi, uint64_t seed) {
    float *x = tu_alloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    assert_non_null(x);
    tu_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* ---- dense ---- */
static void run_dense(const problem *p, float *out) {
    sat__dense_forward(p->ctx, p->in[0], p->in[1], p->in[2], out, p->d[0], p->d[1], p->d[2]);
}

static void test_dense_grad(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 1);
    const int64_t n = 3, in = 5, out = 4;
    float *x = alloc_fill(n * in, -1, 1, 1), *w = alloc_fill(out * in, -1, 1, 2);
    float *b = alloc_fill(out, -1, 1, 3), *r = alloc_fill(n * out, -1, 1, 4);
    float *dx = alloc_fill(n * in, 0, 0, 0), *dw = alloc_fill(out * in, 9, 9, 0);
    float *db = alloc_fill(out, 9, 9, 0), *y = alloc_fill(n * out, 0, 0, 0);
    problem p = {.run = run_dense, .ctx = ctx, .in = {x, w, b}, .d = {n, in, out}};
    /* forward against the definition */
    run_dense(&p, y);
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = b[o];
            for (int64_t j = 0; j < in; j++) s += (double)x[i * in + j] * w[o * in + j];
            assert_float_equal(y[i * out + o], s, 1e-5);
        }
    sat__dense_backward(ctx, x, w, r, dx, dw, db, n, in, out);
    check_grad("dense dx", &p, x, n * in, dx, r, n * out, 0.5f, 1e-4);
    check_grad("dense dw", &p, w, out * in, dw, r, n * out, 0.5f, 1e-4);
    check_grad("dense db", &p, b, out, db, r, n * out, 0.5f, 1e-4);
    /* NULL outputs are skipped; dx alone still matches */
    float *dx2 = alloc_fill(n * in, 0, 0, 0);
    sat__dense_backward(ctx, x, w, r, dx2, NULL, NULL, n, in, out);
    assert_true(tu_max_abs_diff(dx, dx2, n * in) == 0.0f);
    /* no bias */
    p.in[2] = NULL;
    run_dense(&p, y);
    for (int64_t o = 0; o < out; o++) {
        double s = 0;
        for (int64_t j = 0; j < in; j++) s += (double)x[j] * w[o * in + j];
        assert_float_equal(y[o], s, 1e-5);
    }
    tu_free(x), tu_free(w), tu_free(b), tu_free(r), tu_free(dx), tu_free(dw), tu_free(db), tu_free(y), tu_free(dx2);
    tu_release(ctx);
}

/* ---- convolution ---- */
static void run_conv(const problem *p, float *out) {
    sat__conv_forward(p->ctx, p->g, p->in[0], p->in[1], p->in[2], out, p->d[0], p->ws, p->d[1], 1);
}

static void conv_direct(const sat_conv_geom *g, const float *x, const float *w, const float *b,
                        double *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int o = 0; o < g->c_out; o++)
            for (int oh = 0; oh < g->h_out; oh++)
                for (int ow = 0; ow < g->w_out; ow++) {
                    double s = b ? b[o] : 0.0;
                    for (int c = 0; c < g->c_in; c++)
                        for (int ki = 0; ki < g->k; ki++)
                            for (int kj = 0; kj < g->k; kj++) {
                                int ih = oh * g->stride - g->pad + ki;
                                int iw = ow * g->stride - g->pad + kj;
                                if (ih < 0 || ih >= g->h_in || iw < 0 || iw >= g->w_in) continue;
                                s += (double)x[((i * g->c_in + c) * g->h_in + ih) * g->w_in + iw] *
                                     w[((o * g->c_in + c) * g->k + ki) * g->k + kj];
                            }
                    y[((i * g->c_out + o) * g->h_out + oh) * g->w_out + ow] = s;
                }
}

#define CANARY 12345.0f

/* n = 1 takes the one-example path (no im2col for 1x1 stride 1); n > 1 groups examples
 * side by side in one GEMM. */
static void conv_case_one(sat_conv_geom g, int32_t threads, int64_t n) {
    sat_context *ctx = tu_context(threads, 1);
    assert_int_equal(sat__conv_geom_init(&g), 1);
    const int64_t nx = n * g.c_in * g.h_in * g.w_in, nw = (int64_t)g.c_out * g.c_in * g.k * g.k;
    const int64_t ny = n * g.c_out * g.h_out * g.w_out;
    const int64_t nws = sat__conv_workspace(&g, n, threads, 1);
    float *x = alloc_fill(nx, -1, 1, 21), *w = alloc_fill(nw, -1, 1, 22);
    float *b = alloc_fill(g.c_out, -1, 1, 23), *r = alloc_fill(ny, -1, 1, 24);
    float *y = alloc_fill(ny, 0, 0, 0), *dx = alloc_fill(nx, 7, 7, 0);
    float *dw = alloc_fill(nw, 7, 7, 0), *db = alloc_fill(g.c_out, 7, 7, 0);
    /* The workspace is followed by canaries that must survive every call. */
    float *ws = alloc_fill(nws + 16, CANARY, CANARY, 0);
    double *yd = tu_alloc((size_t)ny * sizeof *yd);
    problem p = {.run = run_conv, .ctx = ctx, .g = &g, .in = {x, w, b}, .ws = ws, .d = {n, threads}};

    run_conv(&p, y);
    conv_direct(&g, x, w, b, yd, n);
    for (int64_t i = 0; i < ny; i++)
        if (!(fabs(y[i] - yd[i]) <= 1e-5 * (1 + fabs(yd[i]))))
            fail_msg("conv k%d s%d p%d: y[%ld] = %g, direct %g", g.k, g.stride, g.pad, (long)i,
                     y[i], yd[i]);

    sat__conv_backward_data(ctx, &g, r, w, dx, n, ws, threads);
    sat__conv_backward_weights(ctx, &g, x, r, dw, db, n, ws, threads);
    for (int i = 0; i < 16; i++) assert_true(ws[nws + i] == CANARY);
    check_grad("conv dx", &p, x, nx, dx, r, ny, 0.5f, 1e-4);
    check_grad("conv dw", &p, w, nw, dw, r, ny, 0.5f, 1e-4);
    check_grad("conv db", &p, b, g.c_out, db, r, ny, 0.5f, 1e-4);
    for (int i = 0; i < 16; i++) assert_true(ws[nws + i] == CANARY);

    /* db may be NULL; without bias the forward matches the direct loop without it */
    float *dw2 = alloc_fill(nw, 0, 0, 0);
    sat__conv_backward_weights(ctx, &g, x, r, dw2, NULL, n, ws, threads);
    assert_true(tu_max_abs_diff(dw, dw2, nw) == 0.0f);
    p.in[2] = NULL;
    run_conv(&p, y);
    conv_direct(&g, x, w, NULL, yd, n);
    for (int64_t i = 0; i < ny; i++) assert_true(fabs(y[i] - yd[i]) <= 1e-5 * (1 + fabs(yd[i])));
    tu_free(x), tu_free(w), tu_free(b), tu_free(r), tu_free(y), tu_free(dx), tu_free(dw), tu_free(db), tu_free(ws);
    tu_free(yd), tu_free(dw2);
    tu_release(ctx);
}

/* Every case through the im2col path and every direct kernel the CPU has (AVX2, AVX-512). */
static void conv_case(sat_conv_geom g, int32_t threads, int64_t n) {
    for (g.direct = SAT_SIMD_BASE; g.direct <= sat__conv_direct_available(); g.direct++) conv_case_one(g, threads, n);
}

static void test_conv_stride2_pad1(void **state) {
    (void)state;
    sat_conv_geom g = {.c_in = 3, .h_in = 7, .w_in = 6, .c_out = 4, .k = 3, .stride = 2, .pad = 1};
    conv_case(g, 1, 2);
    conv_case(g, 2, 3);
    conv_case(g, 1, 1);
}

static void test_conv_pointwise(void **state) {
    (void)state;
    sat_conv_geom g = {.c_in = 5, .h_in = 4, .w_in = 3, .c_out = 3, .k = 1, .stride = 1, .pad = 0};
    conv_case(g, 1, 1);
    conv_case(g, 1, 2);
    assert_int_equal(sat__conv_geom_init(&g), 1);
    assert_int_equal(sat__conv_workspace(&g, 1, 1, 1), 0);
    /* 1x1 with stride 2 goes through im2col */
    sat_conv_geom g2 = {.c_in = 3, .h_in = 5, .w_in = 6, .c_out = 2, .k = 1, .stride = 2, .pad = 0};
    conv_case(g2, 2, 2);
    conv_case(g2, 1, 1);
}

static void test_conv_k5_pad2(void **state) {
    (void)state;
    sat_conv_geom g = {.c_in = 2, .h_in = 6, .w_in = 5, .c_out = 3, .k = 5, .stride = 1, .pad = 2};
    conv_case(g, 1, 2);
    conv_case(g, 1, 1);
    /* padding wider than the image reach on some taps, and an unpadded 3x3 */
    sat_conv_geom g2 = {.c_in = 2, .h_in = 3, .w_in = 4, .c_out = 2, .k = 3, .stride = 3, .pad = 2};
    conv_case(g2, 1, 2);
    sat_conv_geom g3 = {.c_in = 2, .h_in = 5, .w_in = 7, .c_out = 3, .k = 3, .stride = 1, .pad = 0};
    conv_case(g3, 2, 2);
}

/* Shapes the direct kernels handle in pieces: rows wider than 8 pixels (weight gradients
 * go direct), 16-pixel vectors that straddle up to three output rows and end part-way,
 * output channels and column rows that do not fill a 4 x 4 or 16 x 16 tile. */
static void test_conv_direct_edges(void **state) {
    (void)state;
    sat_conv_geom g = {.c_in = 3, .h_in = 9, .w_in = 11, .c_out = 5, .k = 3, .stride = 1, .pad = 1};
    conv_case(g, 1, 2);
    conv_case(g, 2, 3);
    sat_conv_geom g2 = {.c_in = 17, .h_in = 8, .w_in = 8, .c_out = 18, .k = 1, .stride = 1, .pad = 0};
    conv_case(g2, 1, 2);
    sat_conv_geom g3 = {.c_in = 2, .h_in = 12, .w_in = 13, .c_out = 3, .k = 5, .stride = 1, .pad = 0};
    conv_case(g3, 2, 2);
    sat_conv_geom g4 = {.c_in = 4, .h_in = 17, .w_in = 17, .c_out = 20, .k = 3, .stride = 2, .pad = 1};
    conv_case(g4, 1, 2);
    /* input gradients go direct from 16 input channels on */
    sat_conv_geom g5 = {.c_in = 16, .h_in = 9, .w_in = 10, .c_out = 5, .k = 3, .stride = 1, .pad = 1};
    conv_case(g5, 2, 2);
    sat_conv_geom g6 = {.c_in = 16, .h_in = 6, .w_in = 9, .c_out = 3, .k = 5, .stride = 1, .pad = 2};
    conv_case(g6, 1, 2);
    /* the AVX2 input gradient takes rows of 16 pixels or more; 17 makes vectors straddle rows */
    sat_conv_geom g7 = {.c_in = 16, .h_in = 3, .w_in = 17, .c_out = 7, .k = 3, .stride = 1, .pad = 1};
    conv_case(g7, 2, 2);
}

/* The AVX2 direct tile sums every output element in the AVX-512 tile's order: both give the
 * same bits, forward and input gradient, over partial panels (20 and 13 output channels),
 * partial pixel vectors and vectors that straddle rows (several loads per tap). Runs where
 * the CPU has AVX-512; elsewhere the two cannot meet. */
static void test_conv_direct_avx2_matches_avx512(void **state) {
    (void)state;
    if (sat__conv_direct_available() != SAT_SIMD_AVX512) {
        printf("no AVX-512 direct kernels on this CPU: nothing to compare the AVX2 ones with\n");
        return;
    }
    const sat_conv_geom shapes[] = {{.c_in = 16, .h_in = 9, .w_in = 10, .c_out = 20, .k = 3, .stride = 1, .pad = 1},
                                    {.c_in = 17, .h_in = 6, .w_in = 5, .c_out = 13, .k = 5, .stride = 1, .pad = 2},
                                    {.c_in = 32, .h_in = 8, .w_in = 8, .c_out = 32, .k = 3, .stride = 1, .pad = 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        sat_conv_geom g = shapes[i];
        assert_int_equal(sat__conv_geom_init(&g), 1);
        const int64_t n = 3, nx = n * g.c_in * g.h_in * g.w_in, ny = n * g.c_out * g.h_out * g.w_out;
        const int64_t nw = (int64_t)g.c_out * g.c_in * g.k * g.k;
        float *x = alloc_fill(nx, -1, 1, 31), *w = alloc_fill(nw, -1, 1, 32), *b = alloc_fill(g.c_out, -1, 1, 33);
        float *dy = alloc_fill(ny, -1, 1, 34), *y[2], *dx[2];
        for (int level = 0; level < 2; level++) {
            g.direct = level ? SAT_SIMD_AVX512 : SAT_SIMD_AVX2;
            float *ws = alloc_fill(sat__conv_direct_workspace(&g, 1), 0, 0, 0);
            y[level] = alloc_fill(ny, 0, 0, 0), dx[level] = alloc_fill(nx, 0, 0, 0);
            sat__conv_direct_forward(NULL, &g, x, w, b, y[level], n, ws);
            sat__conv_direct_backward_data(NULL, &g, dy, w, dx[level], n, ws);
            tu_free(ws);
        }
        if (memcmp(y[0], y[1], (size_t)ny * sizeof(float)) || memcmp(dx[0], dx[1], (size_t)nx * sizeof(float)))
            fail_msg("shape %zu: the AVX2 direct tile differs from the AVX-512 one (largest differences %g, %g)", i,
                     (double)tu_max_abs_diff(y[0], y[1], ny), (double)tu_max_abs_diff(dx[0], dx[1], nx));
        tu_free(x), tu_free(w), tu_free(b), tu_free(dy), tu_free(y[0]), tu_free(y[1]), tu_free(dx[0]), tu_free(dx[1]);
    }
}

/* Images large enough that only a few fit in a group, and a batch that leaves a partial
 * last group: results must equal one example at a time (checked above by differences). */
static void test_conv_groups_match_single(void **state) {
    (void)state;
    sat_context *ctx = tu_context(2, 1);
    sat_conv_geom g = {.c_in = 2, .h_in = 32, .w_in = 32, .c_out = 3, .k = 3, .stride = 1, .pad = 1};
    assert_int_equal(sat__conv_geom_init(&g), 1);
    const int64_t n = 5, isz = 2 * 32 * 32, osz = 3 * 32 * 32, nw = 3 * 2 * 9;
    const int64_t nws = sat__conv_workspace(&g, n, 2, 1);
    assert_true(nws > sat__conv_workspace(&g, 1, 1, 1)); /* grouping is in use */
    float *x = alloc_fill(n * isz, -1, 1, 1), *w = alloc_fill(nw, -1, 1, 2);
    float *b = alloc_fill(3, -1, 1, 3), *dy = alloc_fill(n * osz, -1, 1, 4);
    float *y = alloc_fill(n * osz, 0, 0, 0), *y1 = alloc_fill(n * osz, 0, 0, 0);
    float *dx = alloc_fill(n * isz, 0, 0, 0), *dx1 = alloc_fill(n * isz, 0, 0, 0);
    float *dw = alloc_fill(nw, 0, 0, 0), *dw1 = alloc_fill(nw, 0, 0, 0), *dwi = alloc_fill(nw, 0, 0, 0);
    float db[3], db1[3] = {0, 0, 0}, dbi[3];
    float *ws = alloc_fill(nws + 16, CANARY, CANARY, 0);
    double *yd = tu_alloc((size_t)(n * osz) * sizeof *yd);
    sat__conv_forward(ctx, &g, x, w, b, y, n, ws, 2, 1);
    sat__conv_backward_data(ctx, &g, dy, w, dx, n, ws, 2);
    sat__conv_backward_weights(ctx, &g, x, dy, dw, db, n, ws, 2);
    for (int i = 0; i < 16; i++) assert_true(ws[nws + i] == CANARY);
    for (int64_t i = 0; i < n; i++) {
        sat__conv_forward(ctx, &g, x + i * isz, w, b, y1 + i * osz, 1, ws, 2, 1);
        sat__conv_backward_data(ctx, &g, dy + i * osz, w, dx1 + i * isz, 1, ws, 2);
        sat__conv_backward_weights(ctx, &g, x + i * isz, dy + i * osz, dwi, dbi, 1, ws, 2);
        for (int64_t j = 0; j < nw; j++) dw1[j] += dwi[j];
        for (int j = 0; j < 3; j++) db1[j] += dbi[j];
    }
    conv_direct(&g, x, w, b, yd, n);
    for (int64_t i = 0; i < n * osz; i++) assert_true(fabs(y[i] - yd[i]) <= 1e-5 * (1 + fabs(yd[i])));
    assert_true(tu_max_abs_diff(y, y1, n * osz) <= 1e-5f);
    assert_true(tu_max_abs_diff(dx, dx1, n * isz) <= 1e-5f);
    assert_true(tu_max_abs_diff(dw, dw1, nw) <= 1e-2f);
    for (int j = 0; j < 3; j++) assert_float_equal(db[j], db1[j], 1e-2);
    tu_free(x), tu_free(w), tu_free(b), tu_free(dy), tu_free(y), tu_free(y1), tu_free(dx), tu_free(dx1), tu_free(dw);
    tu_free(dw1), tu_free(dwi), tu_free(ws), tu_free(yd);
    tu_release(ctx);
}

/* Threads take whole groups side by side (lanes), each with its own workspace slot, and
 * weight gradients sum in a fixed number of chunks: outputs must not change by a bit
 * between 1 thread, 2 threads with one slot (threads inside each group's GEMM) and 2 or 3
 * threads with a slot each, including uneven splits of groups and chunks. */
static void conv_lanes_case(int32_t direct) {
    sat_conv_geom g = {.c_in = 3, .h_in = 20, .w_in = 20, .c_out = 8, .k = 3, .stride = 1, .pad = 1, .direct = direct};
    assert_int_equal(sat__conv_geom_init(&g), 1);
    const int64_t n = 61, isz = 3 * 400, osz = 8 * 400, nw = 8 * 3 * 9; /* 6 per group: 11 groups */
    float *x = alloc_fill(n * isz, -1, 1, 5), *w = alloc_fill(nw, -1, 1, 6);
    float *b = alloc_fill(8, -1, 1, 7), *dy = alloc_fill(n * osz, -1, 1, 8);
    float *ref[3] = {NULL, NULL, NULL};
    const int32_t threads[4] = {1, 2, 2, 3}, lanes[4] = {1, 1, 2, 3};
    for (int c = 0; c < 4; c++) {
        sat_context *ctx = tu_context(threads[c], 1);
        const int64_t nws = sat__conv_workspace(&g, n, lanes[c], 1);
        float *ws = alloc_fill(nws + 16, CANARY, CANARY, 0);
        float *out[3] = {alloc_fill(n * osz, 0, 0, 0), alloc_fill(n * isz, 0, 0, 0), alloc_fill(nw, 0, 0, 0)};
        sat__conv_forward(ctx, &g, x, w, b, out[0], n, ws, lanes[c], 1);
        sat__conv_backward_data(ctx, &g, dy, w, out[1], n, ws, lanes[c]);
        sat__conv_backward_weights(ctx, &g, x, dy, out[2], NULL, n, ws, lanes[c]);
        for (int i = 0; i < 16; i++) assert_true(ws[nws + i] == CANARY);
        /* An inference execution's workspace holds only what the forward uses (no weight-
         * gradient partial sums or tables), and the forward gives the same bits in it. */
        const int64_t fws = sat__conv_workspace(&g, n, lanes[c], 0);
        assert_true(fws < nws);
        float *wsf = alloc_fill(fws + 16, CANARY, CANARY, 0), *yf = alloc_fill(n * osz, 0, 0, 0);
        sat__conv_forward(ctx, &g, x, w, b, yf, n, wsf, lanes[c], 0);
        for (int i = 0; i < 16; i++) assert_true(wsf[fws + i] == CANARY);
        assert_memory_equal(yf, out[0], (size_t)(n * osz) * sizeof(float));
        tu_free(wsf);
        tu_free(yf);
        const int64_t len[3] = {n * osz, n * isz, nw};
        for (int k = 0; k < 3; k++) {
            if (c == 0) {
                ref[k] = out[k];
                continue;
            }
            if (memcmp(ref[k], out[k], (size_t)len[k] * sizeof(float)) != 0)
                fail_msg("output %d differs with %d threads and %d lanes", k, threads[c], lanes[c]);
            tu_free(out[k]);
        }
        tu_free(ws);
        tu_release(ctx);
    }
    /* and the chunked weight gradient is still the gradient */
    double *yd = tu_alloc((size_t)(n * osz) * sizeof *yd);
    double s = 0, worst = 0;
    for (int64_t j = 0; j < nw; j++) {
        const float keep = w[j];
        double lp, lm;
        const float up = keep + 1e-2f, down = keep - 1e-2f; /* linear in w: exact steps */
        w[j] = up;
        conv_direct(&g, x, w, NULL, yd, n);
        lp = 0;
        for (int64_t i = 0; i < n * osz; i++) lp += yd[i] * dy[i];
        w[j] = down;
        conv_direct(&g, x, w, NULL, yd, n);
        lm = 0;
        for (int64_t i = 0; i < n * osz; i++) lm += yd[i] * dy[i];
        w[j] = keep;
        const double fd = (lp - lm) / ((double)up - (double)down);
        const double diff = fabs(fd - ref[2][j]);
        if (diff > worst) worst = diff;
        s += fabs(fd);
    }
    if (!(worst <= 1e-4 * (s / nw)))
        fail_msg("chunked weight gradient off by %g (mean |dL/dw| %g)", worst, s / nw);
    tu_free(yd);
    for (int k = 0; k < 3; k++) tu_free(ref[k]);
    tu_free(x), tu_free(w), tu_free(b), tu_free(dy);
}

static void test_conv_lanes_bit_identical(void **state) {
    (void)state;
    conv_lanes_case(0);
    if (sat__conv_direct_available()) conv_lanes_case(1);
}

static void test_conv_geometry(void **state) {
    (void)state;
    sat_conv_geom g = {.c_in = 3, .h_in = 32, .w_in = 32, .c_out = 16, .k = 3, .stride = 2, .pad = 1};
    assert_int_equal(sat__conv_geom_init(&g), 1);
    assert_int_equal(g.h_out, 16);
    assert_int_equal(g.w_out, 16);
    sat_conv_geom bad = {.c_in = 1, .h_in = 2, .w_in = 2, .c_out = 1, .k = 5, .stride = 1, .pad = 0};
    assert_int_equal(sat__conv_geom_init(&bad), 0);
    sat_conv_geom bad2 = {.c_in = 1, .h_in = 2, .w_in = 2, .c_out = 1, .k = 1, .stride = 0, .pad = 0};
    assert_int_equal(sat__conv_geom_init(&bad2), 0);
}

/* ---- batch norm ---- */
static void run_bn_train(const problem *p, float *out) {
    sat__bn_forward_train(p->in[0], p->in[1], p->in[2], out, p->d[0], p->d[1], p->d[2], NULL,
                          NULL, NULL, NULL, NULL, 0, p->d[1]);
}
static void run_bn_infer(const problem *p, float *out) {
    sat__bn_forward_infer(p->in[0], p->in[1], p->in[2], p->in[3], p->in[3] + p->d[1], out,
                          p->d[0], p->d[1], p->d[2]);
}

static void test_bn_train_grad(void **state) {
    (void)state;
    const int64_t n = 3, c = 2, hw = 5, nx = n * c * hw;
    float *x = alloc_fill(nx, -2, 2, 31), *gamma = alloc_fill(c, 0.5f, 1.5f, 32);
    float *beta = alloc_fill(c, -1, 1, 33), *r = alloc_fill(nx, -1, 1, 34);
    float *y = alloc_fill(nx, 0, 0, 0), *dx = alloc_fill(nx, 0, 0, 0);
    float mean[2], invstd[2], dgamma[2], dbeta[2];
    problem p = {.run = run_bn_train, .in = {x, gamma, beta}, .d = {n, c, hw}};
    float affine[4];
    sat__bn_forward_train(x, gamma, beta, y, n, c, hw, mean, invstd, affine, NULL, NULL, 0, c);
    /* the saved scale and shift give y again, to the bit (the executor recomputes a batch
     * norm's output in the following activation's backward from them) */
    float *y2 = alloc_fill(nx, 0, 0, 0);
    sat__bn_apply(x, affine, y2, n, c, hw);
    assert_memory_equal(y, y2, sizeof(float) * (size_t)nx);
    tu_free(y2);
    /* each channel of y has mean beta and variance gamma^2 (up to eps) */
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += y[(i * c + ch) * hw + j];
        s /= (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) ss += pow(y[(i * c + ch) * hw + j] - s, 2);
        assert_float_equal(s, beta[ch], 1e-5);
        assert_float_equal(sqrt(ss / (double)(n * hw)), gamma[ch], 1e-4);
    }
    sat__bn_backward_train(x, gamma, r, mean, invstd, dx, dgamma, dbeta, n, c, hw, 0, c);
    check_grad("bn dx", &p, x, nx, dx, r, nx, 2e-3f, 5e-3);
    check_grad("bn dgamma", &p, gamma, c, dgamma, r, nx, 1e-2f, 1e-3);
    check_grad("bn dbeta", &p, beta, c, dbeta, r, nx, 0.5f, 1e-4);
    /* NULL outputs are skipped */
    float *dx2 = alloc_fill(nx, 0, 0, 0);
    sat__bn_backward_train(x, gamma, r, mean, invstd, dx2, NULL, NULL, n, c, hw, 0, c);
    assert_true(tu_max_abs_diff(dx, dx2, nx) == 0.0f);
    float dg2[2];
    sat__bn_backward_train(x, gamma, r, mean, invstd, NULL, dg2, NULL, n, c, hw, 0, c);
    assert_true(dg2[0] == dgamma[0] && dg2[1] == dgamma[1]);
    tu_free(x), tu_free(gamma), tu_free(beta), tu_free(r), tu_free(y), tu_free(dx), tu_free(dx2);
}

/* hw = 1 is the layout after a dense layer */
static void test_bn_train_grad_dense_layout(void **state) {
    (void)state;
    const int64_t n = 6, c = 3, hw = 1, nx = n * c * hw;
    float *x = alloc_fill(nx, -2, 2, 41), *gamma = alloc_fill(c, 0.5f, 1.5f, 42);
    float *beta = alloc_fill(c, -1, 1, 43), *r = alloc_fill(nx, -1, 1, 44);
    float *y = alloc_fill(nx, 0, 0, 0), *dx = alloc_fill(nx, 0, 0, 0);
    float mean[3], invstd[3], dgamma[3], dbeta[3];
    problem p = {.run = run_bn_train, .in = {x, gamma, beta}, .d = {n, c, hw}};
    sat__bn_forward_train(x, gamma, beta, y, n, c, hw, mean, invstd, NULL, NULL, NULL, 0, c);
    sat__bn_backward_train(x, gamma, r, mean, invstd, dx, dgamma, dbeta, n, c, hw, 0, c);
    check_grad("bn dx", &p, x, nx, dx, r, nx, 2e-3f, 5e-3);
    check_grad("bn dgamma", &p, gamma, c, dgamma, r, nx, 1e-2f, 1e-3);
    check_grad("bn dbeta", &p, beta, c, dbeta, r, nx, 0.5f, 1e-4);
    tu_free(x), tu_free(gamma), tu_free(beta), tu_free(r), tu_free(y), tu_free(dx);
}

static void test_bn_running_stats(void **state) {
    (void)state;
    const int64_t n = 4, c = 3, hw = 6, nx = n * c * hw;
    float *x = alloc_fill(nx, -3, 5, 51), *y = alloc_fill(nx, 0, 0, 0);
    float rm[3] = {0.5f, -1.0f, 0.0f}, rv[3] = {2.0f, 1.0f, 0.25f};
    float rm0[3], rv0[3], mean[3], invstd[3];
    memcpy(rm0, rm, sizeof rm);
    memcpy(rv0, rv, sizeof rv);
    sat__bn_forward_train(x, NULL, NULL, y, n, c, hw, mean, invstd, NULL, rm, rv, 0, c);
    const double m = SAT_BN_MOMENTUM, cnt = (double)(n * hw);
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j];
        const double mu = s / cnt;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) ss += pow(x[(i * c + ch) * hw + j] - mu, 2);
        assert_float_equal(mean[ch], mu, 1e-6);
        assert_float_equal(invstd[ch], 1.0 / sqrt(ss / cnt + SAT_BN_EPS), 1e-5);
        assert_float_equal(rm[ch], (1 - m) * rm0[ch] + m * mu, 1e-6);
        assert_float_equal(rv[ch], (1 - m) * rv0[ch] + m * ss / (cnt - 1), 1e-6);
    }
    tu_free(x), tu_free(y);
}

static void test_bn_infer_grad(void **state) {
    (void)state;
    const int64_t n = 3, c = 2, hw = 4, nx = n * c * hw;
    float *x = alloc_fill(nx, -2, 2, 61), *gamma = alloc_fill(c, 0.5f, 1.5f, 62);
    float *beta = alloc_fill(c, -1, 1, 63), *r = alloc_fill(nx, -1, 1, 64);
    float stats[4] = {0.3f, -0.2f, 1.7f, 0.6f}; /* running mean then running var */
    float *y = alloc_fill(nx, 0, 0, 0), *dx = alloc_fill(nx, 0, 0, 0);
    float dgamma[2], dbeta[2];
    problem p = {.run = run_bn_infer, .in = {x, gamma, beta, stats}, .d = {n, c, hw}};
    run_bn_infer(&p, y);
    for (int64_t i = 0; i < nx; i++) {
        int64_t ch = (i / hw) % c;
        double want = (x[i] - stats[ch]) / sqrt(stats[2 + ch] + SAT_BN_EPS) * gamma[ch] + beta[ch];
        assert_float_equal(y[i], want, 1e-5);
    }
    sat__bn_backward_infer(x, gamma, stats, stats + 2, r, dx, dgamma, dbeta, n, c, hw);
    check_grad("bn infer dx", &p, x, nx, dx, r, nx, 0.5f, 1e-4);
    check_grad("bn infer dgamma", &p, gamma, c, dgamma, r, nx, 0.5f, 1e-4);
    check_grad("bn infer dbeta", &p, beta, c, dbeta, r, nx, 0.5f, 1e-4);
    tu_free(x), tu_free(gamma), tu_free(beta), tu_free(r), tu_free(y), tu_free(dx);
}

/* ---- pooling ---- */
static void run_maxpool(const problem *p, float *out) {
    sat__maxpool_forward(p->in[0], out, p->d[0], p->d[1], p->d[2], p->d[3], p->k, p->s, (int32_t)p->d[6],
                         p->d[4], p->d[5]);
}
static void run_avgpool(const problem *p, float *out) {
    sat__avgpool_forward(p->in[0], out, p->d[0], p->d[1], p->d[2], p->d[3], p->k, p->s, p->d[4],
                         p->d[5]);
}
static void run_gap(const problem *p, float *out) {
    sat__gap_forward(p->in[0], out, p->d[0], p->d[1], p->d[2]);
}

/* Max pooling with padding pad (average pooling too when pad is 0). */
static void pool_case(int32_t k, int32_t s, int32_t pad) {
    const int64_t n = 2, c = 2, h = 6, w = 7;
    const int64_t ho = (h + 2 * pad - k) / s + 1, wo = (w + 2 * pad - k) / s + 1, nx = n * c * h * w;
    const int64_t ny = n * c * ho * wo;
    float *x = alloc_fill(nx, 0, 0, 0), *r = alloc_fill(ny, -1, 1, 71);
    float *dx = alloc_fill(nx, 5, 5, 0), *y = alloc_fill(ny, 0, 0, 0);
    /* distinct values 0.1 apart, shuffled, all negative: a step of 0.01 never changes a
     * window's max, and a padded zero would win every window it took part in */
    for (int64_t i = 0; i < nx; i++) x[i] = 0.1f * (float)((i * 37) % nx) - 3.0f - 0.1f * (float)nx;
    problem p = {.run = run_maxpool, .in = {x}, .d = {n, c, h, w, ho, wo, pad}, .k = k, .s = s};
    run_maxpool(&p, y);
    for (int64_t pl = 0; pl < n * c; pl++)
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++) {
                float m = -INFINITY;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) {
                        const int64_t i = oh * s - pad + a, j = ow * s - pad + b;
                        if (i >= 0 && i < h && j >= 0 && j < w) m = fmaxf(m, x[pl * h * w + i * w + j]);
                    }
                assert_true(y[(pl * ho + oh) * wo + ow] == m);
            }
    sat__maxpool_backward(x, r, dx, n, c, h, w, k, s, pad, ho, wo);
    check_grad("maxpool dx", &p, x, nx, dx, r, ny, 0.01f, 1e-3);

    if (pad == 0) {
        p.run = run_avgpool;
        tu_fill_uniform(x, nx, -1, 1, 72);
        sat__avgpool_backward(r, dx, n, c, h, w, k, s, ho, wo);
        check_grad("avgpool dx", &p, x, nx, dx, r, ny, 0.5f, 1e-4);
        run_avgpool(&p, y);
        assert_float_equal(y[0], (x[0] + x[1] + x[w] + x[w + 1] + (k == 3 ? x[2] + x[w + 2] +
                                  x[2 * w] + x[2 * w + 1] + x[2 * w + 2] : 0)) / (float)(k * k), 1e-6);
    }
    tu_free(x), tu_free(r), tu_free(dx), tu_free(y);
}

static void test_pooling_grad(void **state) {
    (void)state;
    pool_case(2, 2, 0);
    pool_case(3, 2, 0); /* overlapping windows */
    pool_case(3, 1, 0);
    pool_case(3, 2, 1); /* the ResNet stem's padded max-pooling */
    pool_case(2, 1, 1);
    pool_case(5, 2, 2);
}

static void test_maxpool_ties_first(void **state) {
    (void)state;
    const float x[4] = {1, 1, 1, 1}, dy[1] = {2};
    float dx[4];
    sat__maxpool_backward(x, dy, dx, 1, 1, 2, 2, 2, 2, 0, 1, 1);
    assert_true(dx[0] == 2 && dx[1] == 0 && dx[2] == 0 && dx[3] == 0);
}

/* ---- dropout: a fixed key gives a fixed mask, so the op is linear in x ---- */
static void run_dropout(const problem *p, float *out) {
    sat__dropout_forward(99, 3, 0.3f, p->in[0], out, p->d[0], p->d[1], p->d[2], p->d[3]);
}

static void test_dropout_grad(void **state) {
    (void)state;
    const int64_t e0 = 5, n = 3, size = 400, nx = n * size;
    float *x = alloc_fill(nx, 0.5f, 1.5f, 81), *r = alloc_fill(nx, -1, 1, 82);
    float *y = alloc_fill(nx, 0, 0, 0), *dx = alloc_fill(nx, 0, 0, 0);
    problem p = {.run = run_dropout, .in = {x}, .d = {e0, n, size, 1}};
    run_dropout(&p, y);
    int64_t zeros = 0;
    for (int64_t i = 0; i < nx; i++) {
        if (y[i] == 0.0f) zeros++;
        else assert_float_equal(y[i], x[i] / 0.7f, 1e-6);
    }
    assert_true(zeros > 0.25 * nx && zeros < 0.35 * nx);
    sat__dropout_backward(99, 3, 0.3f, r, dx, e0, n, size, 1);
    check_grad("dropout dx", &p, x, nx, dx, r, nx, 0.5f, 1e-4);
    /* example e0 + 1 alone draws the mask it had inside the batch */
    float one[400];
    sat__dropout_forward(99, 3, 0.3f, x + size, one, e0 + 1, 1, size, 1);
    assert_memory_equal(one, y + size, sizeof one);
    tu_free(x), tu_free(r), tu_free(y), tu_free(dx);
}

/* Stochastic depth: groups of a whole example share one draw, so each example is dropped
 * or scaled as a whole, about p of them dropped; the backward uses the same decision. */
static void test_dropout_per_example(void **state) {
    (void)state;
    const int64_t n = 400, size = 6, nx = n * size;
    float *x = alloc_fill(nx, 0.5f, 1.5f, 83), *y = alloc_fill(nx, 0, 0, 0);
    float *r = alloc_fill(nx, -1, 1, 84), *dx = alloc_fill(nx, 0, 0, 0);
    sat__dropout_forward(7, 2, 0.25f, x, y, 0, n, size, size);
    sat__dropout_backward(7, 2, 0.25f, r, dx, 0, n, size, size);
    int64_t dropped = 0;
    for (int64_t e = 0; e < n; e++) {
        const int kept = y[e * size] != 0.0f;
        dropped += !kept;
        for (int64_t i = e * size; i < (e + 1) * size; i++) {
            assert_float_equal(y[i], kept ? x[i] / 0.75f : 0.0f, 1e-6);
            assert_float_equal(dx[i], kept ? r[i] / 0.75f : 0.0f, 1e-6);
        }
    }
    assert_true(dropped > 0.18 * n && dropped < 0.32 * n);
    tu_free(x), tu_free(y), tu_free(r), tu_free(dx);
}

static void test_gap_grad(void **state) {
    (void)state;
    const int64_t n = 2, c = 3, hw = 10, nx = n * c * hw;
    float *x = alloc_fill(nx, -1, 1, 81), *r = alloc_fill(n * c, -1, 1, 82);
    float *dx = alloc_fill(nx, 0, 0, 0), y[6];
    problem p = {.run = run_gap, .in = {x}, .d = {n, c, hw}};
    run_gap(&p, y);
    double s = 0;
    for (int j = 0; j < hw; j++) s += x[hw + j];
    assert_float_equal(y[1], s / hw, 1e-6);
    sat__gap_backward(r, dx, n, c, hw);
    check_grad("gap dx", &p, x, nx, dx, r, n * c, 0.5f, 1e-4);
    tu_free(x), tu_free(r), tu_free(dx);
}

/* ---- normalisation ---- */
static void run_norm(const problem *p, float *out) {
    sat__normalize_forward(p->in[0], p->in[1], p->in[2], out, p->d[0], p->d[1], p->d[2]);
}

static void test_normalize_grad(void **state) {
    (void)state;
    const int64_t n = 2, c = 3, hw = 4, nx = n * c * hw;
    const float mean[3] = {0.49f, 0.48f, 0.45f}, sd[3] = {0.25f, 0.24f, 0.26f};
    float *x = alloc_fill(nx, 0, 1, 91), *r = alloc_fill(nx, -1, 1, 92);
    float *dx = alloc_fill(nx, 0, 0, 0), *y = alloc_fill(nx, 0, 0, 0);
    problem p = {.run = run_norm, .in = {x, mean, sd}, .d = {n, c, hw}};
    run_norm(&p, y);
    for (int64_t i = 0; i < nx; i++) {
        int64_t ch = (i / hw) % c;
        assert_float_equal(y[i], (x[i] - mean[ch]) / sd[ch], 1e-6);
    }
    sat__normalize_backward(r, sd, dx, n, c, hw);
    check_grad("normalize dx", &p, x, nx, dx, r, nx, 0.25f, 1e-4);
    tu_free(x), tu_free(r), tu_free(dx), tu_free(y);
}

/* ---- softmax cross-entropy ---- */
static void run_ce(const problem *p, float *out) {
    out[0] = (float)(p->scale * sat__softmax_ce(p->in[0], p->labels, p->d[0], p->d[1], p->smooth,
                                                NULL, NULL, 1.0f));
}

static void test_softmax_ce_grad(void **state) {
    (void)state;
    const int64_t n = 4, classes = 7;
    const int32_t labels[4] = {0, 6, 3, 3};
    const float smooth = 0.1f, scale = 0.25f, one = 1.0f;
    float *l = alloc_fill(n * classes, -3, 3, 101), *dl = alloc_fill(n * classes, 0, 0, 0);
    float losses[4];
    problem p = {.run = run_ce, .in = {l}, .d = {n, classes}, .labels = labels,
                 .smooth = smooth, .scale = scale};
    double total = sat__softmax_ce(l, labels, n, classes, smooth, losses, dl, scale);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        /* direct: -sum_j t_j log p_j */
        double z = 0, want = 0;
        for (int64_t j = 0; j < classes; j++) z += exp(l[i * classes + j]);
        for (int64_t j = 0; j < classes; j++) {
            double t = smooth / classes + (j == labels[i] ? 1 - smooth : 0);
            want -= t * (l[i * classes + j] - log(z));
        }
        assert_float_equal(losses[i], want, 1e-5);
        sum += losses[i];
    }
    assert_float_equal(total, sum, 1e-5);
    check_grad("softmax dlogits", &p, l, n * classes, dl, &one, 1, 1e-2f, 2e-3);
    /* equal logits give log(classes) whatever the smoothing; huge logits stay finite */
    float flat[7] = {0}, big[7] = {1e4f, -1e4f, 3e4f, 0, 0, 0, -3e4f}, dbig[7];
    assert_float_equal(sat__softmax_ce(flat, labels, 1, classes, 0.3f, NULL, NULL, 1),
                       log(7.0), 1e-6);
    double lb = sat__softmax_ce(big, labels + 1, 1, classes, 0.0f, NULL, dbig, 1);
    assert_float_equal(lb, 3e4 + 3e4, 1e-2); /* label 6 has logit -3e4 */
    for (int j = 0; j < 7; j++) assert_true(isfinite(dbig[j]));
    assert_float_equal(dbig[2], 1.0, 1e-6);
    assert_float_equal(dbig[6], -1.0, 1e-6);
    tu_free(l), tu_free(dl);
}

/* ---- elementwise ---- */
static void test_elementwise(void **state) {
    (void)state;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -1, 2, 0, 1}, y[5];
    sat__add(a, b, y, 5);
    for (int i = 0; i < 5; i++) assert_true(y[i] == a[i] + b[i]);
    sat__axpy(-2.0f, b, a, 5);
    const float want[5] = {0, 4, -1, 4, 3};
    for (int i = 0; i < 5; i++) assert_true(a[i] == want[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_grad),
        cmocka_unit_test(test_conv_stride2_pad1),
        cmocka_unit_test(test_conv_pointwise),
        cmocka_unit_test(test_conv_k5_pad2),
        cmocka_unit_test(test_conv_direct_edges),
        cmocka_unit_test(test_conv_direct_avx2_matches_avx512),
        cmocka_unit_test(test_conv_groups_match_single),
        cmocka_unit_test(test_conv_lanes_bit_identical),
        cmocka_unit_test(test_conv_geometry),
        cmocka_unit_test(test_bn_train_grad),
        cmocka_unit_test(test_bn_train_grad_dense_layout),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_bn_infer_grad),
        cmocka_unit_test(test_pooling_grad),
        cmocka_unit_test(test_maxpool_ties_first),
        cmocka_unit_test(test_dropout_grad),
        cmocka_unit_test(test_dropout_per_example),
        cmocka_unit_test(test_gap_grad),
        cmocka_unit_test(test_normalize_grad),
        cmocka_unit_test(test_softmax_ce_grad),
        cmocka_unit_test(test_elementwise),
    };
    return tu_run_on_every_path("test_kernels_grad", tests, sizeof tests / sizeof tests[0]);
}
