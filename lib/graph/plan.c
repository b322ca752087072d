/* plan.c - compiles the two plans of a parsed graph and lays out its memory.
 *
 * Forward outputs that a backward reads (the inputs of conv, dense, batch norm, activation
 * and max pooling, and the logits) stay alive for the whole step, so each gets its own
 * region. The others (a batch norm feeding a residual add, say) are dead once their
 * consumers' forwards have run: they get first-fit regions over their forward lifetimes.
 * Output gradients are short-lived too: node i's gradient is written first by the
 * backward of its last consumer and last read by its own backward; regions are assigned
 * first-fit over those lifetimes, so gradients of distant layers share memory. Forward
 * and backward never overlap, so the short-lived outputs and the gradients share one
 * region. */
#include "graph.h"

#include <string.h>

typedef struct interval {
    int32_t node;
    int32_t start, end; /* backward step range, inclusive */
    int64_t size, offset;
} interval;

/* 64 GiB of activations: far above any model this library targets on a CPU. */
#define MAX_ARENA_FLOATS ((int64_t)1 << 34)

static int overlaps(const interval *a, const interval *b) {
    return a->start <= b->end && b->start <= a->end;
}

/* First-fit placement of intervals (in start order) into one region; returns its size. */
static int64_t place_intervals(interval *iv, int count) {
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        int64_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                if (!overlaps(&iv[i], &iv[j])) continue;
                if (off < iv[j].offset + iv[j].size && iv[j].offset < off + iv[i].size) {
                    off = iv[j].offset + iv[j].size;
                    moved = 1;
                }
            }
        }
        iv[i].offset = off;
        if (off + iv[i].size > total) total = off + iv[i].size;
    }
    return total;
}

/* Rounds a float count up to a cache line so that every region starts aligned. */
static int64_t align_floats(int64_t n) { return (n + 15) & ~(int64_t)15; }

int32_t sat__plan(sat_model *m, char *err) {
    const int N = m->num_nodes;
    const int64_t B = m->max_batch;
    sat_context *ctx = m->ctx;

    m->params = sat__calloc(ctx, (size_t)(m->num_params ? m->num_params : 1), sizeof(float));
    m->grads = sat__calloc(ctx, (size_t)(m->num_params ? m->num_params : 1), sizeof(float));
    m->state = sat__calloc(ctx, (size_t)(m->num_state ? m->num_state : 1), sizeof(float));
    m->out_ptr = sat__calloc(ctx, (size_t)N, sizeof(float *));
    m->grad_ptr = sat__calloc(ctx, (size_t)N, sizeof(float *));
    m->grad_fresh = sat__calloc(ctx, (size_t)N, 1);
    m->need_dx[0] = sat__calloc(ctx, (size_t)N, 1);
    m->need_dx[1] = sat__calloc(ctx, (size_t)N, 1);
    interval *iv = sat__calloc(ctx, (size_t)N, sizeof(interval));
    uint8_t *kept = sat__calloc(ctx, (size_t)N, 1);
    if (!m->params || !m->grads || !m->state || !m->out_ptr || !m->grad_ptr || !m->grad_fresh ||
        !m->need_dx[0] || !m->need_dx[1] || !iv || !kept) {
        sat__dealloc(ctx, iv);
        sat__dealloc(ctx, kept);
        return sat__fail(err, SAT_E_NOMEM, "model: out of memory for %lld parameters",
                         (long long)m->num_params);
    }

    /* Which output gradients each plan needs: the attack plan all of them (down to the
     * input); the train plan those with a parameter at or above the node. */
    for (int i = 0; i < N; i++) {
        const sat_node *nd = &m->nodes[i];
        m->need_dx[SAT__PLAN_ATTACK][i] = 1;
        int up = sat__node_has_params(nd);
        if (nd->in0 >= 0) up |= m->need_dx[SAT__PLAN_TRAIN][nd->in0];
        if (nd->in1 >= 0) up |= m->need_dx[SAT__PLAN_TRAIN][nd->in1];
        m->need_dx[SAT__PLAN_TRAIN][i] = (uint8_t)up;
    }

    /* Outputs some backward reads; an aliased output (flatten) keeps its source. */
    kept[N - 1] = 1;
    for (int j = 1; j < N; j++) {
        const sat_node *nd = &m->nodes[j];
        if (nd->alias || sat__ops[nd->op].backward_reads_input) {
            if (nd->in0 >= 0) kept[nd->in0] = 1;
            if (nd->in1 >= 0) kept[nd->in1] = 1;
        }
    }

    int64_t off = 0;
    int64_t scratch = 0;
    for (int i = 0; i < N; i++) {
        sat_node *nd = &m->nodes[i];
        if (i > 0 && !nd->alias && kept[i]) {
            nd->a_out = off;
            off += align_floats(B * nd->size);
        }
        const int64_t saved = sat__ops[nd->op].saved ? sat__ops[nd->op].saved(nd) : 0;
        if (saved > 0) {
            nd->a_save = off;
            off += align_floats(saved);
        }
        if (nd->consumers > 1 && B * nd->size > scratch) scratch = B * nd->size;
    }
    m->a_scratch = off;
    off += 2 * align_floats(scratch);
    m->a_dlogits = off;
    off += align_floats(B * m->classes);
    m->a_losses = off;
    off += align_floats(B);

    /* Gradient lifetimes in backward steps: node N-1 is step 0. The last node's gradient
     * is the caller's dlogits, so it needs no region. */
    int count = 0;
    for (int i = N - 2; i >= 0; i--) {
        int last_consumer = i;
        for (int j = i + 1; j < N; j++)
            if (m->nodes[j].in0 == i || m->nodes[j].in1 == i) last_consumer = j;
        interval *v = &iv[count++];
        v->node = i;
        v->start = N - 1 - last_consumer;
        v->end = N - 1 - i;
        v->size = align_floats(B * m->nodes[i].size);
    }
    int64_t grad_region = place_intervals(iv, count);
    for (int k = 0; k < count; k++) m->nodes[iv[k].node].a_grad = off + iv[k].offset;

    /* Short-lived outputs, in forward steps: from their node to their last consumer. */
    count = 0;
    for (int i = 1; i < N; i++) {
        if (kept[i] || m->nodes[i].alias) continue;
        int last_consumer = i;
        for (int j = i + 1; j < N; j++)
            if (m->nodes[j].in0 == i || m->nodes[j].in1 == i) last_consumer = j;
        interval *v = &iv[count++];
        v->node = i;
        v->start = i;
        v->end = last_consumer;
        v->size = align_floats(B * m->nodes[i].size);
    }
    int64_t short_region = place_intervals(iv, count);
    for (int k = 0; k < count; k++) m->nodes[iv[k].node].a_out = off + iv[k].offset;
    off += grad_region > short_region ? grad_region : short_region;
    sat__dealloc(ctx, iv);
    sat__dealloc(ctx, kept);

    m->arena_size = off;
    /* A spec (perhaps from a hostile file) may ask for absurd sizes: refuse clearly rather
     * than let the allocator fail late. The arena is not zeroed: every region is written
     * before it is read, and untouched pages of a large arena then cost nothing. */
    if (off > MAX_ARENA_FLOATS)
        return sat__fail(err, SAT_E_SHAPE, "model: the activations need %lld GiB for max_batch %lld (limit %lld GiB)",
                         (long long)(off >> 28), (long long)B, (long long)(MAX_ARENA_FLOATS >> 28));
    m->arena = sat__alloc(ctx, (size_t)off * sizeof(float));
    if (!m->arena)
        return sat__fail(err, SAT_E_NOMEM, "model: out of memory for a %lld MiB arena (max_batch %lld)",
                         (long long)(off * 4 >> 20), (long long)B);
    return sat__plan_reserve_lanes(m, err);
}

/* Floats of workspace for `lanes` lanes: the most any node needs at max_batch. */
static int64_t workspace_floats(const sat_model *m, int64_t lanes) {
    int64_t ws = 0;
    for (int i = 0; i < m->num_nodes; i++) {
        int64_t w = sat__ops[m->nodes[i].op].workspace(&m->nodes[i], m->max_batch, lanes);
        if (w > ws) ws = w;
    }
    return ws;
}

int32_t sat__plan_reserve_lanes(sat_model *m, char *err) {
    int64_t lanes = m->ctx->num_threads < SAT__MAX_LANES ? m->ctx->num_threads : SAT__MAX_LANES;
    if (lanes <= m->ws_lanes) return SAT_OK;
    const int64_t floats = workspace_floats(m, lanes);
    float *ws = sat__alloc(m->ctx, (size_t)(floats > 0 ? floats : 1) * sizeof(float));
    if (!ws)
        return sat__fail(err, SAT_E_NOMEM, "model: out of memory for %lld MiB of workspace for %lld threads",
                         (long long)(floats * 4 >> 20), (long long)lanes);
    sat__dealloc(m->ctx, m->ws);
    m->ws = ws;
    m->ws_lanes = lanes;
    return SAT_OK;
}
