/* ops.c - the op table: for each op, the parsing of its spec arguments, shape inference
 * (with its parameters, state and constants), parameter initialisation, workspace, what
 * its backward keeps, forward and backward. Backward functions receive the op's input x0
 * and output y (both kept from the forward pass) and overwrite dx0/dx1 when non-NULL. */
#include "graph.h"

#include <math.h>
#include <string.h>

#define FAIL(...) return sat__fail(err, SAT_E_INVALID_ARG, __VA_ARGS__)

static const sat_node *input_of(const sat_model *m, const sat_node *nd) { return &m->nodes[nd->in0]; }

static int64_t add_params(sat_model *m, int64_t count) {
    int64_t off = m->num_params;
    m->num_params += count;
    return off;
}

static int64_t add_state(sat_model *m, int64_t count) {
    int64_t off = m->num_state;
    m->num_state += count;
    return off;
}

static int64_t no_workspace(const sat_node *nd, int64_t n, int64_t lanes, int backward) {
    (void)nd;
    (void)n;
    (void)lanes;
    (void)backward;
    return 0;
}

/* ---- input C H W [act=NAME]: the shape, and the spec's default activation ---- */
static int32_t input_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    int32_t *dst[3] = {&nd->c, &nd->h, &nd->w};
    int32_t sizes = 0, spec_act = SAT_ACT_SILU;
    for (int32_t i = 0; i < count; i++) {
        if (args[i].key && sat__arg_is(&args[i], "act")) {
            if (sat__act_from_name(args[i].val, &spec_act) != SAT_OK)
                FAIL("model spec line %d: unknown activation '%s'", nd->line, args[i].val);
        } else if (args[i].key) {
            return sat__arg_unknown(nd, &args[i], err);
        } else if (sizes >= 3 || !sat__parse_int(args[i].val, 1, SAT__MAX_CHANNELS, dst[sizes++])) {
            FAIL("model spec line %d: input needs three positive sizes C H W, got '%s'", nd->line, args[i].val);
        }
    }
    if (sizes != 3) FAIL("model spec line %d: input needs three positive sizes C H W", nd->line);
    /* The input is the first line, so every act line after it sees a concrete activation. */
    if (m->opts.activation == SAT_ACT_DEFAULT) m->opts.activation = spec_act;
    return SAT_OK;
}

static int32_t input_infer(sat_model *m, sat_node *nd, char *err) {
    (void)m;
    (void)err;
    nd->size = (int64_t)nd->c * nd->h * nd->w;
    return SAT_OK;
}

static int32_t same_shape_infer(sat_model *m, sat_node *nd, char *err) {
    (void)err;
    const sat_node *in = input_of(m, nd);
    nd->c = in->c;
    nd->h = in->h;
    nd->w = in->w;
    return SAT_OK;
}

/* ---- normalize: mean= and std= with one value or one per channel, kept as constants ---- */
#define NORMALIZE_MAX_CHANNELS 64

static int32_t normalize_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    float v[2][NORMALIZE_MAX_CHANNELS]; /* mean, std */
    int got[2] = {0, 0};
    for (int32_t i = 0; i < count; i++) {
        const int is_std = sat__arg_is(&args[i], "std");
        if (!is_std && !sat__arg_is(&args[i], "mean")) return sat__arg_unknown(nd, &args[i], err);
        int32_t st = sat__arg_floats(nd, &args[i], v[is_std], NORMALIZE_MAX_CHANNELS, is_std, &got[is_std], err);
        if (st) return st;
    }
    const int c = input_of(m, nd)->c;
    for (int j = 0; j < 2; j++)
        if (got[j] != 1 && got[j] != c)
            FAIL("model spec line %d: normalize needs %s with 1 or %d values, got %d", nd->line, j ? "std" : "mean",
                 c, got[j]);
    if (c > NORMALIZE_MAX_CHANNELS)
        FAIL("model spec line %d: normalize supports at most %d channels", nd->line, NORMALIZE_MAX_CHANNELS);
    nd->k_mean = m->num_consts;
    nd->k_std = m->num_consts + c;
    float *consts = sat__alloc(m->ctx, sizeof(float) * (size_t)(m->num_consts + 2 * c));
    if (!consts) return sat__fail(err, SAT_E_NOMEM, "model spec: out of memory");
    if (m->consts) memcpy(consts, m->consts, sizeof(float) * (size_t)m->num_consts);
    for (int ch = 0; ch < c; ch++) {
        consts[nd->k_mean + ch] = v[0][got[0] == 1 ? 0 : ch];
        consts[nd->k_std + ch] = v[1][got[1] == 1 ? 0 : ch];
    }
    sat__dealloc(m->ctx, m->consts);
    m->consts = consts;
    m->num_consts += 2 * c;
    return SAT_OK;
}

static void normalize_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1,
                              float *y) {
    (void)x1;
    const float *k = r->m->consts;
    sat__normalize_forward(x0, k + nd->k_mean, k + nd->k_std, y, r->n, nd->c, (int64_t)nd->h * nd->w);
}

static void normalize_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                               const float *dy, float *dx0, float *dx1) {
    (void)x0, (void)y, (void)dx1;
    if (dx0)
        sat__normalize_backward(dy, r->m->consts + nd->k_std, dx0, r->n, nd->c,
                                (int64_t)nd->h * nd->w);
}

/* ---- dense and conv: one positional output size, bias=0|1; conv also k=, s=, p=, g= ---- */
static int32_t weighted_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    (void)m;
    const int conv = nd->op == SAT_OP_CONV;
    const char *op = sat__ops[nd->op].name;
    nd->has_bias = 1;
    nd->stride = 1;
    nd->groups = 1;
    for (int32_t i = 0; i < count; i++) {
        const sat_arg *a = &args[i];
        int32_t st = SAT_OK;
        if (!a->key) {
            if (nd->units || !sat__parse_int(a->val, 1, SAT__MAX_UNITS, &nd->units))
                FAIL("model spec line %d: %s needs one positive output size, got '%s'", nd->line, op, a->val);
        } else if (sat__arg_is(a, "bias")) {
            st = sat__arg_int(nd, a, 0, 1, &nd->has_bias, err);
        } else if (conv && sat__arg_is(a, "k")) {
            st = sat__arg_int(nd, a, 1, 64, &nd->k, err);
        } else if (conv && sat__arg_is(a, "s")) {
            st = sat__arg_int(nd, a, 1, 64, &nd->stride, err);
        } else if (conv && sat__arg_is(a, "p")) {
            st = sat__arg_int(nd, a, 0, 64, &nd->pad, err);
        } else if (conv && sat__arg_is(a, "g")) {
            st = sat__arg_int(nd, a, 1, SAT__MAX_CHANNELS, &nd->groups, err);
        } else {
            st = sat__arg_unknown(nd, a, err);
        }
        if (st) return st;
    }
    if (nd->units == 0) FAIL("model spec line %d: %s needs an output size", nd->line, op);
    if (conv && nd->k == 0) FAIL("model spec line %d: conv needs k=K", nd->line);
    return SAT_OK;
}

/* He-normal weights (std sqrt(2 / fan_in), suited to ReLU-like activations), zero biases. */
static void weighted_init(sat_model *m, const sat_node *nd, uint64_t seed) {
    const int64_t fan_in = nd->n_w / nd->units;
    sat__init_normal(m->params + nd->p_w, nd->p_w, nd->n_w, sqrtf(2.0f / (float)fan_in), seed);
    if (nd->p_b >= 0) sat__init_fill(m->params + nd->p_b, nd->units, 0.0f);
}

/* ---- dense (any input shape is read as a flat vector) ---- */
static int32_t dense_infer(sat_model *m, sat_node *nd, char *err) {
    (void)err;
    const sat_node *in = input_of(m, nd);
    nd->c = nd->units;
    nd->h = nd->w = 1;
    nd->n_w = (int64_t)nd->units * in->size;
    nd->p_w = add_params(m, nd->n_w);
    if (nd->has_bias) nd->p_b = add_params(m, nd->units);
    return SAT_OK;
}

static void dense_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1,
                          float *y) {
    (void)x1;
    const float *p = r->m->params;
    sat__dense_forward(r->m->ctx, x0, p + nd->p_w, nd->p_b >= 0 ? p + nd->p_b : NULL, y, r->n,
                       input_of(r->m, nd)->size, nd->units);
}

static void dense_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                           const float *dy, float *dx0, float *dx1) {
    (void)y, (void)dx1;
    sat_model *m = r->m;
    float *dw = r->param_grads ? r->grads + nd->p_w : NULL;
    float *db = r->param_grads && nd->p_b >= 0 ? r->grads + nd->p_b : NULL;
    if (dx0 || dw)
        sat__dense_backward(m->ctx, x0, m->params + nd->p_w, dy, dx0, dw, db, r->n,
                            input_of(m, nd)->size, nd->units);
}

/* Work on independent outputs goes to the worker pool in ranges of units: examples for
 * grouped convolution, inference batch norm and pooling (each output depends on its own
 * example only), channels for training-mode batch norm and grouped weight gradients (each
 * channel's sums are taken by one thread, in one order). So the split cannot change a bit.
 * A body gets the range [u0, u1). */
#define SPLIT_MIN_PARALLEL 32768

typedef void (*split_body)(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *out,
                           int64_t u0, int64_t u1);

typedef struct split_job {
    const sat_run *r;
    const sat_node *nd;
    const float *x0, *dy;
    float *out;
    split_body body;
} split_job;

static void split_range(void *arg, int64_t u0, int64_t u1) {
    const split_job *j = arg;
    j->body(j->r, j->nd, j->x0, j->dy, j->out, u0, u1);
}

static void split_run(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *out,
                      split_body body, int64_t units) {
    split_job j = {r, nd, x0, dy, out, body};
    if (r->m->ctx->num_threads <= 1 || r->n * nd->size < SPLIT_MIN_PARALLEL)
        split_range(&j, 0, units);
    else
        sat__parallel_for(r->m->ctx, units, split_range, &j);
}

/* ---- conv ---- */
static int32_t conv_infer(sat_model *m, sat_node *nd, char *err) {
    const sat_node *in = input_of(m, nd);
    nd->conv.c_in = in->c;
    nd->conv.h_in = in->h;
    nd->conv.w_in = in->w;
    nd->conv.c_out = nd->units;
    nd->conv.k = nd->k;
    nd->conv.stride = nd->stride;
    nd->conv.pad = nd->pad;
    nd->conv.direct = sat__conv_direct_available();
    if (!sat__conv_geom_init(&nd->conv))
        FAIL("model spec line %d: conv k=%d s=%d p=%d does not fit an input of %dx%d", nd->line,
             nd->k, nd->stride, nd->pad, in->h, in->w);
    if (in->c % nd->groups || nd->units % nd->groups)
        FAIL("model spec line %d: conv g=%d does not divide %d input and %d output channels", nd->line,
             nd->groups, in->c, nd->units);
    nd->c = nd->units;
    nd->h = nd->conv.h_out;
    nd->w = nd->conv.w_out;
    nd->n_w = (int64_t)nd->units * (in->c / nd->groups) * nd->k * nd->k;
    nd->p_w = add_params(m, nd->n_w);
    if (nd->has_bias) nd->p_b = add_params(m, nd->units);
    return SAT_OK;
}

static int64_t conv_workspace(const sat_node *nd, int64_t n, int64_t lanes, int backward) {
    return nd->groups > 1 ? 0 : sat__conv_workspace(&nd->conv, n, lanes, backward);
}

/* Grouped convolution (g=G > 1): direct loops, examples (forward, input gradient) or
 * output channels (weight gradient) split over the worker pool; each output sums in one
 * order whatever the split. */
static void grouped_fwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                             int64_t e0, int64_t e1) {
    (void)dy;
    sat__conv_grouped_forward(&nd->conv, nd->groups, x0 + e0 * input_of(r->m, nd)->size, sat__conv_weights(r, nd),
                              sat__conv_bias(r, nd), y + e0 * nd->size, e1 - e0);
}

static void grouped_data_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                              int64_t e0, int64_t e1) {
    (void)x0;
    const int64_t in_size = input_of(r->m, nd)->size;
    sat__conv_grouped_backward_data(&nd->conv, nd->groups, dy + e0 * nd->size, sat__conv_weights(r, nd),
                                    dx + e0 * in_size, e1 - e0);
}

static void grouped_weights_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy,
                                 float *unused, int64_t oc0, int64_t oc1) {
    (void)unused;
    sat__conv_grouped_backward_weights(&nd->conv, nd->groups, x0, dy, r->grads + nd->p_w,
                                       nd->p_b >= 0 ? r->grads + nd->p_b : NULL, r->n, oc0, oc1);
}

static void conv_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1,
                         float *y) {
    (void)x1;
    sat_model *m = r->m;
    sat__fold_conv(r, nd);
    if (nd->groups > 1) {
        split_run(r, nd, x0, NULL, y, grouped_fwd_body, r->n);
        return;
    }
    sat__conv_forward(m->ctx, &nd->conv, x0, sat__conv_weights(r, nd), sat__conv_bias(r, nd), y, r->n, r->e->ws,
                      r->e->ws_lanes, r->e->kind != SAT_EXEC_INFERENCE);
}

static void conv_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                          const float *dy, float *dx0, float *dx1) {
    (void)y, (void)dx1;
    sat_model *m = r->m;
    if (dx0) sat__fold_conv(r, nd); /* a folding pass has no parameter gradients */
    if (nd->groups > 1) {
        if (r->param_grads) split_run(r, nd, x0, dy, NULL, grouped_weights_body, nd->units);
        if (dx0) split_run(r, nd, NULL, dy, dx0, grouped_data_body, r->n);
        return;
    }
    if (r->param_grads)
        sat__conv_backward_weights(m->ctx, &nd->conv, x0, dy, r->grads + nd->p_w,
                                   nd->p_b >= 0 ? r->grads + nd->p_b : NULL, r->n, r->e->ws, r->e->ws_lanes);
    if (dx0)
        sat__conv_backward_data(m->ctx, &nd->conv, dy, sat__conv_weights(r, nd), dx0, r->n, r->e->ws,
                                r->e->ws_lanes);
}

static void bn_infer_fwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                              int64_t e0, int64_t e1) {
    (void)dy;
    const sat_model *m = r->m;
    const int64_t hw = (int64_t)nd->h * nd->w, off = e0 * nd->size;
    sat__bn_forward_infer(x0 + off, m->params + nd->p_gamma, m->params + nd->p_beta, m->state + nd->s_mean,
                          m->state + nd->s_var, y + off, e1 - e0, nd->c, hw);
}

static void bn_infer_bwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                              int64_t e0, int64_t e1) {
    const sat_model *m = r->m;
    const int64_t hw = (int64_t)nd->h * nd->w, off = e0 * nd->size;
    sat__bn_backward_infer(x0 + off, m->params + nd->p_gamma, m->state + nd->s_mean, m->state + nd->s_var,
                           dy + off, dx + off, NULL, NULL, e1 - e0, nd->c, hw);
}

/* ---- batch norm ---- */
static int32_t bn_infer(sat_model *m, sat_node *nd, char *err) {
    same_shape_infer(m, nd, err);
    nd->p_gamma = add_params(m, nd->c);
    nd->p_beta = add_params(m, nd->c);
    nd->s_mean = add_state(m, nd->c);
    nd->s_var = add_state(m, nd->c);
    return SAT_OK;
}

/* Unit scale, zero shift; running mean 0 and variance 1. */
static void bn_init(sat_model *m, const sat_node *nd, uint64_t seed) {
    (void)seed;
    sat__init_fill(m->params + nd->p_gamma, nd->c, 1.0f);
    sat__init_fill(m->params + nd->p_beta, nd->c, 0.0f);
    sat__init_fill(m->state + nd->s_mean, nd->c, 0.0f);
    sat__init_fill(m->state + nd->s_var, nd->c, 1.0f);
}

/* The batch mean and inverse std of a training-mode forward, then the scale and shift it
 * applied (for bn_recompute). */
static int64_t bn_saved(const sat_node *nd) { return 4 * (int64_t)nd->c; }

/* Training-mode batch norm over a range of channels [c0, c1). */
static void bn_train_fwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                              int64_t c0, int64_t c1) {
    (void)dy;
    sat_model *m = r->m;
    float *save = r->e->arena + r->e->a_save[nd - m->nodes];
    const int upd = r->bn == SAT__BN_TRAIN;
    sat__bn_forward_train(x0, m->params + nd->p_gamma, m->params + nd->p_beta, y, r->n, nd->c, (int64_t)nd->h * nd->w,
                          save, save + nd->c, save + 2 * nd->c, upd ? m->state + nd->s_mean : NULL,
                          upd ? m->state + nd->s_var : NULL, c0, c1);
}

static void bn_train_bwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                              int64_t c0, int64_t c1) {
    sat_model *m = r->m;
    const float *save = r->e->arena + r->e->a_save[nd - m->nodes];
    float *dg = r->param_grads ? r->grads + nd->p_gamma : NULL;
    float *db = r->param_grads ? r->grads + nd->p_beta : NULL;
    sat__bn_backward_train(x0, m->params + nd->p_gamma, dy, save, save + nd->c, dx, dg, db, r->n, nd->c,
                           (int64_t)nd->h * nd->w, c0, c1);
}

/* ---- synchronised batch norm: the same passes with the host summing the per-channel sums
 * across ranks between the pieces (sat_bn_reduce_fn). Scratch layout in shard->bn_sums:
 * forward [sums or means (c), count, centred sums of squares (c)]; backward [sums of dy (c),
 * sums of dy * xhat (c), count]. ---- */
static sat__shard *bn_shard(const sat_run *r) {
    sat__shard *sh = r->e->shard;
    return sh && sh->bn_reduce ? sh : NULL;
}

/* Sums count values across ranks; after a failure no further reduction is attempted (the
 * pass reports it, sat__exec_fwd / sat__exec_bwd). */
static int bn_reduce(sat__shard *sh, double *v, int64_t count) {
    if (sh->bn_status == 0) sh->bn_status = sh->bn_reduce(sh->bn_reduce_user, v, count);
    return sh->bn_status == 0;
}

static void bn_sum_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                        int64_t c0, int64_t c1) {
    (void)dy, (void)y;
    sat__bn_sums(x0, r->n, nd->c, (int64_t)nd->h * nd->w, c0, c1, r->e->shard->bn_sums);
}

static void bn_ss_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                       int64_t c0, int64_t c1) {
    (void)dy, (void)y;
    const double *mean = r->e->shard->bn_sums;
    sat__bn_centred_ss(x0, r->n, nd->c, (int64_t)nd->h * nd->w, c0, c1, mean, r->e->shard->bn_sums + nd->c + 1);
}

static void bn_norm_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                         int64_t c0, int64_t c1) {
    (void)dy;
    sat_model *m = r->m;
    const double *s = r->e->shard->bn_sums;
    float *save = r->e->arena + r->e->a_save[nd - m->nodes];
    const int upd = r->bn == SAT__BN_TRAIN;
    sat__bn_normalise(x0, m->params + nd->p_gamma, m->params + nd->p_beta, y, r->n, nd->c, (int64_t)nd->h * nd->w,
                      s, s + nd->c + 1, s[nd->c], save, save + nd->c, save + 2 * nd->c,
                      upd ? m->state + nd->s_mean : NULL, upd ? m->state + nd->s_var : NULL, c0, c1);
}

static void bn_sync_forward(const sat_run *r, const sat_node *nd, const float *x0, float *y) {
    sat__shard *sh = bn_shard(r);
    double *s = sh->bn_sums;
    const int64_t c = nd->c;
    split_run(r, nd, x0, NULL, y, bn_sum_body, c);
    s[c] = (double)(r->n * nd->h * nd->w);
    if (!bn_reduce(sh, s, c + 1)) return;
    for (int64_t ch = 0; ch < c; ch++) s[ch] /= s[c]; /* the global means */
    split_run(r, nd, x0, NULL, y, bn_ss_body, c);
    if (!bn_reduce(sh, s + c + 1, c)) return;
    split_run(r, nd, x0, NULL, y, bn_norm_body, c);
}

static void bn_gsum_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                         int64_t c0, int64_t c1) {
    (void)dx;
    const float *save = r->e->arena + r->e->a_save[nd - r->m->nodes];
    double *s = r->e->shard->bn_sums;
    sat__bn_grad_sums(x0, dy, save, save + nd->c, r->n, nd->c, (int64_t)nd->h * nd->w, c0, c1, s, s + nd->c);
}

static void bn_dx_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                       int64_t c0, int64_t c1) {
    const float *save = r->e->arena + r->e->a_save[nd - r->m->nodes];
    const double *s = r->e->shard->bn_sums;
    sat__bn_backward_from_sums(x0, r->m->params + nd->p_gamma, dy, save, save + nd->c, s, s + nd->c, s[2 * nd->c],
                               dx, r->n, nd->c, (int64_t)nd->h * nd->w, c0, c1);
}

/* dgamma and dbeta are this rank's sums (the host reduces the gradient block); dx needs
 * the sums over all ranks. The reduction runs even without dx, so that every rank makes
 * the same calls whatever its plan needs. */
static void bn_sync_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx) {
    sat__shard *sh = bn_shard(r);
    double *s = sh->bn_sums;
    const int64_t c = nd->c;
    split_run(r, nd, x0, dy, NULL, bn_gsum_body, c);
    if (r->param_grads)
        for (int64_t ch = 0; ch < c; ch++) {
            r->grads[nd->p_gamma + ch] = (float)s[c + ch];
            r->grads[nd->p_beta + ch] = (float)s[ch];
        }
    s[2 * c] = (double)(r->n * nd->h * nd->w);
    if (!bn_reduce(sh, s, 2 * c + 1) || !dx) return;
    split_run(r, nd, x0, dy, dx, bn_dx_body, c);
}

/* A batch-statistics forward's output computed again from its input with the scale and
 * shift that forward saved: its bits, and no second update of the running statistics. */
static void bn_apply_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                          int64_t e0, int64_t e1) {
    (void)dy;
    const float *save = r->e->arena + r->e->a_save[nd - r->m->nodes];
    const int64_t off = e0 * nd->size;
    sat__bn_apply(x0 + off, save + 2 * nd->c, y + off, e1 - e0, nd->c, (int64_t)nd->h * nd->w);
}

/* Inference mode: the running statistics (a batch norm not folded in a SAT__BN_FOLD pass). */
static int bn_running(const sat_run *r) { return r->bn == SAT__BN_INFER || r->bn == SAT__BN_FOLD; }

static void bn_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    (void)x1;
    if (bn_running(r))
        split_run(r, nd, x0, NULL, y, bn_infer_fwd_body, r->n);
    else if (r->recompute) /* the batch statistics of the forward, and no second update */
        split_run(r, nd, x0, NULL, y, bn_apply_body, r->n);
    else if (bn_shard(r))
        bn_sync_forward(r, nd, x0, y);
    else
        split_run(r, nd, x0, NULL, y, bn_train_fwd_body, nd->c);
}

static void bn_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                        const float *dy, float *dx0, float *dx1) {
    (void)y, (void)dx1;
    sat_model *m = r->m;
    const float *g = m->params + nd->p_gamma;
    float *dg = r->param_grads ? r->grads + nd->p_gamma : NULL;
    float *db = r->param_grads ? r->grads + nd->p_beta : NULL;
    int64_t hw = (int64_t)nd->h * nd->w;
    if (bn_running(r)) {
        if (!dg && !db) {
            if (dx0) split_run(r, nd, x0, dy, dx0, bn_infer_bwd_body, r->n);
        } else {
            sat__bn_backward_infer(x0, g, m->state + nd->s_mean, m->state + nd->s_var, dy, dx0, dg, db,
                                   r->n, nd->c, hw);
        }
    } else if (bn_shard(r)) {
        bn_sync_backward(r, nd, x0, dy, dx0);
    } else {
        split_run(r, nd, x0, dy, dx0, bn_train_bwd_body, nd->c);
    }
}

/* ---- activation: an optional kind (else the model's) and param= ---- */
static int32_t act_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    (void)m;
    nd->act = -1; /* the model's activation, set by act_infer */
    nd->act_param = NAN;
    int positional = 0;
    for (int32_t i = 0; i < count; i++) {
        const sat_arg *a = &args[i];
        if (!a->key) {
            if (positional++ || sat__act_from_name(a->val, &nd->act) != SAT_OK)
                FAIL("model spec line %d: unknown activation '%s'", nd->line, a->val);
        } else if (sat__arg_is(a, "param")) {
            int32_t st = sat__arg_positive(nd, a, &nd->act_param, err);
            if (st) return st;
        } else {
            return sat__arg_unknown(nd, a, err);
        }
    }
    return SAT_OK;
}

static int32_t act_infer(sat_model *m, sat_node *nd, char *err) {
    same_shape_infer(m, nd, err);
    if (nd->act < 0) {
        nd->act = m->opts.activation;
        if (isnan(nd->act_param)) nd->act_param = m->opts.act_param;
    }
    if (isnan(nd->act_param)) nd->act_param = sat__act_default_param(nd->act);
    if (nd->act == SAT_ACT_SMOOTHRELU) nd->p_alpha = add_params(m, 1);
    return SAT_OK;
}

/* SmoothReLU's alpha is a learnable parameter, starting at the layer's param. */
static void act_init(sat_model *m, const sat_node *nd, uint64_t seed) {
    (void)seed;
    if (nd->p_alpha >= 0) m->params[nd->p_alpha] = nd->act_param;
}

/* SmoothReLU's alpha is a learnable parameter; the others are fixed. */
static float act_param_now(const sat_model *m, const sat_node *nd) {
    return nd->p_alpha >= 0 ? m->params[nd->p_alpha] : nd->act_param;
}

/* Elementwise work goes to the worker pool in fixed blocks: every element's value depends
 * on that element only, so the split cannot change a bit, and small tensors stay on the
 * calling thread where a hand-off would cost more than it saves. */
#define EW_BLOCK 8192
#define EW_MIN_PARALLEL 32768

typedef struct ew_job {
    int kind; /* 0 act forward, 1 act backward, 2 add, 3 copy a to out and out2 (if set),
               * 4 sigmoid forward, 5 sigmoid backward */
    int32_t act;
    float param;
    const float *a, *b;
    float *out;
    int64_t count;
    float *out2;
} ew_job;

static void ew_range(void *arg, int64_t b0, int64_t b1) {
    const ew_job *j = arg;
    const int64_t lo = b0 * EW_BLOCK, hi = b1 * EW_BLOCK < j->count ? b1 * EW_BLOCK : j->count;
    if (lo >= hi) return;
    if (j->kind == 0)
        sat__act_forward(j->act, j->param, j->a + lo, j->out + lo, hi - lo);
    else if (j->kind == 1)
        sat__act_backward(j->act, j->param, j->a + lo, j->b + lo, j->out + lo, hi - lo);
    else if (j->kind == 2)
        sat__add(j->a + lo, j->b + lo, j->out + lo, hi - lo);
    else if (j->kind == 4)
        sat__sigmoid_forward(j->a + lo, j->out + lo, hi - lo);
    else if (j->kind == 5)
        sat__sigmoid_backward(j->a + lo, j->b + lo, j->out + lo, hi - lo);
    else if (j->out && j->out2)
        for (int64_t i = lo; i < hi; i++) j->out[i] = j->out2[i] = j->a[i];
    else if (j->out || j->out2)
        memcpy((j->out ? j->out : j->out2) + lo, j->a + lo, (size_t)(hi - lo) * sizeof(float));
}

static void ew_run(const sat_model *m, ew_job *j) {
    if (j->count < EW_MIN_PARALLEL || m->ctx->num_threads <= 1) {
        ew_range(j, 0, (j->count + EW_BLOCK - 1) / EW_BLOCK);
        return;
    }
    sat__parallel_for(m->ctx, (j->count + EW_BLOCK - 1) / EW_BLOCK, ew_range, j);
}

static void act_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    (void)x1;
    ew_job j = {0, nd->act, act_param_now(r->m, nd), x0, NULL, y, r->n * nd->size, NULL};
    ew_run(r->m, &j);
}

int sat__model_relu_from_output(const sat_model *m) {
    return m->opts.attack_backward_act == SAT_ACT_SAME && m->opts.train_backward_act == SAT_ACT_SAME;
}

/* Whether some later node's backward reads node j's output anyway. */
static int output_read_by_backward(const sat_model *m, int32_t j) {
    for (int32_t k = j + 1; k < m->num_nodes; k++) {
        const sat_node *c = &m->nodes[k];
        if ((c->in0 == j || c->in1 == j) && (c->alias || sat__ops[c->op].backward_reads_input)) return 1;
    }
    return 0;
}

int32_t sat__act_backward_source(const sat_exec *e, const sat_node *nd) {
    if (nd->op != SAT_OP_ACT) return SAT__ACT_READS_INPUT;
    const sat_model *m = e->m;
    const sat_node *bn = &m->nodes[nd->in0];
    const int after_bn = bn->op == SAT_OP_BN && !bn->alias && bn->consumers == 1 && bn->p_gamma >= 0;
    const int relu = nd->act == SAT_ACT_RELU && e->relu_from_output;
    /* A ReLU reads its output where that is kept anyway (a convolution follows); after a
     * batch norm whose output nothing else keeps, recomputing keeps less. */
    if (relu && (!after_bn || output_read_by_backward(m, (int32_t)(nd - m->nodes)))) return SAT__ACT_READS_OUTPUT;
    return after_bn ? SAT__ACT_RECOMPUTES_INPUT : SAT__ACT_READS_INPUT;
}

int sat__act_in_place(const sat_exec *e, const sat_node *nd) {
    return nd->op == SAT_OP_ACT && sat__act_backward_source(e, nd) != SAT__ACT_RECOMPUTES_INPUT;
}

/* The output of the batch norm feeding an act node (SAT__ACT_RECOMPUTES_INPUT), computed
 * again into y from the batch norm's input: in inference mode from the running statistics,
 * which have not changed since the forward; otherwise with bn_apply_body. Either way the
 * forward's bits. */
static void bn_recompute(const sat_run *r, const sat_node *bn, float *y) {
    const float *x = r->e->out_ptr[bn->in0];
    split_run(r, bn, x, NULL, y, bn_running(r) ? bn_infer_fwd_body : bn_apply_body, r->n);
}

static void act_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                         const float *dy, float *dx0, float *dx1) {
    (void)y, (void)dx1;
    sat_model *m = r->m;
    float own = act_param_now(m, nd);
    int64_t count = r->n * nd->size;
    const int32_t source = sat__act_backward_source(r->e, nd);
    if (source == SAT__ACT_READS_OUTPUT) {
        x0 = y; /* ReLU: y > 0 exactly where x > 0 (the input was not kept, plan.c) */
    } else if (source == SAT__ACT_RECOMPUTES_INPUT && !sat__bn_skipped(r, &m->nodes[nd->in0])) {
        /* The input was not kept (plan.c): computed again into the input gradient's region,
         * which the derivative then overwrites element by element. The batch norm's
         * parameters make that gradient needed by every plan, so dx0 is there. (A folded
         * batch norm's output is its convolution's, which is kept: x0 already.) */
        bn_recompute(r, &m->nodes[nd->in0], dx0);
        x0 = dx0;
    }
    if (r->param_grads && nd->p_alpha >= 0)
        r->grads[nd->p_alpha] = (float)sat__act_param_grad(nd->act, own, x0, dy, count);
    if (dx0) {
        ew_job j = {1, nd->act, own, x0, dy, dx0, count, NULL};
        if (r->bwd_act != SAT_ACT_SAME) {
            j.act = r->bwd_act;
            j.param = r->bwd_param;
        }
        ew_run(m, &j);
    }
}

/* ---- sigmoid: the gate of squeeze-excitation, a layer of its own (the attack plan's
 * backward override is for act layers only) ---- */
static void sigmoid_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    (void)x1;
    ew_job j = {4, 0, 0.0f, x0, NULL, y, r->n * nd->size, NULL};
    ew_run(r->m, &j);
}

static void sigmoid_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                             const float *dy, float *dx0, float *dx1) {
    (void)y, (void)dx1;
    if (!dx0) return;
    ew_job j = {5, 0, 0.0f, x0, dy, dx0, r->n * nd->size, NULL};
    ew_run(r->m, &j);
}

/* ---- pooling: k= and s=; maxpool also p= ---- */
static int32_t pool_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    (void)m;
    for (int32_t i = 0; i < count; i++) {
        const sat_arg *a = &args[i];
        int32_t st;
        if (sat__arg_is(a, "k"))
            st = sat__arg_int(nd, a, 1, 64, &nd->k, err);
        else if (sat__arg_is(a, "s"))
            st = sat__arg_int(nd, a, 1, 64, &nd->stride, err);
        else if (nd->op == SAT_OP_MAXPOOL && sat__arg_is(a, "p"))
            st = sat__arg_int(nd, a, 0, 32, &nd->pad, err);
        else
            st = sat__arg_unknown(nd, a, err);
        if (st) return st;
    }
    if (nd->k == 0) FAIL("model spec line %d: %s needs k=K", nd->line, sat__ops[nd->op].name);
    /* A window made only of padding would have no maximum (PyTorch's rule too). */
    if (2 * nd->pad > nd->k)
        FAIL("model spec line %d: maxpool p=%d is more than half of k=%d", nd->line, nd->pad, nd->k);
    if (nd->stride == 0) nd->stride = nd->k; /* no s=: windows side by side */
    return SAT_OK;
}

static int32_t pool_infer(sat_model *m, sat_node *nd, char *err) {
    const sat_node *in = input_of(m, nd);
    if (nd->k > in->h + 2 * nd->pad || nd->k > in->w + 2 * nd->pad)
        FAIL("model spec line %d: pooling window %d is larger than the input %dx%d", nd->line, nd->k,
             in->h + 2 * nd->pad, in->w + 2 * nd->pad);
    nd->c = in->c;
    nd->h = (in->h + 2 * nd->pad - nd->k) / nd->stride + 1;
    nd->w = (in->w + 2 * nd->pad - nd->k) / nd->stride + 1;
    return SAT_OK;
}

static void maxpool_fwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                             int64_t e0, int64_t e1) {
    (void)dy;
    const sat_node *in = input_of(r->m, nd);
    sat__maxpool_forward(x0 + e0 * in->size, y + e0 * nd->size, e1 - e0, nd->c, in->h, in->w, nd->k,
                         nd->stride, nd->pad, nd->h, nd->w);
}

static void maxpool_bwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                             int64_t e0, int64_t e1) {
    const sat_node *in = input_of(r->m, nd);
    sat__maxpool_backward(x0 + e0 * in->size, dy + e0 * nd->size, dx + e0 * in->size, e1 - e0, nd->c, in->h,
                          in->w, nd->k, nd->stride, nd->pad, nd->h, nd->w);
}

static void maxpool_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1,
                            float *y) {
    (void)x1;
    split_run(r, nd, x0, NULL, y, maxpool_fwd_body, r->n);
}

static void maxpool_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                             const float *dy, float *dx0, float *dx1) {
    (void)y, (void)dx1;
    if (dx0) split_run(r, nd, x0, dy, dx0, maxpool_bwd_body, r->n);
}

static void avgpool_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1,
                            float *y) {
    (void)x1;
    const sat_node *in = input_of(r->m, nd);
    sat__avgpool_forward(x0, y, r->n, nd->c, in->h, in->w, nd->k, nd->stride, nd->h, nd->w);
}

static void avgpool_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                             const float *dy, float *dx0, float *dx1) {
    (void)x0, (void)y, (void)dx1;
    const sat_node *in = input_of(r->m, nd);
    if (dx0) sat__avgpool_backward(dy, dx0, r->n, nd->c, in->h, in->w, nd->k, nd->stride, nd->h, nd->w);
}

/* ---- global average pooling ---- */
static int32_t gap_infer(sat_model *m, sat_node *nd, char *err) {
    (void)err;
    nd->c = input_of(m, nd)->c;
    nd->h = nd->w = 1;
    return SAT_OK;
}

static void gap_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    (void)x1;
    const sat_node *in = input_of(r->m, nd);
    sat__gap_forward(x0, y, r->n, nd->c, (int64_t)in->h * in->w);
}

static void gap_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                         const float *dy, float *dx0, float *dx1) {
    (void)x0, (void)y, (void)dx1;
    const sat_node *in = input_of(r->m, nd);
    if (dx0) sat__gap_backward(dy, dx0, r->n, nd->c, (int64_t)in->h * in->w);
}

/* ---- add and mul: the name of the other input ---- */
static int32_t second_input_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    const char *op = sat__ops[nd->op].name;
    for (int32_t i = 0; i < count; i++) {
        if (args[i].key) return sat__arg_unknown(nd, &args[i], err);
        const int src = i ? -1 : sat__spec_label(m, args[i].val);
        if (src < 0) FAIL("model spec line %d: %s of unknown layer name '%s'", nd->line, op, args[i].val);
        nd->in1 = src;
    }
    if (nd->in1 < 0) FAIL("model spec line %d: %s needs a layer name", nd->line, op);
    /* The executor hands one gradient to each distinct input. */
    if (nd->in1 == nd->in0) FAIL("model spec line %d: %s of a layer with itself", nd->line, op);
    return SAT_OK;
}

/* ---- residual add ---- */
static int32_t add_infer(sat_model *m, sat_node *nd, char *err) {
    const sat_node *a = input_of(m, nd), *b = &m->nodes[nd->in1];
    if (a->c != b->c || a->h != b->h || a->w != b->w)
        FAIL("model spec line %d: add of %dx%dx%d and %dx%dx%d (line %d): shapes differ", nd->line,
             a->c, a->h, a->w, b->c, b->h, b->w, b->line);
    return same_shape_infer(m, nd, err);
}

void sat__graph_add(const sat_model *m, const float *a, const float *b, float *out, int64_t count) {
    ew_job j = {2, 0, 0.0f, a, b, out, count, NULL};
    ew_run(m, &j);
}

static void add_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    ew_job j = {2, 0, 0.0f, x0, x1, y, r->n * nd->size, NULL};
    ew_run(r->m, &j);
}

static void add_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                         const float *dy, float *dx0, float *dx1) {
    (void)x0, (void)y;
    /* Both inputs receive dy: one read, two writes, split over the pool. */
    ew_job j = {3, 0, 0.0f, dy, NULL, dx0, r->n * nd->size, dx1};
    ew_run(r->m, &j);
}

/* ---- mul: a C x H x W input times a C x 1 x 1 one (a squeeze-excitation gate), in either
 * order, or two inputs of one shape elementwise ---- */
static int32_t mul_infer(sat_model *m, sat_node *nd, char *err) {
    const sat_node *a = input_of(m, nd), *b = &m->nodes[nd->in1];
    const sat_node *big = a->size >= b->size ? a : b, *gate = a->size >= b->size ? b : a;
    const int same = a->c == b->c && a->h == b->h && a->w == b->w;
    if (!same && !(gate->c == big->c && gate->h == 1 && gate->w == 1))
        FAIL("model spec line %d: mul of %dx%dx%d and %dx%dx%d (line %d): needs one shape, or C x H x W and C x 1 x 1",
             nd->line, a->c, a->h, a->w, b->c, b->h, b->w, b->line);
    nd->c = big->c;
    nd->h = big->h;
    nd->w = big->w;
    return SAT_OK;
}

/* Which input is the gate (1: x1), and the shape [c, hw] the product runs over: one
 * channel per value when the shapes are equal. */
typedef struct mul_shape {
    int gate_is_x1;
    int64_t c, hw;
} mul_shape;

static mul_shape mul_shape_of(const sat_model *m, const sat_node *nd) {
    const sat_node *a = input_of(m, nd), *b = &m->nodes[nd->in1];
    mul_shape s = {b->size <= a->size, nd->c, (int64_t)nd->h * nd->w};
    if (a->size == b->size) s.c = nd->size, s.hw = 1;
    return s;
}

/* Examples are independent: ranges of them go to the worker pool, so the split cannot
 * change a bit. */
typedef struct mul_job {
    mul_shape s;
    int64_t size;
    const float *x, *g, *dy;
    float *y, *dx, *dg; /* y for forward; dx, dg (may be NULL) for backward */
} mul_job;

static void mul_range(void *arg, int64_t e0, int64_t e1) {
    const mul_job *j = arg;
    const int64_t xo = e0 * j->size, go = e0 * j->s.c;
    if (j->y)
        sat__mul_channels_forward(j->x + xo, j->g + go, j->y + xo, e1 - e0, j->s.c, j->s.hw);
    else
        sat__mul_channels_backward(j->x + xo, j->g + go, j->dy + xo, j->dx ? j->dx + xo : NULL,
                                   j->dg ? j->dg + go : NULL, e1 - e0, j->s.c, j->s.hw);
}

static void mul_run(const sat_run *r, mul_job *j) {
    if (r->m->ctx->num_threads <= 1 || r->n * j->size < SPLIT_MIN_PARALLEL)
        mul_range(j, 0, r->n);
    else
        sat__parallel_for(r->m->ctx, r->n, mul_range, j);
}

static void mul_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    mul_job j = {mul_shape_of(r->m, nd), nd->size, x0, x1, NULL, y, NULL, NULL};
    if (!j.s.gate_is_x1) j.x = x1, j.g = x0;
    mul_run(r, &j);
}

static void mul_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                         const float *dy, float *dx0, float *dx1) {
    (void)y;
    /* The second input is kept too (backward_reads_input); the table's backward is handed
     * the first one only. */
    const float *x1 = r->e->out_ptr[nd->in1];
    mul_job j = {mul_shape_of(r->m, nd), nd->size, x0, x1, dy, NULL, dx0, dx1};
    if (!j.s.gate_is_x1) j.x = x1, j.g = x0, j.dx = dx1, j.dg = dx0;
    if (j.dx || j.dg) mul_run(r, &j);
}

/* ---- dropout: p=, active in training-mode forwards only; the identity in inference and
 * in the attack plan (whatever its batch-norm mode). per=example drops whole examples: on
 * a residual branch, stochastic depth (drop-connect) ---- */
static int32_t dropout_parse(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err) {
    (void)m;
    for (int32_t i = 0; i < count; i++) {
        const sat_arg *a = &args[i];
        int32_t st;
        if (sat__arg_is(a, "p")) {
            st = sat__arg_positive(nd, a, &nd->rate, err);
        } else if (sat__arg_is(a, "per")) {
            if (strcmp(a->val, "value") && strcmp(a->val, "example"))
                FAIL("model spec line %d: dropout per=%s is not 'value' or 'example'", nd->line, a->val);
            nd->per_example = strcmp(a->val, "example") == 0;
            st = SAT_OK;
        } else {
            st = sat__arg_unknown(nd, a, err);
        }
        if (st) return st;
    }
    if (!(nd->rate > 0.0f && nd->rate < 1.0f))
        FAIL("model spec line %d: dropout needs p=P with 0 < P < 1", nd->line);
    return SAT_OK;
}

/* The global index of the batch's first example: a data-parallel rank's masks are those
 * of its examples in the concatenated batch, as its random starts are. */
static int64_t example_base(const sat_run *r) { return r->e->shard ? r->e->shard->example_base : 0; }

/* Each node draws from its own stream under the forward's key: (seed, step) -> key, then
 * (node, example, element). */
static void dropout_fwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *y,
                             int64_t e0, int64_t e1) {
    (void)dy;
    sat__dropout_forward(r->e->run_dropout_key, (uint64_t)(nd - r->m->nodes), nd->rate, x0 + e0 * nd->size,
                         y + e0 * nd->size, example_base(r) + e0, e1 - e0, nd->size,
                         nd->per_example ? nd->size : 1);
}

static void dropout_bwd_body(const sat_run *r, const sat_node *nd, const float *x0, const float *dy, float *dx,
                             int64_t e0, int64_t e1) {
    (void)x0;
    sat__dropout_backward(r->e->run_dropout_key, (uint64_t)(nd - r->m->nodes), nd->rate, dy + e0 * nd->size,
                          dx + e0 * nd->size, example_base(r) + e0, e1 - e0, nd->size,
                          nd->per_example ? nd->size : 1);
}

static void dropout_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y) {
    (void)x1;
    if (r->bn == SAT__BN_TRAIN) {
        split_run(r, nd, x0, NULL, y, dropout_fwd_body, r->n);
    } else {
        ew_job j = {3, 0, 0.0f, x0, NULL, y, r->n * nd->size, NULL};
        ew_run(r->m, &j);
    }
}

static void dropout_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                             const float *dy, float *dx0, float *dx1) {
    (void)x0, (void)y, (void)dx1;
    if (!dx0) return;
    if (r->bn == SAT__BN_TRAIN) {
        split_run(r, nd, NULL, dy, dx0, dropout_bwd_body, r->n);
    } else {
        ew_job j = {3, 0, 0.0f, dy, NULL, dx0, r->n * nd->size, NULL};
        ew_run(r->m, &j);
    }
}

/* ---- flatten: NCHW is already flat per example; the output aliases the input ---- */
static int32_t flatten_infer(sat_model *m, sat_node *nd, char *err) {
    (void)err;
    nd->c = (int32_t)input_of(m, nd)->size;
    nd->h = nd->w = 1;
    nd->alias = 1;
    return SAT_OK;
}

static void flatten_forward(const sat_run *r, const sat_node *nd, const float *x0, const float *x1,
                            float *y) {
    (void)r, (void)nd, (void)x0, (void)x1, (void)y; /* aliased: nothing to do */
}

static void flatten_backward(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                             const float *dy, float *dx0, float *dx1) {
    (void)x0, (void)y, (void)dx1;
    if (dx0 && dx0 != dy) memcpy(dx0, dy, sizeof(float) * (size_t)(r->n * nd->size));
}

#define NO_WS no_workspace
const sat_op_info sat__ops[SAT_OP_COUNT] = {
    [SAT_OP_INPUT] = {.name = "input", .parse = input_parse, .infer = input_infer, .workspace = NO_WS},
    [SAT_OP_NORMALIZE] = {.name = "normalize", .parse = normalize_parse, .infer = same_shape_infer,
                          .workspace = NO_WS, .forward = normalize_forward, .backward = normalize_backward},
    [SAT_OP_DENSE] = {.name = "dense", .parse = weighted_parse, .infer = dense_infer, .init = weighted_init,
                      .workspace = NO_WS, .forward = dense_forward, .backward = dense_backward,
                      .backward_reads_input = 1},
    [SAT_OP_CONV] = {.name = "conv", .parse = weighted_parse, .infer = conv_infer, .init = weighted_init,
                     .workspace = conv_workspace, .forward = conv_forward, .backward = conv_backward,
                     .backward_reads_input = 1},
    [SAT_OP_BN] = {.name = "bn", .infer = bn_infer, .init = bn_init, .workspace = NO_WS, .forward = bn_forward,
                   .backward = bn_backward, .backward_reads_input = 1, .saved = bn_saved},
    [SAT_OP_ACT] = {.name = "act", .parse = act_parse, .infer = act_infer, .init = act_init, .workspace = NO_WS,
                    .forward = act_forward, .backward = act_backward, .backward_reads_input = 1},
    [SAT_OP_MAXPOOL] = {.name = "maxpool", .parse = pool_parse, .infer = pool_infer, .workspace = NO_WS,
                        .forward = maxpool_forward, .backward = maxpool_backward, .backward_reads_input = 1},
    [SAT_OP_AVGPOOL] = {.name = "avgpool", .parse = pool_parse, .infer = pool_infer, .workspace = NO_WS,
                        .forward = avgpool_forward, .backward = avgpool_backward},
    [SAT_OP_GAP] = {.name = "gap", .infer = gap_infer, .workspace = NO_WS, .forward = gap_forward,
                    .backward = gap_backward},
    [SAT_OP_ADD] = {.name = "add", .parse = second_input_parse, .infer = add_infer, .workspace = NO_WS,
                    .forward = add_forward, .backward = add_backward},
    [SAT_OP_FLATTEN] = {.name = "flatten", .infer = flatten_infer, .workspace = NO_WS,
                        .forward = flatten_forward, .backward = flatten_backward},
    [SAT_OP_SIGMOID] = {.name = "sigmoid", .infer = same_shape_infer, .workspace = NO_WS,
                        .forward = sigmoid_forward, .backward = sigmoid_backward, .backward_reads_input = 1},
    [SAT_OP_MUL] = {.name = "mul", .parse = second_input_parse, .infer = mul_infer, .workspace = NO_WS,
                    .forward = mul_forward, .backward = mul_backward, .backward_reads_input = 1},
    [SAT_OP_DROPOUT] = {.name = "dropout", .parse = dropout_parse, .infer = same_shape_infer, .workspace = NO_WS,
                        .forward = dropout_forward, .backward = dropout_backward},
};
