/* init.c - initial parameters and statistics: each op's table entry (`init` in ops.c)
 * says what its parameters start at, with the helpers here. Every value is a pure function
 * of (seed, position), so initialisation ignores the thread count. */
#include "graph.h"

void sat__init_params(sat_model *m, uint64_t seed) {
    for (int i = 0; i < m->num_nodes; i++) {
        const sat_node *nd = &m->nodes[i];
        if (sat__ops[nd->op].init) sat__ops[nd->op].init(m, nd, seed);
    }
}

void sat__init_normal(float *dst, int64_t first, int64_t count, float std, uint64_t seed) {
    for (int64_t j = 0; j < count; j++) dst[j] = std * sat__rng_normal(seed, SAT_STREAM_INIT, (uint64_t)(first + j));
}

void sat__init_fill(float *dst, int64_t count, float v) {
    for (int64_t j = 0; j < count; j++) dst[j] = v;
}
