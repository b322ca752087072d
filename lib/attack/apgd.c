/* apgd.c - Auto-PGD (Croce & Hein, arXiv 2003.01690) on one chunk: PGD with momentum 0.75
 * and a per-example step size that starts at 2 eps and is halved at checkpoints when the
 * objective stops rising, restarting then from the best point found. Follows the
 * reference implementation's integer checkpoint schedule: the first checkpoint after
 * floor(0.22 N) iterations, each later interval floor(0.03 N) shorter but at least
 * floor(0.06 N) (for N = 100: 22, 41, 57, 70, 80, 87, 93, 99). */
#include "attack/attack.h"

#include <string.h>

#define APGD_ALPHA 0.75f  /* weight of the new step against the previous direction */
#define APGD_RHO 0.75     /* fraction of increasing steps below which the step is halved */

/* The schedule's integer constants for N steps, as in the reference implementation. */
static int32_t at_least_1(double v) { return (int32_t)v > 1 ? (int32_t)v : 1; }
static int32_t first_interval(int32_t steps) { return at_least_1(0.22 * steps); }
static int32_t next_interval(int32_t interval, int32_t steps) {
    const int32_t shorter = interval - at_least_1(0.03 * steps), floor_ = at_least_1(0.06 * steps);
    return shorter > floor_ ? shorter : floor_;
}

int32_t sat__apgd_checkpoints(int32_t steps, int32_t *iters, int32_t cap) {
    int32_t count = 0;
    for (int32_t at = first_interval(steps), h = at; at <= steps; h = next_interval(h, steps), at += h) {
        if (count < cap) iters[count] = at;
        count++;
    }
    return count;
}

size_t sat__apgd_scratch_bytes(const sat__target *m, int64_t nc) {
    const size_t n = (size_t)nc, d = (size_t)m->in_size;
    return 5 * sat__attack_align(n * d * sizeof(float)) + sat__attack_align(d * sizeof(float)) +
           5 * sat__attack_align(n * sizeof(float)) + 2 * sat__attack_align(n * sizeof(int32_t)) +
           sat__attack_align(n) + sat__attack_align(n * (size_t)m->classes * sizeof(float));
}

typedef struct apgd_buf {
    float *xa, *x_prev, *grad, *x_max, *grad_max, *z;
    float *obj, *obj_prev, *obj_max, *obj_max_last, *eta;
    int32_t *pred, *increases;
    uint8_t *reduced_last;
    float *dlogits;
} apgd_buf;

static void carve_all(sat__attack_chunk *c, apgd_buf *b) {
    const size_t n = (size_t)c->nc, d = (size_t)c->m->in_size;
    unsigned char *p = c->scratch;
    float **big[5] = {&b->xa, &b->x_prev, &b->grad, &b->x_max, &b->grad_max};
    for (int i = 0; i < 5; i++) *big[i] = sat__attack_carve(&p, n * d * sizeof(float));
    b->z = sat__attack_carve(&p, d * sizeof(float));
    float **small[5] = {&b->obj, &b->obj_prev, &b->obj_max, &b->obj_max_last, &b->eta};
    for (int i = 0; i < 5; i++) *small[i] = sat__attack_carve(&p, n * sizeof(float));
    b->pred = sat__attack_carve(&p, n * sizeof(int32_t));
    b->increases = sat__attack_carve(&p, n * sizeof(int32_t));
    b->reduced_last = sat__attack_carve(&p, n);
    b->dlogits = sat__attack_carve(&p, n * (size_t)c->m->classes * sizeof(float));
}

/* One momentum step of example i: z = P(x + eta * dir(g)), then
 * x <- P(x + a (z - x) + (1 - a)(x - x_prev)), and x_prev <- the old x. */
static void momentum_step(const sat__attack_cfg *cfg, const float *x, float *xa, float *x_prev,
                          const float *g, float eta, float a, float *z, int64_t d) {
    memcpy(z, xa, sizeof(float) * (size_t)d);
    sat__attack_ascend(cfg->norm, eta, g, z, d);
    sat__attack_project(cfg->norm, cfg->eps, x, z, d);
    for (int64_t j = 0; j < d; j++) {
        const float cur = xa[j];
        xa[j] = cur + a * (z[j] - cur) + (1.0f - a) * (cur - x_prev[j]);
        x_prev[j] = cur;
    }
    sat__attack_project(cfg->norm, cfg->eps, x, xa, d);
}

static int32_t run_restart(sat__attack_chunk *c, const apgd_buf *b, int32_t r, int *have) {
    const sat__attack_cfg *cfg = c->cfg;
    const sat__target *m = c->m;
    const int64_t d = m->in_size, nc = c->nc;
    const int32_t steps = cfg->steps;
    const size_t all = sizeof(float) * (size_t)(nc * d);

    sat__attack_start(c, r, b->xa);
    int32_t st = sat__attack_eval(c, b->xa, c->labels, c->targets, nc, b->obj, b->pred,
                                  b->dlogits, b->grad);
    if (st) return st;
    /* The start point is a candidate too, as in the reference implementation. */
    if (!cfg->keep_last) {
        sat__attack_offer(c, b->xa, b->obj, b->pred, !*have);
        *have = 1;
    }
    memcpy(b->x_prev, b->xa, all);
    memcpy(b->x_max, b->xa, all);
    memcpy(b->grad_max, b->grad, all);
    for (int64_t i = 0; i < nc; i++) {
        b->obj_max[i] = b->obj_prev[i] = b->obj_max_last[i] = b->obj[i];
        b->eta[i] = cfg->step;
        b->increases[i] = 0;
        b->reduced_last[i] = 1; /* so that the first checkpoint judges progress only */
    }
    int32_t interval = first_interval(steps);
    int32_t since_check = 0;

    for (int32_t it = 0; it < steps; it++) {
        const float a = it > 0 ? APGD_ALPHA : 1.0f;
        for (int64_t i = 0; i < nc; i++)
            momentum_step(cfg, c->x + i * d, b->xa + i * d, b->x_prev + i * d, b->grad + i * d,
                          b->eta[i], a, b->z, d);
        /* The gradient at the last iterate is never used. */
        const int need_grad = it < steps - 1;
        st = sat__attack_eval(c, b->xa, c->labels, c->targets, nc, b->obj, b->pred, b->dlogits,
                              need_grad ? b->grad : NULL);
        if (st) return st;
        sat__attack_trace_add(c, (int64_t)r * steps + it, b->obj, b->pred);
        if ((st = sat__attack_tick(c))) return st;
        if (!cfg->keep_last || it == steps - 1) {
            sat__attack_offer(c, b->xa, b->obj, b->pred, !*have);
            *have = 1;
        }
        for (int64_t i = 0; i < nc; i++) {
            b->increases[i] += b->obj[i] > b->obj_prev[i];
            b->obj_prev[i] = b->obj[i];
            if (b->obj[i] > b->obj_max[i]) {
                b->obj_max[i] = b->obj[i];
                memcpy(b->x_max + i * d, b->xa + i * d, sizeof(float) * (size_t)d);
                if (need_grad) memcpy(b->grad_max + i * d, b->grad + i * d, sizeof(float) * (size_t)d);
            }
        }
        if (++since_check < interval) continue;
        /* Checkpoint: halve the step where the objective oscillates (few increases) or where
         * the last checkpoint kept the step and the best objective has not improved since. */
        for (int64_t i = 0; i < nc; i++) {
            const int oscillating = (double)b->increases[i] < APGD_RHO * (double)interval;
            const int stalled = !b->reduced_last[i] && b->obj_max_last[i] >= b->obj_max[i];
            const int reduce = oscillating || stalled;
            b->reduced_last[i] = (uint8_t)reduce;
            b->obj_max_last[i] = b->obj_max[i];
            b->increases[i] = 0;
            if (reduce) {
                b->eta[i] *= 0.5f;
                memcpy(b->xa + i * d, b->x_max + i * d, sizeof(float) * (size_t)d);
                memcpy(b->grad + i * d, b->grad_max + i * d, sizeof(float) * (size_t)d);
                b->obj_prev[i] = b->obj_max[i];
            }
        }
        since_check = 0;
        interval = next_interval(interval, steps);
    }
    return SAT_OK;
}

int32_t sat__apgd_chunk(sat__attack_chunk *c) {
    apgd_buf b;
    carve_all(c, &b);
    int have = 0;
    for (int32_t r = 0; r < c->cfg->restarts; r++) {
        int32_t st = run_restart(c, &b, r, &have);
        if (st) return st;
    }
    return SAT_OK;
}
