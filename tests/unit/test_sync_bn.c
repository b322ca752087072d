/* test_sync_bn.c - synchronised batch norm and dropout under data parallelism. Two ranks
 * run on two threads of one process; their batch-norm reduction callback sums the two
 * ranks' values (a barrier, then each adds both in rank order, as an all-reduce does).
 * Then 2 ranks x N, gradients averaged, give the weights and running statistics of one
 * process's 2N batch up to float rounding, where local statistics do not; a callback that
 * returns the sums unchanged (one rank) is the unsynchronised step bit for bit; a refusing
 * callback fails the step with nothing changed; and dropout masks follow the examples'
 * global indices, so the two ranks' masks are those of the 2N batch. */
#include "rank_rig.h"

#include "train/train.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define SPEC "input 1 6 6\nconv 4 k=3\nbn\nact\nconv 6 k=3\nbn\nact\nflatten\ndense 8\nbn\nact\ndense 4\n"
#define SPEC_DROPOUT "input 1 6 6\nconv 4 k=3\nact\nflatten\ndense 12\nact\ndropout p=0.5\ndense 4\n"
#define D 36
#define K 4
#define N 8
#define STEPS 3
#define MAX_SUMS 64 /* 2 * widest batch-norm layer + 1, with room */

/* A PGD-AT rig (no weight decay) for rank of ranks, with the attack's batch-norm mode and
 * the reduction callback. */
static rig make_rig(const char *spec, int32_t max_batch, int32_t rank, int32_t ranks, int32_t attack_bn,
                    sat_bn_reduce_fn reduce, void *user) {
    sat_trainer_opts to = rig_trainer_opts(SAT_TRAIN_PGD, rank, ranks);
    to.attack_bn_mode = attack_bn;
    to.bn_reduce = reduce;
    to.bn_reduce_user = user;
    return rig_make(spec, max_batch, 0.0f, &to);
}

static void make_batch(float *x, int32_t *y, int64_t n, uint64_t seed) { rig_batch(x, y, n, D, K, seed); }

static double max_diff(const float *a, const float *b, int64_t count) {
    double worst = 0.0;
    for (int64_t i = 0; i < count; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    return worst;
}

/* ---- two ranks on two threads ---- */

typedef struct world {
    pthread_barrier_t barrier;
    double *slot[2];
    int64_t count[2];
    float *grads[2];
    int mismatch[2];             /* per rank: the ranks' calls disagreed in count */
    int64_t calls;               /* reductions made by rank 0 */
    rig rank[2];
    const float *x;              /* the global batches, STEPS x 2N */
    const int32_t *y;
    int32_t status[2];
} world;

typedef struct rank_arg {
    world *w;
    int r;
} rank_arg;

/* The all-reduce of doubles: every rank adds the ranks' values in rank order. */
static int32_t sum_over_ranks(void *user, double *sums, int64_t count) {
    rank_arg *a = user;
    world *w = a->w;
    double total[MAX_SUMS];
    w->slot[a->r] = sums;
    w->count[a->r] = count;
    pthread_barrier_wait(&w->barrier);
    if (w->count[0] != w->count[1] || count > MAX_SUMS) w->mismatch[a->r] = 1;
    const int64_t k = count < MAX_SUMS ? count : MAX_SUMS;
    for (int64_t i = 0; i < k; i++) total[i] = w->slot[0][i] + w->slot[1][i];
    pthread_barrier_wait(&w->barrier);
    memcpy(sums, total, sizeof(double) * (size_t)k);
    if (a->r == 0) w->calls++;
    return 0;
}

/* One rank's training: STEPS of compute, the mean of both ranks' gradient blocks, apply. */
static void *run_rank(void *arg) {
    rank_arg *a = arg;
    world *w = a->w;
    const int r = a->r;
    rig *me = &w->rank[r];
    const int64_t np = sat_model_param_count(me->m);
    for (int s = 0; s < STEPS && w->status[r] == SAT_OK; s++) {
        const float *x = w->x + ((int64_t)s * 2 * N + (int64_t)r * N) * D;
        const int32_t *y = w->y + (int64_t)s * 2 * N + (int64_t)r * N;
        w->status[r] = sat_train_compute(me->t, x, y, N, NULL);
        pthread_barrier_wait(&w->barrier);
        const float *g0 = sat_model_grads(w->rank[0].m), *g1 = sat_model_grads(w->rank[1].m);
        for (int64_t i = 0; i < np; i++) w->grads[r][i] = 0.5f * (g0[i] + g1[i]);
        pthread_barrier_wait(&w->barrier);
        memcpy(sat_model_grads(me->m), w->grads[r], sizeof(float) * (size_t)np);
        if (w->status[r] == SAT_OK) w->status[r] = sat_train_apply(me->t);
    }
    return NULL;
}

/* 1 x 2N against 2 x N (synchronised when sync) of spec, whose batch norms are bn_layers:
 * the largest differences of the weights and of the running statistics; the two ranks'
 * models must stay equal bit for bit. With checkpointing the ranks run with activation
 * checkpointing; *rank0_params (may be NULL) receives a copy of rank 0's parameters
 * (tu_alloc'd). */
static void two_ranks_run(const char *spec, int bn_layers, int32_t attack_bn, int sync, int32_t checkpointing,
                          double *param_diff, double *state_diff, float **rank0_params) {
    world *w = tu_alloc(sizeof *w);
    memset(w, 0, sizeof *w);
    float *x = tu_alloc(sizeof(float) * STEPS * 2 * N * D);
    int32_t *y = tu_alloc(sizeof(int32_t) * STEPS * 2 * N);
    for (int s = 0; s < STEPS; s++) make_batch(x + s * 2 * N * D, y + s * 2 * N, 2 * N, 30 + (uint64_t)s);
    w->x = x;
    w->y = y;
    rig one = make_rig(spec, 2 * N, 0, 1, attack_bn, NULL, NULL);
    for (int s = 0; s < STEPS; s++) TU_CHECK(sat_train_step(one.t, x + s * 2 * N * D, y + s * 2 * N, 2 * N, NULL));

    rank_arg args[2] = {{w, 0}, {w, 1}};
    for (int r = 0; r < 2; r++) {
        w->rank[r] = make_rig(spec, N, r, 2, attack_bn, sync ? sum_over_ranks : NULL, &args[r]);
        TU_CHECK(sat_model_set_activation_checkpointing(w->rank[r].m, checkpointing));
        w->grads[r] = tu_alloc(sizeof(float) * (size_t)sat_model_param_count(one.m));
    }
    assert_int_equal(pthread_barrier_init(&w->barrier, NULL, 2), 0);
    pthread_t th[2];
    for (int r = 0; r < 2; r++) assert_int_equal(pthread_create(&th[r], NULL, run_rank, &args[r]), 0);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w->barrier);
    TU_CHECK(w->status[0]);
    TU_CHECK(w->status[1]);
    assert_false(w->mismatch[0] || w->mismatch[1]);
    /* Two forward calls and one backward call per batch-norm layer and training pass (a
     * segment's forward run again makes none); an attack with batch statistics adds its
     * own passes. */
    if (sync && attack_bn == SAT_BN_INFERENCE) assert_int_equal(w->calls, STEPS * bn_layers * 3);
    if (sync && attack_bn == SAT_BN_BATCH) assert_true(w->calls > STEPS * bn_layers * 3);
    if (!sync) assert_int_equal(w->calls, 0);
    assert_int_equal(w->rank[0].m->own_exec->recompute, checkpointing); /* it paid: it ran */

    const int64_t np = sat_model_param_count(one.m), ns = sat_model_state_count(one.m);
    sat_model *m0 = w->rank[0].m, *m1 = w->rank[1].m;
    assert_memory_equal(sat_model_params(m0), sat_model_params(m1), sizeof(float) * (size_t)np);
    if (sync) assert_memory_equal(sat_model_state(m0), sat_model_state(m1), sizeof(float) * (size_t)ns);
    *param_diff = max_diff(sat_model_params(one.m), sat_model_params(m0), np);
    *state_diff = max_diff(sat_model_state(one.m), sat_model_state(m0), ns);
    if (rank0_params) {
        *rank0_params = tu_alloc(sizeof(float) * (size_t)np);
        memcpy(*rank0_params, sat_model_params(m0), sizeof(float) * (size_t)np);
    }
}

static void two_ranks_against_one(int32_t attack_bn, int sync, double *param_diff, double *state_diff) {
    two_ranks_run(SPEC, 3, attack_bn, sync, 0, param_diff, state_diff, NULL);
}

static void test_two_ranks_match_one(void **st) {
    (void)st;
    double p, s;
    two_ranks_against_one(SAT_BN_INFERENCE, 1, &p, &s);
    print_message("synchronised, attack on running statistics: params %.3g, running statistics %.3g\n", p, s);
    assert_true(p < 1e-5);
    assert_true(s < 1e-5);
}

/* An attack with batch statistics synchronises its passes too. */
static void test_two_ranks_match_one_batch_attack(void **st) {
    (void)st;
    double p, s;
    two_ranks_against_one(SAT_BN_BATCH, 1, &p, &s);
    print_message("synchronised, attack on batch statistics: params %.3g, running statistics %.3g\n", p, s);
    assert_true(p < 1e-5);
    assert_true(s < 1e-5);
}

/* Activation checkpointing on both ranks: the same reductions (a recomputed segment reuses
 * the synchronised statistics) and the same weights, bit for bit, as without it. */
#define SPEC_DEEP                                                                                  \
    "input 1 6 6\nconv 8 k=3 p=1\nbn\nact name=a\nconv 8 k=3 p=1\nbn\nact\nconv 8 k=3 p=1\nbn\n"  \
    "add a\nact name=b\nconv 8 k=3 p=1\nbn\nact\nconv 8 k=3 p=1\nbn\nadd b\nact\nflatten\ndense 4\n"
static void test_two_ranks_checkpointing(void **st) {
    (void)st;
    double p[2], s[2];
    float *params[2];
    for (int32_t ckpt = 0; ckpt < 2; ckpt++)
        two_ranks_run(SPEC_DEEP, 5, SAT_BN_INFERENCE, 1, ckpt, &p[ckpt], &s[ckpt], &params[ckpt]);
    print_message("without / with checkpointing against one rank: params %.3g / %.3g\n", p[0], p[1]);
    assert_true(p[0] < 1e-5);
    assert_true(p[0] == p[1] && s[0] == s[1]);
    sat_model *m = tu_model(tu_context(1, 7), SPEC_DEEP, SAT_ACT_SILU, N);
    assert_memory_equal(params[0], params[1], sizeof(float) * (size_t)sat_model_param_count(m));
}

/* The same run on local statistics is another step: the tolerance above is meaningful. */
static void test_local_statistics_differ(void **st) {
    (void)st;
    double p, s;
    two_ranks_against_one(SAT_BN_INFERENCE, 0, &p, &s);
    print_message("local statistics: params %.3g, running statistics %.3g\n", p, s);
    assert_true(p > 1e-3);
}

/* ---- one rank: a callback that changes nothing is the step without one ---- */

typedef struct recorder {
    int64_t calls;
    int64_t counts[8];
    double last_count[8];
    int64_t fail_at;             /* the call that returns an error (-1: none) */
} recorder;

static int32_t record(void *user, double *sums, int64_t count) {
    recorder *rec = user;
    if (rec->calls < 8) {
        rec->counts[rec->calls] = count;
        rec->last_count[rec->calls] = sums[count - 1];
    }
    return rec->calls++ == rec->fail_at ? 42 : 0;
}

static void test_one_rank_is_bit_identical(void **st) {
    (void)st;
    float x[N * D];
    int32_t y[N];
    make_batch(x, y, N, 5);
    recorder rec = {.fail_at = -1};
    rig plain = make_rig(SPEC, N, 0, 1, SAT_BN_INFERENCE, NULL, NULL);
    rig synced = make_rig(SPEC, N, 0, 1, SAT_BN_INFERENCE, record, &rec);
    for (int s = 0; s < 2; s++) {
        TU_CHECK(sat_train_step(plain.t, x, y, N, NULL));
        TU_CHECK(sat_train_step(synced.t, x, y, N, NULL));
    }
    const int64_t np = sat_model_param_count(plain.m), ns = sat_model_state_count(plain.m);
    assert_memory_equal(sat_model_params(plain.m), sat_model_params(synced.m), sizeof(float) * (size_t)np);
    assert_memory_equal(sat_model_state(plain.m), sat_model_state(synced.m), sizeof(float) * (size_t)ns);
    assert_int_equal(rec.calls, 2 * 3 * 3);
    /* First layer (4 channels of 4x4): forward sums and count, centred squares; the last
     * layer's backward comes first in the backward: sums of dy, dy xhat and the count. */
    assert_int_equal(rec.counts[0], 4 + 1);
    assert_true(rec.last_count[0] == (double)(N * 16));
    assert_int_equal(rec.counts[1], 4);
    assert_int_equal(rec.counts[6], 2 * 8 + 1);
    assert_true(rec.last_count[6] == (double)N);
}

/* A refusing callback: SAT_E_ABORTED with a message, weights, statistics, optimizer and
 * RNG position as they were; the next step runs. */
static void test_refusal_rolls_back(void **st) {
    (void)st;
    float x[N * D];
    int32_t y[N];
    make_batch(x, y, N, 6);
    for (int64_t at = 0; at < 9; at += 4) { /* a forward call, another, a backward call */
        recorder rec = {.fail_at = at};
        rig r = make_rig(SPEC, N, 0, 1, SAT_BN_INFERENCE, record, &rec);
        rig ref = make_rig(SPEC, N, 0, 1, SAT_BN_INFERENCE, NULL, NULL);
        const int64_t np = sat_model_param_count(r.m), ns = sat_model_state_count(r.m);
        float *before = tu_alloc(sizeof(float) * (size_t)(np + ns));
        memcpy(before, sat_model_params(r.m), sizeof(float) * (size_t)np);
        memcpy(before + np, sat_model_state(r.m), sizeof(float) * (size_t)ns);
        assert_int_equal(sat_train_compute(r.t, x, y, N, NULL), SAT_E_ABORTED);
        assert_non_null(strstr(sat_trainer_last_error(r.t), "batch-norm reduction callback returned 42"));
        assert_memory_equal(before, sat_model_params(r.m), sizeof(float) * (size_t)np);
        assert_memory_equal(before + np, sat_model_state(r.m), sizeof(float) * (size_t)ns);
        assert_int_equal(r.t->rng_counter, 0);
        /* Afterwards it is the plain trainer's first step. */
        TU_CHECK(sat_train_step(r.t, x, y, N, NULL));
        TU_CHECK(sat_train_step(ref.t, x, y, N, NULL));
        assert_memory_equal(sat_model_params(ref.m), sat_model_params(r.m), sizeof(float) * (size_t)np);
    }
}

/* Wide enough layers that the pieces run on the worker pool (channels split over threads):
 * two threads and one give the same bits, synchronised or not. */
static void test_threads_do_not_change_the_bits(void **st) {
    (void)st;
    const char *spec = "input 1 16 16\nconv 16 k=3\nbn\nact\nflatten\ndense 4\n";
    enum { n = 16, d = 256 };
    float *x = tu_alloc(sizeof(float) * n * d);
    int32_t y[n];
    rig_batch(x, y, n, d, K, 11);
    float *params[3];
    int64_t np = 0;
    for (int run = 0; run < 3; run++) {
        recorder rec = {.fail_at = -1};
        sat_context *ctx = tu_context(run == 0 ? 1 : 2, 7);
        sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, n);
        sat_optimizer_opts oo;
        sat_optimizer_opts_init(&oo, sizeof oo);
        sat_optimizer *opt = NULL;
        TU_CHECK(sat_optimizer_create(m, &oo, &opt));
        tu_own_optimizer(opt);
        sat_trainer_opts to = rig_trainer_opts(SAT_TRAIN_PGD, 0, 1);
        if (run > 0) { /* threads, then threads and the reduction */
            to.bn_reduce = run == 2 ? record : NULL;
            to.bn_reduce_user = &rec;
        }
        sat_trainer *t = NULL;
        TU_CHECK(sat_trainer_create(m, opt, &to, &t));
        tu_own_trainer(t);
        TU_CHECK(sat_train_step(t, x, y, n, NULL));
        params[run] = sat_model_params(m);
        np = sat_model_param_count(m);
        if (run == 2) assert_int_equal(rec.calls, 3);
    }
    assert_memory_equal(params[0], params[1], sizeof(float) * (size_t)np);
    assert_memory_equal(params[0], params[2], sizeof(float) * (size_t)np);
}

/* ---- dropout: rank r's masks are those of its examples in the concatenated batch ---- */

static void test_dropout_follows_global_index(void **st) {
    (void)st;
    float x[2 * N * D];
    int32_t y[2 * N];
    make_batch(x, y, 2 * N, 9);
    rig one = make_rig(SPEC_DROPOUT, 2 * N, 0, 1, SAT_BN_INFERENCE, NULL, NULL);
    TU_CHECK(sat_train_compute(one.t, x, y, 2 * N, NULL));
    const int64_t np = sat_model_param_count(one.m);
    float *mean = tu_alloc(sizeof(float) * (size_t)np);
    memset(mean, 0, sizeof(float) * (size_t)np);
    for (int r = 0; r < 2; r++) {
        rig part = make_rig(SPEC_DROPOUT, N, r, 2, SAT_BN_INFERENCE, NULL, NULL);
        TU_CHECK(sat_train_compute(part.t, x + r * N * D, y + r * N, N, NULL));
        for (int64_t i = 0; i < np; i++) mean[i] += 0.5f * sat_model_grads(part.m)[i];
    }
    const double diff = max_diff(sat_model_grads(one.m), mean, np);
    print_message("dropout, 2 x %d against 1 x %d: gradient difference %.3g\n", N, 2 * N, diff);
    assert_true(diff < 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ranks_match_one),
        cmocka_unit_test(test_two_ranks_match_one_batch_attack),
        cmocka_unit_test(test_two_ranks_checkpointing),
        cmocka_unit_test(test_local_statistics_differ),
        cmocka_unit_test(test_one_rank_is_bit_identical),
        cmocka_unit_test(test_refusal_rolls_back),
        cmocka_unit_test(test_threads_do_not_change_the_bits),
        cmocka_unit_test(test_dropout_follows_global_index),
    };
    tu_set_watchdog(120); /* a rank that stops early leaves the other at a barrier */
    return tu_run_group("test_sync_bn", tests, sizeof tests / sizeof tests[0]);
}
