/* executor.c - runs the forward pass and the backward pass of a plan over an execution's
 * arena. */
#include "graph.h"

#include <math.h>
#include <string.h>

void sat__plan_backward_act(const sat_model *m, int32_t plan, int32_t *act, float *param) {
    int32_t a = plan == SAT__PLAN_ATTACK ? m->opts.attack_backward_act : m->opts.train_backward_act;
    float p = plan == SAT__PLAN_ATTACK ? m->opts.attack_backward_param : m->opts.train_backward_param;
    if (a != SAT_ACT_SAME && isnan(p)) p = sat__act_default_param(a);
    *act = a;
    *param = p;
}

/* A batch-norm reduction of a data-parallel shard refused during the pass: the pass's
 * outputs are not to be used. */
static int32_t shard_failed(sat_exec *e) {
    if (!e->shard || e->shard->bn_status == 0) return SAT_OK;
    e->run_valid = 0;
    return sat__fail(e->err, SAT_E_ABORTED, "the batch-norm reduction callback returned %d",
                     (int)e->shard->bn_status);
}

void sat__forward_nodes(sat_exec *e, const sat_run *r, int32_t first, int32_t last) {
    const sat_model *m = e->m;
    for (int i = first; i <= last; i++) {
        const sat_node *nd = &m->nodes[i];
        const float *x0 = e->out_ptr[nd->in0];
        const float *x1 = nd->in1 >= 0 ? e->out_ptr[nd->in1] : NULL;
        if (nd->alias || sat__bn_skipped(r, nd)) {
            e->out_ptr[i] = e->out_ptr[nd->in0];
            continue;
        }
        e->out_ptr[i] = e->arena + e->a_out[i];
        sat__ops[nd->op].forward(r, nd, x0, x1, e->out_ptr[i]);
    }
}

int32_t sat__exec_fwd(sat_exec *e, const float *x, int64_t n, int32_t bn, const float **logits) {
    sat_model *m = e->m;
    if (n < 1 || n > e->max_batch)
        return sat__fail(e->err, SAT_E_SHAPE, "batch of %lld is outside 1..%lld (the %s max_batch)", (long long)n,
                         (long long)e->max_batch, e->owned_by_model ? "model's" : "execution's");
    /* A backward override set since e was planned to read ReLU outputs needs the inputs
     * kept, and activation checkpointing turned on or off changes the layout: plan e again
     * (also after a failed attempt left it without an arena). */
    int32_t rc = SAT_OK;
    if (!e->arena || (e->relu_from_output && !sat__model_relu_from_output(m)) || e->recompute_asked != sat__recompute_chosen(e))
        rc = sat__plan_refresh(e, e->err);
    if (rc != SAT_OK) return rc;
    /* The thread count may have grown since the last pass; nothing has changed yet if the
     * larger workspace cannot be had. */
    rc = sat__plan_reserve_lanes(e, e->err);
    if (rc != SAT_OK) return rc;
    sat_run r = {m, e, NULL, n, bn, 0, SAT_ACT_SAME, 0.0f, 0, 0};
    if (bn == SAT__BN_TRAIN) e->run_dropout_key = sat__rng_u64(m->opts.seed, SAT_STREAM_DROPOUT, m->train_forwards++);
    e->out_ptr[0] = (float *)x;
    sat__forward_nodes(e, &r, 1, m->num_nodes - 1);
    e->segment_held = e->recompute ? e->segment[m->num_nodes - 1] : 0; /* the last segment's outputs */
    if ((rc = shard_failed(e))) return rc;
    e->run_n = n;
    e->run_bn = bn;
    e->run_valid = 1;
    if (logits) *logits = e->out_ptr[m->num_nodes - 1];
    return SAT_OK;
}

/* A last backward's hand-out of the parameter gradients from `from` up to where the last
 * range began: they are final, since the backward runs the nodes in reverse and each node's
 * parameters lie above those of the nodes before it. Returns 0 once a callback refused. */
static int hand_out_grads(sat_exec *e, float *grads, int64_t from, int64_t *mark) {
    sat__grad_handout *h = e->handout;
    if (from >= *mark) return 1;
    const int64_t count = *mark - from;
    if (h->addend) sat__axpy(1.0f, h->addend + from, grads + from, count);
    *mark = from;
    const int bn_failed = e->shard && e->shard->bn_status;
    if (h->ready && !bn_failed) h->status = h->ready(h->ready_user, from, count);
    return h->status == 0 && !bn_failed;
}

static int64_t first_param(const sat_node *nd) {
    return nd->p_w >= 0 ? nd->p_w : nd->p_gamma >= 0 ? nd->p_gamma : nd->p_alpha;
}

/* Where the gradient for producer `j` goes: straight into its region on the first
 * contribution, into a scratch buffer (added afterwards) on later ones. */
static float *grad_target(sat_exec *e, const uint8_t *need, int j, int slot) {
    if (j < 0 || !need[j]) return NULL;
    if (e->grad_fresh[j]) return e->arena + e->a_grad[j];
    return e->arena + e->a_scratch + slot * e->scratch_half;
}

static void grad_commit(sat_exec *e, int j, const float *target, int64_t n) {
    if (!target) return;
    float *own = e->arena + e->a_grad[j];
    if (target != own) sat__graph_add(e->m, own, target, own, n * e->m->nodes[j].size);
    e->grad_fresh[j] = 0;
    e->grad_ptr[j] = own;
}

/* Node i's backward: its input gradients where needed, its parameter gradients when asked. */
static void backward_node(sat_exec *e, const sat_run *r, const uint8_t *need, int i) {
    const sat_node *nd = &e->m->nodes[i];
    if (e->grad_fresh[i]) return; /* nothing downstream needed this node */
    float *dx0 = grad_target(e, need, nd->in0, 0);
    float *dx1 = nd->in1 >= 0 && nd->in1 != nd->in0 ? grad_target(e, need, nd->in1, 1) : NULL;
    if (!dx0 && !dx1 && !(r->param_grads && sat__node_has_params(nd))) return;
    sat__ops[nd->op].backward(r, nd, e->out_ptr[nd->in0], e->out_ptr[i], e->grad_ptr[i], dx0, dx1);
    grad_commit(e, nd->in0, dx0, r->n);
    if (dx1) grad_commit(e, nd->in1, dx1, r->n);
}

int32_t sat__exec_bwd(sat_exec *e, int32_t plan, const float *dlogits, float *dx, float *grads) {
    if (!e->run_valid) return sat__fail(e->err, SAT_E_INTERNAL, "backward without a forward pass");
    sat_model *m = e->m;
    if (e->run_bn == SAT__BN_FOLD && (plan != SAT__PLAN_ATTACK || grads))
        return sat__fail(e->err, SAT_E_INTERNAL, "a training backward after an attack forward pass");
    if (e->relu_from_output && !sat__model_relu_from_output(m))
        return sat__fail(e->err, SAT_E_STATE,
                         "sat_model_set_backward set a backward override after this forward pass, which "
                         "kept no ReLU inputs for it; run the forward pass again");
    const int N = m->num_nodes;
    sat_run r = {m, e, grads, e->run_n, e->run_bn, plan, SAT_ACT_SAME, 0.0f, grads != NULL, 0};
    sat__plan_backward_act(m, plan, &r.bwd_act, &r.bwd_param);
    const uint8_t *need = (plan == SAT__PLAN_ATTACK || dx) ? m->need_dx[SAT__PLAN_ATTACK]
                                                           : m->need_dx[SAT__PLAN_TRAIN];
    memset(e->grad_fresh, 1, (size_t)N);
    e->grad_ptr[N - 1] = (float *)dlogits;
    e->grad_fresh[N - 1] = 0;
    int handing = e->handout != NULL;
    int64_t mark = m->num_params; /* handed out so far: [mark, num_params) */
    for (int i = N - 1; i >= 1; i--) {
        /* The end of a segment: its other outputs may be gone (overwritten by another
         * segment's); make them again. */
        if (e->recompute && sat__segment_ends(e, i)) sat__recompute_hold(e, i);
        if (sat__bn_skipped(&r, &m->nodes[i])) { /* its gradient is its convolution's */
            const int32_t conv = m->nodes[i].in0;
            e->grad_ptr[conv] = e->grad_ptr[i];
            e->grad_fresh[conv] = e->grad_fresh[i];
            continue;
        }
        backward_node(e, &r, need, i);
        if (handing && sat__node_has_params(&m->nodes[i]) &&
            !(handing = hand_out_grads(e, grads, first_param(&m->nodes[i]), &mark)))
            break;
    }
    if (handing) hand_out_grads(e, grads, 0, &mark);
    int32_t rc = shard_failed(e);
    if (rc) return rc;
    if (e->handout && e->handout->status) {
        e->run_valid = 0;
        return sat__fail(e->err, SAT_E_ABORTED, "the gradient-ready callback returned %d", (int)e->handout->status);
    }
    if (dx) {
        size_t bytes = sizeof(float) * (size_t)(r.n * m->in_size);
        if (e->grad_fresh[0])
            memset(dx, 0, bytes);
        else
            memcpy(dx, e->grad_ptr[0], bytes);
    }
    return SAT_OK;
}

int32_t sat__exec_bwd_handout(sat_exec *e, const float *dlogits, float *grads, sat__grad_handout *h) {
    e->handout = h;
    const int32_t st = sat__exec_bwd(e, SAT__PLAN_TRAIN, dlogits, NULL, grads);
    e->handout = NULL;
    return st;
}

int32_t sat__forward(sat_model *m, const float *x, int64_t n, int32_t bn, const float **logits) {
    sat_exec *e = sat__model_exec(m);
    return e ? sat__exec_fwd(e, x, n, bn, logits) : SAT_E_NOMEM;
}

int32_t sat__backward(sat_model *m, int32_t plan, const float *dlogits, float *dx) {
    if (!m->own_exec) return sat__fail(m->err, SAT_E_INTERNAL, "backward without a forward pass");
    return sat__exec_bwd(m->own_exec, plan, dlogits, dx, plan == SAT__PLAN_TRAIN ? m->grads : NULL);
}
