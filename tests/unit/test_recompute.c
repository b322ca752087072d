/* Activation checkpointing (sat_model_opts.activation_checkpointing, recompute.c): the same
 * bits as without it in every pass that has a backward (training with batch statistics and
 * dropout, attacks with folded batch norm, input gradients with batch statistics, a whole
 * adversarial training step), segments that end only where no edge crosses, an arena that
 * shrinks, and the switch after planning. */
#include "testutil.h"

#include "graph/graph.h" /* the segments and the arena's size */

#include <math.h>
#include <string.h>

enum { NB = 6 };

/* A residual network with batch norm (SiLU recomputing its input, ReLU reading its output,
 * a folded and an unfolded batch norm, a projection shortcut), stochastic depth on a
 * branch and dropout before the classifier. */
static const char *const SPEC_RES =
    "input 3 12 12\n"
    "conv 8 k=3 p=1 bias=0\n"
    "bn\n"
    "act name=b0\n"
    "conv 8 k=3 p=1 bias=0\n"
    "bn\n"
    "act relu\n"
    "conv 8 k=3 p=1 bias=0\n"
    "bn\n"
    "dropout p=0.5 per=example\n"
    "add b0\n"
    "act name=b1\n"
    "conv 16 k=3 s=2 p=1 bias=0\n"
    "bn\n"
    "act\n"
    "conv 16 k=3 p=1 bias=0\n"
    "bn name=main\n"
    "conv 16 k=1 s=2 bias=0 from=b1\n"
    "bn\n"
    "add main\n"
    "act\n"
    "gap\n"
    "dropout p=0.3\n"
    "dense 5\n";

/* A chain: every node is a cut; max pooling, flatten (an alias, never a cut), dense. (With
 * ReLU, whose backward reads its output, it keeps only cuts anyway: nothing to save.) */
static const char *const SPEC_CHAIN =
    "input 2 10 10\n"
    "conv 6 k=3 p=1\n"
    "act\n"
    "conv 6 k=3 p=1\n"
    "act\n"
    "conv 6 k=3 p=1\n"
    "act\n"
    "maxpool k=2\n"
    "conv 8 k=3 p=1\n"
    "act\n"
    "conv 8 k=3 p=1\n"
    "act\n"
    "maxpool k=2\n"
    "flatten\n"
    "dense 12\n"
    "act\n"
    "dense 5\n";

/* Squeeze-excitation blocks: a gate computed from a side branch, multiplied back (two
 * readers of one output across several nodes), in residual blocks. */
static const char *const SPEC_SE =
    "input 3 8 8\n"
    "conv 8 k=3 p=1 bias=0\n"
    "bn\n"
    "act name=s0\n"
    "conv 8 k=3 p=1 g=8 bias=0\n"
    "bn\n"
    "act name=d0\n"
    "gap\n"
    "dense 4\n"
    "act\n"
    "dense 8\n"
    "sigmoid name=gate0\n"
    "mul gate0 from=d0\n"
    "conv 8 k=1 bias=0\n"
    "bn\n"
    "add s0\n"
    "act name=s1\n"
    "conv 8 k=3 p=1 g=8 bias=0\n"
    "bn\n"
    "act name=d1\n"
    "gap\n"
    "dense 4\n"
    "act\n"
    "dense 8\n"
    "sigmoid name=gate1\n"
    "mul gate1 from=d1\n"
    "conv 8 k=1 bias=0\n"
    "bn\n"
    "add s1\n"
    "act\n"
    "gap\n"
    "dense 5\n";

static sat_model *clone_with(sat_model *base, int32_t checkpointing) {
    sat_model *m = NULL;
    TU_CHECK(sat_model_clone(base, &m));
    tu_own_model(m);
    TU_CHECK(sat_model_set_activation_checkpointing(m, checkpointing));
    return m;
}

static int64_t arena_of(sat_exec *e) { return e->arena_size; }

/* Executions of one kind of a model without checkpointing (a) and one with it (b). */
static void exec_pair(sat_model *a, sat_model *b, int32_t kind, sat_exec **ea, sat_exec **eb) {
    sat_exec_opts o;
    TU_CHECK(sat_exec_opts_init(&o, sizeof o));
    o.kind = kind;
    TU_CHECK(sat_exec_create(a, &o, ea));
    TU_CHECK(sat_exec_create(b, &o, eb));
}

/* Every segment end c is a cut: no node after c reads a node before c. */
static void check_segments(const sat_exec *e) {
    const sat_model *m = e->m;
    const int N = m->num_nodes;
    int ends = 0;
    for (int c = 1; c < N - 1; c++) {
        if (e->segment[c + 1] != c + 1) continue;
        ends++;
        assert_false(m->nodes[c].alias);
        for (int k = c + 1; k < N; k++) {
            assert_true(m->nodes[k].in0 >= c);
            assert_true(m->nodes[k].in1 < 0 || m->nodes[k].in1 >= c);
        }
    }
    assert_true(ends >= 1); /* something is recomputed at all */
}

/* One training-mode pass and its backward on a SAT_EXEC_TRAIN execution of each model:
 * logits, input and parameter gradients, running statistics. Then the model's own attack
 * pass (folded batch norm) and an input-gradient execution with batch statistics. */
static void compare_spec(const char *spec, int32_t act) {
    sat_context *ctx = tu_context(2, 0);
    sat_model *base = tu_model(ctx, spec, act, NB);
    /* statistics away from their initial values, so the folded passes differ from plain ones */
    float *st = sat_model_state(base);
    tu_fill_uniform(st, sat_model_state_count(base), 0.5f, 1.5f, 3);
    sat_model *a = clone_with(base, 0), *b = clone_with(base, 1);
    int32_t c = 0, h = 0, w = 0, cl = 0;
    TU_CHECK(sat_model_shape(a, &c, &h, &w, &cl));
    const int64_t in = (int64_t)c * h * w, np = sat_model_param_count(a), ns = sat_model_state_count(a);
    float *x = tu_alloc(sizeof(float) * NB * in), *dxa = tu_alloc(sizeof(float) * NB * in),
          *dxb = tu_alloc(sizeof(float) * NB * in), *ga = tu_alloc(sizeof(float) * np),
          *gb = tu_alloc(sizeof(float) * np), *la = tu_alloc(sizeof(float) * NB * cl),
          *lb = tu_alloc(sizeof(float) * NB * cl), *dl = tu_alloc(sizeof(float) * NB * cl);
    int32_t y[NB];
    for (int i = 0; i < NB; i++) y[i] = i % cl;
    tu_fill_uniform(x, NB * in, 0.0f, 1.0f, 7);
    tu_fill_uniform(dl, NB * cl, -1.0f, 1.0f, 8);

    sat_exec *ea = NULL, *eb = NULL;
    exec_pair(a, b, SAT_EXEC_TRAIN, &ea, &eb);
    assert_int_equal(ea->recompute, 0);
    assert_int_equal(eb->recompute, 1); /* these graphs are large enough for it to pay */
    check_segments(eb);
    print_message("arena without / with checkpointing: %lld / %lld floats\n", (long long)arena_of(ea),
                  (long long)arena_of(eb));
    assert_true(arena_of(eb) < arena_of(ea));
    for (int step = 0; step < 2; step++) { /* a second step: new dropout masks, same on both */
        TU_CHECK(sat_exec_forward(ea, x, NB, SAT_BN_TRAIN, la));
        TU_CHECK(sat_exec_forward(eb, x, NB, SAT_BN_TRAIN, lb));
        assert_memory_equal(la, lb, sizeof(float) * NB * cl);
        TU_CHECK(sat_exec_backward(ea, dl, dxa, ga));
        TU_CHECK(sat_exec_backward(eb, dl, dxb, gb));
        assert_memory_equal(dxa, dxb, sizeof(float) * NB * in);
        assert_memory_equal(ga, gb, sizeof(float) * np);
        /* a backward repeated from the same forward: the region now holds the first segment */
        memset(dxb, 0, sizeof(float) * NB * in);
        TU_CHECK(sat_exec_backward(eb, dl, dxb, gb));
        assert_memory_equal(dxa, dxb, sizeof(float) * NB * in);
        assert_memory_equal(ga, gb, sizeof(float) * np);
        assert_memory_equal(sat_model_state(a), sat_model_state(b), sizeof(float) * ns);
        assert_true(tu_max_abs(dxa, NB * in) > 0.0f);
    }
    sat_exec_destroy(ea);
    sat_exec_destroy(eb);

    /* the attack plan on the model's own execution (batch norm folded where it can be) */
    TU_CHECK(sat_model_input_gradient(a, x, y, NB, NULL, dxa, la));
    TU_CHECK(sat_model_input_gradient(b, x, y, NB, NULL, dxb, lb));
    assert_int_equal(b->own_exec->recompute, 1);
    assert_memory_equal(la, lb, sizeof(float) * NB * cl);
    assert_memory_equal(dxa, dxb, sizeof(float) * NB * in);

    /* an input-gradient execution with batch statistics (running ones untouched) */
    exec_pair(a, b, SAT_EXEC_INPUT_GRAD, &ea, &eb);
    TU_CHECK(sat_exec_forward(ea, x, NB, SAT_BN_BATCH, la));
    TU_CHECK(sat_exec_forward(eb, x, NB, SAT_BN_BATCH, lb));
    TU_CHECK(sat_exec_backward(ea, dl, dxa, NULL));
    TU_CHECK(sat_exec_backward(eb, dl, dxb, NULL));
    assert_memory_equal(la, lb, sizeof(float) * NB * cl);
    assert_memory_equal(dxa, dxb, sizeof(float) * NB * in);
    assert_memory_equal(sat_model_state(a), sat_model_state(b), sizeof(float) * ns);
    sat_exec_destroy(ea);
    sat_exec_destroy(eb);
    tu_free(x), tu_free(dxa), tu_free(dxb), tu_free(ga), tu_free(gb), tu_free(la), tu_free(lb), tu_free(dl);
}

static void test_same_bits_residual(void **st) {
    (void)st;
    compare_spec(SPEC_RES, SAT_ACT_SILU);
    compare_spec(SPEC_RES, SAT_ACT_RELU);
}

static void test_same_bits_chain(void **st) {
    (void)st;
    compare_spec(SPEC_CHAIN, SAT_ACT_SILU);
    compare_spec(SPEC_CHAIN, SAT_ACT_ELU);
}

static void test_same_bits_squeeze_excitation(void **st) {
    (void)st;
    compare_spec(SPEC_SE, SAT_ACT_GELU);
}

/* Two PGD adversarial training steps through the trainer: parameters, statistics and the
 * reported figures are the same with and without checkpointing. */
static void test_same_training_step(void **st) {
    (void)st;
    sat_context *ctx = tu_context(2, 0);
    sat_model *base = tu_model(ctx, SPEC_RES, SAT_ACT_SILU, NB);
    sat_model *m[2] = {clone_with(base, 0), clone_with(base, 1)};
    const int64_t in = 3 * 12 * 12, np = sat_model_param_count(base), ns = sat_model_state_count(base);
    float *x = tu_alloc(sizeof(float) * NB * in);
    int32_t y[NB] = {0, 1, 2, 3, 4, 0};
    tu_fill_uniform(x, NB * in, 0.0f, 1.0f, 9);
    sat_step_stats s[2];
    for (int k = 0; k < 2; k++) {
        sat_optimizer_opts oo;
        TU_CHECK(sat_optimizer_opts_init(&oo, sizeof oo));
        oo.lr = 0.05f;
        oo.momentum = 0.9f;
        sat_optimizer *opt = NULL;
        TU_CHECK(sat_optimizer_create(m[k], &oo, &opt));
        tu_own_optimizer(opt);
        sat_trainer_opts to;
        TU_CHECK(sat_trainer_opts_init(&to, sizeof to));
        to.method = SAT_TRAIN_PGD;
        to.steps = 3;
        sat_trainer *t = NULL;
        TU_CHECK(sat_trainer_create(m[k], opt, &to, &t));
        tu_own_trainer(t);
        s[k].struct_size = sizeof s[k];
        for (int step = 0; step < 2; step++) TU_CHECK(sat_train_step(t, x, y, NB, &s[k]));
    }
    assert_memory_equal(sat_model_params(m[0]), sat_model_params(m[1]), sizeof(float) * np);
    assert_memory_equal(sat_model_state(m[0]), sat_model_state(m[1]), sizeof(float) * ns);
    assert_memory_equal(&s[0], &s[1], sizeof s[0]);
    tu_free(x);
}

/* resnet20 at batch 128: the plan keeps about the block outputs and one segment, well
 * under the plain arena (planning only; the arena's pages are never touched). */
static void test_resnet20_arena(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 32, 32, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *base = tu_model(ctx, spec, SAT_ACT_SILU, 128);
    sat_model *b = clone_with(base, 1);
    sat_exec *ea = NULL, *eb = NULL;
    exec_pair(base, b, SAT_EXEC_TRAIN, &ea, &eb);
    check_segments(eb);
    const double mib_a = arena_of(ea) * 4.0 / (1 << 20), mib_b = arena_of(eb) * 4.0 / (1 << 20);
    print_message("resnet20, batch 128: arena %.1f MiB without checkpointing, %.1f MiB with\n", mib_a, mib_b);
    assert_true(mib_b < 0.6 * mib_a);
    sat_exec_destroy(ea);
    sat_exec_destroy(eb);
}

/* A graph too small for checkpointing to save memory (its short-lived outputs share the
 * gradients' region anyway) is planned without it. */
static void test_small_graph_plain(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    const char *spec = "input 1 4 4\ndense 6\nact\ndense 3\n";
    sat_model *a = tu_model(ctx, spec, SAT_ACT_SILU, NB);
    sat_model *b = clone_with(a, 1);
    sat_exec *ea = NULL, *eb = NULL;
    exec_pair(a, b, SAT_EXEC_TRAIN, &ea, &eb);
    assert_int_equal(eb->recompute_asked, 1);
    assert_int_equal(eb->recompute, 0);
    assert_int_equal(arena_of(ea), arena_of(eb));
    sat_exec_destroy(ea);
    sat_exec_destroy(eb);
}

/* Switching after a forward: the pass's backward still runs on its old plan, the next
 * forward plans again; bad values are refused and change nothing. */
static void test_switch_after_planning(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *a = tu_model(ctx, SPEC_RES, SAT_ACT_SILU, NB);
    sat_model *ref = clone_with(a, 0);
    const int64_t in = 3 * 12 * 12;
    float x[NB * in], g0[NB * in], g1[NB * in];
    int32_t y[NB] = {0, 1, 2, 3, 4, 0};
    tu_fill_uniform(x, NB * in, 0.0f, 1.0f, 11);
    TU_CHECK(sat_model_input_gradient(ref, x, y, NB, NULL, g0, NULL));

    float dl[NB * 5];
    tu_fill_uniform(dl, NB * 5, -1.0f, 1.0f, 12);
    sat_exec *own = sat_model_exec(a);
    assert_non_null(own);
    TU_CHECK(sat_exec_forward(own, x, NB, SAT_BN_INFERENCE, NULL));
    const int64_t plain = arena_of(own);
    TU_CHECK(sat_model_set_activation_checkpointing(a, 1));
    TU_CHECK(sat_exec_backward(own, dl, g1, NULL)); /* the pass before the switch */
    assert_int_equal(own->recompute, 0);
    TU_CHECK(sat_model_input_gradient(a, x, y, NB, NULL, g1, NULL));
    assert_int_equal(own->recompute, 1);
    assert_true(arena_of(own) < plain);
    assert_memory_equal(g0, g1, sizeof g0);
    sat_model_opts mo;
    TU_CHECK(sat_model_opts_init(&mo, sizeof mo));
    assert_int_equal(mo.activation_checkpointing, 0);
    TU_CHECK(sat_model_get_opts(a, &mo));
    assert_int_equal(mo.activation_checkpointing, 1);

    assert_int_equal(sat_model_set_activation_checkpointing(a, 2), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(a), "not 0 or 1"));
    assert_int_equal(sat_model_set_activation_checkpointing(NULL, 1), SAT_E_INVALID_ARG);
    TU_CHECK(sat_model_get_opts(a, &mo));
    assert_int_equal(mo.activation_checkpointing, 1);

    TU_CHECK(sat_model_set_activation_checkpointing(a, 0));
    TU_CHECK(sat_model_input_gradient(a, x, y, NB, NULL, g1, NULL));
    assert_int_equal(own->recompute, 0);
    assert_memory_equal(g0, g1, sizeof g0);

    /* the option at creation, and a bad one */
    mo.activation_checkpointing = 3;
    sat_model *bad = NULL;
    assert_int_equal(sat_model_create(ctx, SPEC_RES, &mo, &bad), SAT_E_INVALID_ARG);
    assert_null(bad);
    assert_non_null(strstr(sat_last_error(), "activation_checkpointing"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_residual),
        cmocka_unit_test(test_same_bits_chain),
        cmocka_unit_test(test_same_bits_squeeze_excitation),
        cmocka_unit_test(test_same_training_step),
        cmocka_unit_test(test_resnet20_arena),
        cmocka_unit_test(test_small_graph_plain),
        cmocka_unit_test(test_switch_after_planning),
    };
    return tu_run_on_every_path("test_recompute", tests, sizeof tests / sizeof tests[0]);
}
