/* optimizer.c - SGD (momentum, Nesterov) and Adam/AdamW over the model's flat parameter and
 * gradient blocks, with the optimizer state in one flat block beside them.
 *
 * Update rules (PyTorch's, so that results can be compared):
 *   SGD:   g = grad + wd*mask*p;  buf = mu*buf + g;  d = nesterov ? g + mu*buf : buf;  p -= lr*d
 *          (mu = 0: d = g, no buffer)
 *   Adam:  g = grad + wd*mask*p (L2);  AdamW: p -= lr*wd*mask*p first (decoupled), g = grad
 *          m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  t = step+1
 *          p -= (lr / (1-b1^t)) * m / (sqrt(v / (1-b2^t)) + eps)
 * mask is 1 on the weights (sat_model_decay_mask) unless decay_biases (1 everywhere). It is
 * held as the sorted weight ranges, not a byte per parameter. */
#include "train/train.h"

#include "graph/graph.h" /* the weight ranges */

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sat_optimizer_opts optimizer_defaults(void) {
    sat_optimizer_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = SAT_OPT_SGD;
    d.lr = 0.1f;
    d.momentum = 0.9f;
    d.nesterov = 0;
    d.weight_decay = 5e-4f;
    d.decay_biases = 0;
    d.beta1 = 0.9f;
    d.beta2 = 0.999f;
    d.adam_eps = 1e-8f;
    d.schedule = SAT_SCHED_CONSTANT;
    d.total_steps = 0;
    d.warmup_steps = 0;
    d.peak_frac = 0.4f;
    d.gamma = 0.1f;
    d.num_milestones = 0;
    return d;
}

int32_t sat_optimizer_opts_init(sat_optimizer_opts *opts, uint32_t struct_size) {
    sat_optimizer_opts d = optimizer_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_optimizer_opts_init");
}

static int in_unit(float v) { return v >= 0.0f && v < 1.0f; } /* false for NaN */

int32_t sat__optimizer_check_opts(const sat_optimizer_opts *o, char *err) {
    const char *w = "sat_optimizer_opts";
    if (o->kind < SAT_OPT_SGD || o->kind > SAT_OPT_ADAMW)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown kind %d", w, o->kind);
    if (!(isfinite(o->lr) && o->lr > 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: lr must be finite and > 0 (got %g)", w, (double)o->lr);
    if (!in_unit(o->momentum))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: momentum %g is not in [0,1)", w, (double)o->momentum);
    if (o->nesterov != 0 && o->nesterov != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: nesterov must be 0 or 1", w);
    if (o->nesterov && o->kind == SAT_OPT_SGD && o->momentum == 0.0f)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: nesterov needs momentum > 0", w);
    if (!(isfinite(o->weight_decay) && o->weight_decay >= 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: weight_decay must be finite and >= 0", w);
    if (o->decay_biases != 0 && o->decay_biases != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: decay_biases must be 0 or 1", w);
    if (!in_unit(o->beta1) || !in_unit(o->beta2))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: beta1 and beta2 must be in [0,1)", w);
    if (!(isfinite(o->adam_eps) && o->adam_eps > 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: adam_eps must be finite and > 0", w);
    if (o->schedule < SAT_SCHED_CONSTANT || o->schedule > SAT_SCHED_ONECYCLE)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown schedule %d", w, o->schedule);
    if (o->reserved0 != 0 || o->reserved1 != 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: reserved fields must be 0", w);
    if (o->total_steps < 0 || o->warmup_steps < 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: total_steps and warmup_steps must be >= 0", w);
    if ((o->schedule == SAT_SCHED_COSINE || o->schedule == SAT_SCHED_ONECYCLE) && o->total_steps < 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: the %s schedule needs total_steps >= 1", w,
                         o->schedule == SAT_SCHED_COSINE ? "cosine" : "one-cycle");
    if (o->schedule == SAT_SCHED_ONECYCLE && !(o->peak_frac > 0.0f && o->peak_frac < 1.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: peak_frac %g is not in (0,1)", w, (double)o->peak_frac);
    if (o->schedule == SAT_SCHED_STEP) {
        if (!(isfinite(o->gamma) && o->gamma > 0.0f))
            return sat__fail(err, SAT_E_INVALID_ARG, "%s: gamma must be finite and > 0", w);
        if (o->num_milestones < 0 || o->num_milestones > SAT_MAX_MILESTONES)
            return sat__fail(err, SAT_E_INVALID_ARG, "%s: num_milestones %d is not in 0..%d", w,
                             o->num_milestones, SAT_MAX_MILESTONES);
        for (int32_t i = 0; i < o->num_milestones; i++) {
            if (o->milestones[i] < 1)
                return sat__fail(err, SAT_E_INVALID_ARG, "%s: milestone %d must be >= 1", w, i);
            if (i > 0 && o->milestones[i] <= o->milestones[i - 1])
                return sat__fail(err, SAT_E_INVALID_ARG, "%s: milestones must be strictly increasing "
                                 "(milestone %d = %lld after %lld)", w, i, (long long)o->milestones[i],
                                 (long long)o->milestones[i - 1]);
        }
    }
    return SAT_OK;
}

static int compare_start(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int32_t sat_optimizer_create(sat_model *model, const sat_optimizer_opts *opts, sat_optimizer **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_optimizer_create: out is NULL");
    *out = NULL;
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_optimizer_create: model is NULL");
    char err[SAT_ERRMSG_SIZE];
    sat_optimizer_opts o = optimizer_defaults();
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_optimizer_opts", err);
        if (st) return sat__fail_tls(st, "%s", err);
    }
    int32_t st = sat__optimizer_check_opts(&o, err);
    if (st) return sat__fail_tls(st, "%s", err);

    const sat_context *ctx = model->ctx;
    const int64_t np = model->num_params;
    int64_t count = 0;
    if (o.kind == SAT_OPT_SGD)
        count = o.momentum > 0.0f ? np : 0;
    else
        count = 2 * np;
    sat_optimizer *opt = sat__calloc(ctx, 1, sizeof *opt);
    if (!opt) return sat__fail_tls(SAT_E_NOMEM, "sat_optimizer_create: out of memory");
    opt->model = model;
    sat__child_attach(&model->live_children);
    opt->opts = o;
    opt->state_count = count;
    opt->state = sat__calloc(ctx, (size_t)(count ? count : 1), sizeof(float));
    int64_t weighted = 0;
    for (int i = 0; i < model->num_nodes; i++) weighted += model->nodes[i].p_w >= 0;
    opt->weight_ranges = sat__alloc(ctx, sizeof(int64_t) * (size_t)(2 * weighted + 1));
    if (!opt->state || !opt->weight_ranges) {
        sat_optimizer_destroy(opt);
        return sat__fail_tls(SAT_E_NOMEM, "sat_optimizer_create: out of memory");
    }
    for (int i = 0; i < model->num_nodes; i++) {
        const sat_node *nd = &model->nodes[i];
        if (nd->p_w < 0) continue;
        opt->weight_ranges[2 * opt->num_weight_ranges] = nd->p_w;
        opt->weight_ranges[2 * opt->num_weight_ranges + 1] = nd->p_w + nd->n_w;
        opt->num_weight_ranges++;
    }
    qsort(opt->weight_ranges, (size_t)opt->num_weight_ranges, 2 * sizeof(int64_t), compare_start);
    *out = opt;
    return SAT_OK;
}

static int32_t optimizer_destroy(sat_optimizer *opt, const char *fn) {
    if (!opt) return SAT_OK;
    int32_t st = sat__check_no_children(&opt->live_children, opt->err, fn, "trainers");
    if (st) return st;
    sat_model *model = opt->model;
    const sat_context *ctx = model->ctx;
    sat__dealloc(ctx, opt->state);
    sat__dealloc(ctx, opt->weight_ranges);
    sat__dealloc(ctx, opt->lr_scale);
    sat__dealloc(ctx, opt->frozen);
    sat__dealloc(ctx, opt);
    sat__child_detach(&model->live_children);
    return SAT_OK;
}

void sat_optimizer_destroy(sat_optimizer *opt) { (void)optimizer_destroy(opt, "sat_optimizer_destroy"); }

int32_t sat_optimizer_destroy_checked(sat_optimizer *opt) {
    return optimizer_destroy(opt, "sat_optimizer_destroy_checked");
}

const char *sat_optimizer_last_error(const sat_optimizer *opt) { return opt ? opt->err : ""; }

/* The updates run twice: first without writing, to find out whether any new parameter or
 * state value would be NaN or Inf (then nothing changes), then for real with the same
 * arithmetic. So a step either happens whole or not at all, without a copy of the
 * parameters and the state to roll back to. Each runs over parameters [a, b), with weight
 * decay where decay is set, and returns 1 if every new value is finite. */
static int sgd_update(sat_optimizer *opt, float lr, int write, int64_t a, int64_t b, int decay) {
    const sat_optimizer_opts *o = &opt->opts;
    float *p = opt->model->params;
    const float *g = opt->model->grads;
    const uint8_t *frozen = opt->frozen; /* NULL: none frozen */
    const float *scale = opt->lr_scale; /* NULL: all 1 */
    const float wd = decay ? o->weight_decay : 0.0f, mu = o->momentum;
    float *buf = opt->state;
    int finite = 1;
    for (int64_t i = a; i < b; i++) {
        if (frozen && frozen[i]) continue;
        float d = g[i], bi = 0.0f;
        if (decay) d += wd * p[i];
        if (mu > 0.0f) {
            bi = mu * buf[i] + d;
            d = o->nesterov ? d + mu * bi : bi;
        }
        const float pn = p[i] - lr * (scale ? scale[i] : 1.0f) * d; /* a scale of 1 gives lr's own bits */
        if (write) {
            if (mu > 0.0f) buf[i] = bi;
            p[i] = pn;
        } else {
            finite &= isfinite(pn) && isfinite(bi);
        }
    }
    return finite;
}

static int adam_update(sat_optimizer *opt, float lr, int write, int64_t a, int64_t b, int decay) {
    const sat_optimizer_opts *o = &opt->opts;
    float *p = opt->model->params;
    const float *g = opt->model->grads;
    const uint8_t *frozen = opt->frozen; /* NULL: none frozen */
    const float *scale = opt->lr_scale; /* NULL: all 1 */
    const int64_t np = opt->model->num_params;
    float *m = opt->state, *v = opt->state + np;
    const double t = (double)(opt->step + 1);
    const float step_size = (float)((double)lr / (1.0 - pow((double)o->beta1, t)));
    const float inv_bc2_sqrt = (float)(1.0 / sqrt(1.0 - pow((double)o->beta2, t)));
    const float b1 = o->beta1, b2 = o->beta2, wd = o->weight_decay, eps = o->adam_eps;
    const int decoupled = o->kind == SAT_OPT_ADAMW;
    int finite = 1;
    for (int64_t i = a; i < b; i++) {
        if (frozen && frozen[i]) continue;
        const float si = scale ? scale[i] : 1.0f;
        float gi = g[i], pn = p[i];
        if (decay) {
            if (decoupled)
                pn -= lr * si * wd * pn;
            else
                gi += wd * pn;
        }
        const float mn = b1 * m[i] + (1.0f - b1) * gi;
        const float vn = b2 * v[i] + (1.0f - b2) * gi * gi;
        pn -= step_size * si * mn / (sqrtf(vn) * inv_bc2_sqrt + eps);
        if (write) {
            m[i] = mn;
            v[i] = vn;
            p[i] = pn;
        } else {
            finite &= isfinite(pn) && isfinite(mn) && isfinite(vn);
        }
    }
    return finite;
}

typedef int (*update_fn)(sat_optimizer *opt, float lr, int write, int64_t a, int64_t b, int decay);

/* update over the whole block, range by range in order: the weights with decay, the rest
 * with decay only under decay_biases. */
static int update_all(sat_optimizer *opt, update_fn update, float lr, int write) {
    const int rest = opt->opts.decay_biases;
    int finite = 1;
    int64_t pos = 0;
    for (int64_t r = 0; r < opt->num_weight_ranges; r++) {
        const int64_t a = opt->weight_ranges[2 * r], b = opt->weight_ranges[2 * r + 1];
        finite &= update(opt, lr, write, pos, a, rest);
        finite &= update(opt, lr, write, a, b, 1);
        pos = b;
    }
    finite &= update(opt, lr, write, pos, opt->model->num_params, rest);
    return finite;
}

int32_t sat_optimizer_step(sat_optimizer *opt) {
    if (!opt) return SAT_E_INVALID_ARG;
    sat_model *m = opt->model;
    /* Checked before anything is written, so a bad gradient leaves every block as it was. */
    if (!sat__all_finite(m->grads, m->num_params))
        return sat__fail(opt->err, SAT_E_NUMERIC, "sat_optimizer_step: the gradient contains NaN or Inf");
    const float lr = (float)sat__schedule_lr(&opt->opts, opt->step);
    /* lr 0 (the end of a cosine or one-cycle run) still advances the moments, as in PyTorch. */
    const update_fn update = opt->opts.kind == SAT_OPT_SGD ? sgd_update : adam_update;
    if (!update_all(opt, update, lr, 0))
        return sat__fail(opt->err, SAT_E_NUMERIC,
                         "sat_optimizer_step: the update would make a parameter or the optimizer state NaN or Inf");
    update_all(opt, update, lr, 1);
    opt->step++;
    return SAT_OK;
}

float sat_optimizer_lr(const sat_optimizer *opt) {
    if (!opt) return NAN;
    return (float)sat__schedule_lr(&opt->opts, opt->step);
}

int64_t sat_optimizer_step_count(const sat_optimizer *opt) { return opt ? opt->step : -1; }

float *sat_optimizer_state(sat_optimizer *opt, int64_t *count) {
    if (count) *count = opt ? opt->state_count : 0;
    return opt ? opt->state : NULL;
}

int32_t sat_optimizer_set_step_count(sat_optimizer *opt, int64_t step) {
    if (!opt) return SAT_E_INVALID_ARG;
    if (step < 0)
        return sat__fail(opt->err, SAT_E_INVALID_ARG, "sat_optimizer_set_step_count: step %lld is negative",
                         (long long)step);
    opt->step = step;
    return SAT_OK;
}
