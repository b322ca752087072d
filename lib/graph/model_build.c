/* model_build.c - a model from a spec: its options (defaults and checks), its graph and
 * weights, and the checks of a batch shared by every call that runs it. */
#include "graph.h"

#include <math.h>
#include <string.h>

#define MAX_BATCH_LIMIT 65536

sat_model_opts sat__model_defaults(void) {
    sat_model_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.activation = SAT_ACT_DEFAULT; /* the spec's own (its input line's act=), else SiLU */
    d.act_param = NAN;
    d.max_batch = 128;
    d.attack_backward_act = SAT_ACT_SAME;
    d.attack_backward_param = NAN;
    d.train_backward_act = SAT_ACT_SAME;
    d.train_backward_param = NAN;
    d.attack_bn_mode = SAT_BN_INFERENCE;
    d.seed = SAT_SEED_CONTEXT;
    return d;
}

int32_t sat__model_check_backward(int32_t act, float param) {
    if (act == SAT_ACT_SAME) return 1;
    return act >= 0 && act < SAT_ACT_COUNT && (isnan(param) || (isfinite(param) && param > 0));
}

static int32_t check_opts(const sat_model_opts *o, char *err) {
    if ((o->activation < 0 || o->activation >= SAT_ACT_COUNT) && o->activation != SAT_ACT_DEFAULT)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: unknown activation %d", o->activation);
    if (!isnan(o->act_param) && !(isfinite(o->act_param) && o->act_param > 0))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: act_param must be positive or NaN");
    if (o->max_batch < 1 || o->max_batch > MAX_BATCH_LIMIT)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: max_batch %d not in 1..%d",
                         o->max_batch, MAX_BATCH_LIMIT);
    if (!sat__model_check_backward(o->attack_backward_act, o->attack_backward_param))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: bad attack_backward_act %d / param",
                         o->attack_backward_act);
    if (!sat__model_check_backward(o->train_backward_act, o->train_backward_param))
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: bad train_backward_act %d / param",
                         o->train_backward_act);
    if (o->attack_bn_mode != SAT_BN_INFERENCE && o->attack_bn_mode != SAT_BN_BATCH)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: attack_bn_mode %d is not 0 or 1",
                         o->attack_bn_mode);
    if (o->activation_checkpointing != 0 && o->activation_checkpointing != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_opts: activation_checkpointing %d is not 0 or 1",
                         o->activation_checkpointing);
    return SAT_OK;
}

void sat__model_free(sat_model *m) {
    if (!m) return;
    sat_context *ctx = m->ctx;
    sat__dealloc(ctx, m->spec);
    sat__dealloc(ctx, m->nodes);
    sat__dealloc(ctx, m->params);
    sat__dealloc(ctx, m->grads);
    sat__dealloc(ctx, m->state);
    sat__dealloc(ctx, m->state_backup);
    sat__dealloc(ctx, m->consts);
    sat__exec_free(m->own_exec);
    sat__dealloc(ctx, m->need_dx[0]);
    sat__dealloc(ctx, m->need_dx[1]);
    sat__dealloc(ctx, m);
    sat__child_detach(&ctx->live_children);
}

/* Builds a model without initialising parameters (load and clone fill them). */
int32_t sat__model_build(sat_context *ctx, const char *spec, const sat_model_opts *opts,
                         sat_model **out) {
    char err[SAT_ERRMSG_SIZE];
    sat_model_opts o = sat__model_defaults();
    if (opts) {
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_model_opts", err);
        if (st) return sat__fail_tls(st, "%s", err);
    }
    o.seed = sat__seed(ctx, o.seed);
    int32_t st = check_opts(&o, err);
    if (st) return sat__fail_tls(st, "%s", err);
    sat_model *m = sat__calloc(ctx, 1, sizeof *m);
    if (!m) return sat__fail_tls(SAT_E_NOMEM, "sat_model_create: out of memory");
    m->ctx = ctx;
    sat__child_attach(&ctx->live_children);
    m->opts = o;
    m->max_batch = o.max_batch;
    size_t len = strlen(spec);
    m->spec = sat__alloc(ctx, len + 1);
    if (!m->spec) {
        sat__model_free(m);
        return sat__fail_tls(SAT_E_NOMEM, "sat_model_create: out of memory");
    }
    memcpy(m->spec, spec, len + 1);
    st = sat__parse_spec(m, spec, m->err);
    if (st == SAT_OK) st = sat__plan_model(m, m->err);
    if (st == SAT_OK) {
        m->state_backup = sat__calloc(ctx, (size_t)(m->num_state ? m->num_state : 1), sizeof(float));
        if (!m->state_backup) st = sat__fail(m->err, SAT_E_NOMEM, "sat_model_create: out of memory");
    }
    if (st) {
        sat__copy_to_tls(m->err);
        sat__model_free(m);
        return st;
    }
    const int direct = sat__conv_direct_available();
    sat__log(ctx, SAT_LOG_INFO,
             "model: %d layers, %lld parameters, %lld state values; %.1f MiB of activations and "
             "gradients planned for batches up to %lld; GEMMs on %s; direct convolutions %s%s; "
             "activation loops %s",
             (int)m->num_nodes, (long long)m->num_params, (long long)m->num_state,
             (double)m->planned_floats * sizeof(float) / (1024.0 * 1024.0), (long long)m->max_batch, sat__gemm_path(),
             direct ? sat__simd_name(direct) : "off", direct ? " (stride-1 layers)" : "",
             sat__simd_name(sat__simd_level()));
    *out = m;
    return SAT_OK;
}

int32_t sat__check_examples(const sat_model *m, const float *x, const int32_t *labels, int64_t n, int64_t most,
                            const char *fn, char *err) {
    if (!x) return sat__fail(err, SAT_E_INVALID_ARG, "%s: x is NULL", fn);
    if (n < 1 || n > most)
        return sat__fail(err, SAT_E_SHAPE, "%s: batch of %lld is outside 1..%lld%s", fn, (long long)n,
                         (long long)most, most == m->max_batch ? " (the model's max_batch)" : "");
    if (!sat__all_finite(x, n * m->in_size))
        return sat__fail(err, SAT_E_NUMERIC, "%s: x contains NaN or Inf", fn);
    if (labels)
        for (int64_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= m->classes)
                return sat__fail(err, SAT_E_INVALID_ARG, "%s: label %d at index %lld is not in 0..%d", fn,
                                 labels[i], (long long)i, m->classes - 1);
    return SAT_OK;
}

int32_t sat__check_batch(sat_model *m, const float *x, const int32_t *labels, int64_t n, const char *fn) {
    return sat__check_examples(m, x, labels, n, m->max_batch, fn, m->err);
}
