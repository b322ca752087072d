/* test_checkpoint.c - a run of k+j training steps equals, bit for bit, a run of k steps,
 * a checkpoint, fresh handles that load it, and j more steps (PGD-AT with SGD and a cosine
 * schedule; Free-AT with Adam, whose perturbation carries over). A checkpoint that does not
 * fit the handles, or is damaged, is refused and changes nothing. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPEC "input 3 6 6\nconv 4 k=3 p=1 bias=0\nbn\nact\ngap\ndense 5\n"
#define SPEC_OTHER "input 3 6 6\nconv 4 k=3 p=1 bias=0\nbn\nact\ngap\ndense 5 bias=0\n"
#define BATCH 4
#define IN (3 * 6 * 6)
#define K 3
#define J 3

typedef struct {
    sat_model *model;
    sat_optimizer *opt;
    sat_trainer *trainer;
} run;

typedef struct {
    sat_context *ctx;
    char dir[64];
    char path[128];
    char model_path[128];
} fixture;

/* The context is registered and goes with the test; the teardown removes the files. */
static int setup(void **state) {
    static fixture fx;
    fixture *f = &fx;
    memset(f, 0, sizeof *f);
    f->ctx = tu_context(1, 3);
    snprintf(f->dir, sizeof f->dir, "/tmp/sat_ckpt_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/run.satc", f->dir);
    snprintf(f->model_path, sizeof f->model_path, "%s/model.satm", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    remove(f->path);
    remove(f->model_path);
    rmdir(f->dir);
    return 0;
}

/* Handles for one run. `seed` changes the initial parameters and the trainer's RNG key,
 * so a resumed run only matches if the checkpoint restored them all. */
static run make_run(sat_context *ctx, const char *spec, int32_t method, int32_t opt_kind, uint64_t seed) {
    run r;
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.activation = SAT_ACT_SMOOTHRELU;
    mo.max_batch = BATCH;
    mo.seed = seed;
    TU_CHECK(sat_model_create(ctx, spec, &mo, &r.model));
    tu_own_model(r.model);
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.kind = opt_kind;
    oo.lr = opt_kind == SAT_OPT_SGD ? 0.05f : 0.01f;
    oo.schedule = SAT_SCHED_COSINE; /* the learning rate depends on the restored step count */
    oo.total_steps = 2 * (K + J) * 2;
    TU_CHECK(sat_optimizer_create(r.model, &oo, &r.opt));
    tu_own_optimizer(r.opt);
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = method;
    to.steps = 2;
    to.free_replays = 2;
    to.seed = seed + 1;
    TU_CHECK(sat_trainer_create(r.model, r.opt, &to, &r.trainer));
    tu_own_trainer(r.trainer);
    return r;
}

static void free_run(run *r) {
    tu_release(r->trainer);
    tu_release(r->opt);
    tu_release(r->model);
}

/* Batch i of a fixed stream of data. */
static void step(run *r, int i) {
    float x[BATCH * IN];
    int32_t y[BATCH];
    tu_fill_uniform(x, BATCH * IN, 0.0f, 1.0f, 100 + (uint64_t)i);
    for (int e = 0; e < BATCH; e++) y[e] = (i + 3 * e) % 5;
    if (sat_train_step(r->trainer, x, y, BATCH, NULL) != SAT_OK)
        fail_msg("step %d: %s", i, sat_trainer_last_error(r->trainer));
}

static void assert_same_run(run *a, run *b) {
    int64_t np = sat_model_param_count(a->model), ns = sat_model_state_count(a->model);
    assert_memory_equal(sat_model_params(a->model), sat_model_params(b->model), sizeof(float) * (size_t)np);
    assert_memory_equal(sat_model_state(a->model), sat_model_state(b->model), sizeof(float) * (size_t)ns);
    int64_t ca = 0, cb = 0;
    const float *sa = sat_optimizer_state(a->opt, &ca), *sb = sat_optimizer_state(b->opt, &cb);
    assert_int_equal(ca, cb);
    if (ca) assert_memory_equal(sa, sb, sizeof(float) * (size_t)ca);
    assert_int_equal(sat_optimizer_step_count(a->opt), sat_optimizer_step_count(b->opt));
}

static void resume_matches(fixture *f, int32_t method, int32_t opt_kind) {
    run whole = make_run(f->ctx, SPEC, method, opt_kind, 10);
    for (int i = 0; i < K + J; i++) step(&whole, i);

    run first = make_run(f->ctx, SPEC, method, opt_kind, 10);
    for (int i = 0; i < K; i++) step(&first, i);
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    meta.method = method;
    TU_CHECK(sat_checkpoint_save(first.trainer, &meta, 1, K, f->path));
    free_run(&first);

    run resumed = make_run(f->ctx, SPEC, method, opt_kind, 777);
    int64_t epoch = -1, batch = -1;
    if (sat_checkpoint_load(resumed.trainer, f->path, &epoch, &batch) != SAT_OK)
        fail_msg("%s", sat_trainer_last_error(resumed.trainer));
    assert_int_equal(epoch, 1);
    assert_int_equal(batch, K);
    for (int i = K; i < K + J; i++) step(&resumed, i);
    assert_same_run(&whole, &resumed);
}

static void test_resume_pgd_sgd(void **state) { resume_matches(*state, SAT_TRAIN_PGD, SAT_OPT_SGD); }
static void test_resume_free_adam(void **state) { resume_matches(*state, SAT_TRAIN_FREE, SAT_OPT_ADAM); }

/* A failed load: status, message naming the file, and nothing changed - the next step of
 * `r` still equals that of its untouched twin. */
static void expect_refused(run *r, run *twin, const char *path, int32_t want, const char *needle, int i) {
    int64_t epoch = -5, batch = -6;
    int32_t st = sat_checkpoint_load(r->trainer, path, &epoch, &batch);
    if (st != want)
        fail_msg("status %d, wanted %d: %s", st, want, sat_trainer_last_error(r->trainer));
    const char *msg = sat_trainer_last_error(r->trainer);
    assert_non_null(strstr(msg, path));
    if (needle && !strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    assert_true(epoch == -5 && batch == -6);
    step(r, i);
    step(twin, i);
    assert_same_run(r, twin);
}

static void test_refused_changes_nothing(void **state) {
    fixture *f = *state;
    run src = make_run(f->ctx, SPEC, SAT_TRAIN_FREE, SAT_OPT_SGD, 5);
    step(&src, 0);
    TU_CHECK(sat_checkpoint_save(src.trainer, NULL, 0, 1, f->path));
    TU_CHECK(sat_model_save(src.model, NULL, f->model_path));

    /* Twins: same handles and history, only `r` sees the refused loads. */
    run r = make_run(f->ctx, SPEC, SAT_TRAIN_PGD, SAT_OPT_SGD, 8);
    run twin = make_run(f->ctx, SPEC, SAT_TRAIN_PGD, SAT_OPT_SGD, 8);
    step(&r, 0);
    step(&twin, 0);
    expect_refused(&r, &twin, f->path, SAT_E_INVALID_ARG, "Free-AT", 1); /* not a Free-AT trainer */
    expect_refused(&r, &twin, f->model_path, SAT_E_FORMAT, "not a checkpoint", 2);

    run adam = make_run(f->ctx, SPEC, SAT_TRAIN_FREE, SAT_OPT_ADAM, 8);
    run adam_twin = make_run(f->ctx, SPEC, SAT_TRAIN_FREE, SAT_OPT_ADAM, 8);
    expect_refused(&adam, &adam_twin, f->path, SAT_E_INVALID_ARG, "optimizer", 3);
    run other = make_run(f->ctx, SPEC_OTHER, SAT_TRAIN_FREE, SAT_OPT_SGD, 8);
    run other_twin = make_run(f->ctx, SPEC_OTHER, SAT_TRAIN_FREE, SAT_OPT_SGD, 8);
    expect_refused(&other, &other_twin, f->path, SAT_E_INVALID_ARG, "spec", 4);

    /* Damaged: a flipped byte in the middle, and a truncated copy. */
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    unsigned char img[1 << 16];
    size_t n = fread(img, 1, sizeof img, fp);
    fclose(fp);
    assert_true(n > 100 && n < sizeof img);
    img[n / 2] ^= 1;
    fp = fopen(f->model_path, "wb");
    fwrite(img, 1, n, fp);
    fclose(fp);
    run free_r = make_run(f->ctx, SPEC, SAT_TRAIN_FREE, SAT_OPT_SGD, 8);
    run free_twin = make_run(f->ctx, SPEC, SAT_TRAIN_FREE, SAT_OPT_SGD, 8);
    expect_refused(&free_r, &free_twin, f->model_path, SAT_E_FORMAT, "checksum", 5);
    img[n / 2] ^= 1;
    fp = fopen(f->model_path, "wb");
    fwrite(img, 1, n - 9, fp);
    fclose(fp);
    expect_refused(&free_r, &free_twin, f->model_path, SAT_E_FORMAT, "truncated", 6);
    remove(f->model_path);
    expect_refused(&free_r, &free_twin, f->model_path, SAT_E_IO, NULL, 7);

    /* And the right handles accept it. */
    TU_CHECK(sat_checkpoint_load(free_r.trainer, f->path, NULL, NULL));
    assert_memory_equal(sat_model_params(free_r.model), sat_model_params(src.model),
                        sizeof(float) * (size_t)sat_model_param_count(src.model));
}

static void test_model_load_reads_checkpoint(void **state) {
    fixture *f = *state;
    run src = make_run(f->ctx, SPEC, SAT_TRAIN_PGD, SAT_OPT_SGD, 5);
    step(&src, 0);
    TU_CHECK(sat_checkpoint_save(src.trainer, NULL, 0, 1, f->path));
    sat_model *m = NULL;
    TU_CHECK(sat_model_load(f->ctx, f->path, NULL, &m));
    tu_own_model(m);
    assert_memory_equal(sat_model_params(m), sat_model_params(src.model),
                        sizeof(float) * (size_t)sat_model_param_count(m));
    assert_memory_equal(sat_model_state(m), sat_model_state(src.model),
                        sizeof(float) * (size_t)sat_model_state_count(m));
}

static void test_bad_arguments(void **state) {
    fixture *f = *state;
    run r = make_run(f->ctx, SPEC, SAT_TRAIN_PGD, SAT_OPT_SGD, 5);
    assert_int_equal(sat_checkpoint_save(NULL, NULL, 0, 0, f->path), SAT_E_INVALID_ARG);
    assert_int_equal(sat_checkpoint_save(r.trainer, NULL, 0, 0, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_checkpoint_save(r.trainer, NULL, -1, 0, f->path), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_trainer_last_error(r.trainer), "epoch"));
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    meta.clean_accuracy = 2.0f;
    assert_int_equal(sat_checkpoint_save(r.trainer, &meta, 0, 0, f->path), SAT_E_INVALID_ARG);
    assert_int_equal(access(f->path, F_OK), -1);
    char missing[192];
    snprintf(missing, sizeof missing, "%s/no/dir/x.satc", f->dir);
    assert_int_equal(sat_checkpoint_save(r.trainer, NULL, 0, 0, missing), SAT_E_IO);
    assert_int_equal(sat_checkpoint_load(NULL, f->path, NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_checkpoint_load(r.trainer, NULL, NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_checkpoint_load(r.trainer, "", NULL, NULL), SAT_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_pgd_sgd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_free_adam, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_load_reads_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return tu_run_group("test_checkpoint", tests, sizeof tests / sizeof tests[0]);
}
