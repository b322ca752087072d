/* conv_grouped.c - grouped convolution: the input's channels in G groups, each output
 * channel reading the c_in/G channels of its group (weights [c_out, c_in/G, k, k], as
 * torch.nn.Conv2d with groups=G). Depthwise convolution (G = c_in) is its fast case: one
 * input plane per output plane. Direct loops over the k x k taps of one plane at a time,
 * each tap a pass over output rows that the compiler vectorises (stride 1); no column
 * matrix, no GEMM, no workspace. Every output element sums its terms in one fixed order
 * (bias, then input channel, tap row, tap column), whatever range of examples or channels
 * a call is given, so splitting the work over threads cannot change a bit. */
#include "kernels/kernels.h"

#include <string.h>

/* Output columns [lo, hi) whose input column ow*s - p + b lies inside the plane. */
static void valid_cols(const sat_conv_geom *g, int32_t b, int64_t *lo, int64_t *hi) {
    const int64_t s = g->stride, first = (int64_t)g->pad - b, last = (int64_t)g->w_in - 1 + g->pad - b;
    *lo = first > 0 ? (first + s - 1) / s : 0;
    *hi = last < 0 ? 0 : last / s + 1;
    if (*hi > g->w_out) *hi = g->w_out;
    if (*lo > *hi) *lo = *hi;
}

/* yp (one output plane) += the k x k filter wk over xp (one input plane). */
static void plane_forward(float *yp, const float *xp, const float *wk, const sat_conv_geom *g) {
    const int64_t k = g->k, s = g->stride, p = g->pad;
    for (int64_t a = 0; a < k; a++) {
        for (int64_t oh = 0; oh < g->h_out; oh++) {
            const int64_t ih = oh * s - p + a;
            if (ih < 0 || ih >= g->h_in) continue;
            const float *xr = xp + ih * g->w_in;
            float *yr = yp + oh * g->w_out;
            for (int32_t b = 0; b < k; b++) {
                const float wv = wk[a * k + b];
                int64_t lo, hi;
                valid_cols(g, b, &lo, &hi);
                if (s == 1) { /* contiguous: the loop vectorises */
                    const float *xs = xr + b - p;
                    for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xs[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * s - p + b];
                }
            }
        }
    }
}

/* dxp (one input plane) += the filter's transpose applied to dyp (one output plane). */
static void plane_backward_data(float *dxp, const float *dyp, const float *wk, const sat_conv_geom *g) {
    const int64_t k = g->k, s = g->stride, p = g->pad;
    for (int64_t a = 0; a < k; a++) {
        for (int64_t oh = 0; oh < g->h_out; oh++) {
            const int64_t ih = oh * s - p + a;
            if (ih < 0 || ih >= g->h_in) continue;
            float *xr = dxp + ih * g->w_in;
            const float *yr = dyp + oh * g->w_out;
            for (int32_t b = 0; b < k; b++) {
                const float wv = wk[a * k + b];
                int64_t lo, hi;
                valid_cols(g, b, &lo, &hi);
                if (s == 1) {
                    float *xs = xr + b - p;
                    for (int64_t ow = lo; ow < hi; ow++) xs[ow] += wv * yr[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) xr[ow * s - p + b] += wv * yr[ow];
                }
            }
        }
    }
}

/* dwk (one k x k filter) += its gradient from one input plane and one output-gradient plane. */
static void plane_backward_weights(float *dwk, const float *xp, const float *dyp, const sat_conv_geom *g) {
    const int64_t k = g->k, s = g->stride, p = g->pad;
    for (int64_t a = 0; a < k; a++) {
        for (int32_t b = 0; b < k; b++) {
            int64_t lo, hi;
            valid_cols(g, b, &lo, &hi);
            float acc = 0.0f;
            for (int64_t oh = 0; oh < g->h_out; oh++) {
                const int64_t ih = oh * s - p + a;
                if (ih < 0 || ih >= g->h_in) continue;
                const float *xr = xp + ih * g->w_in;
                const float *yr = dyp + oh * g->w_out;
                for (int64_t ow = lo; ow < hi; ow++) acc += yr[ow] * xr[ow * s - p + b];
            }
            dwk[a * k + b] += acc;
        }
    }
}

void sat__conv_grouped_forward(const sat_conv_geom *g, int32_t groups, const float *x, const float *w,
                               const float *b, float *y, int64_t n) {
    const int64_t cig = g->c_in / groups, cog = g->c_out / groups, kk = (int64_t)g->k * g->k;
    const int64_t in_pl = (int64_t)g->h_in * g->w_in, out_pl = (int64_t)g->h_out * g->w_out;
    for (int64_t e = 0; e < n; e++) {
        for (int64_t oc = 0; oc < g->c_out; oc++) {
            float *yp = y + (e * g->c_out + oc) * out_pl;
            const float bias = b ? b[oc] : 0.0f;
            for (int64_t j = 0; j < out_pl; j++) yp[j] = bias;
            const int64_t ic0 = oc / cog * cig;
            for (int64_t i = 0; i < cig; i++)
                plane_forward(yp, x + (e * g->c_in + ic0 + i) * in_pl, w + (oc * cig + i) * kk, g);
        }
    }
}

void sat__conv_grouped_backward_data(const sat_conv_geom *g, int32_t groups, const float *dy, const float *w,
                                     float *dx, int64_t n) {
    const int64_t cig = g->c_in / groups, cog = g->c_out / groups, kk = (int64_t)g->k * g->k;
    const int64_t in_pl = (int64_t)g->h_in * g->w_in, out_pl = (int64_t)g->h_out * g->w_out;
    memset(dx, 0, sizeof(float) * (size_t)(n * g->c_in * in_pl));
    for (int64_t e = 0; e < n; e++) {
        for (int64_t oc = 0; oc < g->c_out; oc++) {
            const int64_t ic0 = oc / cog * cig;
            for (int64_t i = 0; i < cig; i++)
                plane_backward_data(dx + (e * g->c_in + ic0 + i) * in_pl, dy + (e * g->c_out + oc) * out_pl,
                                    w + (oc * cig + i) * kk, g);
        }
    }
}

void sat__conv_grouped_backward_weights(const sat_conv_geom *g, int32_t groups, const float *x, const float *dy,
                                        float *dw, float *db, int64_t n, int64_t oc0, int64_t oc1) {
    const int64_t cig = g->c_in / groups, cog = g->c_out / groups, kk = (int64_t)g->k * g->k;
    const int64_t in_pl = (int64_t)g->h_in * g->w_in, out_pl = (int64_t)g->h_out * g->w_out;
    memset(dw + oc0 * cig * kk, 0, sizeof(float) * (size_t)((oc1 - oc0) * cig * kk));
    for (int64_t oc = oc0; oc < oc1; oc++) {
        const int64_t ic0 = oc / cog * cig;
        float bsum = 0.0f;
        for (int64_t e = 0; e < n; e++) {
            const float *dyp = dy + (e * g->c_out + oc) * out_pl;
            for (int64_t i = 0; i < cig; i++)
                plane_backward_weights(dw + (oc * cig + i) * kk, x + (e * g->c_in + ic0 + i) * in_pl, dyp, g);
            for (int64_t j = 0; j < out_pl; j++) bsum += dyp[j];
        }
        if (db) db[oc] = bsum;
    }
}
