/* test_optim_checkpoint.c - checkpoints of a model and an optimizer without a trainer: a
 * host loop (sat_model_train_backward + sat_optimizer_step) of k+j steps equals, bit for bit,
 * k steps, a checkpoint, fresh handles that load it and j more steps (SGD with momentum and
 * Adam, with learning rate, scales and freeze mask changed at run time); a checkpoint that
 * does not fit the handles is refused and changes nothing; trainer checkpoints and
 * model-and-optimizer checkpoints are told apart by each load function. */
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
} run;

typedef struct {
    sat_context *ctx;
    char dir[64];
    char path[128];
    char trainer_path[128];
} fixture;

static int setup(void **state) {
    static fixture fx;
    fixture *f = &fx;
    memset(f, 0, sizeof *f);
    f->ctx = tu_context(1, 3);
    snprintf(f->dir, sizeof f->dir, "/tmp/sat_optckpt_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/run.satc", f->dir);
    snprintf(f->trainer_path, sizeof f->trainer_path, "%s/trainer.satc", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    remove(f->path);
    remove(f->trainer_path);
    rmdir(f->dir);
    return 0;
}

/* `seed` changes the initial parameters, so a resumed run only matches if the checkpoint
 * restored them. */
static run make_run(sat_context *ctx, const char *spec, int32_t kind, uint64_t seed) {
    run r;
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.max_batch = BATCH;
    mo.seed = seed;
    TU_CHECK(sat_model_create(ctx, spec, &mo, &r.model));
    tu_own_model(r.model);
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.kind = kind;
    oo.lr = kind == SAT_OPT_SGD ? 0.05f : 0.01f;
    oo.schedule = SAT_SCHED_COSINE; /* the learning rate depends on the restored step count */
    oo.total_steps = 4 * (K + J);
    TU_CHECK(sat_optimizer_create(r.model, &oo, &r.opt));
    tu_own_optimizer(r.opt);
    return r;
}

static void free_run(run *r) {
    tu_release(r->opt);
    tu_release(r->model);
}

/* One step of the host's loop on batch i; after step 1 the host changes the settings. */
static void step(run *r, int i) {
    float x[BATCH * IN];
    int32_t y[BATCH];
    tu_fill_uniform(x, BATCH * IN, 0.0f, 1.0f, 100 + (uint64_t)i);
    for (int e = 0; e < BATCH; e++) y[e] = (i + 3 * e) % 5;
    TU_CHECK(sat_model_train_backward(r->model, x, y, BATCH, 0.0f, NULL, NULL));
    if (sat_optimizer_step(r->opt) != SAT_OK) fail_msg("step %d: %s", i, sat_optimizer_last_error(r->opt));
    if (i == 1) {
        const int64_t np = sat_model_param_count(r->model);
        TU_CHECK(sat_optimizer_set_lr(r->opt, 2.0f * sat_optimizer_base_lr(r->opt)));
        TU_CHECK(sat_optimizer_set_lr_scale(r->opt, np - 5, 5, 0.25f));
        uint8_t *mask = tu_alloc((size_t)np);
        memset(mask, 1, 20); /* a few convolution weights */
        TU_CHECK(sat_optimizer_set_frozen(r->opt, mask));
        tu_free(mask);
    }
}

static void assert_same_run(run *a, run *b) {
    const int64_t np = sat_model_param_count(a->model), ns = sat_model_state_count(a->model);
    assert_memory_equal(sat_model_params(a->model), sat_model_params(b->model), sizeof(float) * (size_t)np);
    assert_memory_equal(sat_model_state(a->model), sat_model_state(b->model), sizeof(float) * (size_t)ns);
    int64_t ca = 0, cb = 0;
    const float *sa = sat_optimizer_state(a->opt, &ca), *sb = sat_optimizer_state(b->opt, &cb);
    assert_int_equal(ca, cb);
    if (ca) assert_memory_equal(sa, sb, sizeof(float) * (size_t)ca);
    assert_int_equal(sat_optimizer_step_count(a->opt), sat_optimizer_step_count(b->opt));
    assert_true(sat_optimizer_base_lr(a->opt) == sat_optimizer_base_lr(b->opt));
}

static void resume_matches(fixture *f, int32_t kind) {
    run whole = make_run(f->ctx, SPEC, kind, 10);
    for (int i = 0; i < K + J; i++) step(&whole, i);

    run first = make_run(f->ctx, SPEC, kind, 10);
    for (int i = 0; i < K; i++) step(&first, i);
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    meta.epochs = 7;
    TU_CHECK(sat_optimizer_checkpoint_save(first.opt, &meta, f->path));
    free_run(&first);

    run resumed = make_run(f->ctx, SPEC, kind, 777);
    sat_model_meta back;
    sat_model_meta_init(&back, sizeof back);
    if (sat_optimizer_checkpoint_load(resumed.opt, f->path, &back) != SAT_OK)
        fail_msg("%s", sat_optimizer_last_error(resumed.opt));
    assert_int_equal(back.epochs, 7);
    for (int i = K; i < K + J; i++) step(&resumed, i);
    assert_same_run(&whole, &resumed);
}

static void test_resume_sgd_momentum(void **state) { resume_matches(*state, SAT_OPT_SGD); }
static void test_resume_adam(void **state) { resume_matches(*state, SAT_OPT_ADAM); }

/* The load fails; the handles hold exactly what they held before. */
static void expect_refused(run *r, const char *path, int32_t want, const char *needle) {
    const int64_t np = sat_model_param_count(r->model), ns = sat_model_state_count(r->model);
    int64_t count = 0;
    const float *state = sat_optimizer_state(r->opt, &count);
    float *p = tu_alloc(sizeof(float) * (size_t)np), *s = tu_alloc(sizeof(float) * (size_t)(ns + 1));
    float *o = tu_alloc(sizeof(float) * (size_t)(count + 1)), *scales = tu_alloc(sizeof(float) * (size_t)np);
    uint8_t *mask = tu_alloc((size_t)np);
    memcpy(p, sat_model_params(r->model), sizeof(float) * (size_t)np);
    memcpy(s, sat_model_state(r->model), sizeof(float) * (size_t)ns);
    memcpy(o, state, sizeof(float) * (size_t)count);
    TU_CHECK(sat_optimizer_get_lr_scale(r->opt, scales));
    TU_CHECK(sat_optimizer_get_frozen(r->opt, mask));
    const int64_t steps = sat_optimizer_step_count(r->opt);
    const float lr = sat_optimizer_base_lr(r->opt);

    int32_t st = sat_optimizer_checkpoint_load(r->opt, path, NULL);
    if (st != want) fail_msg("load -> %d, want %d: %s", st, want, sat_optimizer_last_error(r->opt));
    if (!strstr(sat_optimizer_last_error(r->opt), needle))
        fail_msg("message '%s' lacks '%s'", sat_optimizer_last_error(r->opt), needle);

    assert_memory_equal(p, sat_model_params(r->model), sizeof(float) * (size_t)np);
    assert_memory_equal(s, sat_model_state(r->model), sizeof(float) * (size_t)ns);
    assert_memory_equal(o, state, sizeof(float) * (size_t)count);
    float *scales2 = tu_alloc(sizeof(float) * (size_t)np);
    uint8_t *mask2 = tu_alloc((size_t)np);
    TU_CHECK(sat_optimizer_get_lr_scale(r->opt, scales2));
    TU_CHECK(sat_optimizer_get_frozen(r->opt, mask2));
    assert_memory_equal(scales, scales2, sizeof(float) * (size_t)np);
    assert_memory_equal(mask, mask2, (size_t)np);
    assert_int_equal(sat_optimizer_step_count(r->opt), steps);
    assert_true(sat_optimizer_base_lr(r->opt) == lr);
}

static void test_mismatch_changes_nothing(void **state) {
    fixture *f = *state;
    run saved = make_run(f->ctx, SPEC, SAT_OPT_SGD, 1);
    for (int i = 0; i < 3; i++) step(&saved, i);
    TU_CHECK(sat_optimizer_checkpoint_save(saved.opt, NULL, f->path));

    run other_model = make_run(f->ctx, SPEC_OTHER, SAT_OPT_SGD, 2);
    step(&other_model, 0);
    expect_refused(&other_model, f->path, SAT_E_INVALID_ARG, "model spec differs");

    run other_opt = make_run(f->ctx, SPEC, SAT_OPT_ADAM, 2);
    step(&other_opt, 0);
    step(&other_opt, 1); /* settings changed, so a wrong restore would show */
    expect_refused(&other_opt, f->path, SAT_E_INVALID_ARG, "optimizer kind");

    /* A damaged file (one flipped byte) is refused by its checksum. */
    FILE *fp = fopen(f->path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 40, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, 40, SEEK_SET), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    run same = make_run(f->ctx, SPEC, SAT_OPT_SGD, 3);
    expect_refused(&same, f->path, SAT_E_FORMAT, "checksum");
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.satc", f->dir);
    expect_refused(&same, missing, SAT_E_IO, "none.satc");
}

/* Each load function refuses the other kind of checkpoint, naming the right one; a model
 * load reads both. */
static void test_trainer_and_optimizer_checkpoints_told_apart(void **state) {
    fixture *f = *state;
    run r = make_run(f->ctx, SPEC, SAT_OPT_SGD, 4);
    step(&r, 0);
    sat_trainer *tr = NULL;
    TU_CHECK(sat_trainer_create(r.model, r.opt, NULL, &tr));
    tu_own_trainer(tr);
    TU_CHECK(sat_checkpoint_save(tr, NULL, 0, 1, f->trainer_path));
    TU_CHECK(sat_optimizer_checkpoint_save(r.opt, NULL, f->path));

    run other = make_run(f->ctx, SPEC, SAT_OPT_SGD, 5);
    expect_refused(&other, f->trainer_path, SAT_E_FORMAT, "sat_checkpoint_load");

    sat_trainer *tr2 = NULL;
    TU_CHECK(sat_trainer_create(other.model, other.opt, NULL, &tr2));
    tu_own_trainer(tr2);
    const int64_t np = sat_model_param_count(other.model);
    float *before = tu_alloc(sizeof(float) * (size_t)np);
    memcpy(before, sat_model_params(other.model), sizeof(float) * (size_t)np);
    assert_int_equal(sat_checkpoint_load(tr2, f->path, NULL, NULL), SAT_E_FORMAT);
    assert_non_null(strstr(sat_trainer_last_error(tr2), "sat_optimizer_checkpoint_load"));
    assert_memory_equal(before, sat_model_params(other.model), sizeof(float) * (size_t)np);
    tu_release(tr2);

    /* The trainer checkpoint carries the optimizer settings too. */
    TU_CHECK(sat_optimizer_set_lr(r.opt, 0.125f));
    TU_CHECK(sat_checkpoint_save(tr, NULL, 0, 2, f->trainer_path));
    TU_CHECK(sat_trainer_create(other.model, other.opt, NULL, &tr2));
    tu_own_trainer(tr2);
    TU_CHECK(sat_checkpoint_load(tr2, f->trainer_path, NULL, NULL));
    assert_true(sat_optimizer_base_lr(other.opt) == 0.125f);

    sat_model *loaded = NULL;
    TU_CHECK(sat_model_load(f->ctx, f->path, NULL, &loaded));
    tu_own_model(loaded);
    assert_memory_equal(sat_model_params(loaded), sat_model_params(r.model), sizeof(float) * (size_t)np);
}

static void test_bad_arguments(void **state) {
    fixture *f = *state;
    run r = make_run(f->ctx, SPEC, SAT_OPT_SGD, 6);
    assert_int_equal(sat_optimizer_checkpoint_save(NULL, NULL, f->path), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_checkpoint_save(r.opt, NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_checkpoint_save(r.opt, NULL, ""), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_checkpoint_load(NULL, f->path, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_checkpoint_load(r.opt, NULL, NULL), SAT_E_INVALID_ARG);
    sat_model_meta meta;
    memset(&meta, 0, sizeof meta);
    assert_int_equal(sat_optimizer_checkpoint_load(r.opt, f->path, &meta), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_optimizer_last_error(r.opt), "struct_size"));
    /* A failed save keeps the existing file. */
    TU_CHECK(sat_optimizer_checkpoint_save(r.opt, NULL, f->path));
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir.satc", f->dir);
    assert_int_equal(sat_optimizer_checkpoint_save(r.opt, NULL, bad), SAT_E_IO);
    TU_CHECK(sat_optimizer_checkpoint_load(r.opt, f->path, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_sgd_momentum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_adam, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mismatch_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trainer_and_optimizer_checkpoints_told_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return tu_run_group("test_optim_checkpoint", tests, sizeof tests / sizeof tests[0]);
}
