/* run.c - runs an attack over a batch of any size: splits it into chunks of the model's
 * max_batch (examples are attacked independently, so chunking changes nothing), owns the
 * scratch memory, and keeps the per-example worst case across iterates and restarts. */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

/* Whether evaluations average several passes (a randomised model and cfg->eot > 1). */
static int uses_eot(const sat__target *m, const sat__attack_cfg *cfg) { return cfg->eot > 1 && !m->deterministic; }

/* The kept point, its objective, success flag and prediction per example, and the buffers
 * of one expectation pass. */
static size_t keep_bytes(const sat__target *m, const sat__attack_cfg *cfg, int64_t nc) {
    const size_t n = (size_t)nc;
    const size_t eot = uses_eot(m, cfg) ? sat__attack_align(n * (size_t)m->in_size * sizeof(float)) +
                                              sat__attack_align(n * sizeof(float))
                                        : 0;
    return sat__attack_align(n * (size_t)m->in_size * sizeof(float)) + sat__attack_align(n * sizeof(float)) +
           sat__attack_align(n) + sat__attack_align(n * sizeof(int32_t)) + eot;
}

size_t sat__attack_work_bytes(const sat__target *m, const sat__attack_cfg *cfg, int64_t n) {
    const int64_t nc = n < m->max_batch ? n : m->max_batch;
    size_t algo;
    switch (cfg->method) {
    case SAT_ATTACK_APGD_CE:
    case SAT_ATTACK_APGD_DLR: algo = sat__apgd_scratch_bytes(m, nc); break;
    case SAT_ATTACK_FAB: algo = sat__fab_scratch_bytes(m, nc); break;
    case SAT_ATTACK_SQUARE: algo = sat__square_scratch_bytes(m, nc); break;
    default: algo = sat__pgd_scratch_bytes(m, nc); break;
    }
    return keep_bytes(m, cfg, nc) + algo;
}

static int32_t eval_once(sat__attack_chunk *c, const float *xa, const int32_t *labels, const int32_t *targets,
                         int64_t nc, float *obj, int32_t *pred, float *dlogits, float *grad) {
    const sat__target *m = c->m;
    const float *logits;
    int32_t st = m->forward(m->self, xa, nc, c->cfg->bn, &logits);
    if (st) return st;
    const int32_t k = m->classes;
    /* The KL reference is the chunk's: only attacks that evaluate whole chunks (PGD) use it. */
    sat__attack_objective(c->cfg->objective, logits, labels, targets, c->ref_logits, nc, k, obj,
                          grad ? dlogits : NULL);
    for (int64_t i = 0; i < nc; i++) pred[i] = sat__argmax(logits + i * k, k, -1, -1);
    if (grad) st = m->backward(m->self, xa, nc, dlogits, grad);
    return st;
}

int32_t sat__attack_eval(sat__attack_chunk *c, const float *xa, const int32_t *labels, const int32_t *targets,
                         int64_t nc, float *obj, int32_t *pred, float *dlogits, float *grad) {
    int32_t st = eval_once(c, xa, labels, targets, nc, obj, pred, dlogits, grad);
    if (st || !uses_eot(c->m, c->cfg)) return st;
    /* Expectation over transformation (Athalye et al.): the mean over eot passes. */
    const int64_t d = c->m->in_size;
    const int32_t passes = c->cfg->eot;
    for (int32_t p = 1; p < passes && st == SAT_OK; p++) {
        st = eval_once(c, xa, labels, targets, nc, c->eot_obj, pred, dlogits, grad ? c->eot_grad : NULL);
        for (int64_t i = 0; st == SAT_OK && i < nc; i++) obj[i] += c->eot_obj[i];
        for (int64_t j = 0; st == SAT_OK && grad && j < nc * d; j++) grad[j] += c->eot_grad[j];
    }
    for (int64_t i = 0; i < nc; i++) obj[i] /= (float)passes;
    for (int64_t j = 0; grad && j < nc * d; j++) grad[j] /= (float)passes;
    return st;
}

void sat__attack_start(const sat__attack_chunk *c, int32_t r, float *xa) {
    const sat__attack_cfg *cfg = c->cfg;
    const int64_t d = c->m->in_size;
    for (int64_t i = 0; i < c->nc; i++) {
        const float *x = c->x + i * d;
        float *a = xa + i * d;
        const int64_t e = sat__attack_index(c, i);
        if (!cfg->random_start) {
            memcpy(a, x, sizeof(float) * (size_t)d);
            continue;
        }
        if (cfg->random_start == SAT__START_NOISE)
            sat__attack_noise_start(cfg->start_sigma, cfg->seed, r, e, x, a, d);
        else
            sat__attack_random_start(cfg->norm, cfg->eps, cfg->seed, r, e, x, a, d);
        sat__attack_project(cfg->norm, cfg->eps, x, a, d);
    }
}

void sat__attack_offer(sat__attack_chunk *c, const float *xa, const float *obj, const int32_t *pred,
                       int force) {
    const int64_t d = c->m->in_size;
    for (int64_t i = 0; i < c->nc; i++) {
        const uint8_t hit = c->cfg->hit_target ? pred[i] == c->targets[i] : pred[i] != c->labels[i];
        /* best_obj is uninitialised before the first (forced) offer: do not read it then. */
        const float kept = force ? NAN : c->best_obj[i];
        const int higher = obj[i] > kept || (isnan(kept) && !isnan(obj[i]));
        if (force || (hit && !c->best_hit[i]) || (hit == c->best_hit[i] && higher)) {
            memcpy(c->best + i * d, xa + i * d, sizeof(float) * (size_t)d);
            c->best_obj[i] = obj[i];
            c->best_hit[i] = hit;
            c->best_pred[i] = pred[i];
        }
    }
}

void sat__attack_trace_add(sat__attack_chunk *c, int64_t entry, const float *obj, const int32_t *pred) {
    sat__attack_out *o = c->out;
    if (!o || !o->trace_obj || entry >= o->trace_len) return;
    double s = 0.0;
    int64_t correct = 0;
    for (int64_t i = 0; i < c->nc; i++) {
        s += obj[i];
        correct += pred[i] == c->labels[i];
    }
    o->trace_obj[entry] += s;
    o->trace_correct[entry] += correct;
}

void *sat__attack_alloc_regions(const sat__target *m, const size_t *sizes, void **regions, size_t count,
                                const char *fn) {
    size_t total = 0;
    for (size_t i = 0; i < count; i++) total += sat__attack_align(sizes[i]);
    unsigned char *block = sat__alloc(m->ctx, total);
    if (!block) {
        sat__fail(m->err, SAT_E_NOMEM, "%s: out of memory for scratch buffers", fn);
        return NULL;
    }
    unsigned char *p = block;
    for (size_t i = 0; i < count; i++) regions[i] = sat__attack_carve(&p, sizes[i]);
    return block;
}

static int32_t run_chunk(sat__attack_chunk *c) {
    switch (c->cfg->method) {
    case SAT_ATTACK_APGD_CE:
    case SAT_ATTACK_APGD_DLR: return sat__apgd_chunk(c);
    case SAT_ATTACK_FAB: return sat__fab_chunk(c);
    case SAT_ATTACK_SQUARE: return sat__square_chunk(c);
    default: return sat__pgd_chunk(c);
    }
}

int32_t sat__attack_run(const sat__target *m, const sat__attack_cfg *cfg, const float *x,
                        const int32_t *labels, const int32_t *targets, const float *ref_logits,
                        int64_t n, int64_t index_base, const int64_t *index, float *x_adv, void *work,
                        sat__attack_out *out) {
    const int64_t d = m->in_size;
    const int64_t chunk = n < m->max_batch ? n : m->max_batch;
    void *owned = NULL;
    if (!work) {
        owned = sat__alloc(m->ctx, sat__attack_work_bytes(m, cfg, n));
        if (!owned) return sat__fail(m->err, SAT_E_NOMEM, "attack: out of memory for scratch buffers");
        work = owned;
    }
    unsigned char *p = work;
    sat__attack_chunk c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.cfg = cfg;
    c.out = out;
    c.best = sat__attack_carve(&p, (size_t)(chunk * d) * sizeof(float));
    c.best_obj = sat__attack_carve(&p, (size_t)chunk * sizeof(float));
    c.best_hit = sat__attack_carve(&p, (size_t)chunk);
    c.best_pred = sat__attack_carve(&p, (size_t)chunk * sizeof(int32_t));
    if (uses_eot(m, cfg)) {
        c.eot_grad = sat__attack_carve(&p, (size_t)(chunk * d) * sizeof(float));
        c.eot_obj = sat__attack_carve(&p, (size_t)chunk * sizeof(float));
    }
    c.scratch = p;

    int32_t st = SAT_OK;
    for (int64_t s = 0; s < n && st == SAT_OK; s += chunk) {
        c.nc = n - s < chunk ? n - s : chunk;
        c.x = x + s * d;
        c.labels = labels + s;
        c.targets = targets ? targets + s : NULL;
        c.ref_logits = ref_logits ? ref_logits + s * m->classes : NULL;
        c.index_base = index_base + s;
        c.index = index ? index + s : NULL;
        st = run_chunk(&c);
        if (st) break;
        /* Written only now, so that x_adv may be x itself. */
        memcpy(x_adv + s * d, c.best, sizeof(float) * (size_t)(c.nc * d));
        if (out && out->obj) memcpy(out->obj + s, c.best_obj, sizeof(float) * (size_t)c.nc);
        if (out && out->pred) memcpy(out->pred + s, c.best_pred, sizeof(int32_t) * (size_t)c.nc);
    }
    sat__dealloc(m->ctx, owned);
    return st;
}
