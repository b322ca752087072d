/* fold.c - batch norm in inference mode folded into the convolution before it.
 *
 * With running statistics a batch norm is y = scale * x + shift per channel, and when it
 * alone reads a convolution's output, the pair is one convolution with its weights scaled
 * per output channel and a bias of scale * (b - mean) + beta. Passes in SAT__BN_FOLD mode
 * run it that way: the batch norm's forward, its backward and an activation's recomputation
 * of its output all drop out. Each convolution folds just before it runs (forward or input
 * gradient), from the parameters and statistics as they are then, into one region the size
 * of the largest: a pass over weights the convolution reads anyway. So nothing is cached
 * across calls, and a backward reads the model as it is now, like the unfolded one. Passes
 * that may be followed by a parameter gradient never fold: that needs the batch norm's
 * input. */
#include "graph.h"

void sat__fold_plan(sat_model *m) {
    m->fold_floats = 0;
    for (int i = 0; i < m->num_nodes; i++) m->nodes[i].fold_bn = -1, m->nodes[i].bn_folded = 0;
    for (int j = 1; j < m->num_nodes; j++) {
        sat_node *bn = &m->nodes[j];
        if (bn->op != SAT_OP_BN || bn->alias || bn->in0 < 0) continue;
        sat_node *conv = &m->nodes[bn->in0];
        if (conv->op != SAT_OP_CONV || conv->consumers != 1) continue;
        bn->bn_folded = 1;
        conv->fold_bn = j;
        if (conv->n_w + conv->units > m->fold_floats) m->fold_floats = conv->n_w + conv->units;
    }
}

static int folding(const sat_run *r, const sat_node *nd) { return r->bn == SAT__BN_FOLD && nd->fold_bn >= 0; }

void sat__fold_conv(const sat_run *r, const sat_node *nd) {
    if (!folding(r, nd)) return;
    const sat_model *m = r->m;
    const sat_node *bn = &m->nodes[nd->fold_bn];
    const float *p = m->params;
    float *w = r->e->arena + r->e->a_fold;
    sat__bn_fold(p + bn->p_gamma, p + bn->p_beta, m->state + bn->s_mean, m->state + bn->s_var, p + nd->p_w,
                 nd->p_b >= 0 ? p + nd->p_b : NULL, nd->units, nd->n_w / nd->units, w, w + nd->n_w);
}

const float *sat__conv_weights(const sat_run *r, const sat_node *nd) {
    return folding(r, nd) ? r->e->arena + r->e->a_fold : r->m->params + nd->p_w;
}

const float *sat__conv_bias(const sat_run *r, const sat_node *nd) {
    if (folding(r, nd)) return r->e->arena + r->e->a_fold + nd->n_w;
    return nd->p_b >= 0 ? r->m->params + nd->p_b : NULL;
}
