/* pgd.c - FGSM and PGD (Linf and L2) on one chunk: optional random start, fixed-size
 * normalised ascent steps, projection onto the eps-ball and the pixel box after every
 * step. FGSM is PGD with one step (of eps, or 1.25 eps from a random start). The trainer's
 * attacks (PGD-AT, Fast-AT, TRADES' KL attack) are this PGD too, keeping the last iterate. */
#include "attack/attack.h"

#include <string.h>

size_t sat__pgd_scratch_bytes(const sat__target *m, int64_t nc) {
    const size_t n = (size_t)nc, d = (size_t)m->in_size;
    return 2 * sat__attack_align(n * d * sizeof(float)) + sat__attack_align(n * sizeof(float)) +
           sat__attack_align(n * sizeof(int32_t)) +
           sat__attack_align(n * (size_t)m->classes * sizeof(float));
}

int32_t sat__pgd_chunk(sat__attack_chunk *c) {
    const sat__attack_cfg *cfg = c->cfg;
    const sat__target *m = c->m;
    const int64_t d = m->in_size, nc = c->nc;
    const int32_t steps = cfg->steps;
    unsigned char *p = c->scratch;
    float *xa = sat__attack_carve(&p, (size_t)(nc * d) * sizeof(float));
    float *grad = sat__attack_carve(&p, (size_t)(nc * d) * sizeof(float));
    float *obj = sat__attack_carve(&p, (size_t)nc * sizeof(float));
    int32_t *pred = sat__attack_carve(&p, (size_t)nc * sizeof(int32_t));
    float *dlogits = sat__attack_carve(&p, (size_t)(nc * m->classes) * sizeof(float));
    const sat__attack_out *o = c->out;
    /* The last iterate needs a forward pass of its own only when someone looks at it. */
    const int final_eval = !cfg->keep_last || cfg->restarts > 1 ||
                           (o && (o->obj || o->pred || o->trace_obj));
    int have = 0;

    for (int32_t r = 0; r < cfg->restarts; r++) {
        sat__attack_start(c, r, xa);
        for (int32_t s = 0; s < steps; s++) {
            int32_t st = sat__attack_eval(c, xa, c->labels, c->targets, nc, obj, pred, dlogits, grad);
            if (st) return st;
            if (s > 0) {
                /* obj and pred describe the iterate after step s-1. */
                sat__attack_trace_add(c, (int64_t)r * steps + s - 1, obj, pred);
                if (!cfg->keep_last) {
                    sat__attack_offer(c, xa, obj, pred, !have);
                    have = 1;
                }
            }
            for (int64_t i = 0; i < nc; i++) {
                sat__attack_ascend(cfg->norm, cfg->step, grad + i * d, xa + i * d, d);
                sat__attack_project(cfg->norm, cfg->eps, c->x + i * d, xa + i * d, d);
            }
            if ((st = sat__attack_tick(c))) return st;
        }
        if (!final_eval) {
            memcpy(c->best, xa, sizeof(float) * (size_t)(nc * d));
            continue;
        }
        int32_t st = sat__attack_eval(c, xa, c->labels, c->targets, nc, obj, pred, dlogits, NULL);
        if (st) return st;
        sat__attack_trace_add(c, (int64_t)r * steps + steps - 1, obj, pred);
        sat__attack_offer(c, xa, obj, pred, !have);
        have = 1;
    }
    return SAT_OK;
}
