/* trainer.c - the adversarial training step: craft the batch (attack plan), then update
 * the weights from it (train plan + optimizer). Every buffer is allocated at creation for
 * the model's max_batch. A step that fails - NaN included - leaves the handles exactly as
 * they were: it snapshots the running statistics (and for Free-AT, which updates between
 * its replays, the parameters, the optimizer state and the perturbation), and the update
 * itself either happens whole or changes nothing (sat_optimizer_step). The step is two halves,
 * also public for data parallelism: the gradient (sat_train_compute) and the update
 * (sat_train_apply), between which a host may reduce the gradient block across processes. */
#include "train/train.h"

#include <math.h>
#include <string.h>

#define MAX_ATTACK_STEPS 100000
#define MAX_REPLAYS 1000

static sat_trainer_opts trainer_defaults(void) {
    sat_trainer_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.method = SAT_TRAIN_PGD;
    d.norm = SAT_NORM_LINF;
    d.eps = 8.0f / 255.0f;
    d.step_size = 0.0f; /* automatic */
    d.steps = 7;
    d.random_start = 1;
    d.clean_fraction = 0.0f;
    d.attack_bn_mode = -1;
    d.label_smoothing = 0.0f;
    d.free_replays = 4;
    d.trades_beta = 6.0f;
    d.seed = SAT_SEED_CONTEXT;
    d.rank = 0;
    d.rank_count = 1;
    return d;
}

int32_t sat_trainer_opts_init(sat_trainer_opts *opts, uint32_t struct_size) {
    sat_trainer_opts d = trainer_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_trainer_opts_init");
}

static int32_t check_opts(const sat_trainer_opts *o, char *err) {
    const char *w = "sat_trainer_opts";
    if (o->method < SAT_TRAIN_STANDARD || o->method > SAT_TRAIN_TRADES)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown method %d", w, o->method);
    if (o->norm != SAT_NORM_LINF && o->norm != SAT_NORM_L2)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown norm %d", w, o->norm);
    if (o->method != SAT_TRAIN_STANDARD && !(o->eps > 0.0f && isfinite(o->eps)))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: eps must be finite and > 0 (got %g)", w, (double)o->eps);
    if (o->norm == SAT_NORM_LINF && o->method != SAT_TRAIN_STANDARD && o->eps > 1.0f)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: an Linf eps above 1 (got %g) covers every image", w,
                         (double)o->eps);
    if (!(isfinite(o->step_size) && o->step_size >= 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: step_size must be finite and > 0 (or 0 for the automatic step)", w);
    if ((o->method == SAT_TRAIN_PGD || o->method == SAT_TRAIN_TRADES) &&
        (o->steps < 1 || o->steps > MAX_ATTACK_STEPS))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: steps %d is not in 1..%d", w, o->steps, MAX_ATTACK_STEPS);
    if (o->random_start != 0 && o->random_start != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: random_start must be 0 or 1", w);
    if (!(o->clean_fraction >= 0.0f && o->clean_fraction <= 1.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: clean_fraction %g is not in [0,1]", w,
                         (double)o->clean_fraction);
    if (o->clean_fraction > 0.0f && (o->method == SAT_TRAIN_FREE || o->method == SAT_TRAIN_TRADES))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: clean_fraction is for PGD and Fast training "
                         "(TRADES has its own clean term; Free-AT replays one batch)", w);
    if (o->attack_bn_mode < -1 || o->attack_bn_mode > SAT_BN_BATCH)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: attack_bn_mode %d is not -1, 0 or 1", w, o->attack_bn_mode);
    if (!(o->label_smoothing >= 0.0f && o->label_smoothing < 1.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: label_smoothing must be in [0,1)", w);
    if (o->free_replays < 1 || o->free_replays > MAX_REPLAYS)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: free_replays %d is not in 1..%d", w, o->free_replays,
                         MAX_REPLAYS);
    if (!(isfinite(o->trades_beta) && o->trades_beta >= 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: trades_beta must be finite and >= 0", w);
    if (o->rank_count < 1 || o->rank < 0 || o->rank >= o->rank_count)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: rank %d is not in 0..rank_count-1 (rank_count %d, at least 1)",
                         w, o->rank, o->rank_count);
    return SAT_OK;
}

void sat_trainer_destroy(sat_trainer *t) {
    if (!t) return;
    sat_model *model = t->model;
    sat_optimizer *opt = t->opt;
    const sat_context *ctx = model->ctx;
    float *bufs[] = {t->delta, t->delta_backup, t->x_adv, t->grad_x, t->dlogits, t->logits_a,
                     t->logits_b, t->grad_acc, t->param_backup, t->opt_backup, t->bn_backup};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sat__dealloc(ctx, bufs[i]);
    sat__dealloc(ctx, t->attack_work);
    sat__dealloc(ctx, t->shard.bn_sums);
    sat__exec_free(t->clean_exec);
    sat__dealloc(ctx, t);
    sat__child_detach(&model->live_children);
    sat__child_detach(&opt->live_children);
}

static float *alloc_floats(const sat_context *ctx, int64_t count) {
    return sat__calloc(ctx, (size_t)(count > 0 ? count : 1), sizeof(float));
}

/* Scratch of synchronised batch norm: two sums per channel of the widest layer, and a count. */
static double *alloc_bn_sums(const sat_model *m) {
    int64_t widest = 0;
    for (int32_t i = 0; i < m->num_nodes; i++)
        if (m->nodes[i].op == SAT_OP_BN && m->nodes[i].c > widest) widest = m->nodes[i].c;
    return sat__calloc(m->ctx, (size_t)(2 * widest + 1), sizeof(double));
}

int32_t sat_trainer_create(sat_model *model, sat_optimizer *opt, const sat_trainer_opts *opts,
                           sat_trainer **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_trainer_create: out is NULL");
    *out = NULL;
    if (!model || !opt) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_trainer_create: model and opt must not be NULL");
    if (opt->model != model)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_trainer_create: the optimizer was created for another model");
    char err[SAT_ERRMSG_SIZE];
    sat_trainer_opts o = trainer_defaults();
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_trainer_opts", err);
        if (st) return sat__fail_tls(st, "%s", err);
    }
    o.seed = sat__seed(model->ctx, o.seed);
    int32_t st = check_opts(&o, err);
    if (st) return sat__fail_tls(st, "%s", err);
    const int64_t batch_floats = model->max_batch * model->in_size;

    const sat_context *ctx = model->ctx;
    sat_trainer *t = sat__calloc(ctx, 1, sizeof *t);
    if (!t) return sat__fail_tls(SAT_E_NOMEM, "sat_trainer_create: out of memory");
    t->model = model;
    t->opt = opt;
    sat__child_attach(&model->live_children);
    sat__child_attach(&opt->live_children);
    t->opts = o;
    t->seed = o.seed;
    t->rng_counter = 0;
    t->call = "sat_train_step";
    const int64_t logit_floats = model->max_batch * model->classes;
    t->x_adv = alloc_floats(ctx, batch_floats);
    t->grad_x = alloc_floats(ctx, batch_floats);
    t->dlogits = alloc_floats(ctx, logit_floats);
    t->logits_a = alloc_floats(ctx, logit_floats);
    t->logits_b = alloc_floats(ctx, logit_floats);
    /* Parameter-sized blocks only where the method needs them: a second gradient for TRADES
     * and a clean term, and, for Free-AT, which updates between its replays, the copy of the
     * parameters and the optimizer state a failed replay rolls back to. Other methods change
     * them only in sat_optimizer_step, which changes nothing when it fails. */
    const int two_grads = o.method == SAT_TRAIN_TRADES || o.clean_fraction > 0.0f;
    if (two_grads) t->grad_acc = alloc_floats(ctx, model->num_params);
    t->bn_backup = alloc_floats(ctx, model->num_state);
    if (o.method == SAT_TRAIN_FREE) {
        t->delta = alloc_floats(ctx, batch_floats);
        t->delta_backup = alloc_floats(ctx, batch_floats);
        t->param_backup = alloc_floats(ctx, model->num_params);
        t->opt_backup = alloc_floats(ctx, opt->state_count);
    }
    const int crafts = o.method == SAT_TRAIN_PGD || o.method == SAT_TRAIN_FAST || o.method == SAT_TRAIN_TRADES;
    if (crafts) t->attack_work = sat__alloc(ctx, sat__craft_work_bytes(t));
    t->shard.bn_reduce = o.bn_reduce;
    t->shard.bn_reduce_user = o.bn_reduce_user;
    if (o.bn_reduce) t->shard.bn_sums = alloc_bn_sums(model);
    if (o.method == SAT_TRAIN_TRADES &&
        sat__exec_create(model, SAT_EXEC_TRAIN, model->max_batch, 0, &t->clean_exec, t->err) != SAT_OK) {
        sat_trainer_destroy(t);
        return sat__fail_tls(SAT_E_NOMEM, "sat_trainer_create: out of memory for TRADES' second execution");
    }
    if (!t->x_adv || !t->grad_x || !t->dlogits || !t->logits_a || !t->logits_b || (two_grads && !t->grad_acc) ||
        !t->bn_backup ||
        (o.method == SAT_TRAIN_FREE && (!t->delta || !t->delta_backup || !t->param_backup || !t->opt_backup)) ||
        (crafts && !t->attack_work) ||
        (o.bn_reduce && !t->shard.bn_sums)) {
        sat_trainer_destroy(t);
        return sat__fail_tls(SAT_E_NOMEM, "sat_trainer_create: out of memory");
    }
    *out = t;
    return SAT_OK;
}

const char *sat_trainer_last_error(const sat_trainer *t) { return t ? t->err : ""; }

/* ---- snapshot and rollback ---- */

typedef struct snapshot {
    int64_t opt_step;
} snapshot;

/* What a failed step must give back: the running statistics (a forward moves them), and
 * for Free-AT the parameters, the optimizer state and the perturbation. */
static void take_snapshot(sat_trainer *t, snapshot *s) {
    sat_model *m = t->model;
    if (t->param_backup) {
        memcpy(t->param_backup, m->params, sizeof(float) * (size_t)m->num_params);
        memcpy(t->opt_backup, t->opt->state, sizeof(float) * (size_t)t->opt->state_count);
    }
    memcpy(t->bn_backup, m->state, sizeof(float) * (size_t)m->num_state);
    s->opt_step = t->opt->step;
    if (t->delta) {
        t->delta_n_backup = t->delta_n;
        memcpy(t->delta_backup, t->delta, sizeof(float) * (size_t)(t->delta_n * m->in_size));
    }
}

static void rollback(sat_trainer *t, const snapshot *s) {
    sat_model *m = t->model;
    if (t->param_backup) {
        memcpy(m->params, t->param_backup, sizeof(float) * (size_t)m->num_params);
        memcpy(t->opt->state, t->opt_backup, sizeof(float) * (size_t)t->opt->state_count);
    }
    memcpy(m->state, t->bn_backup, sizeof(float) * (size_t)m->num_state);
    t->opt->step = s->opt_step;
    if (t->delta) {
        t->delta_n = t->delta_n_backup;
        memcpy(t->delta, t->delta_backup, sizeof(float) * (size_t)(t->delta_n * m->in_size));
    }
}

/* Optimizer update from the model's gradient block; on failure (a non-finite gradient or
 * result) sat_optimizer_step has changed nothing. */
static int32_t apply_update(sat_trainer *t) {
    int32_t st = sat_optimizer_step(t->opt);
    return st ? sat__fail(t->err, st, "%s: %s", t->call, t->opt->err) : SAT_OK;
}

/* Forward in `bn` mode on xin, CE (label smoothing) scaled by weight/n into t->dlogits. */
static int32_t ce_loss(sat_trainer *t, const float *xin, const int32_t *labels, int64_t n, int32_t bn,
                       float weight, double *loss_sum, int64_t *correct) {
    sat_model *m = t->model;
    const float *logits;
    int32_t st = sat__forward(m, xin, n, bn, &logits);
    if (st) return sat__fail(t->err, st, "%s: %s", t->call, m->err);
    *loss_sum = sat__softmax_ce(logits, labels, n, m->classes, t->opts.label_smoothing, NULL, t->dlogits,
                                weight / (float)n);
    if (!isfinite(*loss_sum))
        return sat__fail(t->err, SAT_E_NUMERIC, "%s: the training loss is not finite", t->call);
    *correct = sat__count_correct(logits, labels, n, m->classes);
    return SAT_OK;
}

/* ce_loss, then the backward of the train plan into the gradient block (dx: also the input
 * gradient); not the step's last backward (sat__last_backward). */
static int32_t ce_backward(sat_trainer *t, const float *xin, const int32_t *labels, int64_t n, int32_t bn,
                           float weight, float *dx, double *loss_sum, int64_t *correct) {
    sat_model *m = t->model;
    int32_t st = ce_loss(t, xin, labels, n, bn, weight, loss_sum, correct);
    if (st) return st;
    st = sat__backward(m, SAT__PLAN_TRAIN, t->dlogits, dx);
    if (st) return sat__fail(t->err, st, "%s: %s", t->call, m->err);
    return SAT_OK;
}

int32_t sat__last_backward(sat_trainer *t, sat_exec *e, const float *addend) {
    sat__grad_handout h = {addend, t->shard.grad_ready, t->shard.grad_ready_user, 0};
    const int32_t st = sat__exec_bwd_handout(e, t->dlogits, t->model->grads, &h);
    return st ? sat__fail(t->err, st, "%s: %s", t->call, e->err) : SAT_OK;
}

static float default_step(const sat_trainer *t) {
    if (t->opts.step_size > 0.0f) return t->opts.step_size;
    switch (t->opts.method) {
    case SAT_TRAIN_FAST: return 1.25f * t->opts.eps;
    case SAT_TRAIN_FREE: return t->opts.eps;
    default: return 2.5f * t->opts.eps / (float)t->opts.steps;
    }
}

/* STANDARD, PGD and FAST: the gradient of one batch into the model's gradient block. */
static int32_t compute_single(sat_trainer *t, const float *x, const int32_t *labels, int64_t n,
                              sat_step_stats *s) {
    sat_model *m = t->model;
    const int32_t method = t->opts.method;
    const float *xin = x;
    int32_t st;
    if (method == SAT_TRAIN_PGD || method == SAT_TRAIN_FAST) {
        const int32_t steps = method == SAT_TRAIN_PGD ? t->opts.steps : 1;
        st = sat__craft_ce(t, x, labels, n, steps, default_step(t), t->opts.random_start, t->x_adv);
        if (st) return st;
        xin = t->x_adv;
    }
    const float c = method == SAT_TRAIN_STANDARD ? 0.0f : t->opts.clean_fraction;
    double adv_sum = 0.0;
    int64_t adv_correct = 0;
    if (c == 0.0f) { /* the adversarial backward is the step's last */
        st = ce_loss(t, xin, labels, n, SAT__BN_TRAIN, 1.0f, &adv_sum, &adv_correct);
        if (st == SAT_OK) st = sat__last_backward(t, m->own_exec, NULL);
    } else {
        st = ce_backward(t, xin, labels, n, SAT__BN_TRAIN, 1.0f - c, NULL, &adv_sum, &adv_correct);
    }
    if (st) return st;
    double loss = (1.0 - (double)c) * adv_sum / (double)n;
    s->adv_accuracy = (float)adv_correct / (float)n;
    if (method == SAT_TRAIN_STANDARD) s->clean_accuracy = s->adv_accuracy;
    if (c > 0.0f) {
        /* The clean term uses batch statistics without moving the running ones again. */
        memcpy(t->grad_acc, m->grads, sizeof(float) * (size_t)m->num_params);
        double clean_sum = 0.0;
        int64_t clean_correct = 0;
        st = ce_loss(t, x, labels, n, SAT__BN_BATCH, c, &clean_sum, &clean_correct);
        if (st == SAT_OK) st = sat__last_backward(t, m->own_exec, t->grad_acc);
        if (st) return st;
        loss += (double)c * clean_sum / (double)n;
        s->clean_accuracy = (float)clean_correct / (float)n;
    }
    s->loss = (float)loss;
    s->lr = sat_optimizer_lr(t->opt);
    return sat__progress_add(t->progress, n);
}

/* Free-AT: m replays of the batch, each one backward giving parameter and input gradients,
 * one weight update and one step of the persistent perturbation. */
static int32_t step_free(sat_trainer *t, const float *x, const int32_t *labels, int64_t n, sat_step_stats *s) {
    const int64_t d = t->model->in_size;
    const float eps = t->opts.eps, alpha = default_step(t);
    if (t->delta_n != n) { /* a batch of another size starts from zero */
        memset(t->delta, 0, sizeof(float) * (size_t)(n * d));
        t->delta_n = n;
    }
    double loss = 0.0, acc = 0.0;
    for (int32_t r = 0; r < t->opts.free_replays; r++) {
        for (int64_t i = 0; i < n * d; i++) {
            const float v = x[i] + t->delta[i];
            t->x_adv[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        }
        double sum = 0.0;
        int64_t correct = 0;
        int32_t st = ce_backward(t, t->x_adv, labels, n, SAT__BN_TRAIN, 1.0f, t->grad_x, &sum, &correct);
        if (st) return st;
        if (!sat__all_finite(t->grad_x, n * d))
            return sat__fail(t->err, SAT_E_NUMERIC, "%s: the input gradient is not finite", t->call);
        s->lr = sat_optimizer_lr(t->opt);
        if ((st = apply_update(t))) return st;
        /* delta moves from the origin of the ball (x itself), as in Shafahi et al. */
        sat__ascent_step(t->opts.norm, alpha, t->grad_x, t->delta, n, d);
        for (int64_t e = 0; e < n; e++) {
            float *de = t->delta + e * d;
            if (t->opts.norm == SAT_NORM_L2) {
                double ss = 0.0;
                for (int64_t j = 0; j < d; j++) ss += (double)de[j] * (double)de[j];
                if (ss > (double)eps * (double)eps) {
                    const float k = (float)((double)eps / sqrt(ss));
                    for (int64_t j = 0; j < d; j++) de[j] *= k;
                }
            } else {
                for (int64_t j = 0; j < d; j++) de[j] = de[j] < -eps ? -eps : (de[j] > eps ? eps : de[j]);
            }
        }
        loss += sum / (double)n;
        acc += (double)correct / (double)n;
        if ((st = sat__progress_add(t->progress, n))) return st;
    }
    s->loss = (float)(loss / t->opts.free_replays);
    s->adv_accuracy = (float)(acc / t->opts.free_replays);
    return SAT_OK;
}

static int32_t compute_trades(sat_trainer *t, const float *x, const int32_t *labels, int64_t n,
                              sat_step_stats *s) {
    int32_t st = sat__craft_kl(t, x, labels, n, t->opts.steps, default_step(t), t->x_adv);
    if (st) return st;
    double loss = 0.0;
    int64_t cc = 0, ca = 0;
    st = sat__trades_loss_grad(t, x, t->x_adv, labels, n, SAT__BN_TRAIN, &loss, &cc, &ca);
    if (st) return st;
    s->loss = (float)loss;
    s->adv_accuracy = (float)ca / (float)n;
    s->clean_accuracy = (float)cc / (float)n;
    s->lr = sat_optimizer_lr(t->opt);
    return sat__progress_add(t->progress, n);
}

/* Progress units per example of one step: its attack steps and its updates. */
static int64_t step_units(const sat_trainer_opts *o) {
    switch (o->method) {
    case SAT_TRAIN_STANDARD: return 1;
    case SAT_TRAIN_FAST: return 2;
    case SAT_TRAIN_FREE: return o->free_replays;
    default: return (int64_t)o->steps + 1; /* PGD, TRADES */
    }
}

/* The checks shared by sat_train_step and sat_train_compute (t->call names the call). */
static int32_t check_step(sat_trainer *t, const float *x, const int32_t *labels, int64_t n,
                          const sat_step_stats *stats) {
    sat_model *m = t->model;
    if (!labels) return sat__fail(t->err, SAT_E_INVALID_ARG, "%s: labels is NULL", t->call);
    if (stats && stats->struct_size < sizeof(uint32_t))
        return sat__fail(t->err, SAT_E_INVALID_ARG, "%s: stats->struct_size %u is too small", t->call,
                         stats->struct_size);
    int32_t st = sat__check_batch(m, x, labels, n, t->call);
    return st ? sat__fail(t->err, st, "%s", m->err) : SAT_OK;
}

/* Attaches the trainer's shard to the executions its step runs on, for the step: a rank's
 * batch of n starts at global example rank * n. Only sat_train_compute hands out gradient
 * ranges: sat_train_step's update reads the block right after the backward. */
static int32_t attach_shard(sat_trainer *t, int64_t n, int apply) {
    sat_exec *own = sat__model_exec(t->model);
    if (!own) return sat__fail(t->err, SAT_E_NOMEM, "%s: %s", t->call, t->model->err);
    t->shard.example_base = (int64_t)t->opts.rank * n;
    t->shard.bn_status = 0;
    t->shard.grad_ready = apply ? NULL : t->opts.grad_ready;
    t->shard.grad_ready_user = t->opts.grad_ready_user;
    own->shard = &t->shard;
    if (t->clean_exec) t->clean_exec->shard = &t->shard;
    return SAT_OK;
}

static void detach_shard(sat_trainer *t) {
    t->shard.grad_ready = NULL;
    t->model->own_exec->shard = NULL;
    if (t->clean_exec) t->clean_exec->shard = NULL;
}

/* Runs one step's work under a progress report named after the call: the gradient only
 * (apply 0) or also the update. On failure everything the step touched is rolled back. */
static int32_t run_step(sat_trainer *t, const float *x, const int32_t *labels, int64_t n, int apply,
                        sat_step_stats *stats) {
    sat_model *m = t->model;
    int32_t st = attach_shard(t, n, apply);
    if (st) return st;
    sat_step_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.loss = s.adv_accuracy = s.clean_accuracy = s.lr = NAN;
    snapshot snap;
    take_snapshot(t, &snap);
    /* A cancel is a failure like NaN: the rollback below undoes the step. */
    sat__progress progress;
    st = sat__progress_begin(&progress, m->ctx, t->call, n * step_units(&t->opts), t->err);
    t->progress = &progress;
    if (st == SAT_OK) {
        switch (t->opts.method) {
        case SAT_TRAIN_FREE: st = step_free(t, x, labels, n, &s); break;
        case SAT_TRAIN_TRADES: st = compute_trades(t, x, labels, n, &s); break;
        default: st = compute_single(t, x, labels, n, &s); break;
        }
    }
    /* Free-AT updates between its replays, inside step_free. */
    if (st == SAT_OK && apply && t->opts.method != SAT_TRAIN_FREE) st = apply_update(t);
    t->progress = NULL;
    if (t->shard.bn_status)
        sat__fail(t->err, SAT_E_ABORTED, "%s: the batch-norm reduction callback returned %d", t->call,
                  (int)t->shard.bn_status);
    detach_shard(t);
    if (st) {
        rollback(t, &snap);
        return st;
    }
    /* A fixed advance per call keeps the position a pure function of the number of steps. */
    t->rng_counter += (int64_t)SAT__TRAIN_RNG_PER_STEP;
    if (stats) {
        const uint32_t size = stats->struct_size;
        memcpy(stats, &s, size < sizeof s ? size : sizeof s);
        stats->struct_size = size;
    }
    return SAT_OK;
}

int32_t sat_train_step(sat_trainer *t, const float *x, const int32_t *labels, int64_t n,
                       sat_step_stats *stats) {
    if (!t) return SAT_E_INVALID_ARG;
    t->call = "sat_train_step";
    int32_t st = check_step(t, x, labels, n, stats);
    return st ? st : run_step(t, x, labels, n, 1, stats);
}

int32_t sat_train_compute(sat_trainer *t, const float *x, const int32_t *labels, int64_t n,
                          sat_step_stats *stats) {
    if (!t) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_train_compute: trainer is NULL");
    t->call = "sat_train_compute";
    if (t->opts.method == SAT_TRAIN_FREE)
        return sat__fail(t->err, SAT_E_UNSUPPORTED,
                         "sat_train_compute: Free-AT updates the weights between its replays of a batch, so "
                         "its gradient cannot be reduced once per step; use sat_train_step");
    int32_t st = check_step(t, x, labels, n, stats);
    return st ? st : run_step(t, x, labels, n, 0, stats);
}

int32_t sat_train_apply(sat_trainer *t) {
    if (!t) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_train_apply: trainer is NULL");
    t->call = "sat_train_apply";
    snapshot snap;
    take_snapshot(t, &snap);
    int32_t st = apply_update(t);
    if (st) rollback(t, &snap);
    return st;
}
