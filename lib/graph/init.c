/* init.c - initial parameters: He-normal weights (std sqrt(2 / fan_in), suited to ReLU-like
 * activations), zero biases, unit batch-norm scale, running variance 1. Every value is a
 * pure function of (seed, position), so initialisation ignores the thread count. */
#include "graph.h"

#include <math.h>

void sat__init_params(sat_model *m, uint64_t seed) {
    for (int i = 0; i < m->num_nodes; i++) {
        const sat_node *nd = &m->nodes[i];
        if (nd->p_w >= 0) {
            int64_t fan_in = nd->n_w / (nd->op == SAT_OP_CONV ? nd->conv.c_out : nd->units);
            float std = sqrtf(2.0f / (float)fan_in);
            for (int64_t j = 0; j < nd->n_w; j++)
                m->params[nd->p_w + j] = std * sat__rng_normal(seed, SAT_STREAM_INIT, (uint64_t)(nd->p_w + j));
        }
        if (nd->p_b >= 0)
            for (int32_t j = 0; j < nd->units; j++) m->params[nd->p_b + j] = 0.0f;
        if (nd->p_gamma >= 0)
            for (int32_t j = 0; j < nd->c; j++) {
                m->params[nd->p_gamma + j] = 1.0f;
                m->params[nd->p_beta + j] = 0.0f;
                m->state[nd->s_mean + j] = 0.0f;
                m->state[nd->s_var + j] = 1.0f;
            }
        if (nd->p_alpha >= 0) m->params[nd->p_alpha] = nd->act_param;
    }
}
