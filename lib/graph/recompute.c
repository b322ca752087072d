/* recompute.c - activation checkpointing: an execution keeps the outputs of a few nodes
 * (segment ends) and runs each segment's forward again inside the backward, just before
 * the segment's backward needs its outputs. Memory becomes the segment ends plus one
 * segment's outputs (plan.c lays those out in one region all segments share); the price is
 * one more forward of every segment but the last per backward.
 *
 * A segment ends at a cut: a node that every edge leaving the nodes up to it leaves from
 * (in a ResNet, a block's output; in a chain, every node), so a segment's forward reads
 * nothing from earlier segments but the cut before it. */
#include "graph.h"

#include <math.h>

/* 1 if every edge from nodes 0..i to later nodes leaves from i itself. An aliased output
 * (flatten) or a batch norm folded into its convolution is another node's buffer, so it is
 * never a cut; neither is the last node, which ends the last segment anyway. */
static void mark_cuts(const sat_model *m, uint8_t *cut) {
    const int N = m->num_nodes;
    int32_t earliest = N; /* the smallest producer read by nodes after i */
    for (int i = N - 1; i >= 1; i--) {
        const sat_node *nd = &m->nodes[i];
        cut[i] = i < N - 1 && earliest >= i && !nd->alias && !nd->bn_folded;
        if (nd->in0 >= 0 && nd->in0 < earliest) earliest = nd->in0;
        if (nd->in1 >= 0 && nd->in1 < earliest) earliest = nd->in1;
    }
    cut[0] = 0;
}

void sat__recompute_segments(const sat_model *m, uint8_t *cut, int32_t *segment) {
    const int N = m->num_nodes;
    mark_cuts(m, cut);
    /* Segments of about sqrt(T * s) floats, T all outputs and s a typical cut's: then the
     * kept cuts (T / budget of them, s each) and one segment cost about the same, and
     * their sum is near its least. */
    double total = 0, cut_sum = 0;
    int cuts = 0;
    for (int i = 1; i < N; i++) {
        if (m->nodes[i].alias) continue;
        total += (double)m->nodes[i].size;
        if (cut[i]) cut_sum += (double)m->nodes[i].size, cuts++;
    }
    const double budget = cuts ? sqrt(total * cut_sum / cuts) : total;
    double filled = 0;
    int32_t first = 1;
    segment[0] = 0;
    for (int i = 1; i < N; i++) {
        segment[i] = first;
        if (!m->nodes[i].alias) filled += (double)m->nodes[i].size;
        if (cut[i] && filled >= budget) {
            first = i + 1;
            filled = 0;
        }
    }
}

void sat__recompute_hold(sat_exec *e, int32_t end) {
    const int32_t first = e->segment[end];
    if (e->segment_held == first) return;
    sat_run r = {e->m, e, NULL, e->run_n, e->run_bn, 0, SAT_ACT_SAME, 0.0f, 0, 1};
    sat__forward_nodes(e, &r, first, end - 1); /* the end's own output is kept */
    e->segment_held = first;
}
