/* plan.c - compiles the two plans of a parsed graph and lays out an execution's memory.
 *
 * An inference execution keeps no output past its last reader: all outputs are placed
 * first-fit over their forward lifetimes. Executions with a backward are laid out as
 * follows.
 *
 * Forward outputs that a backward reads (the inputs of conv, dense, batch norm, activation
 * and max pooling, and the logits) stay alive for the whole step, so each gets its own
 * region. Two exceptions make activation inputs short-lived like the others: a batch
 * norm's output read only by an activation, which the activation's backward computes again
 * from the batch norm's input (kept anyway; in pre-activation ResNets a third of the
 * outputs), and the input of a ReLU, whose backward reads its output instead (kept anyway
 * when a convolution follows) unless a backward override needs the input. The others (a
 * batch norm feeding a residual add, say) are dead once their consumers' forwards have
 * run: they get first-fit regions over their forward lifetimes.
 * Output gradients are short-lived too: node i's gradient is written first by the
 * backward of its last consumer and last read by its own backward; regions are assigned
 * first-fit over those lifetimes, so gradients of distant layers share memory. Forward
 * and backward never overlap, so the short-lived outputs and the gradients share one
 * region.
 * With activation checkpointing (recompute.c) only the segment ends and the logits keep
 * regions of their own. The other outputs of a segment are placed first-fit within the
 * segment (the ones a backward reads live to the segment's end), into one region that
 * every segment uses in turn; it is separate from the gradients, since a segment's forward
 * runs again during the backward. */
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

/* The node that last reads node i's output, following aliases (a flatten's output is its
 * input's buffer, so that buffer lives as long as the flatten's readers; so is a folded
 * batch norm's in a SAT__BN_FOLD pass). The logits are read after the pass: N. */
static void last_uses(const sat_model *m, int32_t *last) {
    const int N = m->num_nodes;
    for (int i = N - 1; i >= 0; i--) {
        last[i] = i == N - 1 ? N : i;
        for (int j = i + 1; j < N; j++) {
            const sat_node *nd = &m->nodes[j];
            if (nd->in0 != i && nd->in1 != i) continue;
            int32_t until = nd->alias || nd->bn_folded ? last[j] : j;
            if (until > last[i]) last[i] = until;
        }
    }
}

/* An inference execution: every output is short-lived (the logits last until the end),
 * placed first-fit over its forward lifetime; no gradients, no scratch; the fold region. */
static int64_t layout_inference(sat_exec *e, interval *iv, int32_t *last) {
    const sat_model *m = e->m;
    const int N = m->num_nodes;
    const int64_t B = e->max_batch;
    int64_t off = 0;
    for (int i = 0; i < N; i++) {
        const sat_node *nd = &m->nodes[i];
        const int64_t saved = sat__ops[nd->op].saved ? sat__ops[nd->op].saved(nd) : 0;
        if (saved > 0) {
            e->a_save[i] = off;
            off += align_floats(saved);
        }
    }
    e->a_fold = off;
    off += align_floats(m->fold_floats);
    last_uses(m, last);
    int count = 0;
    for (int i = 1; i < N; i++) {
        if (m->nodes[i].alias) continue;
        interval *v = &iv[count++];
        v->node = i;
        v->start = i;
        v->end = last[i];
        v->size = align_floats(B * m->nodes[i].size);
    }
    int64_t region = place_intervals(iv, count);
    for (int k = 0; k < count; k++) e->a_out[iv[k].node] = off + iv[k].offset;
    return off + region;
}

/* The last node that reads node i's output (i itself if none). */
static int32_t last_consumer(const sat_model *m, int32_t i) {
    int32_t last = i;
    for (int j = i + 1; j < m->num_nodes; j++)
        if (m->nodes[j].in0 == i || m->nodes[j].in1 == i) last = j;
    return last;
}

/* With recompute: the outputs inside each segment (not its end), placed first-fit from
 * their node to their last consumer, or to the segment's end where a backward reads them,
 * at offsets from `base` that every segment reuses; returns the arena's end. */
static int64_t layout_segments(sat_exec *e, interval *iv, const uint8_t *kept, int64_t base) {
    const sat_model *m = e->m;
    const int N = m->num_nodes;
    int64_t region = 0;
    for (int first = 1; first < N;) {
        int end = first;
        while (!sat__segment_ends(e, end)) end++;
        int count = 0;
        for (int i = first; i < end; i++) {
            if (m->nodes[i].alias) continue;
            interval *v = &iv[count++];
            v->node = i;
            v->start = i;
            v->end = kept[i] ? end : last_consumer(m, i);
            v->size = align_floats(e->max_batch * m->nodes[i].size);
        }
        const int64_t size = place_intervals(iv, count);
        for (int k = 0; k < count; k++) e->a_out[iv[k].node] = base + iv[k].offset;
        if (size > region) region = size;
        first = end + 1;
    }
    return base + region;
}

/* An execution with a backward (input gradients, training): see the top of this file.
 * in_place: act nodes may compute input gradients in place; slot: N int32 of scratch. */
static int64_t layout_backward(sat_exec *e, interval *iv, uint8_t *kept, int in_place, int32_t *slot) {
    const sat_model *m = e->m;
    const int N = m->num_nodes;
    const int64_t B = e->max_batch;

    /* Outputs some backward reads; an aliased output (flatten) keeps its source. Some act
     * nodes read their output or compute their input again (sat__act_backward_source). */
    kept[N - 1] = 1;
    for (int j = 1; j < N; j++) {
        const sat_node *nd = &m->nodes[j];
        const int32_t source = sat__act_backward_source(e, nd);
        if (source == SAT__ACT_READS_OUTPUT) kept[j] = 1;
        if (nd->alias || sat__ops[nd->op].backward_reads_input) {
            if (nd->in0 >= 0 && source == SAT__ACT_READS_INPUT) kept[nd->in0] = 1;
            if (nd->in1 >= 0) kept[nd->in1] = 1;
        }
    }

    /* With recompute, only segment ends (the logits among them): the rest go to the
     * segment region. */
    int64_t off = 0;
    int64_t scratch = 0;
    for (int i = 0; i < N; i++) {
        const sat_node *nd = &m->nodes[i];
        const int own = e->recompute ? sat__segment_ends(e, i) : kept[i];
        if (i > 0 && !nd->alias && own) {
            e->a_out[i] = off;
            off += align_floats(B * nd->size);
        }
        const int64_t saved = sat__ops[nd->op].saved ? sat__ops[nd->op].saved(nd) : 0;
        if (saved > 0) {
            e->a_save[i] = off;
            off += align_floats(saved);
        }
        if (nd->consumers > 1 && B * nd->size > scratch) scratch = B * nd->size;
    }
    e->a_scratch = off;
    e->scratch_half = align_floats(scratch);
    off += 2 * align_floats(scratch);
    e->a_dlogits = off;
    off += align_floats(B * m->classes);
    e->a_losses = off;
    off += align_floats(B);
    e->a_fold = off;
    off += align_floats(m->fold_floats);

    /* Gradient lifetimes in backward steps: node N-1 is step 0. The last node's gradient
     * is the caller's dlogits, so it needs no region. A folded batch norm's gradient is its
     * convolution's in a SAT__BN_FOLD pass (fold.c), read by that convolution's backward.
     * A node read only by an act node that computes its input gradient in place
     * (sat__act_in_place) takes over the act's region, whose gradient is dead once read. */
    int count = 0;
    for (int i = N - 2; i >= 0; i--) {
        const int32_t end = N - 1 - (m->nodes[i].bn_folded ? m->nodes[i].in0 : i);
        const int32_t reader = last_consumer(m, i);
        if (in_place && m->nodes[i].consumers == 1 && reader < N - 1 && sat__act_in_place(e, &m->nodes[reader])) {
            slot[i] = slot[reader];
            iv[slot[i]].end = end;
            continue;
        }
        slot[i] = count;
        interval *v = &iv[count++];
        v->node = i;
        v->start = N - 1 - reader;
        v->end = end;
        v->size = align_floats(B * m->nodes[i].size);
    }
    int64_t grad_region = place_intervals(iv, count);
    for (int i = 0; i < N - 1; i++) e->a_grad[i] = off + iv[slot[i]].offset;
    if (e->recompute) return layout_segments(e, iv, kept, off + grad_region);

    /* Short-lived outputs, in forward steps: from their node to their last consumer. */
    count = 0;
    for (int i = 1; i < N; i++) {
        if (kept[i] || m->nodes[i].alias) continue;
        interval *v = &iv[count++];
        v->node = i;
        v->start = i;
        v->end = last_consumer(m, i);
        v->size = align_floats(B * m->nodes[i].size);
    }
    int64_t short_region = place_intervals(iv, count);
    for (int k = 0; k < count; k++) e->a_out[iv[k].node] = off + iv[k].offset;
    return off + (grad_region > short_region ? grad_region : short_region);
}

/* One layout of e (with recompute or without, as e->recompute says). */
static int64_t layout_once(sat_exec *e, interval *iv, uint8_t *kept, int32_t *last, int in_place) {
    const sat_model *m = e->m;
    const int N = m->num_nodes;
    for (int i = 0; i < N; i++) e->a_out[i] = e->a_grad[i] = e->a_save[i] = -1;
    e->a_scratch = e->a_dlogits = e->a_losses = e->a_fold = -1;
    e->scratch_half = 0;
    if (e->recompute) sat__recompute_segments(m, kept, e->segment); /* kept: scratch until cleared */
    memset(kept, 0, (size_t)N);
    return e->kind == SAT_EXEC_INFERENCE ? layout_inference(e, iv, last)
                                         : layout_backward(e, iv, kept, in_place, last);
}

/* Sets e's offsets for its kind and max_batch; returns the arena's size in floats, or -1
 * when the temporaries cannot be had. Two choices only ever aim to save memory, and each
 * is kept only where it does: recompute, if asked for (a small or flat graph, whose
 * short-lived outputs share the gradients' region anyway, gains nothing and would only be
 * slower), and in-place act gradients (first-fit over their longer merged lifetimes can
 * pack worse). Ties go to the plain layout. */
static int64_t layout(sat_exec *e) {
    const sat_model *m = e->m;
    const int N = m->num_nodes;
    sat_context *ctx = m->ctx;
    interval *iv = sat__calloc(ctx, (size_t)N, sizeof(interval));
    uint8_t *kept = sat__calloc(ctx, (size_t)N, 1);
    int32_t *last = sat__calloc(ctx, (size_t)N, sizeof(int32_t));
    int64_t size = -1;
    if (iv && kept && last) {
        int best_recompute = 0, best_in_place = 0;
        const int in_place_options = e->kind != SAT_EXEC_INFERENCE; /* no gradients: nothing in place */
        for (int recompute = 0; recompute <= e->recompute_asked; recompute++)
            for (int in_place = 0; in_place <= in_place_options; in_place++) {
                e->recompute = recompute;
                const int64_t s = layout_once(e, iv, kept, last, in_place);
                if (size < 0 || s < size) size = s, best_recompute = recompute, best_in_place = in_place;
            }
        e->recompute = best_recompute;
        size = layout_once(e, iv, kept, last, best_in_place);
    }
    sat__dealloc(ctx, iv);
    sat__dealloc(ctx, kept);
    sat__dealloc(ctx, last);
    return size;
}

/* A spec (perhaps from a hostile file) may ask for absurd sizes: refuse clearly rather than
 * let the allocator fail late. */
static int32_t check_size(const sat_exec *e, int64_t floats, char *err) {
    if (floats < 0) return sat__fail(err, SAT_E_NOMEM, "model: out of memory while planning");
    if (floats > MAX_ARENA_FLOATS)
        return sat__fail(err, SAT_E_SHAPE, "model: the activations need %lld GiB for max_batch %lld (limit %lld GiB)",
                         (long long)(floats >> 28), (long long)e->max_batch, (long long)(MAX_ARENA_FLOATS >> 28));
    return SAT_OK;
}

/* Per-node arrays of an execution (offsets and pointers). */
static int alloc_node_arrays(sat_exec *e) {
    const size_t N = (size_t)e->m->num_nodes;
    const sat_context *ctx = e->m->ctx;
    e->a_out = sat__calloc(ctx, N, sizeof(int64_t));
    e->a_grad = sat__calloc(ctx, N, sizeof(int64_t));
    e->a_save = sat__calloc(ctx, N, sizeof(int64_t));
    e->out_ptr = sat__calloc(ctx, N, sizeof(float *));
    e->grad_ptr = sat__calloc(ctx, N, sizeof(float *));
    e->grad_fresh = sat__calloc(ctx, N, 1);
    e->segment = e->recompute_asked ? sat__calloc(ctx, N, sizeof(int32_t)) : NULL;
    return e->a_out && e->a_grad && e->a_save && e->out_ptr && e->grad_ptr && e->grad_fresh &&
           (e->segment || !e->recompute_asked);
}

int32_t sat__plan_model(sat_model *m, char *err) {
    const int N = m->num_nodes;
    sat_context *ctx = m->ctx;

    m->params = sat__calloc(ctx, (size_t)(m->num_params ? m->num_params : 1), sizeof(float));
    m->grads = sat__calloc(ctx, (size_t)(m->num_params ? m->num_params : 1), sizeof(float));
    m->state = sat__calloc(ctx, (size_t)(m->num_state ? m->num_state : 1), sizeof(float));
    m->need_dx[0] = sat__calloc(ctx, (size_t)N, 1);
    m->need_dx[1] = sat__calloc(ctx, (size_t)N, 1);
    if (!m->params || !m->grads || !m->state || !m->need_dx[0] || !m->need_dx[1])
        return sat__fail(err, SAT_E_NOMEM, "model: out of memory for %lld parameters",
                         (long long)m->num_params);

    sat__fold_plan(m);

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

    /* The model's own (training) execution is made on first use; its size is checked now,
     * so that a model that could never run is refused when it is made. */
    sat_exec probe;
    memset(&probe, 0, sizeof probe);
    probe.m = m;
    probe.kind = SAT_EXEC_TRAIN;
    probe.max_batch = m->max_batch;
    probe.relu_from_output = sat__model_relu_from_output(m);
    probe.recompute_asked = sat__recompute_chosen(&probe);
    const int64_t floats = alloc_node_arrays(&probe) ? layout(&probe) : -1;
    int32_t st = check_size(&probe, floats, err);
    m->planned_floats = st == SAT_OK ? floats : 0;
    sat__plan_release(&probe);
    return st;
}

int32_t sat__plan_exec(sat_exec *e, char *err) {
    e->relu_from_output = sat__model_relu_from_output(e->m);
    e->recompute_asked = sat__recompute_chosen(e);
    if (!alloc_node_arrays(e)) return sat__fail(err, SAT_E_NOMEM, "execution: out of memory");
    const int64_t off = layout(e);
    int32_t st = check_size(e, off, err);
    if (st) return st;
    e->arena_size = off;
    /* The arena is not zeroed: every region is written before it is read, and untouched
     * pages of a large arena then cost nothing. */
    e->arena = sat__alloc(e->m->ctx, (size_t)(off > 0 ? off : 1) * sizeof(float));
    if (!e->arena)
        return sat__fail(err, SAT_E_NOMEM, "execution: out of memory for a %lld MiB arena (max_batch %lld)",
                         (long long)(off * 4 >> 20), (long long)e->max_batch);
    return sat__plan_reserve_lanes(e, err);
}

void sat__plan_release(sat_exec *e) {
    const sat_context *ctx = e->m->ctx;
    void *blocks[] = {e->arena, e->a_out, e->a_grad, e->a_save, e->out_ptr, e->grad_ptr, e->grad_fresh, e->segment};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) sat__dealloc(ctx, blocks[i]);
    e->arena = NULL, e->a_out = e->a_grad = e->a_save = NULL, e->out_ptr = e->grad_ptr = NULL;
    e->grad_fresh = NULL;
    e->segment = NULL;
    e->arena_size = 0;
    e->run_valid = 0;
}

int32_t sat__plan_refresh(sat_exec *e, char *err) {
    sat__plan_release(e);
    return sat__plan_exec(e, err);
}

/* Floats of workspace for `lanes` lanes: the most any node needs at max_batch. */
static int64_t workspace_floats(const sat_exec *e, int64_t lanes) {
    const sat_model *m = e->m;
    int64_t ws = 0;
    for (int i = 0; i < m->num_nodes; i++) {
        int64_t w = sat__ops[m->nodes[i].op].workspace(&m->nodes[i], e->max_batch, lanes,
                                                       e->kind != SAT_EXEC_INFERENCE);
        if (w > ws) ws = w;
    }
    return ws;
}

int32_t sat__plan_reserve_lanes(sat_exec *e, char *err) {
    const sat_context *ctx = e->m->ctx;
    int64_t lanes = ctx->num_threads < SAT__MAX_LANES ? ctx->num_threads : SAT__MAX_LANES;
    if (lanes <= e->ws_lanes) return SAT_OK;
    const int64_t floats = workspace_floats(e, lanes);
    float *ws = sat__alloc(ctx, (size_t)(floats > 0 ? floats : 1) * sizeof(float));
    if (!ws)
        return sat__fail(err, SAT_E_NOMEM, "execution: out of memory for %lld MiB of workspace for %lld threads",
                         (long long)(floats * 4 >> 20), (long long)lanes);
    sat__dealloc(ctx, e->ws);
    e->ws = ws;
    e->ws_lanes = lanes;
    e->ws_size = floats > 0 ? floats : 1;
    return SAT_OK;
}
