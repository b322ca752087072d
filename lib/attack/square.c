/* square.c - the Square attack (Andriushchenko et al., arXiv 1912.00049) on one chunk: a
 * score-based black-box attack that needs logits only. From a start on the boundary of the
 * ball it proposes, per query, a change inside one random square window and keeps it when the
 * margin objective rises (or the example becomes adversarial). The window's side follows the
 * paper's schedule of p, the fraction of pixels changed: p_init = 0.8 halved after queries
 * 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000, side = round(sqrt(p * H * W)).
 *
 *  - Linf: start x + eps * (random sign per channel and column: vertical stripes); a
 *    proposal sets the window of each channel to x +- eps (one random sign per channel).
 *  - L2: start from a 5x5 grid of the paper's square patterns (eta) with random signs,
 *    scaled to norm eps; a proposal moves the mass of a second window into the first and
 *    adds a new pattern there, keeping the perturbation's norm at eps.
 *
 * Unlike the reference implementation, which draws one window for a whole batch, every
 * example draws its own from the counter RNG (seed, restart, its index, query), so results do
 * not depend on the batch split. Examples that are already adversarial stop querying. */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

#define SQUARE_P_INIT 0.8

size_t sat__square_scratch_bytes(const sat__target *m, int64_t nc) {
    const size_t n = (size_t)nc, d = (size_t)m->in_size, hw = (size_t)m->height * (size_t)m->width;
    return 2 * sat__attack_align(n * d * sizeof(float)) + 2 * sat__attack_align(d * sizeof(float)) +
           2 * sat__attack_align(hw * sizeof(float)) + 2 * sat__attack_align(n * sizeof(float)) +
           4 * sat__attack_align(n * sizeof(int32_t)) + sat__attack_align(n * sizeof(int64_t));
}

/* The fraction of pixels a proposal changes before query `it` (0-based), p_init halved at
 * the paper's query counts (not rescaled to the query budget, as in AutoAttack). */
double sat__square_p(int32_t it) {
    static const int32_t after[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    double p = SQUARE_P_INIT;
    for (size_t k = 0; k < sizeof after / sizeof after[0]; k++)
        if (it > after[k]) p *= 0.5;
    return p;
}

typedef struct square_buf {
    float *best, *cand;          /* [nc x d] kept points; proposals of the active examples */
    float *delta, *window;       /* [d] perturbation; new window contents */
    float *pattern, *tmp;        /* [h x w] eta pattern and scratch */
    float *obj, *cand_obj;       /* [nc] */
    int32_t *pred, *cand_pred, *lab, *tgt;
    int64_t *active;             /* [nc] chunk positions of the active examples */
} square_buf;

static void carve_all(sat__attack_chunk *c, square_buf *b) {
    const size_t n = (size_t)c->nc, d = (size_t)c->m->in_size;
    const size_t hw = (size_t)c->m->height * (size_t)c->m->width;
    unsigned char *p = c->scratch;
    b->best = sat__attack_carve(&p, n * d * sizeof(float));
    b->cand = sat__attack_carve(&p, n * d * sizeof(float));
    b->delta = sat__attack_carve(&p, d * sizeof(float));
    b->window = sat__attack_carve(&p, d * sizeof(float));
    b->pattern = sat__attack_carve(&p, hw * sizeof(float));
    b->tmp = sat__attack_carve(&p, hw * sizeof(float));
    b->obj = sat__attack_carve(&p, n * sizeof(float));
    b->cand_obj = sat__attack_carve(&p, n * sizeof(float));
    int32_t **ints[4] = {&b->pred, &b->cand_pred, &b->lab, &b->tgt};
    for (int i = 0; i < 4; i++) *ints[i] = sat__attack_carve(&p, n * sizeof(int32_t));
    b->active = sat__attack_carve(&p, n * sizeof(int64_t));
}

/* Random draws of one example: query `it` (-1: the start) and a slot within it. */
typedef struct draws {
    uint64_t key;
    int32_t it;
} draws;

static float uniform(const draws *r, uint64_t slot) {
    return sat__rng_uniform(r->key, SAT_STREAM_SQUARE, ((uint64_t)(uint32_t)(r->it + 1) << 32) + slot);
}
static float sign_of(const draws *r, uint64_t slot) { return uniform(r, slot) < 0.5f ? -1.0f : 1.0f; }
/* Uniform position in 0..span. */
static int32_t position(const draws *r, uint64_t slot, int32_t span) {
    const int32_t v = (int32_t)(uniform(r, slot) * (float)(span + 1));
    return v > span ? span : v;
}

static double l2(const float *v, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * (double)v[i];
    return sqrt(s);
}

/* The paper's rectangle: rows x cols, sum over k of 1/(k+1)^2 on centred squares of side
 * 2k+1, normalised to L2 norm 1. Written with row stride `stride`. */
static void rectangle(int32_t rows, int32_t cols, float *out, int32_t stride) {
    for (int32_t i = 0; i < rows; i++) memset(out + i * stride, 0, sizeof(float) * (size_t)cols);
    const int32_t rc = rows / 2 + 1, cc = cols / 2 + 1, rounds = rc > cc ? rc : cc;
    for (int32_t k = 0; k < rounds; k++) {
        const int32_t r0 = rc - 1 - k, c0 = cc - 1 - k;
        const float v = 1.0f / (float)((k + 1) * (k + 1));
        for (int32_t i = r0 > 0 ? r0 : 0; i < r0 + 2 * k + 1 && i < rows; i++)
            for (int32_t j = c0 > 0 ? c0 : 0; j < c0 + 2 * k + 1 && j < cols; j++) out[i * stride + j] += v;
    }
    double s = 0.0;
    for (int32_t i = 0; i < rows; i++) s += pow(l2(out + i * stride, cols), 2);
    s = sqrt(s);
    if (s > 0.0)
        for (int32_t i = 0; i < rows; i++)
            for (int32_t j = 0; j < cols; j++) out[i * stride + j] = (float)(out[i * stride + j] / s);
}

/* The L2 pattern eta of side s: a positive rectangle on the top half, a negative one on the
 * bottom half, norm 1, transposed when `transpose`. tmp holds s*s floats. */
static void pattern(int32_t s, int transpose, float *out, float *tmp) {
    float *p = transpose ? tmp : out;
    rectangle(s / 2, s, p, s);
    rectangle(s - s / 2, s, p + (s / 2) * s, s);
    for (int32_t i = (s / 2) * s; i < s * s; i++) p[i] = -p[i];
    const double n = l2(p, (int64_t)s * s);
    for (int32_t i = 0; i < s * s; i++) p[i] = n > 0.0 ? (float)(p[i] / n) : 0.0f;
    if (transpose)
        for (int32_t i = 0; i < s; i++)
            for (int32_t j = 0; j < s; j++) out[j * s + i] = p[i * s + j];
}

static void clip_unit(float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) v[i] = v[i] < 0.0f ? 0.0f : (v[i] > 1.0f ? 1.0f : v[i]);
}

/* xa = clip(x + eps * delta / ||delta||, 0, 1), projected onto the ball. */
static void from_delta(const sat__attack_cfg *cfg, const float *x, const float *delta, float *xa, int64_t d) {
    const double f = (double)cfg->eps / (1e-12 + l2(delta, d));
    for (int64_t j = 0; j < d; j++) xa[j] = (float)((double)x[j] + f * (double)delta[j]);
    clip_unit(xa, d);
    sat__attack_project(cfg->norm, cfg->eps, x, xa, d);
}

static void start_linf(const sat__target *m, const sat__attack_cfg *cfg, const draws *r, const float *x,
                       float *xa) {
    const int32_t C = m->channels, H = m->height, W = m->width;
    for (int32_t ch = 0; ch < C; ch++)
        for (int32_t col = 0; col < W; col++) {
            const float v = cfg->eps * sign_of(r, (uint64_t)ch * (uint64_t)W + (uint64_t)col);
            for (int32_t row = 0; row < H; row++) {
                const int64_t at = ((int64_t)ch * H + row) * W + col;
                xa[at] = x[at] + v;
            }
        }
    clip_unit(xa, m->in_size);
    sat__attack_project(cfg->norm, cfg->eps, x, xa, m->in_size);
}

static void start_l2(const sat__target *m, const sat__attack_cfg *cfg, const draws *r, const float *x,
                     float *xa, const square_buf *b) {
    const int32_t C = m->channels, H = m->height, W = m->width;
    const int32_t s = H / 5 > 0 ? H / 5 : 1, first = (H - 5 * s) / 2 > 0 ? (H - 5 * s) / 2 : 0;
    memset(b->delta, 0, sizeof(float) * (size_t)m->in_size);
    uint64_t slot = 0;
    for (int32_t vh = first; vh + s <= H; vh += s)
        for (int32_t vw = first; vw + s <= W; vw += s) {
            pattern(s, uniform(r, slot++) < 0.5f, b->pattern, b->tmp);
            for (int32_t ch = 0; ch < C; ch++) {
                const float sg = sign_of(r, slot++);
                for (int32_t i = 0; i < s; i++)
                    for (int32_t j = 0; j < s; j++)
                        b->delta[((int64_t)ch * H + vh + i) * W + vw + j] += sg * b->pattern[i * s + j];
            }
        }
    from_delta(cfg, x, b->delta, xa, m->in_size);
}

/* A Linf proposal: one window set to x +- eps, one random sign per channel. */
static void propose_linf(const sat__target *m, const sat__attack_cfg *cfg, const draws *r, const float *x,
                         const float *best, float *xa) {
    const int32_t C = m->channels, H = m->height, W = m->width, side = H < W ? H : W;
    int32_t s = (int32_t)lround(sqrt(sat__square_p(r->it) * (double)H * (double)W));
    s = s < 1 ? 1 : (s > side ? side : s);
    const int32_t vh = position(r, 0, H - s), vw = position(r, 1, W - s);
    memcpy(xa, best, sizeof(float) * (size_t)m->in_size);
    for (int32_t ch = 0; ch < C; ch++) {
        const float v = 2.0f * cfg->eps * sign_of(r, 2 + (uint64_t)ch);
        for (int32_t i = vh; i < vh + s; i++)
            for (int32_t j = vw; j < vw + s; j++) {
                const int64_t at = ((int64_t)ch * H + i) * W + j;
                const float lo = fmaxf(x[at] - cfg->eps, 0.0f), hi = fminf(x[at] + cfg->eps, 1.0f);
                const float t = best[at] + v;
                xa[at] = t < lo ? lo : (t > hi ? hi : t);
            }
    }
}

/* Sum of squares of channel ch of delta over window (vh, vw, s), or over the union of two
 * windows when (vh2, vw2) is given (vh2 < 0: none). */
static double window_sq(const square_buf *b, int32_t H, int32_t W, int32_t ch, int32_t s, int32_t vh,
                        int32_t vw, int32_t vh2, int32_t vw2) {
    double sum = 0.0;
    for (int32_t i = 0; i < H; i++)
        for (int32_t j = 0; j < W; j++) {
            const int in1 = i >= vh && i < vh + s && j >= vw && j < vw + s;
            const int in2 = vh2 >= 0 && i >= vh2 && i < vh2 + s && j >= vw2 && j < vw2 + s;
            if (!in1 && !in2) continue;
            const double v = b->delta[((int64_t)ch * H + i) * W + j];
            sum += v * v;
        }
    return sum;
}

/* An L2 proposal: window 1 gets its old contents (normalised) plus a new random pattern,
 * rescaled so that the energy of windows 1 and 2 plus what the ball has left goes into it;
 * window 2 is emptied. */
static void propose_l2(const sat__target *m, const sat__attack_cfg *cfg, const draws *r, const float *x,
                       const float *best, float *xa, const square_buf *b) {
    const int32_t C = m->channels, H = m->height, W = m->width, side = H < W ? H : W;
    const int64_t d = m->in_size;
    int32_t s = (int32_t)lround(sqrt(sat__square_p(r->it) * (double)H * (double)W));
    s = s < 3 ? 3 : s;
    if (s % 2 == 0) s++;
    s = s > side ? side : s;
    const int32_t vh = position(r, 0, H - s), vw = position(r, 1, W - s);
    const int32_t vh2 = position(r, 2, H - s), vw2 = position(r, 3, W - s);
    for (int64_t j = 0; j < d; j++) b->delta[j] = best[j] - x[j];
    const double image_sq = pow(l2(b->delta, d), 2);
    const double eps_sq = (double)cfg->eps * (double)cfg->eps;
    pattern(s, uniform(r, 4) < 0.5f, b->pattern, b->tmp);
    for (int32_t ch = 0; ch < C; ch++) {
        const double w1 = sqrt(window_sq(b, H, W, ch, s, vh, vw, -1, -1));
        const double both = window_sq(b, H, W, ch, s, vh, vw, vh2, vw2);
        const float sg = sign_of(r, 5 + (uint64_t)ch);
        float *nw = b->window + (int64_t)ch * s * s;
        for (int32_t i = 0; i < s; i++)
            for (int32_t j = 0; j < s; j++)
                nw[i * s + j] = (float)(sg * b->pattern[i * s + j] +
                                        b->delta[((int64_t)ch * H + vh + i) * W + vw + j] / (1e-12 + w1));
        const double left = eps_sq - image_sq > 0.0 ? eps_sq - image_sq : 0.0;
        const double target = sqrt(left / (double)C + both);
        const double f = target / (1e-12 + l2(nw, (int64_t)s * s));
        for (int32_t i = 0; i < s * s; i++) nw[i] = (float)(nw[i] * f);
    }
    for (int32_t ch = 0; ch < C; ch++) {
        for (int32_t i = vh2; i < vh2 + s; i++)
            memset(b->delta + ((int64_t)ch * H + i) * W + vw2, 0, sizeof(float) * (size_t)s);
        for (int32_t i = 0; i < s; i++)
            memcpy(b->delta + ((int64_t)ch * H + vh + i) * W + vw, b->window + ((int64_t)ch * s + i) * s,
                   sizeof(float) * (size_t)s);
    }
    from_delta(cfg, x, b->delta, xa, d);
}

static int hit(const sat__attack_chunk *c, int64_t i, int32_t pred) {
    return c->cfg->hit_target ? pred == c->targets[i] : pred != c->labels[i];
}

static draws draws_of(const sat__attack_chunk *c, int32_t r, int64_t i, int32_t it) {
    const uint64_t key = sat__rng_u64(c->cfg->seed, SAT_STREAM_SQUARE, ~(uint64_t)r);
    draws dr = {sat__rng_u64(key, SAT_STREAM_SQUARE, (uint64_t)(sat__attack_index(c, i))), it};
    return dr;
}

/* Queries the proposals of the `na` active examples and keeps the better ones. */
static int32_t query(sat__attack_chunk *c, const square_buf *b, int64_t na) {
    const int64_t d = c->m->in_size;
    for (int64_t a = 0; a < na; a++) {
        b->lab[a] = c->labels[b->active[a]];
        if (c->targets) b->tgt[a] = c->targets[b->active[a]];
    }
    int32_t st = sat__attack_eval(c, b->cand, b->lab, c->targets ? b->tgt : NULL, na, b->cand_obj,
                                  b->cand_pred, NULL, NULL);
    if (st) return st;
    for (int64_t a = 0; a < na; a++) {
        const int64_t i = b->active[a];
        if (b->cand_obj[a] > b->obj[i] || hit(c, i, b->cand_pred[a])) {
            memcpy(b->best + i * d, b->cand + a * d, sizeof(float) * (size_t)d);
            b->obj[i] = b->cand_obj[a];
            b->pred[i] = b->cand_pred[a];
        }
    }
    return SAT_OK;
}

static int32_t run_restart(sat__attack_chunk *c, const square_buf *b, int32_t r) {
    const sat__target *m = c->m;
    const sat__attack_cfg *cfg = c->cfg;
    const int64_t d = m->in_size, nc = c->nc;
    for (int64_t i = 0; i < nc; i++) {
        const draws dr = draws_of(c, r, i, -1);
        if (cfg->norm == SAT_NORM_LINF) start_linf(m, cfg, &dr, c->x + i * d, b->best + i * d);
        else start_l2(m, cfg, &dr, c->x + i * d, b->best + i * d, b);
    }
    int32_t st = sat__attack_eval(c, b->best, c->labels, c->targets, nc, b->obj, b->pred, NULL, NULL);
    if (st) return st;
    for (int32_t it = 0; it < cfg->steps; it++) {
        int64_t na = 0;
        for (int64_t i = 0; i < nc; i++) {
            if (hit(c, i, b->pred[i])) continue;
            const draws dr = draws_of(c, r, i, it);
            float *xa = b->cand + na * d;
            if (cfg->norm == SAT_NORM_LINF) propose_linf(m, cfg, &dr, c->x + i * d, b->best + i * d, xa);
            else propose_l2(m, cfg, &dr, c->x + i * d, b->best + i * d, xa, b);
            b->active[na++] = i;
        }
        if (na > 0) {
            st = query(c, b, na);
            if (st) return st;
        }
        sat__attack_trace_add(c, (int64_t)r * cfg->steps + it, b->obj, b->pred);
        if ((st = sat__attack_tick(c))) return st;
    }
    sat__attack_offer(c, b->best, b->obj, b->pred, r == 0);
    return SAT_OK;
}

int32_t sat__square_chunk(sat__attack_chunk *c) {
    square_buf b;
    carve_all(c, &b);
    for (int32_t r = 0; r < c->cfg->restarts; r++) {
        int32_t st = run_restart(c, &b, r);
        if (st) return st;
    }
    return SAT_OK;
}
