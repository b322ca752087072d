/* craft.c - the attacks a trainer runs to make its training batch, run by the attack
 * module's PGD (lib/attack) on the model's attack plan: PGD / FGSM on the cross-entropy
 * (PGD-AT, Fast-AT) and TRADES' attack on KL(p(x) || p(x_adv)) from x + 0.001 N(0,1).
 * Batch norm runs in the trainer's attack mode and the running statistics are never
 * touched. Each step draws its random starts under its own key, made from the trainer's
 * seed and counter, at the attack module's indices (example in the batch, pixel), so the
 * batch is a function of (seed, counter, x) whatever the thread count or chunking. Rank r
 * of rank_count, with a batch of n, draws at indices r*n.., so equal rank batches together
 * draw the starts one process draws for their concatenation. */
#include "train/train.h"

#include "attack/attack.h"

#include <string.h>

int32_t sat__attack_bn(const sat_trainer *t) {
    int32_t mode = t->opts.attack_bn_mode >= 0 ? t->opts.attack_bn_mode : t->model->opts.attack_bn_mode;
    return mode == SAT_BN_BATCH ? SAT__BN_BATCH : SAT__BN_INFER;
}

void sat__ascent_step(int32_t norm, float alpha, const float *g, float *x_adv, int64_t n, int64_t size) {
    for (int64_t e = 0; e < n; e++) sat__attack_ascend(norm, alpha, g + e * size, x_adv + e * size, size);
}

/* The attack of one training step: PGD that keeps its last iterate, as PGD-AT, Fast-AT
 * and TRADES train on it. */
static void step_cfg(const sat_trainer *t, int32_t objective, int32_t steps, float step_size, int32_t start,
                     sat__attack_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->method = SAT_ATTACK_PGD;
    cfg->norm = t->opts.norm;
    cfg->objective = objective;
    cfg->eps = t->opts.eps;
    cfg->step = step_size;
    cfg->steps = steps;
    cfg->restarts = 1;
    cfg->random_start = start;
    cfg->start_sigma = 0.001f; /* TRADES' start (Zhang et al.) */
    cfg->bn = sat__attack_bn(t);
    cfg->keep_last = 1;
    cfg->eot = 1;
    cfg->seed = sat__rng_u64(t->seed, SAT_STREAM_TRAIN, (uint64_t)t->rng_counter);
}

/* The model as the attack sees it, reporting to the running step's progress (one unit per
 * example and attack step, as the step counts them). */
/* Global index of a rank's first example (equal batches on every rank). */
static int64_t rank_base(const sat_trainer *t, int64_t n) { return (int64_t)t->opts.rank * n; }

static void target_of(const sat_trainer *t, sat__target *tg) {
    sat__target_of_model(t->model, tg);
    tg->progress = t->progress;
}

/* A failure's message: the model's (in tg->err), except a cancel, which the step's progress
 * has already described in t->err. */
static int32_t craft_failed(sat_trainer *t, int32_t st, const sat__target *tg) {
    if (st == SAT_OK || st == SAT_E_ABORTED) return st;
    return sat__fail(t->err, st, "%s: %s", t->call, tg->err);
}

size_t sat__craft_work_bytes(const sat_trainer *t) {
    sat__target tg;
    sat__target_of_model(t->model, &tg);
    sat__attack_cfg cfg;
    step_cfg(t, SAT__OBJ_CE, 1, t->opts.eps, 1, &cfg);
    return sat__attack_work_bytes(&tg, &cfg, t->model->max_batch);
}

int32_t sat__craft_ce(sat_trainer *t, const float *x, const int32_t *labels, int64_t n, int32_t steps,
                      float step_size, int random, float *x_adv) {
    sat__target tg;
    target_of(t, &tg);
    sat__attack_cfg cfg;
    step_cfg(t, SAT__OBJ_CE, steps, step_size, random ? 1 : 0, &cfg);
    const int32_t st = sat__attack_run(&tg, &cfg, x, labels, NULL, NULL, n, rank_base(t, n), NULL, x_adv,
                                       t->attack_work, NULL);
    return craft_failed(t, st, &tg);
}

int32_t sat__craft_kl(sat_trainer *t, const float *x, const int32_t *labels, int64_t n, int32_t steps,
                      float step_size, float *x_adv) {
    sat__target tg;
    target_of(t, &tg);
    sat__attack_cfg cfg;
    step_cfg(t, SAT__OBJ_KL, steps, step_size, SAT__START_NOISE, &cfg);
    /* p(x), fixed during the attack, in the attack's batch-norm mode (n <= max_batch). */
    const float *logits;
    int32_t st = tg.forward(tg.self, x, n, cfg.bn, &logits);
    if (st == SAT_OK) {
        memcpy(t->logits_a, logits, sizeof(float) * (size_t)(n * tg.classes));
        st = sat__attack_run(&tg, &cfg, x, labels, NULL, t->logits_a, n, rank_base(t, n), NULL, x_adv,
                             t->attack_work, NULL);
    }
    return craft_failed(t, st, &tg);
}
