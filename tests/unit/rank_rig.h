/* rank_rig.h - what the data-parallel tests share (test_train_split, test_sync_bn): a model
 * with its SGD and a trainer, and a batch of uniform images. Included by the test programs
 * that use it (static functions: each test is its own program). */
#ifndef SAT_RANK_RIG_H
#define SAT_RANK_RIG_H

#include "testutil.h"

/* One model, its SGD and a trainer, from a seeded context. */
typedef struct rig {
    sat_model *m;
    sat_optimizer *opt;
    sat_trainer *t;
} rig;

/* Trainer options: `method` with 3 attack steps of eps 0.1, as rank `rank` of `ranks`. */
static sat_trainer_opts rig_trainer_opts(int32_t method, int32_t rank, int32_t ranks) {
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = method;
    to.steps = 3;
    to.eps = 0.1f;
    to.rank = rank;
    to.rank_count = ranks;
    return to;
}

/* A SiLU model of spec (context seed 7), SGD with lr 0.05, momentum 0.9 and weight_decay,
 * and a trainer with options `to`; all released at the end of the test. */
static rig rig_make(const char *spec, int32_t max_batch, float weight_decay, const sat_trainer_opts *to) {
    rig r;
    sat_context *ctx = tu_context(1, 7);
    r.m = tu_model(ctx, spec, SAT_ACT_SILU, max_batch);
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.lr = 0.05f;
    oo.momentum = 0.9f;
    oo.weight_decay = weight_decay;
    TU_CHECK(sat_optimizer_create(r.m, &oo, &r.opt));
    tu_own_optimizer(r.opt);
    TU_CHECK(sat_trainer_create(r.m, r.opt, to, &r.t));
    tu_own_trainer(r.t);
    return r;
}

/* n examples of d uniform pixels, labels cycling through k classes from the seed. */
static void rig_batch(float *x, int32_t *y, int64_t n, int64_t d, int32_t k, uint64_t seed) {
    tu_fill_uniform(x, n * d, 0.0f, 1.0f, seed);
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)((i * 3 + (int64_t)seed) % k);
}

#endif
