/* test_exec.c - executions: a forward with a chosen batch-norm mode and a backward from the
 * caller's dL/dlogits give the same bits as the model's own cross-entropy calls; an
 * inference execution plans no backward memory; bad calls fail clearly and change nothing;
 * the model's own calls and executions mix; the model counts its executions. */
#include "testutil.h"

#include "graph/graph.h"
#include "kernels/kernels.h" /* which convolution path runs */

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Batch norm, a residual add read by two consumers, and a flatten (an aliased output):
 * every part of the planner is exercised. */
static const char *const SPEC = "input 3 8 8\n"
                                "conv 8 k=3 p=1\n"
                                "bn\n"
                                "act name=a\n"
                                "conv 8 k=3 p=1\n"
                                "bn\n"
                                "add a\n"
                                "act\n"
                                "maxpool k=2\n"
                                "flatten\n"
                                "dense 16\n"
                                "act\n"
                                "dense 5\n";

enum { N = 6, CLASSES = 5, IN = 3 * 8 * 8 };

static sat_exec *own_exec(sat_exec *e) { return tu_own(e, (tu_destroy_fn)sat_exec_destroy); }

static sat_exec *make_exec(sat_model *m, int32_t kind, int64_t max_batch) {
    sat_exec_opts o;
    TU_CHECK(sat_exec_opts_init(&o, sizeof o));
    o.kind = kind;
    o.max_batch = max_batch;
    sat_exec *e = NULL;
    TU_CHECK(sat_exec_create(m, &o, &e));
    return own_exec(e);
}

static void batch(float *x, int32_t *y, uint64_t seed) {
    tu_fill_uniform(x, (int64_t)N * IN, 0.0f, 1.0f, seed);
    for (int i = 0; i < N; i++) y[i] = (int32_t)((i * 3 + (int)seed) % CLASSES);
}

static void test_opts_defaults(void **st) {
    (void)st;
    sat_exec_opts o;
    memset(&o, 0x5a, sizeof o);
    TU_CHECK(sat_exec_opts_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.kind, SAT_EXEC_TRAIN);
    assert_int_equal(o.max_batch, 0);
    assert_int_equal(sat_exec_opts_init(NULL, sizeof o), SAT_E_INVALID_ARG);
    assert_int_equal(sat_exec_opts_init(&o, 2), SAT_E_INVALID_ARG);
    /* NULL options and initialised ones give the same execution */
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    sat_exec *a = NULL;
    TU_CHECK(sat_exec_create(m, NULL, &a));
    own_exec(a);
    sat_exec *b = make_exec(m, SAT_EXEC_TRAIN, 0);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->max_batch, 8);
    assert_int_equal(a->arena_size, b->arena_size);
}

/* sat_exec_backward's parameter gradients from cross-entropy dlogits are those of
 * sat_model_train_backward, bit for bit, and the training forward updates the running
 * statistics the same way. */
static void test_param_grads_match_train_backward(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    float *x = tu_alloc(sizeof(float) * N * IN);
    int32_t y[N];
    batch(x, y, 1);
    float *s0 = tu_alloc(sizeof(float) * ns), *s1 = tu_alloc(sizeof(float) * ns);
    float *g1 = tu_alloc(sizeof(float) * np), *g2 = tu_alloc(sizeof(float) * np);
    memcpy(s0, sat_model_state(m), sizeof(float) * ns);
    float loss;
    TU_CHECK(sat_model_train_backward(m, x, y, N, 0.0f, &loss, NULL));
    memcpy(g1, sat_model_grads(m), sizeof(float) * np);
    memcpy(s1, sat_model_state(m), sizeof(float) * ns);
    memcpy(sat_model_state(m), s0, sizeof(float) * ns);

    sat_exec *e = make_exec(m, SAT_EXEC_TRAIN, 0);
    float logits[N * CLASSES], dlogits[N * CLASSES];
    TU_CHECK(sat_exec_forward(e, x, N, SAT_BN_TRAIN, logits));
    assert_memory_equal(sat_model_state(m), s1, sizeof(float) * ns);
    double total = sat__softmax_ce(logits, y, N, CLASSES, 0.0f, NULL, dlogits, 1.0f / N);
    assert_true(fabs(total / N - loss) < 1e-6);
    for (int i = 0; i < np; i++) g2[i] = NAN; /* overwritten, not accumulated */
    TU_CHECK(sat_exec_backward(e, dlogits, NULL, g2));
    assert_memory_equal(g1, g2, sizeof(float) * np);
    /* into the model's own block, and again: a backward can be repeated */
    memset(sat_model_grads(m), 0, sizeof(float) * np);
    TU_CHECK(sat_exec_backward(e, dlogits, NULL, sat_model_grads(m)));
    assert_memory_equal(g1, sat_model_grads(m), sizeof(float) * np);
    /* the reduction is the caller's: dlogits scaled by n gives n times the gradient */
    for (int i = 0; i < N * CLASSES; i++) dlogits[i] *= (float)N;
    TU_CHECK(sat_exec_backward(e, dlogits, NULL, g2));
    for (int i = 0; i < np; i++) assert_true(fabsf(g2[i] - N * g1[i]) <= 1e-4f * (1.0f + fabsf(N * g1[i])));
}

/* An input-gradient execution gives sat_model_input_gradient's gradient, bit for bit, and
 * the loss of a margin objective differs from cross-entropy's: any dlogits works. */
static void test_input_grad_matches_model(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_GELU, 8);
    float *x = tu_alloc(sizeof(float) * N * IN), *g1 = tu_alloc(sizeof(float) * N * IN),
          *g2 = tu_alloc(sizeof(float) * N * IN);
    int32_t y[N];
    batch(x, y, 2);
    float l1[N * CLASSES], l2[N * CLASSES], dlogits[N * CLASSES];
    TU_CHECK(sat_model_input_gradient(m, x, y, N, NULL, g1, l1));
    sat_exec *e = make_exec(m, SAT_EXEC_INPUT_GRAD, 0);
    TU_CHECK(sat_exec_forward(e, x, N, SAT_BN_INFERENCE, l2));
    assert_memory_equal(l1, l2, sizeof l1);
    sat__softmax_ce(l2, y, N, CLASSES, 0.0f, NULL, dlogits, 1.0f);
    TU_CHECK(sat_exec_backward(e, dlogits, g2, NULL));
    assert_memory_equal(g1, g2, sizeof(float) * N * IN);
    /* a TRAIN execution asked for dx only uses the same (attack) backward; its batch norms
     * stay layers of their own (a parameter gradient may follow), not folded into the
     * convolutions, so the bits differ by rounding only */
    sat_exec *t = make_exec(m, SAT_EXEC_TRAIN, 0);
    TU_CHECK(sat_exec_forward(t, x, N, SAT_BN_INFERENCE, NULL));
    memset(g2, 0, sizeof(float) * N * IN);
    TU_CHECK(sat_exec_backward(t, dlogits, g2, NULL));
    assert_true(tu_max_abs_diff(g1, g2, N * IN) <= 1e-5f * tu_max_abs(g1, N * IN));
    assert_true(tu_max_abs_diff(g1, g2, N * IN) > 0.0f); /* the batch norm was folded */
}

/* Inference executions give sat_model_forward's logits for every batch-norm mode that
 * does not write the model, and plan less memory than an input-gradient execution. */
static void test_inference_plans_no_backward(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    float *x = tu_alloc(sizeof(float) * N * IN);
    int32_t y[N];
    batch(x, y, 3);
    float l1[N * CLASSES], l2[N * CLASSES];
    TU_CHECK(sat_model_forward(m, x, N, l1));
    sat_exec *inf = make_exec(m, SAT_EXEC_INFERENCE, 0);
    sat_exec *ig = make_exec(m, SAT_EXEC_INPUT_GRAD, 0);
    sat_exec *tr = make_exec(m, SAT_EXEC_TRAIN, 0);
    TU_CHECK(sat_exec_forward(inf, x, N, SAT_BN_INFERENCE, l2));
    assert_memory_equal(l1, l2, sizeof l1);
    TU_CHECK(sat_exec_forward(inf, x, N, SAT_BN_BATCH, l2));
    TU_CHECK(sat_exec_forward(tr, x, N, SAT_BN_BATCH, l1));
    assert_memory_equal(l1, l2, sizeof l1);
    assert_true(inf->arena_size < ig->arena_size);
    assert_int_equal(ig->arena_size, tr->arena_size);
    for (int i = 0; i < m->num_nodes; i++) assert_int_equal(inf->a_grad[i], -1);
    assert_int_equal(inf->a_dlogits, -1);
    /* no output outlives its readers: the arena is smaller than all outputs side by side */
    int64_t all = 0;
    for (int i = 1; i < m->num_nodes; i++)
        if (!m->nodes[i].alias) all += 8 * m->nodes[i].size;
    assert_true(inf->arena_size < all);
    /* a larger resnet: the saving grows with depth */
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 16, 16, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *r = tu_model(ctx, spec, SAT_ACT_SILU, 4);
    sat_exec *ri = make_exec(r, SAT_EXEC_INFERENCE, 0), *rg = make_exec(r, SAT_EXEC_INPUT_GRAD, 0);
    assert_true(ri->arena_size * 4 < rg->arena_size);
    /* and its workspace is the forward's alone: no weight-gradient partial sums or tables */
    int64_t fwd_ws = 1;
    for (int i = 0; i < r->num_nodes; i++) {
        const int64_t w = sat__ops[r->nodes[i].op].workspace(&r->nodes[i], ri->max_batch, ri->ws_lanes, 0);
        if (w > fwd_ws) fwd_ws = w;
    }
    assert_int_equal(ri->ws_size, fwd_ws);
    /* The direct AVX-512 convolutions' weight gradient needs partial sums and tables; on
     * the im2col path, which weight gradients take on a CPU without AVX-512, backward and
     * forward need the same column buffer. */
    if (sat__conv_direct_available() == SAT_SIMD_AVX512)
        assert_true(ri->ws_size < rg->ws_size);
    else
        assert_true(ri->ws_size <= rg->ws_size);
    float *rx = tu_alloc(sizeof(float) * 4 * 3 * 256);
    float a[40], b[40];
    tu_fill_uniform(rx, 4 * 3 * 256, 0, 1, 9);
    TU_CHECK(sat_model_forward(r, rx, 4, a));
    TU_CHECK(sat_exec_forward(ri, rx, 4, SAT_BN_INFERENCE, b));
    assert_memory_equal(a, b, sizeof a);
}

#define expect_error(call, code, e, needle)                                                        \
    do {                                                                                           \
        assert_int_equal((call), (code));                                                          \
        if (!strstr(sat_exec_last_error(e), (needle)))                                             \
            fail_msg("message '%s' lacks '%s'", sat_exec_last_error(e), (needle));                 \
    } while (0)

static void test_errors(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    float *x = tu_alloc(sizeof(float) * 9 * IN), *dx = tu_alloc(sizeof(float) * 9 * IN);
    float *pg = tu_alloc(sizeof(float) * sat_model_param_count(m));
    float dl[9 * CLASSES] = {0}, logits[9 * CLASSES];
    int32_t y[N];
    batch(x, y, 4);
    dl[0] = 1.0f;

    /* create */
    sat_exec *e = (sat_exec *)0x1;
    assert_int_equal(sat_exec_create(NULL, NULL, &e), SAT_E_INVALID_ARG);
    assert_null(e);
    assert_non_null(strstr(sat_last_error(), "sat_exec_create"));
    assert_int_equal(sat_exec_create(m, NULL, NULL), SAT_E_INVALID_ARG);
    sat_exec_opts o;
    sat_exec_opts_init(&o, sizeof o);
    o.kind = 3;
    assert_int_equal(sat_exec_create(m, &o, &e), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "unknown kind 3"));
    o.kind = SAT_EXEC_TRAIN;
    o.max_batch = -1;
    assert_int_equal(sat_exec_create(m, &o, &e), SAT_E_INVALID_ARG);
    o.max_batch = 65537;
    assert_int_equal(sat_exec_create(m, &o, &e), SAT_E_INVALID_ARG);
    assert_int_equal(m->live_children, 0);

    /* NULL handles never crash */
    sat_exec_destroy(NULL);
    assert_string_equal(sat_exec_last_error(NULL), "");
    assert_int_equal(sat_exec_forward(NULL, x, 1, SAT_BN_INFERENCE, logits), SAT_E_INVALID_ARG);
    assert_int_equal(sat_exec_backward(NULL, dl, dx, NULL), SAT_E_INVALID_ARG);
    assert_null(sat_model_exec(NULL));

    sat_exec *inf = make_exec(m, SAT_EXEC_INFERENCE, 0);
    sat_exec *ig = make_exec(m, SAT_EXEC_INPUT_GRAD, 4);
    sat_exec *tr = make_exec(m, SAT_EXEC_TRAIN, 0);

    /* forward */
    expect_error(sat_exec_forward(tr, NULL, 1, SAT_BN_INFERENCE, logits), SAT_E_INVALID_ARG, tr,
                 "sat_exec_forward: x is NULL");
    expect_error(sat_exec_forward(tr, x, 9, SAT_BN_INFERENCE, logits), SAT_E_SHAPE, tr, "outside 1..8");
    expect_error(sat_exec_forward(ig, x, 5, SAT_BN_INFERENCE, logits), SAT_E_SHAPE, ig, "outside 1..4");
    expect_error(sat_exec_forward(tr, x, 0, SAT_BN_INFERENCE, logits), SAT_E_SHAPE, tr, "sat_exec_forward");
    expect_error(sat_exec_forward(tr, x, 1, 3, logits), SAT_E_INVALID_ARG, tr, "bn_mode 3");
    float *s0 = tu_alloc(sizeof(float) * sat_model_state_count(m));
    memcpy(s0, sat_model_state(m), sizeof(float) * sat_model_state_count(m));
    expect_error(sat_exec_forward(inf, x, 2, SAT_BN_TRAIN, logits), SAT_E_STATE, inf, "SAT_EXEC_TRAIN");
    expect_error(sat_exec_forward(ig, x, 2, SAT_BN_TRAIN, logits), SAT_E_STATE, ig, "SAT_EXEC_TRAIN");
    assert_memory_equal(s0, sat_model_state(m), sizeof(float) * sat_model_state_count(m));
    x[5] = NAN;
    expect_error(sat_exec_forward(tr, x, 1, SAT_BN_INFERENCE, logits), SAT_E_NUMERIC, tr, "NaN");
    x[5] = 0.5f;

    /* backward */
    assert_int_equal(sat_exec_last_batch(tr), 0);
    assert_int_equal(sat_exec_last_batch(NULL), 0);
    expect_error(sat_exec_backward(tr, dl, dx, NULL), SAT_E_STATE, tr, "no forward");
    expect_error(sat_exec_backward(ig, dl, dx, NULL), SAT_E_STATE, ig, "no forward");
    TU_CHECK(sat_exec_forward(inf, x, 2, SAT_BN_INFERENCE, logits));
    expect_error(sat_exec_backward(inf, dl, dx, NULL), SAT_E_STATE, inf, "SAT_EXEC_INFERENCE");
    TU_CHECK(sat_exec_forward(ig, x, 2, SAT_BN_INFERENCE, logits));
    assert_int_equal(sat_exec_last_batch(ig), 2);
    expect_error(sat_exec_backward(ig, dl, NULL, pg), SAT_E_STATE, ig, "parameter gradients need");
    expect_error(sat_exec_backward(ig, dl, NULL, NULL), SAT_E_INVALID_ARG, ig, "both NULL");
    expect_error(sat_exec_backward(ig, NULL, dx, NULL), SAT_E_INVALID_ARG, ig, "dlogits is NULL");
    dl[1] = INFINITY;
    dx[0] = 42.0f;
    expect_error(sat_exec_backward(ig, dl, dx, NULL), SAT_E_NUMERIC, ig, "dlogits contains");
    assert_true(dx[0] == 42.0f);
    dl[1] = 0.0f;
    TU_CHECK(sat_exec_backward(ig, dl, dx, NULL));
    /* a rejected forward changes nothing: the backward still runs from the last forward */
    float *dx2 = tu_alloc(sizeof(float) * 9 * IN);
    expect_error(sat_exec_forward(ig, x, 5, SAT_BN_INFERENCE, logits), SAT_E_SHAPE, ig, "outside");
    assert_int_equal(sat_exec_last_batch(ig), 2);
    TU_CHECK(sat_exec_backward(ig, dl, dx2, NULL));
    assert_memory_equal(dx, dx2, sizeof(float) * 2 * IN);
    /* a failed call leaves the execution usable */
    TU_CHECK(sat_exec_forward(tr, x, 3, SAT_BN_BATCH, logits));
    TU_CHECK(sat_exec_backward(tr, dl, dx, pg));
}

/* The model's own calls and executions can be mixed: each keeps its own last forward. */
static void test_mixed_use(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    float *x = tu_alloc(sizeof(float) * N * IN), *x2 = tu_alloc(sizeof(float) * N * IN);
    float *g1 = tu_alloc(sizeof(float) * N * IN), *g2 = tu_alloc(sizeof(float) * N * IN);
    int32_t y[N], y2[N];
    batch(x, y, 5);
    batch(x2, y2, 6);
    float logits[N * CLASSES], dl[N * CLASSES];
    /* a model used only through executions holds only its weights */
    assert_null(m->own_exec);
    sat_exec *e = make_exec(m, SAT_EXEC_INPUT_GRAD, 0);
    assert_null(m->own_exec);
    TU_CHECK(sat_model_input_gradient(m, x, y, N, NULL, g1, NULL));
    assert_non_null(m->own_exec);

    TU_CHECK(sat_exec_forward(e, x, N, SAT_BN_INFERENCE, logits));
    sat__softmax_ce(logits, y, N, CLASSES, 0.0f, NULL, dl, 1.0f);
    /* the model's own calls in between do not disturb the execution's forward */
    TU_CHECK(sat_model_input_gradient(m, x2, y2, N, NULL, g2, NULL));
    TU_CHECK(sat_model_forward(m, x2, 3, logits));
    TU_CHECK(sat_exec_backward(e, dl, g2, NULL));
    assert_memory_equal(g1, g2, sizeof(float) * N * IN);
    /* a training step between them changes the running statistics an inference-mode
     * backward reads: a backward reads the model as it is now */
    float loss;
    TU_CHECK(sat_model_train_backward(m, x2, y2, N, 0.0f, &loss, NULL));
    TU_CHECK(sat_exec_backward(e, dl, g2, NULL));
    assert_true(tu_max_abs_diff(g1, g2, N * IN) > 0.0f);
    TU_CHECK(sat_model_input_gradient(m, x, y, N, NULL, g1, logits));
    sat__softmax_ce(logits, y, N, CLASSES, 0.0f, NULL, dl, 1.0f);

    /* the model's own execution: borrowed, the same each time, not destroyed by destroy */
    sat_exec *own = sat_model_exec(m);
    assert_ptr_equal(own, m->own_exec);
    assert_ptr_equal(own, sat_model_exec(m));
    sat_exec_destroy(own);
    assert_ptr_equal(own, sat_model_exec(m));
    TU_CHECK(sat_exec_forward(own, x, N, SAT_BN_INFERENCE, logits));
    TU_CHECK(sat_exec_backward(own, dl, g2, NULL));
    assert_true(tu_max_abs_diff(g1, g2, N * IN) <= 1e-5f * tu_max_abs(g1, N * IN)); /* see above */
    /* its errors are the model's */
    assert_int_equal(sat_exec_forward(own, x, 99, SAT_BN_INFERENCE, logits), SAT_E_SHAPE);
    assert_ptr_equal(sat_exec_last_error(own), sat_model_last_error(m));
    assert_non_null(strstr(sat_model_last_error(m), "sat_exec_forward"));
    /* and the model's own calls replace its forward */
    TU_CHECK(sat_exec_forward(own, x, N, SAT_BN_INFERENCE, logits));
    TU_CHECK(sat_model_forward(m, x2, 2, logits));
    assert_int_equal(sat_exec_last_batch(own), 2);
}

/* Executions are children of their model: counted while they live, not the model's own. */
static void test_live_children(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 8);
    assert_int_equal(m->live_children, 0);
    assert_non_null(sat_model_exec(m));
    assert_int_equal(m->live_children, 0);
    sat_exec *a = make_exec(m, SAT_EXEC_INFERENCE, 0);
    sat_exec *b = make_exec(m, SAT_EXEC_TRAIN, 2);
    assert_int_equal(m->live_children, 2);
    tu_release(a);
    assert_int_equal(m->live_children, 1);
    /* the model refuses to go while an execution lives, and stays usable */
    assert_int_equal(sat_model_destroy_checked(m), SAT_E_STATE);
    assert_non_null(strstr(sat_model_last_error(m), "executions"));
    float x[IN] = {0}, logits[CLASSES];
    TU_CHECK(sat_exec_forward(b, x, 1, SAT_BN_INFERENCE, logits));
    tu_release(b);
    assert_int_equal(m->live_children, 0);
    /* the model's own execution does not count */
    tu_release(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_defaults),
        cmocka_unit_test(test_param_grads_match_train_backward),
        cmocka_unit_test(test_input_grad_matches_model),
        cmocka_unit_test(test_inference_plans_no_backward),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_mixed_use),
        cmocka_unit_test(test_live_children),
    };
    return tu_run_group("exec", tests, sizeof tests / sizeof tests[0]);
}
