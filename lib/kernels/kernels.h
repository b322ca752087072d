/* kernels.h - the numerical kernels under the graph executor. Pure functions on plain
 * float arrays (NCHW, contiguous). None allocates: scratch memory comes from the caller
 * (the executor's arena) and its size from the *_workspace functions. */
#ifndef SAT_KERNELS_H
#define SAT_KERNELS_H

#include "core/core.h"

#include <stdint.h>

/* ---- GEMM (gemm.c is the only file that includes blis.h) ----
 * Row-major: C[m,n] = alpha * op(A) * op(B) + beta * C, op(A) is m x k (A stored k x m
 * when trans_a), op(B) is k x n (B stored n x k when trans_b). lda/ldb/ldc are row
 * strides. Shapes are checked before BLIS sees them; m, n or k of 0 is handled here.
 * Threads: ctx->num_threads through a per-call rntm_t (no global BLIS setting). */
void sat__gemm(const sat_context *ctx, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
               float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
               float *c, int64_t ldc);
/* The GEMM path in use, e.g. "blis-zen3" or "own-avx512-16x16 on blis-generic". */
const char *sat__gemm_path(void);
/* For tests and benchmarks only (process-wide; call while no GEMM runs): run every GEMM on
 * the BLIS context blis_cntx (a cntx_t *, NULL: BLIS's native one) called `name`, with the
 * library's AVX-512 micro-kernel in place of its float kernel when own_ukr is set. Returns
 * 0, changing nothing, if own_ukr is set and the CPU cannot run that kernel. */
int sat__gemm_select(const void *blis_cntx, const char *name, int own_ukr);
/* Back to the path the library picks for this CPU. */
void sat__gemm_select_default(void);
/* Portable reference with the same contract (double accumulation), for tests. */
void sat__gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc);

/* ---- activation kinds (activation_kinds.c): name, kind from a name, default parameter ---- */
/* The logistic sigmoid as a layer of its own (a gate), apart from the model's activation:
 * y = 1 / (1 + exp(-x)); dx = dy y (1 - y) with y recomputed from x. */
void sat__sigmoid_forward(const float *x, float *y, int64_t n);
void sat__sigmoid_backward(const float *x, const float *dy, float *dx, int64_t n);
const char *sat__act_name(int32_t act);
int32_t sat__act_from_name(const char *name, int32_t *act);
float sat__act_default_param(int32_t act);

/* ---- SIMD level of the vectorised activation loops (activation.c) ----
 * SiLU's loops exist for AVX-512, AVX2 and the baseline; the widest the CPU runs is used.
 * Every level gives the same bits. sat__simd_select caps the level (for tests and
 * benchmarks only, process-wide, while nothing runs): a test runs another CPU's loops. */
enum { SAT_SIMD_BASE = 0, SAT_SIMD_AVX2 = 1, SAT_SIMD_AVX512 = 2 };
int sat__simd_cpu_level(void);
int sat__simd_level(void);
void sat__simd_select(int level);
const char *sat__simd_name(int level);

/* ---- activations (act is SAT_ACT_*, param its parameter: never NaN here) ---- */
void sat__act_forward(int32_t act, float param, const float *x, float *y, int64_t n);
/* dx[i] = dy[i] * f'(x[i]) where f is act with param; x is the activation's *input*. */
void sat__act_backward(int32_t act, float param, const float *x, const float *dy, float *dx,
                       int64_t n);
/* d(sum_i dy[i] * f(x[i])) / d(param), for learnable parameters (SmoothReLU's alpha). */
double sat__act_param_grad(int32_t act, float param, const float *x, const float *dy, int64_t n);

/* ---- dense: y[n,out] = x[n,in] * W^T + b, W stored [out, in] (PyTorch layout) ---- */
void sat__dense_forward(const sat_context *ctx, const float *x, const float *w, const float *b,
                        float *y, int64_t n, int64_t in, int64_t out);
/* dx = dy W (skipped if dx NULL); dw = dy^T x, db = column sums (skipped if NULL). dw and db
 * are overwritten. */
void sat__dense_backward(const sat_context *ctx, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db, int64_t n, int64_t in, int64_t out);

/* ---- conv2d: im2col + GEMM; 1x1 stride-1 unpadded convolutions skip im2col ---- */
typedef struct sat_conv_geom {
    int32_t c_in, h_in, w_in;
    int32_t c_out, k, stride, pad;
    int32_t h_out, w_out; /* filled by sat__conv_geom_init */
    int32_t direct;       /* SAT_SIMD_*: the direct kernels to use where they fit; 0: none (conv_direct.c) */
} sat_conv_geom;
/* Computes h_out, w_out; returns 0 if the geometry is impossible (output smaller than 1). */
int sat__conv_geom_init(sat_conv_geom *g);
/* Floats of scratch the three conv functions need for a batch of n when up to `lanes`
 * threads work side by side, each on whole groups of examples with its own slot; with
 * backward 0, what the forward alone needs (an inference execution). The functions below
 * take that workspace and the lanes it was sized for; they use min(ctx threads, ws_lanes)
 * lanes, and their results do not depend on that number. */
int64_t sat__conv_workspace(const sat_conv_geom *g, int64_t n, int64_t lanes, int backward);
/* W stored [c_out, c_in, k, k]; b [c_out] or NULL. ws was sized with `backward` (the
 * layout of its lane slots depends on it); the result does not. */
void sat__conv_forward(const sat_context *ctx, const sat_conv_geom *g, const float *x, const float *w,
                       const float *b, float *y, int64_t n, float *ws, int64_t ws_lanes, int backward);
/* dx (overwritten) from dy. */
void sat__conv_backward_data(const sat_context *ctx, const sat_conv_geom *g, const float *dy,
                             const float *w, float *dx, int64_t n, float *ws, int64_t ws_lanes);
/* Direct convolution (conv_direct.c): no column matrix. The conv functions above use it
 * when g->direct is set and it fits; these are what they call. The widest kernels the CPU
 * runs, as a SAT_SIMD_* level: SAT_SIMD_AVX512, SAT_SIMD_AVX2 (forward and input gradient
 * only), or SAT_SIMD_BASE (0): none. */
int sat__conv_direct_available(void);
/* For tests and benchmarks only (process-wide; models created afterwards follow it): caps
 * the level above; SAT_SIMD_BASE keeps the direct kernels off, SAT_SIMD_AVX512 (the
 * default) leaves the CPU's choice. */
void sat__conv_direct_select(int level);
enum { SAT_CONV_DIRECT_FORWARD, SAT_CONV_DIRECT_DATA, SAT_CONV_DIRECT_WEIGHTS };
/* 1 if the direct kernels handle this geometry for the forward pass, the input gradient
 * or the weight gradient. */
int sat__conv_direct_fits(const sat_conv_geom *g, int which);
/* Floats for packed weights and a call's tap table (forward, and with backward the input
 * gradient's too; shared by all threads). */
int64_t sat__conv_direct_workspace(const sat_conv_geom *g, int backward);
/* Floats of per-thread scratch for sat__conv_direct_weights. */
int64_t sat__conv_direct_weights_scratch(const sat_conv_geom *g);
/* dw (overwritten) = the weight gradient summed over examples [e0, e1); one thread. */
void sat__conv_direct_weights(const sat_conv_geom *g, const float *x, const float *dy, float *dw, int64_t e0,
                              int64_t e1, float *scratch);
void sat__conv_direct_forward(const sat_context *ctx, const sat_conv_geom *g, const float *x, const float *w,
                              const float *b, float *y, int64_t n, float *ws);
void sat__conv_direct_backward_data(const sat_context *ctx, const sat_conv_geom *g, const float *dy,
                                    const float *w, float *dx, int64_t n, float *ws);
/* Grouped convolution (conv_grouped.c): `groups` channel groups, W [c_out, c_in/groups, k, k];
 * depthwise when groups = c_in. Direct loops on one thread: forward and input gradient
 * over n examples (x, y, dy, dx point at the first one; dx overwritten), the weight
 * gradient of output channels [oc0, oc1) summed over n examples (dw, db overwritten there;
 * db may be NULL). No workspace. */
void sat__conv_grouped_forward(const sat_conv_geom *g, int32_t groups, const float *x, const float *w,
                               const float *b, float *y, int64_t n);
void sat__conv_grouped_backward_data(const sat_conv_geom *g, int32_t groups, const float *dy, const float *w,
                                     float *dx, int64_t n);
void sat__conv_grouped_backward_weights(const sat_conv_geom *g, int32_t groups, const float *x, const float *dy,
                                        float *dw, float *db, int64_t n, int64_t oc0, int64_t oc1);
/* dw, db (overwritten; db may be NULL) from x and dy. */
void sat__conv_backward_weights(const sat_context *ctx, const sat_conv_geom *g, const float *x,
                                const float *dy, float *dw, float *db, int64_t n, float *ws,
                                int64_t ws_lanes);

/* ---- batch norm over channels: x is [n, c, hw] (hw = 1 after dense) ---- */
#define SAT_BN_EPS 1e-5f
#define SAT_BN_MOMENTUM 0.1f
/* Training mode: batch statistics; saves mean and inverse std per channel for backward,
 * and (save_affine non-NULL: 2c floats) the scale and shift y = x * scale + shift used, so
 * that sat__bn_apply can compute y again, to the bit; if running_mean/var are non-NULL
 * updates them with momentum (unbiased variance). Only channels [c0, c1) are touched (0, c
 * for all), so ranges of channels can run on different threads. */
void sat__bn_forward_train(const float *x, const float *gamma, const float *beta, float *y, int64_t n, int64_t c,
                           int64_t hw, float *save_mean, float *save_invstd, float *save_affine, float *running_mean,
                           float *running_var, int64_t c0, int64_t c1);
/* Synchronised batch norm: the training-mode forward in pieces, for statistics summed
 * across processes between them (channels [c0, c1)). sum[ch] = the sum of channel ch's
 * values; ss[ch] = their centred sum of squares about mean[ch]; then the normalisation by
 * the statistics of cnt values with these means and centred sums of squares (save and
 * running statistics as sat__bn_forward_train, which is the same three steps on one
 * process's sums). */
void sat__bn_sums(const float *x, int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1, double *sum);
void sat__bn_centred_ss(const float *x, int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1,
                        const double *mean, double *ss);
void sat__bn_normalise(const float *x, const float *gamma, const float *beta, float *y, int64_t n, int64_t c,
                       int64_t hw, const double *mean, const double *ss, double cnt, float *save_mean,
                       float *save_invstd, float *save_affine, float *running_mean, float *running_var, int64_t c0,
                       int64_t c1);
/* y = x * affine[ch] + affine[c + ch] per channel: a training-mode forward's output again,
 * from the scale and shift it saved, for n examples. */
void sat__bn_apply(const float *x, const float *affine, float *y, int64_t n, int64_t c, int64_t hw);
/* Inference mode: running statistics. */
void sat__bn_forward_infer(const float *x, const float *gamma, const float *beta,
                           const float *running_mean, const float *running_var, float *y,
                           int64_t n, int64_t c, int64_t hw);
/* Inference mode folded into the layer before it, whose output channel ch has weights
 * w[ch * per_out, (ch + 1) * per_out) and bias b[ch] (b NULL: none): w_out and b_out make
 * that layer give the batch norm's output. Scale and shift as in sat__bn_forward_infer,
 * taken in double, each folded value rounded once. */
void sat__bn_fold(const float *gamma, const float *beta, const float *running_mean, const float *running_var,
                  const float *w, const float *b, int64_t c, int64_t per_out, float *w_out, float *b_out);
/* Backward of training mode (statistics depend on x), channels [c0, c1). dx may be NULL;
 * dgamma/dbeta may be NULL, else overwritten. */
void sat__bn_backward_train(const float *x, const float *gamma, const float *dy, const float *save_mean,
                            const float *save_invstd, float *dx, float *dgamma, float *dbeta, int64_t n, int64_t c,
                            int64_t hw, int64_t c0, int64_t c1);
/* The backward in pieces: the sums of dy and dy * xhat per channel (dbeta and dgamma of
 * these examples), then dx from sums over cnt values (summed across processes). */
void sat__bn_grad_sums(const float *x, const float *dy, const float *save_mean, const float *save_invstd,
                       int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1, double *sdy, double *sdyx);
void sat__bn_backward_from_sums(const float *x, const float *gamma, const float *dy, const float *save_mean,
                                const float *save_invstd, const double *sdy, const double *sdyx, double cnt,
                                float *dx, int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1);
/* Backward of inference mode (statistics are constants). */
void sat__bn_backward_infer(const float *x, const float *gamma, const float *running_mean,
                            const float *running_var, const float *dy, float *dx, float *dgamma,
                            float *dbeta, int64_t n, int64_t c, int64_t hw);

/* ---- pooling: windows of k x k with stride s; x [n, c, h, w] ---- */
/* Max pooling with padding p <= k/2 on each side; padded cells never take part. */
void sat__maxpool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t h, int64_t w,
                          int32_t k, int32_t s, int32_t p, int64_t ho, int64_t wo);
/* dx overwritten; the gradient goes to the first maximum of each window (recomputed from x). */
void sat__maxpool_backward(const float *x, const float *dy, float *dx, int64_t n, int64_t c,
                           int64_t h, int64_t w, int32_t k, int32_t s, int32_t p, int64_t ho, int64_t wo);
/* Average pooling, no padding. */
void sat__avgpool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t h, int64_t w,
                          int32_t k, int32_t s, int64_t ho, int64_t wo);
void sat__avgpool_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t h, int64_t w,
                           int32_t k, int32_t s, int64_t ho, int64_t wo);
/* Global average pooling: y [n, c]. */
void sat__gap_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw);
void sat__gap_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t hw);

/* ---- input normalisation: y = (x - mean[c]) / std[c] ---- */
void sat__normalize_forward(const float *x, const float *mean, const float *std, float *y,
                            int64_t n, int64_t c, int64_t hw);
void sat__normalize_backward(const float *dy, const float *std, float *dx, int64_t n, int64_t c,
                             int64_t hw);

/* ---- softmax (softmax.c): the one softmax; rows of logits, computed in double ----
 * log sum_j exp(z_j), shifted by the row's maximum so that large logits cannot overflow;
 * log p_j = z_j - lse, p_j = exp(z_j - lse). */
double sat__logsumexp(const float *z, int64_t k);
/* KL(softmax(zp) || softmax(zq)) of one row. Adds scale * dKL/dzq_j = scale (q_j - p_j) to
 * dzq[j] and scale * dKL/dzp_j = scale p_j (log p_j - log q_j - KL) to dzp[j]; either may
 * be NULL. */
double sat__kl_softmax(const float *zp, const float *zq, int64_t k, double scale, float *dzq, float *dzp);

/* ---- argmax (argmax.c): the one argmax; ties go to the lower index ----
 * Index of the largest z[j] over the j != skip (-1: none) that rank strictly after class
 * `after` (-1: no bound) in (value desc, index asc) order; -1 if no class qualifies. So
 * sat__argmax(z, k, -1, -1) is the prediction, sat__argmax(z, k, y, -1) the best class
 * other than the label. */
int32_t sat__argmax(const float *z, int32_t k, int32_t skip, int32_t after);
/* The `count` largest entries other than `skip` (-1: none) in decreasing order, into
 * idx[count] (-1 where fewer classes remain). */
void sat__top_k(const float *z, int32_t k, int32_t skip, int32_t count, int32_t *idx);
/* How many of the n rows of logits [n x classes] predict their label. */
int64_t sat__count_correct(const float *logits, const int32_t *labels, int64_t n, int32_t classes);

/* ---- softmax cross-entropy with label smoothing s: target = (1-s) onehot + s/classes ----
 * Returns the sum of per-example losses (double). losses[n] (may be NULL) receives each
 * example's loss; dlogits (may be NULL) receives scale * d(sum of losses)/d(logits). */
double sat__softmax_ce(const float *logits, const int32_t *labels, int64_t n, int64_t classes,
                       float smoothing, float *losses, float *dlogits, float scale);

/* ---- elementwise ---- */
void sat__add(const float *a, const float *b, float *y, int64_t n);        /* y = a + b */
void sat__axpy(float alpha, const float *x, float *y, int64_t n);          /* y += alpha x */
/* Dropout of examples [e0, e0 + n) of a batch, `size` values each, in groups of `group`
 * consecutive values that share one draw (1: each value; size: whole examples, stochastic
 * depth): a group is kept (and scaled by 1 / (1 - p)) when the uniform draw at (key, stream,
 * (example * size + element) / group) is at least p, so the mask depends on nothing but
 * those coordinates. x, y, dy, dx point at example e0. The backward redraws the same mask. */
void sat__dropout_forward(uint64_t key, uint64_t stream, float p, const float *x, float *y, int64_t e0, int64_t n,
                          int64_t size, int64_t group);
void sat__dropout_backward(uint64_t key, uint64_t stream, float p, const float *dy, float *dx, int64_t e0,
                           int64_t n, int64_t size, int64_t group);
/* Channel-wise multiplication, x [n, c, hw] by g [n, c] (a squeeze-excitation gate; hw 1:
 * elementwise): y = x g. Backward: dx = dy g, dg = sum over hw of dy x (either may be NULL). */
void sat__mul_channels_forward(const float *x, const float *g, float *y, int64_t n, int64_t c, int64_t hw);
void sat__mul_channels_backward(const float *x, const float *g, const float *dy, float *dx, float *dg, int64_t n,
                                int64_t c, int64_t hw);

#endif
