/* fab.c - FAB, the fast adaptive boundary attack (Croce & Hein, arXiv 1907.02044) on one
 * chunk: a minimum-norm attack. Each iteration linearises the decision boundary at the
 * current point x1 towards the closest class (untargeted: the class whose linearised
 * boundary is nearest; targeted: the target class), projects both x1 and the original x0
 * onto that hyperplane inside the pixel box (fab_project.c), and moves to a mix of the two
 * projections, overshooting by eta:
 *     alpha = min(|d1| / (|d1| + |d2|), alpha_max)
 *     x1    = clip((x1 + eta d1)(1 - alpha) + (x0 + eta d2) alpha, 0, 1).
 * When x1 is misclassified it is kept if it is the closest so far, and x1 steps back
 * towards x0: x1 = x0 + beta (x1 - x0). The defaults are the reference AutoAttack's:
 * alpha_max 0.1, eta 1.05, beta 0.9; the first restart starts at x0, later ones at
 * x0 + eps/2 times a random direction normalised in the attack's norm.
 *
 * Success is misclassification (also for the targeted version, as in AutoAttack), within
 * the eps-ball: the closest adversarial point found is returned when its distance is at
 * most eps, x0 otherwise. */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

#define FAB_ALPHA_MAX 0.1
#define FAB_ETA 1.05
#define FAB_BETA 0.9f

size_t sat__fab_scratch_bytes(const sat__target *m, int64_t nc) {
    const size_t n = (size_t)nc, d = (size_t)m->in_size, k = (size_t)m->classes;
    return 4 * sat__attack_align(n * d * sizeof(float)) + 2 * sat__attack_align(d * sizeof(float)) +
           sat__attack_align(d * sizeof(sat__fab_pair)) + 2 * sat__attack_align(n * k * sizeof(float)) +
           6 * sat__attack_align(n * sizeof(float)) + 2 * sat__attack_align(n * sizeof(int32_t));
}

typedef struct fab_buf {
    float *x1, *w, *g, *adv;     /* [nc x d] iterate, chosen hyperplane normal, gradient, closest */
    float *d1, *d2;              /* [d] projections of x1 and x0 */
    sat__fab_pair *pairs;        /* [d] projection scratch */
    float *logits, *dlogits;     /* [nc x classes] */
    float *dist, *f;             /* [nc] distance to the chosen linearised boundary, its logit gap */
    float *res, *res_best;       /* [nc] closest adversarial distance: this restart, all restarts */
    float *obj, *adv_obj;             /* [nc] objective at x1, at adv */
    int32_t *pred, *adv_pred;
} fab_buf;

static void carve_all(sat__attack_chunk *c, fab_buf *b) {
    const size_t n = (size_t)c->nc, d = (size_t)c->m->in_size, k = (size_t)c->m->classes;
    unsigned char *p = c->scratch;
    float **big[4] = {&b->x1, &b->w, &b->g, &b->adv};
    for (int i = 0; i < 4; i++) *big[i] = sat__attack_carve(&p, n * d * sizeof(float));
    b->d1 = sat__attack_carve(&p, d * sizeof(float));
    b->d2 = sat__attack_carve(&p, d * sizeof(float));
    b->pairs = sat__attack_carve(&p, d * sizeof(sat__fab_pair));
    b->logits = sat__attack_carve(&p, n * k * sizeof(float));
    b->dlogits = sat__attack_carve(&p, n * k * sizeof(float));
    float **small[6] = {&b->dist, &b->f, &b->res, &b->res_best, &b->obj, &b->adv_obj};
    for (int i = 0; i < 6; i++) *small[i] = sat__attack_carve(&p, n * sizeof(float));
    b->pred = sat__attack_carve(&p, n * sizeof(int32_t));
    b->adv_pred = sat__attack_carve(&p, n * sizeof(int32_t));
}

static double norm_of(int32_t norm, const float *v, int64_t d) {
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) {
        const double a = fabs((double)v[j]);
        if (norm == SAT_NORM_LINF) s = a > s ? a : s;
        else s += a * a;
    }
    return norm == SAT_NORM_LINF ? s : sqrt(s);
}

/* The norm dual to the attack's: distances to a hyperplane with normal g are |f| / ||g||_*. */
static double dual_norm(int32_t norm, const float *g, int64_t d) {
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) s += norm == SAT_NORM_LINF ? fabs((double)g[j]) : (double)g[j] * g[j];
    return norm == SAT_NORM_LINF ? s : sqrt(s);
}

static double dist_between(int32_t norm, const float *a, const float *b, int64_t d) {
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) {
        const double v = fabs((double)a[j] - (double)b[j]);
        if (norm == SAT_NORM_LINF) s = v > s ? v : s;
        else s += v * v;
    }
    return norm == SAT_NORM_LINF ? s : sqrt(s);
}

/* x0 + eps/2 times a random direction of norm 1 (Linf: uniform in [-1,1] per pixel divided by
 * its largest magnitude; L2: a normal vector divided by its length), clipped to [0,1]. */
static void random_start(const sat__attack_cfg *cfg, int32_t restart, int64_t example, const float *x0,
                         float *x1, int64_t d) {
    const uint64_t key = sat__rng_u64(cfg->seed, SAT_STREAM_FAB, (uint64_t)restart);
    const uint64_t base = (uint64_t)example * (uint64_t)d;
    for (int64_t j = 0; j < d; j++) {
        const uint64_t at = base + (uint64_t)j;
        x1[j] = cfg->norm == SAT_NORM_LINF ? 2.0f * sat__rng_uniform(key, SAT_STREAM_FAB, at) - 1.0f
                                           : sat__rng_normal(key, SAT_STREAM_FAB, at);
    }
    const double len = norm_of(cfg->norm, x1, d);
    const double f = len > 0.0 ? 0.5 * (double)cfg->eps / len : 0.0;
    for (int64_t j = 0; j < d; j++) {
        const double v = (double)x0[j] + f * (double)x1[j];
        x1[j] = (float)(v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v));
    }
}

/* The class whose boundary example i is linearised towards in slot q: the target, or the
 * q-th class other than the label. */
static int32_t slot_class(const sat__attack_chunk *c, int64_t i, int32_t q) {
    if (c->cfg->uses_targets) return c->targets[i];
    return q < c->labels[i] ? q : q + 1;
}

/* Picks, per example, the closest linearised boundary: w = grad(z_j - z_y), f = z_j - z_y. */
static int32_t linearise(sat__attack_chunk *c, const fab_buf *b) {
    const sat__target *m = c->m;
    const sat__attack_cfg *cfg = c->cfg;
    const int64_t d = m->in_size, nc = c->nc;
    const int32_t k = m->classes;
    const float *z;
    int32_t st = m->forward(m->self, b->x1, nc, cfg->bn, &z);
    if (st) return st;
    memcpy(b->logits, z, sizeof(float) * (size_t)(nc * k));
    const int32_t slots = cfg->uses_targets ? 1 : k - 1;
    for (int64_t i = 0; i < nc; i++) b->dist[i] = INFINITY;
    for (int32_t q = 0; q < slots; q++) {
        memset(b->dlogits, 0, sizeof(float) * (size_t)(nc * k));
        for (int64_t i = 0; i < nc; i++) {
            const int32_t j = slot_class(c, i, q);
            if (j == c->labels[i]) continue; /* a target equal to the label has no boundary */
            b->dlogits[i * k + j] = 1.0f;
            b->dlogits[i * k + c->labels[i]] = -1.0f;
        }
        st = m->backward(m->self, b->x1, nc, b->dlogits, b->g);
        if (st) return st;
        for (int64_t i = 0; i < nc; i++) {
            const int32_t j = slot_class(c, i, q), y = c->labels[i];
            if (j == y) continue;
            const float *zi = b->logits + i * k;
            const double f = (double)zi[j] - (double)zi[y];
            const double dist = fabs(f) / (1e-12 + dual_norm(cfg->norm, b->g + i * d, d));
            if (dist < (double)b->dist[i]) {
                b->dist[i] = (float)dist;
                b->f[i] = (float)f;
                memcpy(b->w + i * d, b->g + i * d, sizeof(float) * (size_t)d);
            }
        }
    }
    return SAT_OK;
}

/* One FAB step of example i from x1 (the boundary of b->w, b->f). */
static void step(const sat__attack_cfg *cfg, const fab_buf *b, int64_t i, const float *x0, int64_t d) {
    float *x1 = b->x1 + i * d;
    const float *w = b->w + i * d;
    double wx = 0.0;
    for (int64_t j = 0; j < d; j++) wx += (double)w[j] * (double)x1[j];
    const double hb = wx - (double)b->f[i]; /* the hyperplane <w, z> = hb */
    sat__fab_project(cfg->norm, x1, w, hb, b->d1, d, b->pairs);
    sat__fab_project(cfg->norm, x0, w, hb, b->d2, d, b->pairs);
    double a1 = norm_of(cfg->norm, b->d1, d), a2 = norm_of(cfg->norm, b->d2, d);
    a1 = a1 > 1e-8 ? a1 : 1e-8;
    a2 = a2 > 1e-8 ? a2 : 1e-8;
    double alpha = a1 / (a1 + a2);
    alpha = alpha < FAB_ALPHA_MAX ? alpha : FAB_ALPHA_MAX;
    for (int64_t j = 0; j < d; j++) {
        const double v = ((double)x1[j] + FAB_ETA * b->d1[j]) * (1.0 - alpha) +
                         ((double)x0[j] + FAB_ETA * b->d2[j]) * alpha;
        x1[j] = (float)(v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v));
    }
}

static int32_t run_restart(sat__attack_chunk *c, const fab_buf *b, int32_t r) {
    const sat__target *m = c->m;
    const sat__attack_cfg *cfg = c->cfg;
    const int64_t d = m->in_size, nc = c->nc;
    for (int64_t i = 0; i < nc; i++) {
        if (r == 0) memcpy(b->x1 + i * d, c->x + i * d, sizeof(float) * (size_t)d);
        else random_start(cfg, r, sat__attack_index(c, i), c->x + i * d, b->x1 + i * d, d);
        b->res[i] = INFINITY;
    }
    for (int32_t it = 0; it < cfg->steps; it++) {
        int32_t st = linearise(c, b);
        if (st) return st;
        for (int64_t i = 0; i < nc; i++)
            if (b->dist[i] != INFINITY) step(cfg, b, i, c->x + i * d, d);
        st = sat__attack_eval(c, b->x1, c->labels, c->targets, nc, b->obj, b->pred, NULL, NULL);
        if (st) return st;
        sat__attack_trace_add(c, (int64_t)r * cfg->steps + it, b->obj, b->pred);
        if ((st = sat__attack_tick(c))) return st;
        for (int64_t i = 0; i < nc; i++) {
            if (b->pred[i] == c->labels[i]) continue;
            float *x1 = b->x1 + i * d;
            const float *x0 = c->x + i * d;
            const double t = dist_between(cfg->norm, x1, x0, d);
            if (t < (double)b->res[i]) {
                b->res[i] = (float)t;
                memcpy(b->adv + i * d, x1, sizeof(float) * (size_t)d);
                b->adv_obj[i] = b->obj[i];
                b->adv_pred[i] = b->pred[i];
            }
            for (int64_t j = 0; j < d; j++) x1[j] = x0[j] + FAB_BETA * (x1[j] - x0[j]);
        }
    }
    /* Keep the closest adversarial point within eps over the restarts. */
    for (int64_t i = 0; i < nc; i++) {
        if (!(b->res[i] <= cfg->eps && b->res[i] < b->res_best[i])) continue;
        b->res_best[i] = b->res[i];
        memcpy(c->best + i * d, b->adv + i * d, sizeof(float) * (size_t)d);
        /* FAB's points can sit a rounding error outside the ball; project them onto it. */
        sat__attack_project(cfg->norm, cfg->eps, c->x + i * d, c->best + i * d, d);
        c->best_obj[i] = b->adv_obj[i];
        c->best_hit[i] = 1;
        c->best_pred[i] = b->adv_pred[i];
    }
    return SAT_OK;
}

int32_t sat__fab_chunk(sat__attack_chunk *c) {
    fab_buf b;
    carve_all(c, &b);
    const sat__target *m = c->m;
    const int64_t d = m->in_size, nc = c->nc;
    /* Until something closer is found, each example keeps x0 (a success at distance 0 when it
     * is misclassified already). */
    memcpy(c->best, c->x, sizeof(float) * (size_t)(nc * d));
    int32_t st = sat__attack_eval(c, c->x, c->labels, c->targets, nc, c->best_obj, c->best_pred, NULL, NULL);
    if (st) return st;
    for (int64_t i = 0; i < nc; i++) {
        c->best_hit[i] = c->best_pred[i] != c->labels[i];
        b.res_best[i] = c->best_hit[i] ? 0.0f : INFINITY;
    }
    for (int32_t r = 0; r < c->cfg->restarts; r++) {
        st = run_restart(c, &b, r);
        if (st) return st;
    }
    return SAT_OK;
}
