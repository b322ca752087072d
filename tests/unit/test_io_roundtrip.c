/* test_io_roundtrip.c - a saved model loads back bit-identically (parameters, batch-norm
 * statistics, options, spec, logits, meta), through files and memory buffers; bad
 * arguments are rejected without side effects. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 4

typedef struct {
    sat_context *ctx;
    sat_model *model;
    char dir[64];
    char path[128];
} fixture;

/* ResNet-20 on 3x8x8 with input normalisation and SmoothReLU (a learnable parameter per
 * layer), with its parameters and running statistics moved away from their initial values
 * so that a load that forgot to copy them would show. The context and model are
 * registered and go with the test; the teardown removes the files. */
static int setup(void **state) {
    static fixture fx;
    fixture *f = &fx;
    memset(f, 0, sizeof *f);
    f->ctx = tu_context(1, 7);
    const float mean[3] = {0.49f, 0.48f, 0.45f}, std[3] = {0.25f, 0.24f, 0.26f};
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 8, 8, 10, mean, std, &spec));
    tu_own_sat_mem(spec);
    sat_model_opts o;
    TU_CHECK(sat_model_opts_init(&o, sizeof o));
    o.activation = SAT_ACT_SMOOTHRELU;
    o.max_batch = BATCH;
    o.train_backward_act = SAT_ACT_PSOFTPLUS;
    o.seed = 99;
    TU_CHECK(sat_model_create(f->ctx, spec, &o, &f->model));
    tu_own_model(f->model);
    tu_release(spec);
    float *p = sat_model_params(f->model);
    int64_t np = sat_model_param_count(f->model);
    for (int64_t i = 0; i < np; i++) p[i] *= 1.0f + 0.01f * (float)(i % 7);
    float *s = sat_model_state(f->model);
    int64_t ns = sat_model_state_count(f->model);
    assert_true(ns > 0);
    tu_fill_uniform(s, ns, 0.1f, 2.0f, 3);
    snprintf(f->dir, sizeof f->dir, "/tmp/sat_io_rt_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/model.satm", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    remove(f->path);
    rmdir(f->dir);
    return 0;
}

static void assert_same_model(sat_model *a, sat_model *b) {
    assert_string_equal(sat_model_spec(a), sat_model_spec(b));
    int64_t np = sat_model_param_count(a), ns = sat_model_state_count(a);
    assert_int_equal(np, sat_model_param_count(b));
    assert_int_equal(ns, sat_model_state_count(b));
    assert_memory_equal(sat_model_params(a), sat_model_params(b), sizeof(float) * (size_t)np);
    assert_memory_equal(sat_model_state(a), sat_model_state(b), sizeof(float) * (size_t)ns);
    sat_model_opts oa, ob;
    sat_model_opts_init(&oa, sizeof oa);
    sat_model_opts_init(&ob, sizeof ob);
    TU_CHECK(sat_model_get_opts(a, &oa));
    TU_CHECK(sat_model_get_opts(b, &ob));
    /* Field by field: NaN defaults compare by bit pattern. */
    assert_int_equal(oa.activation, ob.activation);
    assert_memory_equal(&oa.act_param, &ob.act_param, sizeof(float));
    assert_int_equal(oa.max_batch, ob.max_batch);
    assert_int_equal(oa.attack_backward_act, ob.attack_backward_act);
    assert_memory_equal(&oa.attack_backward_param, &ob.attack_backward_param, sizeof(float));
    assert_int_equal(oa.train_backward_act, ob.train_backward_act);
    assert_memory_equal(&oa.train_backward_param, &ob.train_backward_param, sizeof(float));
    assert_int_equal(oa.attack_bn_mode, ob.attack_bn_mode);
    assert_true(oa.seed == ob.seed);

    float x[BATCH * 3 * 8 * 8], la[BATCH * 10], lb[BATCH * 10];
    tu_fill_uniform(x, BATCH * 3 * 8 * 8, 0.0f, 1.0f, 11);
    TU_CHECK(sat_model_forward(a, x, BATCH, la));
    TU_CHECK(sat_model_forward(b, x, BATCH, lb));
    assert_memory_equal(la, lb, sizeof la);
}

static sat_model_meta sample_meta(void) {
    sat_model_meta m;
    sat_model_meta_init(&m, sizeof m);
    m.norm = SAT_NORM_L2;
    m.eps = 0.5f;
    m.method = SAT_TRAIN_TRADES;
    m.steps = 10;
    m.epochs = 200;
    m.clean_accuracy = 0.8125f;
    m.robust_accuracy = 0.5f;
    return m;
}

static void test_file_roundtrip(void **state) {
    fixture *f = *state;
    sat_model_meta meta = sample_meta();
    TU_CHECK(sat_model_save(f->model, &meta, f->path));
    sat_model_meta got;
    sat_model_meta_init(&got, sizeof got);
    sat_model *m = NULL;
    TU_CHECK(sat_model_load(f->ctx, f->path, &got, &m));
    tu_own_model(m);
    assert_same_model(f->model, m);
    assert_memory_equal(&got, &meta, sizeof meta);
}

static void test_buffer_roundtrip_matches_file(void **state) {
    fixture *f = *state;
    sat_model_meta meta = sample_meta();
    void *buf = NULL;
    size_t size = 0;
    TU_CHECK(sat_model_save_buffer(f->model, &meta, &buf, &size));
    tu_own_sat_mem(buf);
    sat_model *m = NULL;
    sat_model_meta got;
    sat_model_meta_init(&got, sizeof got);
    TU_CHECK(sat_model_load_buffer(f->ctx, buf, size, &got, &m));
    tu_own_model(m);
    assert_same_model(f->model, m);
    assert_memory_equal(&got, &meta, sizeof meta);

    /* The file is the buffer's bytes: one format, deterministic. */
    TU_CHECK(sat_model_save(f->model, &meta, f->path));
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    unsigned char *disk = tu_alloc(size + 1);
    assert_int_equal(fread(disk, 1, size + 1, fp), size);
    fclose(fp);
    assert_memory_equal(disk, buf, size);
    assert_memory_equal(disk, "SATM\1\0\0\0", 8);

    /* Saving the loaded model gives the same bytes again. */
    void *buf2 = NULL;
    size_t size2 = 0;
    TU_CHECK(sat_model_save_buffer(m, &meta, &buf2, &size2));
    tu_own_sat_mem(buf2);
    assert_int_equal(size, size2);
    assert_memory_equal(buf, buf2, size);
}

static void test_meta_defaults_and_sizes(void **state) {
    fixture *f = *state;
    /* No meta at save: the loaded meta says "nothing recorded". */
    TU_CHECK(sat_model_save(f->model, NULL, f->path));
    sat_model_meta got;
    sat_model_meta_init(&got, sizeof got);
    got.epochs = 123;
    sat_model *m = NULL;
    TU_CHECK(sat_model_load(f->ctx, f->path, &got, &m));
    tu_own_model(m);
    assert_int_equal(got.struct_size, sizeof got);
    assert_int_equal(got.norm, SAT_NORM_LINF);
    assert_true(isnan(got.eps));
    assert_int_equal(got.method, SAT_TRAIN_STANDARD);
    assert_int_equal(got.epochs, 0);
    assert_true(isnan(got.clean_accuracy) && isnan(got.robust_accuracy));
    tu_release(m);

    /* An older, shorter meta struct gets only the fields it has. */
    sat_model_meta meta = sample_meta();
    TU_CHECK(sat_model_save(f->model, &meta, f->path));
    sat_model_meta small;
    memset(&small, 0xab, sizeof small);
    small.struct_size = (uint32_t)offsetof(sat_model_meta, steps);
    TU_CHECK(sat_model_load(f->ctx, f->path, &small, &m));
    tu_own_model(m);
    assert_int_equal(small.struct_size, offsetof(sat_model_meta, steps));
    assert_int_equal(small.method, SAT_TRAIN_TRADES);
    assert_int_equal(small.steps, (int32_t)0xabababab);

    /* Meta init rejects bad sizes and zero-fills a larger struct's tail. */
    assert_int_equal(sat_model_meta_init(NULL, sizeof meta), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_meta_init(&meta, 2), SAT_E_INVALID_ARG);
    unsigned char big[sizeof(sat_model_meta) + 8];
    memset(big, 0xff, sizeof big);
    TU_CHECK(sat_model_meta_init((sat_model_meta *)(void *)big, sizeof big));
    for (size_t i = sizeof(sat_model_meta); i < sizeof big; i++) assert_int_equal(big[i], 0);
}

static void test_bad_arguments(void **state) {
    fixture *f = *state;
    sat_model *m = (sat_model *)(uintptr_t)1;
    assert_int_equal(sat_model_load(NULL, f->path, NULL, &m), SAT_E_INVALID_ARG);
    assert_null(m);
    assert_true(strlen(sat_last_error()) > 0);
    assert_int_equal(sat_model_load(f->ctx, NULL, NULL, &m), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_load(f->ctx, "", NULL, &m), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_load(f->ctx, f->path, NULL, NULL), SAT_E_INVALID_ARG);
    sat_model_meta zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(sat_model_load(f->ctx, f->path, &zero, &m), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_load_buffer(f->ctx, NULL, 10, NULL, &m), SAT_E_INVALID_ARG);
    assert_null(m);

    assert_int_equal(sat_model_save(NULL, NULL, f->path), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_save(f->model, NULL, NULL), SAT_E_INVALID_ARG);
    assert_true(strlen(sat_model_last_error(f->model)) > 0);
    assert_int_equal(sat_model_save(f->model, NULL, ""), SAT_E_INVALID_ARG);

    /* Invalid meta values: nothing is written. */
    sat_model_meta meta = sample_meta();
    meta.eps = -1.0f;
    assert_int_equal(sat_model_save(f->model, &meta, f->path), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(f->model), "eps"));
    struct stat st;
    assert_int_equal(stat(f->path, &st), -1);
    meta = sample_meta();
    meta.robust_accuracy = 1.5f;
    assert_int_equal(sat_model_save(f->model, &meta, f->path), SAT_E_INVALID_ARG);
    meta = sample_meta();
    meta.method = 99;
    assert_int_equal(sat_model_save(f->model, &meta, f->path), SAT_E_INVALID_ARG);
    assert_int_equal(stat(f->path, &st), -1);

    void *buf = (void *)(uintptr_t)1;
    size_t size = 5;
    assert_int_equal(sat_model_save_buffer(f->model, NULL, NULL, &size), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_save_buffer(f->model, &meta, &buf, &size), SAT_E_INVALID_ARG);
    assert_true(buf == (void *)(uintptr_t)1 && size == 5);
    assert_int_equal(sat_model_save_buffer(NULL, NULL, &buf, &size), SAT_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_roundtrip_matches_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_defaults_and_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return tu_run_group("test_io_roundtrip", tests, sizeof tests / sizeof tests[0]);
}
