/* test_progress.c - the context's progress callback: every long call (attacks of every
 * method, attacks on a callback model, evaluation, AutoAttack, training steps of every
 * method, IDX and CIFAR-10 loading) reports done = 0 first, never goes back, and ends at
 * done == total; a cancel at the first, a middle and the last report returns
 * SAT_E_ABORTED, leaves the model's bytes (and a trainer's optimizer) as they were and
 * the outputs as sat.h says, and the same call made again without cancel gives the bits
 * of a run that was never cancelled. A flag set by another thread cancels a running call. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define D 16  /* 1 x 4 x 4 inputs */
#define NCLS 4
#define N 10  /* examples of the attack calls */
#define MB 4  /* max_batch: attacks run in chunks of 4, 4 and 2 */
#define NEVER (-1)
#define AT_LAST (-2)

static const char *const spec = "input 1 4 4\ndense 16\nbn\nact\ndense 4\n";

/* ---- the callback: records every report, cancels at one of them ---- */

typedef struct recorder {
    int64_t calls;      /* reports so far */
    int64_t cancel_at;  /* report index to cancel at, NEVER or AT_LAST (done == total) */
    int64_t first_done, last_done, total;
    int backwards;      /* done decreased or total changed */
    char what[64];
} recorder;

static int32_t record(void *user, const char *what, int64_t done, int64_t total) {
    recorder *r = user;
    if (r->calls == 0) {
        r->first_done = done;
        r->total = total;
        snprintf(r->what, sizeof r->what, "%s", what);
    } else if (done < r->last_done || total != r->total || strcmp(what, r->what) != 0) {
        r->backwards = 1;
    }
    r->last_done = done;
    const int64_t index = r->calls++;
    return index == r->cancel_at || (r->cancel_at == AT_LAST && done == total);
}

static void arm(recorder *r, int64_t cancel_at) {
    memset(r, 0, sizeof *r);
    r->cancel_at = cancel_at;
}

/* ---- one kind of long call, with what it changes and what it outputs ---- */

typedef struct call_kind {
    const char *what;  /* the name the reports carry */
    /* Runs the call on fixture state; writes its output (a byte image) into out. */
    int32_t (*run)(void *fx, unsigned char *out);
    size_t out_bytes;
    /* The bytes the call must not change when cancelled (model, optimizer), into buf. */
    size_t (*state)(void *fx, unsigned char *buf);
    /* Which message the handle of the call holds. */
    const char *(*message)(void *fx);
} call_kind;

/* Checks one kind: a run with reports gives the bits of a run without them, the reports
 * are monotonic from 0 to total, and cancels at the first, a middle and the last report
 * abort, keep the state and leave a later run bit-identical. */
static void check_kind(sat_context *ctx, const call_kind *k, void *fx) {
    unsigned char *ref = tu_alloc(k->out_bytes), *out = tu_alloc(k->out_bytes);
    unsigned char *before = tu_alloc(1 << 16), *after = tu_alloc(1 << 16);
    recorder r;

    TU_CHECK(sat_context_set_progress(ctx, NULL, NULL));
    memset(ref, 0x5a, k->out_bytes);
    TU_CHECK(k->run(fx, ref));

    arm(&r, NEVER);
    TU_CHECK(sat_context_set_progress(ctx, record, &r));
    memset(out, 0x5a, k->out_bytes);
    TU_CHECK(k->run(fx, out));
    assert_memory_equal(out, ref, k->out_bytes);
    assert_string_equal(r.what, k->what);
    assert_true(r.calls >= 2);
    assert_int_equal(r.first_done, 0);
    assert_false(r.backwards);
    assert_true(r.total > 0);
    assert_int_equal(r.last_done, r.total);
    const int64_t reports = r.calls;

    const int64_t cancels[] = {0, reports / 2, AT_LAST};
    for (size_t c = 0; c < sizeof cancels / sizeof cancels[0]; c++) {
        const size_t state_bytes = k->state ? k->state(fx, before) : 0;
        arm(&r, cancels[c]);
        memset(out, 0x5a, k->out_bytes);
        assert_int_equal(k->run(fx, out), SAT_E_ABORTED);
        assert_int_equal(r.calls, cancels[c] == AT_LAST ? reports : cancels[c] + 1);
        assert_non_null(strstr(k->message(fx), k->what));
        assert_non_null(strstr(k->message(fx), "cancelled"));
        if (k->state) {
            assert_int_equal(k->state(fx, after), state_bytes);
            assert_memory_equal(after, before, state_bytes);
        }
        arm(&r, NEVER);
        memset(out, 0x5a, k->out_bytes);
        TU_CHECK(k->run(fx, out));
        assert_memory_equal(out, ref, k->out_bytes);
    }
    TU_CHECK(sat_context_set_progress(ctx, NULL, NULL));
}

/* ---- attacks, evaluation and AutoAttack on a libsat model ---- */

typedef struct attack_fx {
    sat_model *model;
    sat_callback_model *host;
    sat_attack_opts opts;
    float x[N * D];
    int32_t y[N], targets[N];
} attack_fx;

static size_t model_bytes(sat_model *m, unsigned char *buf) {
    const size_t p = sizeof(float) * (size_t)sat_model_param_count(m);
    const size_t s = sizeof(float) * (size_t)sat_model_state_count(m);
    memcpy(buf, sat_model_params(m), p);
    memcpy(buf + p, sat_model_state(m), s);
    return p + s;
}

static size_t attack_state(void *fx, unsigned char *buf) { return model_bytes(((attack_fx *)fx)->model, buf); }
static const char *model_message(void *fx) { return sat_model_last_error(((attack_fx *)fx)->model); }
static const char *host_message(void *fx) { return sat_callback_model_last_error(((attack_fx *)fx)->host); }

static int32_t run_attack(void *fx, unsigned char *out) {
    attack_fx *f = fx;
    return sat_attack(f->model, &f->opts, f->x, f->y, f->targets, N, (float *)out, NULL);
}

static int32_t run_evaluate(void *fx, unsigned char *out) {
    attack_fx *f = fx;
    sat_eval_opts e;
    TU_CHECK(sat_eval_opts_init(&e, sizeof e));
    e.num_steps = 2;
    e.steps[0] = 1;
    e.steps[1] = 3;
    e.apgd = 1;
    e.apgd_steps = 4;
    e.apgd_targets = 2;
    e.batch = 3;
    sat_eval_result *res = (sat_eval_result *)out;
    res->struct_size = sizeof *res;
    return sat_evaluate(f->model, &e, f->x, f->y, N, res);
}

typedef struct aa_out {
    float x_adv[N * D];
    int32_t outcome[N];
    sat_autoattack_result result;
} aa_out;

static int32_t run_autoattack(void *fx, unsigned char *out) {
    attack_fx *f = fx;
    aa_out *o = (aa_out *)out;
    o->result.struct_size = sizeof o->result;
    return sat_autoattack(f->model, NULL, f->x, f->y, N, o->x_adv, o->outcome, &o->result);
}

/* The host model: z = W x + b with W, b drawn once. */
typedef struct host_linear {
    float w[NCLS * D], b[NCLS];
} host_linear;

static int32_t host_logits(void *user, const float *x, int64_t n, float *z) {
    const host_linear *h = user;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < NCLS; k++) {
            double s = h->b[k];
            for (int j = 0; j < D; j++) s += (double)h->w[k * D + j] * x[i * D + j];
            z[i * NCLS + k] = (float)s;
        }
    return 0;
}

static int32_t host_grad(void *user, const float *x, int64_t n, const float *dz, float *dx) {
    (void)x;
    const host_linear *h = user;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++) {
            double s = 0.0;
            for (int k = 0; k < NCLS; k++) s += (double)dz[i * NCLS + k] * h->w[k * D + j];
            dx[i * D + j] = (float)s;
        }
    return 0;
}

static int32_t run_callback_attack(void *fx, unsigned char *out) {
    attack_fx *f = fx;
    return sat_callback_attack(f->host, &f->opts, f->x, f->y, f->targets, N, (float *)out, NULL);
}

static int32_t run_callback_autoattack(void *fx, unsigned char *out) {
    attack_fx *f = fx;
    aa_out *o = (aa_out *)out;
    o->result.struct_size = sizeof o->result;
    return sat_callback_autoattack(f->host, NULL, f->x, f->y, N, o->x_adv, o->outcome, &o->result);
}

static attack_fx *make_attack_fx(sat_context *ctx) {
    attack_fx *f = tu_alloc(sizeof *f);
    f->model = tu_model(ctx, spec, SAT_ACT_SILU, MB);
    tu_fill_uniform(f->x, N * D, 0.0f, 1.0f, 3);
    for (int i = 0; i < N; i++) {
        f->y[i] = i % NCLS;
        f->targets[i] = (i + 1) % NCLS;
    }
    host_linear *h = tu_alloc(sizeof *h);
    tu_fill_uniform(h->w, NCLS * D, -1.0f, 1.0f, 5);
    tu_fill_uniform(h->b, NCLS, -0.1f, 0.1f, 6);
    sat_callback_model_opts o;
    TU_CHECK(sat_callback_model_opts_init(&o, sizeof o));
    o.channels = 1;
    o.height = 4;
    o.width = 4;
    o.num_classes = NCLS;
    o.max_batch = MB;
    o.logits_fn = host_logits;
    o.input_grad_fn = host_grad;
    o.user = h;
    TU_CHECK(sat_callback_model_create(ctx, &o, &f->host));
    tu_own_callback_model(f->host);
    return f;
}

static void set_method(attack_fx *f, int32_t method, int32_t targeted) {
    TU_CHECK(sat_attack_opts_init(&f->opts, sizeof f->opts));
    f->opts.method = method;
    f->opts.targeted = targeted;
    f->opts.steps = method == SAT_ATTACK_SQUARE ? 6 : 3;
    f->opts.restarts = 2;
}

static void test_attacks(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 11);
    attack_fx *f = make_attack_fx(ctx);
    const int32_t methods[][2] = {{SAT_ATTACK_FGSM, 0},     {SAT_ATTACK_PGD, 0}, {SAT_ATTACK_APGD_CE, 0},
                                  {SAT_ATTACK_APGD_DLR, 1}, {SAT_ATTACK_FAB, 0}, {SAT_ATTACK_SQUARE, 0}};
    const call_kind attack = {"sat_attack", run_attack, sizeof f->x, attack_state, model_message};
    const call_kind host = {"sat_callback_attack", run_callback_attack, sizeof f->x, NULL, host_message};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        set_method(f, methods[i][0], methods[i][1]);
        check_kind(ctx, &attack, f);
        check_kind(ctx, &host, f);
    }
}

/* A cancelled attack has written whole chunks of max_batch examples, and nothing else. */
static void test_attack_writes_whole_chunks(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 11);
    attack_fx *f = make_attack_fx(ctx);
    set_method(f, SAT_ATTACK_PGD, 0);
    f->opts.restarts = 1;
    float ref[N * D], out[N * D];
    TU_CHECK(sat_attack(f->model, &f->opts, f->x, f->y, NULL, N, ref, NULL));
    recorder r;
    /* Reports: 0, then 3 per chunk; the 5th (index 4) is in the second chunk. */
    arm(&r, 4);
    TU_CHECK(sat_context_set_progress(ctx, record, &r));
    for (int i = 0; i < N * D; i++) out[i] = -1.0f;
    assert_int_equal(sat_attack(f->model, &f->opts, f->x, f->y, NULL, N, out, NULL), SAT_E_ABORTED);
    assert_memory_equal(out, ref, sizeof(float) * MB * D);
    for (int i = MB * D; i < N * D; i++) assert_true(out[i] == -1.0f);
    assert_int_equal(r.total, (int64_t)N * 3);
}

static void test_evaluate(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 11);
    attack_fx *f = make_attack_fx(ctx);
    const call_kind k = {"sat_evaluate", run_evaluate, sizeof(sat_eval_result), attack_state, model_message};
    check_kind(ctx, &k, f);
}

static void test_autoattack(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 11);
    attack_fx *f = make_attack_fx(ctx);
    const call_kind k = {"sat_autoattack", run_autoattack, sizeof(aa_out), attack_state, model_message};
    check_kind(ctx, &k, f);
    const call_kind h = {"sat_callback_autoattack", run_callback_autoattack, sizeof(aa_out), NULL,
                         host_message};
    check_kind(ctx, &h, f);
}

/* ---- training steps ---- */

typedef struct train_fx {
    sat_context *ctx;
    sat_model *origin;  /* every run starts from a clone of it */
    sat_trainer_opts opts;
    sat_model *model;   /* of the run that is checked for a cancel */
    sat_optimizer *opt;
    sat_trainer *trainer;
    float x[MB * D];
    int32_t y[MB];
} train_fx;

typedef struct train_out {
    float params[1024];
    float state[64];
    float opt_state[2048];
    int64_t opt_step;
    sat_step_stats stats;
} train_out;

static void new_trainer(train_fx *f) {
    TU_CHECK(sat_model_clone(f->origin, &f->model));
    tu_own_model(f->model);
    sat_optimizer_opts oo;
    TU_CHECK(sat_optimizer_opts_init(&oo, sizeof oo));
    TU_CHECK(sat_optimizer_create(f->model, &oo, &f->opt));
    tu_own_optimizer(f->opt);
    TU_CHECK(sat_trainer_create(f->model, f->opt, &f->opts, &f->trainer));
    tu_own_trainer(f->trainer);
}

static size_t train_state(void *fx, unsigned char *buf) {
    train_fx *f = fx;
    size_t b = model_bytes(f->model, buf);
    int64_t count = 0;
    const float *s = sat_optimizer_state(f->opt, &count);
    memcpy(buf + b, s, sizeof(float) * (size_t)count);
    b += sizeof(float) * (size_t)count;
    const int64_t step = sat_optimizer_step_count(f->opt);
    memcpy(buf + b, &step, sizeof step);
    return b + sizeof step;
}

static const char *trainer_message(void *fx) { return sat_trainer_last_error(((train_fx *)fx)->trainer); }

/* One step on the current trainer; the output is the step's statistics and what the
 * trainer's handles hold afterwards. */
static int32_t run_train(void *fx, unsigned char *out) {
    train_fx *f = fx;
    train_out *o = (train_out *)out;
    memset(o, 0, sizeof *o);
    o->stats.struct_size = sizeof o->stats;
    int32_t st = sat_train_step(f->trainer, f->x, f->y, MB, &o->stats);
    if (st) return st;
    assert_true(sat_model_param_count(f->model) <= 1024);
    memcpy(o->params, sat_model_params(f->model), sizeof(float) * (size_t)sat_model_param_count(f->model));
    memcpy(o->state, sat_model_state(f->model), sizeof(float) * (size_t)sat_model_state_count(f->model));
    int64_t count = 0;
    const float *s = sat_optimizer_state(f->opt, &count);
    assert_true(count <= 2048);
    memcpy(o->opt_state, s, sizeof(float) * (size_t)count);
    o->opt_step = sat_optimizer_step_count(f->opt);
    return SAT_OK;
}

/* A step that succeeds is compared with the first step of a fresh trainer, so each one
 * rebuilds the trainer afterwards. A cancelled step must leave the trainer as fresh as it
 * was (parameters, statistics, optimizer, RNG position, Free-AT's perturbation): the next
 * run steps on that same trainer and must give the same bits. */
static int32_t run_train_fresh(void *fx, unsigned char *out) {
    train_fx *f = fx;
    int32_t st = run_train(fx, out);
    if (st == SAT_OK) new_trainer(f);
    return st;
}

static void test_train_steps(void **state) {
    (void)state;
    train_fx *f = tu_alloc(sizeof *f);
    f->ctx = tu_context(1, 17);
    f->origin = tu_model(f->ctx, spec, SAT_ACT_SILU, MB);
    tu_fill_uniform(f->x, MB * D, 0.0f, 1.0f, 8);
    for (int i = 0; i < MB; i++) f->y[i] = i % NCLS;
    const int32_t methods[] = {SAT_TRAIN_STANDARD, SAT_TRAIN_PGD, SAT_TRAIN_FAST, SAT_TRAIN_FREE,
                               SAT_TRAIN_TRADES};
    const call_kind k = {"sat_train_step", run_train_fresh, sizeof(train_out), train_state, trainer_message};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        TU_CHECK(sat_trainer_opts_init(&f->opts, sizeof f->opts));
        f->opts.method = methods[i];
        f->opts.steps = 3;
        f->opts.free_replays = 3;
        new_trainer(f);
        check_kind(f->ctx, &k, f);
    }
}

/* ---- data set loading ---- */

typedef struct data_fx {
    sat_context *ctx;
    char dir[64];
    char images[128], labels[128];
    int format;
} data_fx;

#define IDX_N 3000 /* 28x28 images: 2.35 MB, read in three pieces */
#define CIFAR_N 700 /* records: read in chunks of 256 */

static void write_bytes(const char *path, const unsigned char *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    assert_int_equal(fclose(fp), 0);
}

static int32_t run_load(void *fx, unsigned char *out) {
    data_fx *f = fx;
    sat_dataset *ds = NULL;
    int32_t st = f->format == SAT_DATA_IDX ? sat_dataset_load_idx(f->ctx, f->images, f->labels, &ds)
                                           : sat_dataset_load(f->ctx, SAT_DATA_CIFAR10, f->dir, SAT_SPLIT_TEST, &ds);
    if (st) {
        assert_null(ds);
        return st;
    }
    const int64_t n = sat_dataset_size(ds);
    int32_t c, h, w;
    TU_CHECK(sat_dataset_shape(ds, &c, &h, &w, NULL));
    const size_t px = (size_t)n * (size_t)(c * h * w) * sizeof(float);
    memcpy(out, sat_dataset_images(ds), px);
    memcpy(out + px, sat_dataset_labels(ds), sizeof(int32_t) * (size_t)n);
    sat_dataset_destroy(ds);
    return SAT_OK;
}

static const char *tls_message(void *fx) {
    (void)fx;
    return sat_last_error();
}

static void test_dataset_loading(void **state) {
    (void)state;
    data_fx *f = tu_alloc(sizeof *f);
    f->ctx = tu_context(1, 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/sat_progress_XXXXXX");
    assert_non_null(mkdtemp(f->dir));

    /* IDX: images and labels, plain. */
    const size_t px = (size_t)IDX_N * 28 * 28;
    unsigned char *img = tu_alloc(16 + px), *lab = tu_alloc(8 + IDX_N);
    const unsigned char ih[16] = {0, 0, 8, 3, 0, 0, IDX_N >> 8, IDX_N & 255, 0, 0, 0, 28, 0, 0, 0, 28};
    const unsigned char lh[8] = {0, 0, 8, 1, 0, 0, IDX_N >> 8, IDX_N & 255};
    memcpy(img, ih, 16);
    memcpy(lab, lh, 8);
    for (size_t i = 0; i < px; i++) img[16 + i] = (unsigned char)(i * 31 + 7);
    for (size_t i = 0; i < IDX_N; i++) lab[8 + i] = (unsigned char)(i % 10);
    snprintf(f->images, sizeof f->images, "%s/images", f->dir);
    snprintf(f->labels, sizeof f->labels, "%s/labels", f->dir);
    write_bytes(f->images, img, 16 + px);
    write_bytes(f->labels, lab, 8 + IDX_N);

    /* CIFAR-10: the test batch. */
    char cifar[128];
    snprintf(cifar, sizeof cifar, "%s/test_batch.bin", f->dir);
    unsigned char *rec = tu_alloc((size_t)CIFAR_N * 3073);
    for (size_t i = 0; i < (size_t)CIFAR_N * 3073; i++) rec[i] = (unsigned char)(i * 13 + 1);
    for (size_t r = 0; r < CIFAR_N; r++) rec[r * 3073] = (unsigned char)(r % 10);
    write_bytes(cifar, rec, (size_t)CIFAR_N * 3073);

    f->format = SAT_DATA_IDX;
    const call_kind idx = {"sat_dataset_load_idx", run_load, px * sizeof(float) + IDX_N * sizeof(int32_t), NULL,
                           tls_message};
    check_kind(f->ctx, &idx, f);
    f->format = SAT_DATA_CIFAR10;
    const call_kind cif = {"sat_dataset_load", run_load, (size_t)CIFAR_N * 3072 * sizeof(float) +
                                                             CIFAR_N * sizeof(int32_t),
                           NULL, tls_message};
    check_kind(f->ctx, &cif, f);

    remove(f->images);
    remove(f->labels);
    remove(cifar);
    rmdir(f->dir);
}

/* ---- cancelling from another thread ---- */

typedef struct remote {
    atomic_int started;  /* the call has reported work done */
    atomic_int cancel;   /* set by the other thread */
} remote;

static int32_t watch(void *user, const char *what, int64_t done, int64_t total) {
    (void)what;
    (void)total;
    remote *r = user;
    if (done > 0 && !atomic_load(&r->started)) {
        atomic_store(&r->started, 1);
        /* Wait (at most 10 s) for the other thread, so that the call is still running when
         * the flag is set. */
        for (int i = 0; i < 10000 && !atomic_load(&r->cancel); i++) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return atomic_load(&r->cancel);
}

static void *canceller(void *arg) {
    remote *r = arg;
    while (!atomic_load(&r->started)) nanosleep(&(struct timespec){0, 1000000}, NULL);
    atomic_store(&r->cancel, 1);
    return NULL;
}

static void test_cancel_from_another_thread(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 11);
    attack_fx *f = make_attack_fx(ctx);
    set_method(f, SAT_ATTACK_PGD, 0);
    f->opts.steps = 1000;
    remote r;
    atomic_init(&r.started, 0);
    atomic_init(&r.cancel, 0);
    TU_CHECK(sat_context_set_progress(ctx, watch, &r));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, canceller, &r), 0);
    float out[N * D];
    const int32_t st = sat_attack(f->model, &f->opts, f->x, f->y, NULL, N, out, NULL);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(st, SAT_E_ABORTED);
    assert_non_null(strstr(sat_model_last_error(f->model), "cancelled"));
}

/* ---- the setter ---- */

static void test_setter(void **state) {
    (void)state;
    assert_int_equal(sat_context_set_progress(NULL, record, NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "sat_context_set_progress"));
    sat_context *ctx = tu_context(1, 11);
    attack_fx *f = make_attack_fx(ctx);
    set_method(f, SAT_ATTACK_PGD, 0);
    float out[N * D];
    recorder r;
    arm(&r, 0);
    TU_CHECK(sat_context_set_progress(ctx, record, &r));
    assert_int_equal(sat_attack(f->model, &f->opts, f->x, f->y, NULL, N, out, NULL), SAT_E_ABORTED);
    /* Removed: no more reports, nothing cancels. */
    TU_CHECK(sat_context_set_progress(ctx, NULL, &r));
    arm(&r, 0);
    TU_CHECK(sat_attack(f->model, &f->opts, f->x, f->y, NULL, N, out, NULL));
    assert_int_equal(r.calls, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setter),
        cmocka_unit_test(test_attacks),
        cmocka_unit_test(test_attack_writes_whole_chunks),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_autoattack),
        cmocka_unit_test(test_train_steps),
        cmocka_unit_test(test_dataset_loading),
        cmocka_unit_test(test_cancel_from_another_thread),
    };
    return tu_run_group("progress", tests, sizeof tests / sizeof tests[0]);
}
