/* test_model_api.c - the model API's contract: spec errors name the line, argument errors
 * return the right code and leave the model usable and unchanged, presets build, a
 * steady-state step allocates nothing, results do not depend on the thread count. */
#include "testutil.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- spec errors ---- */

static void expect_spec_error(sat_context *ctx, const char *spec, const char *needle) {
    sat_model *m = (sat_model *)0x1;
    int32_t st = sat_model_create(ctx, spec, NULL, &m);
    assert_int_equal(st, SAT_E_INVALID_ARG);
    assert_null(m);
    if (!strstr(sat_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", sat_last_error(), needle);
}

static void test_bad_specs(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    expect_spec_error(ctx, "input 1 8 8\nflatten\nconv3 4\ndense 10\n", "line 3: unknown layer 'conv3'");
    expect_spec_error(ctx, "dense 10\n", "line 1: the first layer must be 'input C H W'");
    expect_spec_error(ctx, "input 1 8\ndense 10\n", "line 1: input needs three");
    expect_spec_error(ctx, "input 1 8 8\nconv 4 k=9\ndense 3\n", "line 2: conv k=9");
    expect_spec_error(ctx, "input 1 8 8\nconv 4 k=3 q=2\ndense 3\n", "line 2: unknown option 'q'");
    expect_spec_error(ctx, "input 1 8 8\nconv 4 k=x\ndense 3\n", "line 2: bad value 'x' for k");
    expect_spec_error(ctx, "input 1 8 8\nact mish\ndense 3\n", "line 2: unknown activation 'mish'");
    expect_spec_error(ctx, "input 1 8 8\nflatten\nadd nowhere\ndense 3\n", "line 3: add of unknown layer name");
    expect_spec_error(ctx, "input 1 8 8\nconv 2 k=1 name=a\nconv 3 k=1\nadd a\ndense 3\n", "line 4: add of");
    expect_spec_error(ctx, "input 1 8 8\nflatten\ndense 1\n", "must give one per class");
    expect_spec_error(ctx, "input 1 8 8\nflatten name=x\ndense 3 from=x\ndense 3 from=x\n", "never used");
    expect_spec_error(ctx, "input 3 8 8\nnormalize mean=0.5,0.5 std=1\ndense 3\n", "line 2: normalize needs mean");
    expect_spec_error(ctx, "input 1 8 8\nmaxpool k=9\ndense 3\n", "line 2: pooling window 9");
    expect_spec_error(ctx, "input 1 8 8\nmaxpool k=3 p=2\ndense 3\n", "line 2: maxpool p=2 is more than half");
    expect_spec_error(ctx, "input 1 8 8\navgpool k=3 p=1\ndense 3\n", "line 2: unknown option 'p'");
    expect_spec_error(ctx, "input 2 8 8\ngap name=g\nconv 3 k=1 from=g\nmul g\ndense 3\n",
                      "line 4: mul of 3x1x1 and 2x1x1 (line 2): needs one shape");
    expect_spec_error(ctx, "input 2 8 8\nconv 2 k=1\nmul nowhere\ndense 3\n", "line 3: mul of unknown layer name");
    expect_spec_error(ctx, "input 6 8 8\nconv 8 k=3 g=4\ndense 3\n", "line 2: conv g=4 does not divide 6 input");
    expect_spec_error(ctx, "input 2 8 8\nconv 2 k=1 name=a\nmul a\ndense 3\n", "line 3: mul of a layer with itself");
    expect_spec_error(ctx, "input 1 8 8\ndropout p=0.2 per=row\ndense 3\n", "line 2: dropout per=row is not");
    expect_spec_error(ctx, "", "needs an input line");
    /* comments and blank lines are fine and count as lines */
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, "# a comment\n\ninput 1 2 2 # trailing\nflatten\ndense 2\n", NULL, &m));
    sat_model_destroy(m);
}

static void test_presets_build(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    const char *names[] = {"mlp", "madry-cnn", "small-cnn", "resnet20"};
    /* parameter counts from the architectures' definitions */
    const int64_t expect[] = {
        784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10,
        32 * 25 + 32 + 64 * 32 * 25 + 64 + 7 * 7 * 64 * 1024 + 1024 + 1024 * 10 + 10,
        -1, -1};
    for (int i = 0; i < 4; i++) {
        char *spec = NULL;
        float mean = 0.286f, sd = 0.353f;
        TU_CHECK(sat_preset_spec(names[i], 1, 28, 28, 10, &mean, &sd, &spec));
        tu_own_sat_mem(spec);
        sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, 4);
        if (expect[i] > 0) assert_int_equal(sat_model_param_count(m), expect[i]);
        int32_t c, h, w, k;
        TU_CHECK(sat_model_shape(m, &c, &h, &w, &k));
        assert_int_equal(c * h * w * 10, 28 * 28 * k);
        tu_release(m);
        tu_release(spec);
    }
    /* resnet20 on CIFAR shape: about 0.27M parameters (He et al.), with 1x1 projections */
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 32, 32, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *m = tu_model(ctx, spec, SAT_ACT_RELU, 2);
    int64_t np = sat_model_param_count(m);
    assert_true(np > 260000 && np < 280000);
    assert_int_equal(sat_preset_spec("vgg", 1, 28, 28, 10, NULL, NULL, &spec), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "unknown preset 'vgg'"));
}

/* ---- argument errors leave the model as it was ---- */

static const char *const SMALL = "input 1 6 6\nconv 3 k=3\nbn\nact\nflatten\ndense 4\n";

static void test_argument_errors(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SMALL, SAT_ACT_SILU, 4);
    float x[5 * 36], g[5 * 36], logits[5 * 4], ref[4 * 4];
    int32_t y[5] = {0, 1, 2, 3, 0};
    tu_fill_uniform(x, 5 * 36, 0, 1, 1);
    TU_CHECK(sat_model_forward(m, x, 4, ref));
    int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    float *p0 = tu_alloc(sizeof(float) * np), *s0 = tu_alloc(sizeof(float) * ns);
    memcpy(p0, sat_model_params(m), sizeof(float) * np);
    memcpy(s0, sat_model_state(m), sizeof(float) * ns);

    assert_int_equal(sat_model_forward(NULL, x, 4, logits), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_forward(m, NULL, 4, logits), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_forward(m, x, 4, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_forward(m, x, 0, logits), SAT_E_SHAPE);
    x[4 * 36 + 7] = NAN; /* in the second chunk of a batch above max_batch: nothing is written */
    for (int i = 0; i < 5 * 4; i++) logits[i] = -7.0f;
    assert_int_equal(sat_model_forward(m, x, 5, logits), SAT_E_NUMERIC);
    assert_non_null(strstr(sat_model_last_error(m), "NaN"));
    for (int i = 0; i < 5 * 4; i++) assert_true(logits[i] == -7.0f);
    x[4 * 36 + 7] = 0.5f;
    assert_int_equal(sat_model_input_gradient(m, x, NULL, 4, NULL, g, NULL), SAT_E_INVALID_ARG);
    y[2] = 4;
    assert_int_equal(sat_model_input_gradient(m, x, y, 4, NULL, g, NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(m), "label 4 at index 2"));
    assert_int_equal(sat_model_train_backward(m, x, y, 4, 0, NULL, NULL), SAT_E_INVALID_ARG);
    y[2] = 2;
    assert_int_equal(sat_model_train_backward(m, x, y, 4, 1.0f, NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_train_backward(m, x, y, 4, NAN, NULL, NULL), SAT_E_INVALID_ARG);
    float keep = x[7];
    x[7] = NAN;
    assert_int_equal(sat_model_train_backward(m, x, y, 4, 0, NULL, NULL), SAT_E_NUMERIC);
    assert_int_equal(sat_model_input_gradient(m, x, y, 4, NULL, g, NULL), SAT_E_NUMERIC);
    x[7] = keep;
    /* nothing changed, and the model still works */
    assert_memory_equal(p0, sat_model_params(m), sizeof(float) * np);
    assert_memory_equal(s0, sat_model_state(m), sizeof(float) * ns);
    TU_CHECK(sat_model_forward(m, x, 4, logits));
    assert_memory_equal(ref, logits, sizeof ref);

    /* bad options */
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = 42;
    sat_model *bad = NULL;
    assert_int_equal(sat_model_create(ctx, SMALL, &o, &bad), SAT_E_INVALID_ARG);
    assert_null(bad);
    sat_model_opts_init(&o, sizeof o);
    o.max_batch = 0;
    assert_int_equal(sat_model_create(ctx, SMALL, &o, &bad), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_set_backward(m, 99, NAN, SAT_ACT_SAME, NAN), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_create(NULL, SMALL, NULL, &bad), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_create(ctx, NULL, NULL, &bad), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_create(ctx, SMALL, NULL, NULL), SAT_E_INVALID_ARG);
    sat_model_destroy(NULL);
    sat_context_destroy(NULL);
}

/* An options struct from an older header (smaller struct_size) gets defaults for the
 * missing fields; a larger one with a non-zero unknown tail is rejected. */
static void test_opts_sizes(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model_opts o;
    sat_model_opts_init(&o, offsetof(sat_model_opts, attack_backward_act));
    assert_int_equal(o.struct_size, offsetof(sat_model_opts, attack_backward_act));
    o.activation = SAT_ACT_GELU;
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, SMALL, &o, &m));
    tu_own_model(m);
    sat_model_opts got;
    sat_model_opts_init(&got, sizeof got);
    TU_CHECK(sat_model_get_opts(m, &got));
    assert_int_equal(got.activation, SAT_ACT_GELU);
    assert_int_equal(got.attack_backward_act, SAT_ACT_SAME);
    assert_int_equal(got.max_batch, 128);
    tu_release(m);
    struct {
        sat_model_opts o;
        uint64_t future;
    } big;
    memset(&big, 0, sizeof big);
    sat_model_opts_init(&big.o, sizeof big);
    assert_int_equal(big.o.struct_size, sizeof big);
    TU_CHECK(sat_model_create(ctx, SMALL, &big.o, &m));
    sat_model_destroy(m);
    big.future = 1;
    assert_int_equal(sat_model_create(ctx, SMALL, &big.o, &m), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "struct_size"));
}

/* ---- a steady-state step allocates nothing ---- */

typedef struct counter {
    int64_t allocs;
} counter;

static void *count_alloc(void *user, size_t size, size_t alignment) {
    ((counter *)user)->allocs++;
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_free(void *user, void *p) {
    (void)user;
    free(p);
}

static void test_no_allocation_in_steps(void **st) {
    (void)st;
    counter *cnt = tu_alloc(sizeof *cnt); /* it must outlive ctx, which the test owns */
    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.alloc_fn = count_alloc;
    co.dealloc_fn = count_free;
    co.alloc_user = cnt;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&co, &ctx));
    tu_own_context(ctx);
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 16, 16, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, 8);
    tu_release(spec);
    assert_true(cnt->allocs > 0);
    float *x = tu_alloc(sizeof(float) * 8 * 3 * 16 * 16), *g = tu_alloc(sizeof(float) * 8 * 3 * 16 * 16);
    float logits[8 * 10], loss;
    int32_t y[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    tu_fill_uniform(x, 8 * 3 * 256, 0, 1, 3);
    /* The model's execution (its arena) is made by the first call; none after it allocates. */
    TU_CHECK(sat_model_forward(m, x, 8, logits));
    int64_t before = cnt->allocs;
    for (int i = 0; i < 3; i++) {
        TU_CHECK(sat_model_forward(m, x, 8, logits));
        TU_CHECK(sat_model_input_gradient(m, x, y, 8, NULL, g, logits));
        TU_CHECK(sat_model_train_backward(m, x, y, 8, 0.1f, &loss, NULL));
    }
    assert_int_equal(cnt->allocs, before);
}

/* ---- thread count does not change results ---- */

/* grow: the model is created while the context has one thread, which then changes to
 * `threads` (the per-thread workspace has to grow on the next pass). */
static void run_threads_on(const char *preset, int32_t c, int32_t hw, int32_t threads, int grow, float *logits,
                           float *grad, float *pgrad, int64_t np) {
    sat_context *ctx = tu_context(grow ? 1 : threads, 77);
    char *spec = NULL;
    TU_CHECK(sat_preset_spec(preset, c, hw, hw, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, 16);
    tu_release(spec);
    if (grow) TU_CHECK(sat_context_set_num_threads(ctx, threads));
    assert_int_equal(sat_model_param_count(m), np);
    const int64_t in = (int64_t)c * hw * hw;
    float *x = tu_alloc(sizeof(float) * 16 * (size_t)in);
    int32_t y[16];
    for (int i = 0; i < 16; i++) y[i] = i % 10;
    tu_fill_uniform(x, 16 * in, 0, 1, 5);
    TU_CHECK(sat_model_input_gradient(m, x, y, 16, NULL, grad, logits));
    TU_CHECK(sat_model_train_backward(m, x, y, 16, 0, NULL, NULL));
    memcpy(pgrad, sat_model_grads(m), sizeof(float) * np);
    tu_free(x);
    tu_release(m);
    tu_release(ctx);
}

static void run_threads(int32_t threads, float *logits, float *grad, float *pgrad, int64_t np) {
    run_threads_on("madry-cnn", 1, 28, threads, 0, logits, grad, pgrad, np);
}

static void test_thread_independence(void **st) {
    (void)st;
    const int64_t np = 3274634;
    float *l1 = tu_alloc(sizeof(float) * 160), *l2 = tu_alloc(sizeof(float) * 160);
    float *g1 = tu_alloc(sizeof(float) * 16 * 784), *g2 = tu_alloc(sizeof(float) * 16 * 784);
    float *p1 = tu_alloc(sizeof(float) * np), *p2 = tu_alloc(sizeof(float) * np);
    run_threads(1, l1, g1, p1, np);
    run_threads(2, l2, g2, p2, np);
    assert_memory_equal(l1, l2, sizeof(float) * 160);
    assert_memory_equal(g1, g2, sizeof(float) * 16 * 784);
    assert_memory_equal(p1, p2, sizeof(float) * np);
}

/* The same for resnet20 (16-64 channel convolutions, projections, batch norm), with 3
 * threads, and with threads added after the model was created. */
static void test_thread_independence_resnet(void **st) {
    (void)st;
    const int64_t np = 272474, in = 3 * 16 * 16;
    float l[3][160], *g[3], *p[3];
    for (int k = 0; k < 3; k++) g[k] = tu_alloc(sizeof(float) * 16 * (size_t)in), p[k] = tu_alloc(sizeof(float) * np);
    run_threads_on("resnet20", 3, 16, 1, 0, l[0], g[0], p[0], np);
    run_threads_on("resnet20", 3, 16, 3, 0, l[1], g[1], p[1], np);
    run_threads_on("resnet20", 3, 16, 2, 1, l[2], g[2], p[2], np);
    for (int k = 1; k < 3; k++) {
        assert_memory_equal(l[0], l[k], sizeof l[0]);
        assert_memory_equal(g[0], g[k], sizeof(float) * 16 * (size_t)in);
        assert_memory_equal(p[0], p[k], sizeof(float) * np);
    }
}

/* The ops of the ImageNet families (padded max-pooling, a squeeze-excitation gate, depthwise
 * and grouped convolutions, dropout in the training step), on tensors large enough for the
 * worker pool to split them: the same bits for 1 and 3 threads, and for a batch run whole or
 * in pieces. */
static const char *const SPEC_NEW_OPS = "input 3 32 32\n"
                                        "conv 8 k=3 p=1 bias=0\n"
                                        "bn\n"
                                        "act\n"
                                        "dropout p=0.2\n"
                                        "maxpool k=3 s=2 p=1 name=stem\n"
                                        "gap\n"
                                        "conv 4 k=1\n"
                                        "act\n"
                                        "conv 8 k=1\n"
                                        "sigmoid\n"
                                        "mul stem\n"
                                        "conv 8 k=3 p=1 g=8\n"
                                        "conv 16 k=3 s=2 p=1 g=4\n"
                                        "sigmoid\n"
                                        "gap\n"
                                        "dense 10\n";

enum { OPS_N = 16, OPS_IN = 3 * 32 * 32 };

/* Logits, input gradient (attack plan) and parameter gradients (train plan) of one batch;
 * the input gradient a second time, in two halves. */
static void run_new_ops(int32_t threads, float *logits, float *grad, float *halves, float *pgrad) {
    sat_context *ctx = tu_context(threads, 41);
    sat_model *m = tu_model(ctx, SPEC_NEW_OPS, SAT_ACT_SILU, OPS_N);
    float *x = tu_alloc(sizeof(float) * OPS_N * OPS_IN);
    int32_t y[OPS_N];
    for (int i = 0; i < OPS_N; i++) y[i] = i % 10;
    tu_fill_uniform(x, OPS_N * OPS_IN, 0, 1, 6);
    TU_CHECK(sat_model_input_gradient(m, x, y, OPS_N, NULL, grad, logits));
    for (int s = 0; s < OPS_N; s += OPS_N / 2)
        TU_CHECK(sat_model_input_gradient(m, x + s * OPS_IN, y + s, OPS_N / 2, NULL, halves + s * OPS_IN, NULL));
    TU_CHECK(sat_model_train_backward(m, x, y, OPS_N, 0, NULL, NULL));
    assert_true(sat_model_param_count(m) <= 4096);
    memcpy(pgrad, sat_model_grads(m), sizeof(float) * (size_t)sat_model_param_count(m));
    tu_free(x);
    tu_release(m);
    tu_release(ctx);
}

static void test_new_ops_thread_and_chunk_independence(void **st) {
    (void)st;
    float l[2][OPS_N * 10], *g[2], *h[2], *p[2];
    for (int k = 0; k < 2; k++) {
        g[k] = tu_alloc(sizeof(float) * OPS_N * OPS_IN);
        h[k] = tu_alloc(sizeof(float) * OPS_N * OPS_IN);
        p[k] = tu_alloc(sizeof(float) * 4096); /* beyond the model's parameters: zeros */
        memset(p[k], 0, sizeof(float) * 4096);
        run_new_ops(k ? 3 : 1, l[k], g[k], h[k], p[k]);
    }
    assert_memory_equal(l[0], l[1], sizeof l[0]);
    assert_memory_equal(g[0], g[1], sizeof(float) * OPS_N * OPS_IN);
    assert_memory_equal(g[0], h[0], sizeof(float) * OPS_N * OPS_IN);
    assert_memory_equal(g[1], h[1], sizeof(float) * OPS_N * OPS_IN);
    assert_memory_equal(p[0], p[1], sizeof(float) * 4096);
}

/* clone copies parameters and statistics; the copy is independent */
static void test_clone(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SMALL, SAT_ACT_SMOOTHRELU, 4);
    float x[4 * 36], la[16], lb[16];
    int32_t y[4] = {0, 1, 2, 3};
    tu_fill_uniform(x, 4 * 36, 0, 1, 9);
    TU_CHECK(sat_model_train_backward(m, x, y, 4, 0, NULL, NULL)); /* moves running stats */
    sat_model *c = NULL;
    TU_CHECK(sat_model_clone(m, &c));
    tu_own_model(c);
    TU_CHECK(sat_model_forward(m, x, 4, la));
    TU_CHECK(sat_model_forward(c, x, 4, lb));
    assert_memory_equal(la, lb, sizeof la);
    sat_model_params(c)[0] += 1.0f;
    TU_CHECK(sat_model_forward(m, x, 4, lb));
    assert_memory_equal(la, lb, sizeof la);
    assert_string_equal(sat_model_spec(c), sat_model_spec(m));
}

typedef struct log_seen {
    int calls, level;
    char last[512];
} log_seen;

static void keep_log(void *user, int32_t level, const char *message) {
    log_seen *s = user;
    s->calls++;
    s->level = level;
    snprintf(s->last, sizeof s->last, "%s", message);
}

/* The log callback says what a model costs and which kernels run it, at SAT_LOG_INFO. */
/* Batches above max_batch run in chunks, with the bits of one call per chunk and of a model
 * whose max_batch holds them all. */
static void test_forward_chunks_large_batches(void **st) {
    (void)st;
    sat_context *ctx = tu_context(2, 3);
    sat_model *small = tu_model(ctx, SMALL, SAT_ACT_GELU, 4), *big = tu_model(ctx, SMALL, SAT_ACT_GELU, 16);
    memcpy(sat_model_params(big), sat_model_params(small), sizeof(float) * (size_t)sat_model_param_count(small));
    enum { N = 11 };
    float x[N * 36], whole[N * 4], one_call[N * 4], chunked[N * 4];
    tu_fill_uniform(x, N * 36, 0, 1, 12);
    TU_CHECK(sat_model_forward(small, x, N, chunked));
    TU_CHECK(sat_model_forward(big, x, N, one_call));
    for (int s = 0; s < N; s += 4) TU_CHECK(sat_model_forward(small, x + s * 36, N - s < 4 ? N - s : 4, whole + s * 4));
    assert_memory_equal(chunked, whole, sizeof whole);
    assert_memory_equal(chunked, one_call, sizeof whole);
}

static void test_log_model(void **st) {
    (void)st;
    static log_seen seen;
    memset(&seen, 0, sizeof seen);
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.log_fn = keep_log;
    o.log_user = &seen;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    tu_own_context(ctx);
    const sat_model *m = tu_model(ctx, SMALL, SAT_ACT_SILU, 4);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.level, SAT_LOG_INFO);
    char want[64];
    snprintf(want, sizeof want, "%lld parameters", (long long)sat_model_param_count(m));
    assert_non_null(strstr(seen.last, want));
    assert_non_null(strstr(seen.last, "MiB"));
    assert_non_null(strstr(seen.last, "GEMMs on "));
    assert_non_null(strstr(seen.last, sat__gemm_path()));
    /* below the level: nothing */
    sat_context *quiet = NULL;
    o.log_level = SAT_LOG_WARN;
    TU_CHECK(sat_context_create(&o, &quiet));
    tu_own_context(quiet);
    seen.calls = 0;
    tu_model(quiet, SMALL, SAT_ACT_SILU, 4);
    assert_int_equal(seen.calls, 0);
}

/* NULL options and options from sat_model_opts_init initialise alike, from the context's
 * seed; an explicit seed is used as it is. */
static void test_default_seed_is_the_contexts(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 42);
    sat_model_opts o;
    TU_CHECK(sat_model_opts_init(&o, sizeof o));
    assert_true(o.seed == SAT_SEED_CONTEXT);
    sat_model *a = NULL, *b = NULL, *c = NULL;
    TU_CHECK(sat_model_create(ctx, SMALL, NULL, &a));
    tu_own_model(a);
    TU_CHECK(sat_model_create(ctx, SMALL, &o, &b));
    tu_own_model(b);
    o.seed = 43;
    TU_CHECK(sat_model_create(ctx, SMALL, &o, &c));
    tu_own_model(c);
    const size_t bytes = sizeof(float) * (size_t)sat_model_param_count(a);
    assert_memory_equal(sat_model_params(a), sat_model_params(b), bytes);
    assert_memory_not_equal(sat_model_params(a), sat_model_params(c), bytes);
    sat_model_opts got;
    TU_CHECK(sat_model_opts_init(&got, sizeof got));
    TU_CHECK(sat_model_get_opts(b, &got));
    assert_true(got.seed == 42); /* the seed the model was initialised from */
}

static void test_status_strings(void **st) {
    (void)st;
    for (int32_t s = 0; s >= -11; s--) assert_string_not_equal(sat_status_string(s), "unknown status");
    assert_string_equal(sat_status_string(-12), "unknown status");
    assert_string_equal(sat_version_string(), SAT_VERSION_STRING);
    int32_t a, b, c;
    sat_version(&a, &b, &c);
    assert_int_equal(a, SAT_VERSION_MAJOR);
    assert_int_equal(b, SAT_VERSION_MINOR);
    assert_int_equal(c, SAT_VERSION_PATCH);
    int32_t act;
    assert_int_equal(sat_activation_from_name("Swish", &act), SAT_OK);
    assert_int_equal(act, SAT_ACT_SILU);
    for (int32_t i = 0; i < SAT_ACT_COUNT; i++) {
        TU_CHECK(sat_activation_from_name(sat_activation_name(i), &act));
        assert_int_equal(act, i);
    }
    assert_int_equal(sat_activation_from_name("mish", &act), SAT_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_presets_build),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_opts_sizes),
        cmocka_unit_test(test_no_allocation_in_steps),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_log_model),
        cmocka_unit_test(test_default_seed_is_the_contexts),
        cmocka_unit_test(test_forward_chunks_large_batches),
    };
    const struct CMUnitTest every_path[] = {
        cmocka_unit_test(test_thread_independence),
        cmocka_unit_test(test_thread_independence_resnet),
        cmocka_unit_test(test_new_ops_thread_and_chunk_independence),
    };
    const int failed = tu_run_group("test_model_api", tests, sizeof tests / sizeof tests[0]);
    return failed + tu_run_on_every_path("test_model_api", every_path, sizeof every_path / sizeof every_path[0]);
}
