/* executor.c - runs the forward pass and the backward pass of a plan over the arena. */
#include "graph.h"

#include <math.h>
#include <string.h>

void sat__plan_backward_act(const sat_model *m, int32_t plan, int32_t *act, float *param) {
    int32_t a = plan == SAT__PLAN_ATTACK ? m->opts.attack_backward_act : m->opts.train_backward_act;
    float p = plan == SAT__PLAN_ATTACK ? m->opts.attack_backward_param : m->opts.train_backward_param;
    if (a != SAT_ACT_SAME && isnan(p)) p = sat_activation_default_param(a);
    *act = a;
    *param = p;
}

int32_t sat__forward(sat_model *m, const float *x, int64_t n, int32_t bn, const float **logits) {
    if (n < 1 || n > m->max_batch)
        return sat__fail(m->err, SAT_E_SHAPE, "batch of %lld is outside 1..%lld (the model's max_batch)",
                         (long long)n, (long long)m->max_batch);
    /* The thread count may have grown since the last pass; nothing has changed yet if the
     * larger workspace cannot be had. */
    int32_t rc = sat__plan_reserve_lanes(m, m->err);
    if (rc != SAT_OK) return rc;
    sat_run r = {m, n, bn, 0, SAT_ACT_SAME, 0.0f, 0};
    m->out_ptr[0] = (float *)x;
    for (int i = 1; i < m->num_nodes; i++) {
        const sat_node *nd = &m->nodes[i];
        const float *x0 = m->out_ptr[nd->in0];
        const float *x1 = nd->in1 >= 0 ? m->out_ptr[nd->in1] : NULL;
        if (nd->alias) {
            m->out_ptr[i] = m->out_ptr[nd->in0];
            continue;
        }
        m->out_ptr[i] = m->arena + nd->a_out;
        sat__ops[nd->op].forward(&r, nd, x0, x1, m->out_ptr[i]);
    }
    m->run_n = n;
    m->run_bn = bn;
    m->run_valid = 1;
    if (logits) *logits = m->out_ptr[m->num_nodes - 1];
    return SAT_OK;
}

/* Where the gradient for producer `j` goes: straight into its region on the first
 * contribution, into a scratch buffer (added afterwards) on later ones. */
static float *grad_target(sat_model *m, const uint8_t *need, int j, int slot) {
    if (j < 0 || !need[j]) return NULL;
    if (m->grad_fresh[j]) return m->arena + m->nodes[j].a_grad;
    return m->arena + m->a_scratch + slot * ((m->a_dlogits - m->a_scratch) / 2);
}

static void grad_commit(sat_model *m, int j, const float *target, int64_t n) {
    if (!target) return;
    float *own = m->arena + m->nodes[j].a_grad;
    if (target != own) sat__graph_add(m, own, target, own, n * m->nodes[j].size);
    m->grad_fresh[j] = 0;
    m->grad_ptr[j] = own;
}

int32_t sat__backward(sat_model *m, int32_t plan, const float *dlogits, float *dx) {
    if (!m->run_valid) return sat__fail(m->err, SAT_E_INTERNAL, "backward without a forward pass");
    const int N = m->num_nodes;
    sat_run r = {m, m->run_n, m->run_bn, plan, SAT_ACT_SAME, 0.0f, plan == SAT__PLAN_TRAIN};
    sat__plan_backward_act(m, plan, &r.bwd_act, &r.bwd_param);
    const uint8_t *need = (plan == SAT__PLAN_ATTACK || dx) ? m->need_dx[SAT__PLAN_ATTACK]
                                                           : m->need_dx[SAT__PLAN_TRAIN];
    memset(m->grad_fresh, 1, (size_t)N);
    m->grad_ptr[N - 1] = (float *)dlogits;
    m->grad_fresh[N - 1] = 0;
    for (int i = N - 1; i >= 1; i--) {
        const sat_node *nd = &m->nodes[i];
        if (m->grad_fresh[i]) continue; /* nothing downstream needed this node */
        float *dx0 = grad_target(m, need, nd->in0, 0);
        float *dx1 = nd->in1 >= 0 && nd->in1 != nd->in0 ? grad_target(m, need, nd->in1, 1) : NULL;
        if (!dx0 && !dx1 && !(r.param_grads && sat__node_has_params(nd))) continue;
        sat__ops[nd->op].backward(&r, nd, m->out_ptr[nd->in0], m->out_ptr[i], m->grad_ptr[i], dx0, dx1);
        grad_commit(m, nd->in0, dx0, r.n);
        if (dx1) grad_commit(m, nd->in1, dx1, r.n);
    }
    if (dx) {
        size_t bytes = sizeof(float) * (size_t)(r.n * m->in_size);
        if (m->grad_fresh[0])
            memset(dx, 0, bytes);
        else
            memcpy(dx, m->grad_ptr[0], bytes);
    }
    return SAT_OK;
}
