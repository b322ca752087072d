/* test_model_grad.c - the executor's gradients against finite differences: the input
 * gradient of the attack plan and the parameter gradients of the train plan, on models
 * that cover every op (conv with stride and padding, batch norm in both modes, pooling,
 * residual adds, normalisation) and every activation. */
#include "testutil.h"

#include "graph/graph.h" /* which batch norms fold */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB 3

static const char *const SPEC_CONV =
    "input 2 7 7\n"
    "normalize mean=0.4,0.6 std=0.3,0.5\n"
    "conv 4 k=3 s=2 p=1\n"
    "act\n"
    "conv 3 k=1\n"
    "bn\n"
    "act name=a\n"
    "conv 3 k=3 p=1 bias=0\n"
    "add a\n"
    "avgpool k=2\n"
    "act\n"
    "maxpool k=2\n"
    "flatten\n"
    "dense 5\n"
    "bn\n"
    "act\n"
    "dense 4\n";

static const char *const SPEC_RES =
    "input 3 8 8\n"
    "conv 4 k=3 p=1 bias=0\n"
    "bn\n"
    "act name=b0\n"
    "conv 6 k=1 s=2 bias=0 from=b0\n"
    "bn name=sc\n"
    "conv 6 k=3 s=2 p=1 bias=0 from=b0\n"
    "bn\n"
    "act\n"
    "conv 6 k=3 p=1 bias=0\n"
    "bn\n"
    "add sc\n"
    "act\n"
    "gap\n"
    "dense 3\n";

/* The ops of the ImageNet families: the ResNet stem's padded max-pooling, a
 * squeeze-excitation gate (sigmoid, channel-wise mul), depthwise and grouped convolutions,
 * a sigmoid layer. */
static const char *const SPEC_STEM =
    "input 3 9 9\n"
    "conv 6 k=3 p=1 bias=0\n"
    "bn\n"
    "act\n"
    "maxpool k=3 s=2 p=1 name=stem\n"
    "gap\n"
    "dense 2\n"
    "act\n"
    "conv 6 k=1\n"
    "sigmoid name=gate\n"
    "mul gate from=stem\n"
    "conv 6 k=3 s=2 p=1 g=6\n"
    "conv 4 k=3 p=1 g=2 bias=0\n"
    "sigmoid name=s\n"
    "conv 4 k=1 s=2 from=stem\n"
    "mul s\n"
    "dense 3\n";

/* Sum of per-example CE losses in double, evaluated through the attack plan. */
static double loss_at(sat_model *m, const float *x, const int32_t *y, int64_t n) {
    float losses[NB];
    TU_CHECK(sat_model_input_gradient(m, x, y, n, losses, NULL, NULL));
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += losses[i];
    return s;
}

/* Checks dL/dx of the attack plan at a few coordinates. */
static void check_input_grad(sat_model *m, int64_t in_size, double tol) {
    int32_t classes;
    sat_model_shape(m, NULL, NULL, NULL, &classes);
    float *x = tu_alloc(sizeof(float) * NB * in_size), *g = tu_alloc(sizeof(float) * NB * in_size);
    int32_t y[NB] = {0, 1 % classes, 2 % classes};
    tu_fill_uniform(x, NB * in_size, 0.1f, 0.9f, 7);
    TU_CHECK(sat_model_input_gradient(m, x, y, NB, NULL, g, NULL));
    const float h = 2e-3f;
    int bad = 0;
    for (int64_t t = 0; t < 24; t++) {
        int64_t i = (t * 7919) % (NB * in_size);
        float keep = x[i];
        x[i] = keep + h;
        double lp = loss_at(m, x, y, NB);
        x[i] = keep - h;
        double lm = loss_at(m, x, y, NB);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > tol * (1e-2 + fabs(fd))) {
            print_error("input grad [%lld]: analytic %g, finite difference %g\n", (long long)i, g[i], fd);
            bad++;
        }
    }
    tu_free(x);
    tu_free(g);
    assert_int_equal(bad, 0);
}

/* Checks the train plan's parameter gradients (mean CE, batch statistics) at a few
 * coordinates of every kind of parameter. Running statistics are restored between calls
 * so that every evaluation sees the same model. */
static void check_param_grad(sat_model *m, int64_t in_size, double tol) {
    int32_t classes;
    sat_model_shape(m, NULL, NULL, NULL, &classes);
    int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    float *x = tu_alloc(sizeof(float) * NB * in_size);
    float *state = tu_alloc(sizeof(float) * (size_t)(ns + 1));
    float *g = tu_alloc(sizeof(float) * (size_t)np);
    int32_t y[NB] = {0, 1 % classes, 2 % classes};
    tu_fill_uniform(x, NB * in_size, 0.1f, 0.9f, 11);
    memcpy(state, sat_model_state(m), sizeof(float) * (size_t)ns);
    float loss;
    TU_CHECK(sat_model_train_backward(m, x, y, NB, 0.1f, &loss, NULL));
    memcpy(g, sat_model_grads(m), sizeof(float) * (size_t)np);
    float *p = sat_model_params(m);
    const float h = 2e-3f;
    int bad = 0;
    for (int64_t t = 0; t < 40; t++) {
        int64_t i = (t * 104729 + t * t) % np;
        if (t == 39) i = np - 1;
        float keep = p[i];
        float lp, lm;
        p[i] = keep + h;
        memcpy(sat_model_state(m), state, sizeof(float) * (size_t)ns);
        TU_CHECK(sat_model_train_backward(m, x, y, NB, 0.1f, &lp, NULL));
        p[i] = keep - h;
        memcpy(sat_model_state(m), state, sizeof(float) * (size_t)ns);
        TU_CHECK(sat_model_train_backward(m, x, y, NB, 0.1f, &lm, NULL));
        p[i] = keep;
        double fd = ((double)lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > tol * (2e-2 + fabs(fd))) {
            print_error("param grad [%lld]: analytic %g, finite difference %g\n", (long long)i, g[i], fd);
            bad++;
        }
    }
    tu_free(x);
    tu_free(state);
    tu_free(g);
    assert_int_equal(bad, 0);
}

/* The models are initialised from seed 0 (the context's seed, which opts_init defers to):
 * central differences of step 2e-3 are checked at fixed coordinates, and for ReLU some
 * coordinates of other initialisations sit within a step of a kink, where a difference
 * quotient says nothing about the derivative. */
static void test_input_grad_every_activation(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    for (int32_t act = 0; act < SAT_ACT_COUNT; act++) {
        sat_model_opts o;
        sat_model_opts_init(&o, sizeof o);
        o.activation = act;
        o.max_batch = 8;
        if (act == SAT_ACT_SMOOTHRELU) o.act_param = 5.0f; /* smoother, so that FD is accurate */
        sat_model *m = NULL;
        TU_CHECK(sat_model_create(ctx, SPEC_CONV, &o, &m));
        tu_own_model(m);
        print_message("activation %s\n", sat_activation_name(act));
        check_input_grad(m, 2 * 7 * 7, act == SAT_ACT_RELU ? 0.1 : 0.03);
        tu_release(m);
    }
}

static void test_param_grad_every_activation(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    for (int32_t act = 0; act < SAT_ACT_COUNT; act++) {
        if (act == SAT_ACT_RELU) continue; /* kinks make FD unreliable; covered by SiLU paths */
        sat_model_opts o;
        sat_model_opts_init(&o, sizeof o);
        o.activation = act;
        o.max_batch = 8;
        /* SmoothReLU's second derivative jumps from 0 to a at 0: a small a keeps the
         * finite-difference truncation error below the tolerance */
        if (act == SAT_ACT_SMOOTHRELU) o.act_param = 1.0f;
        sat_model *m = NULL;
        TU_CHECK(sat_model_create(ctx, SPEC_CONV, &o, &m));
        tu_own_model(m);
        print_message("activation %s\n", sat_activation_name(act));
        check_param_grad(m, 2 * 7 * 7, 0.05);
        tu_release(m);
    }
}

static void test_residual_model_grads(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SPEC_RES, SAT_ACT_GELU, 4);
    check_input_grad(m, 3 * 8 * 8, 0.03);
    check_param_grad(m, 3 * 8 * 8, 0.05);
    /* batch statistics during the attack: a different function, still a correct gradient */
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = SAT_ACT_SILU;
    o.max_batch = 4;
    o.attack_bn_mode = SAT_BN_BATCH;
    sat_model *mb = NULL;
    TU_CHECK(sat_model_create(ctx, SPEC_RES, &o, &mb));
    tu_own_model(mb);
    check_input_grad(mb, 3 * 8 * 8, 0.03);
}

static void test_stem_ops_grads(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SPEC_STEM, SAT_ACT_SILU, 4);
    check_input_grad(m, 3 * 9 * 9, 0.03);
    check_param_grad(m, 3 * 9 * 9, 0.05);
}

/* Dropout is the identity in inference and in the attack plan (the model without it gives
 * the same bits: it has no parameters, so both draw the same initial weights), and a fresh
 * mask per training-mode forward, the same for the same seed and step. */
static void test_dropout_train_only(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *a = tu_model(ctx, "input 1 40 40\ndropout p=0.25\ndense 2\n", SAT_ACT_SILU, 2);
    sat_model *b = tu_model(ctx, "input 1 40 40\ndense 2\n", SAT_ACT_SILU, 2);
    sat_model *a2 = tu_model(ctx, "input 1 40 40\ndropout p=0.25\ndense 2\n", SAT_ACT_SILU, 2);
    enum { IN = 1600 };
    float x[2 * IN], ga[2 * IN], gb[2 * IN], la[4], lb[4];
    int32_t y[2] = {0, 1};
    tu_fill_uniform(x, 2 * IN, 0.1f, 0.9f, 13);
    TU_CHECK(sat_model_input_gradient(a, x, y, 2, NULL, ga, la));
    TU_CHECK(sat_model_input_gradient(b, x, y, 2, NULL, gb, lb));
    assert_memory_equal(ga, gb, sizeof ga);
    assert_memory_equal(la, lb, sizeof la);
    /* training: dW[0, i] = g0 x_i / (1 - p) where kept, 0 where dropped (one example) */
    TU_CHECK(sat_model_train_backward(a, x, y, 1, 0, NULL, NULL));
    const float *dw = sat_model_grads(a);
    int zeros = 0;
    double ratio = 0;
    for (int i = 0; i < IN; i++) {
        if (dw[i] == 0.0f) {
            zeros++;
        } else if (ratio == 0) {
            ratio = dw[i] / x[i];
        } else {
            assert_true(fabs(dw[i] / x[i] - ratio) < 1e-4 * fabs(ratio));
        }
    }
    assert_true(zeros > 0.2 * IN && zeros < 0.3 * IN);
    float first[IN], again[IN];
    memcpy(first, dw, sizeof first);
    TU_CHECK(sat_model_train_backward(a2, x, y, 1, 0, NULL, NULL));
    memcpy(again, sat_model_grads(a2), sizeof again);
    assert_memory_equal(first, again, sizeof first); /* same seed, same step: same mask */
    TU_CHECK(sat_model_train_backward(a, x, y, 1, 0, NULL, NULL));
    assert_memory_not_equal(first, sat_model_grads(a), sizeof first); /* the next step: a new mask */
}

/* Stochastic depth (dropout per=example): a training-mode forward keeps or drops each
 * example as a whole (a linear model without bias then gives twice the inference logits at
 * p = 1/2, or zeros), the same bits on 1 and 2 threads, the identity in inference. */
static void test_dropout_per_example(void **st) {
    (void)st;
    enum { N = 64, IN = 18 };
    const char *spec = "input 2 3 3\ndropout p=0.5 per=example\nflatten\ndense 2 bias=0\n";
    float x[N * IN], ref[N * 2], out[2][N * 2];
    tu_fill_uniform(x, N * IN, 0.1f, 0.9f, 21);
    for (int t = 0; t < 2; t++) {
        sat_model *m = tu_model(tu_context(t + 1, 0), spec, SAT_ACT_SILU, N);
        TU_CHECK(sat_model_forward(m, x, N, ref));
        TU_CHECK(sat_exec_forward(sat_model_exec(m), x, N, SAT_BN_TRAIN, out[t]));
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    int dropped = 0;
    for (int e = 0; e < N; e++) {
        const int kept = out[0][2 * e] != 0.0f || out[0][2 * e + 1] != 0.0f;
        dropped += !kept;
        for (int k = 0; k < 2; k++)
            assert_float_equal(out[0][2 * e + k], kept ? 2.0f * ref[2 * e + k] : 0.0f, 1e-5);
    }
    assert_true(dropped > 16 && dropped < 48);
}

/* With a backward override, the input gradient must equal the one computed with the
 * override activation's derivative at the same pre-activations: for a one-layer model
 * dense -> act -> dense this is checkable by hand. */
static void test_backward_override(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    const char *spec = "input 1 1 3\ndense 4\nact\ndense 2\n";
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = SAT_ACT_RELU;
    o.max_batch = 2;
    o.attack_backward_act = SAT_ACT_PSOFTPLUS;
    o.attack_backward_param = 10.0f;
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, spec, &o, &m));
    tu_own_model(m);
    float x[3] = {0.2f, 0.5f, 0.9f}, g[3];
    int32_t y[1] = {1};
    float logits[2];
    TU_CHECK(sat_model_input_gradient(m, x, y, 1, NULL, g, logits));
    /* by hand: z = W1 x + b1, dlogits = softmax - onehot, dh = W2^T dlogits,
     * dz = dh * sigmoid(10 z), dx = W1^T dz */
    const float *p = sat_model_params(m);
    const float *W1 = p, *b1 = p + 12, *W2 = p + 16;
    double z[4], dz[4], sm[2], mx = logits[0] > logits[1] ? logits[0] : logits[1];
    sm[0] = exp(logits[0] - mx);
    sm[1] = exp(logits[1] - mx);
    double s = sm[0] + sm[1];
    double dl[2] = {sm[0] / s, sm[1] / s - 1.0};
    for (int j = 0; j < 4; j++) {
        z[j] = b1[j];
        for (int i = 0; i < 3; i++) z[j] += W1[j * 3 + i] * x[i];
        double dh = W2[j] * dl[0] + W2[4 + j] * dl[1];
        dz[j] = dh / (1.0 + exp(-10.0 * z[j]));
    }
    for (int i = 0; i < 3; i++) {
        double dx = 0;
        for (int j = 0; j < 4; j++) dx += W1[j * 3 + i] * dz[j];
        assert_true(fabs(dx - g[i]) < 1e-5);
    }
}

/* Without a backward override a ReLU's backward reads its output and executions keep no
 * ReLU inputs (plan.c). An override set afterwards needs them: each execution is planned
 * again by its next forward, and gives what a model created with that override gives; a
 * backward of a pass from before the change is refused. */
static void test_override_after_planning(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SPEC_RES, SAT_ACT_RELU, NB);
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = SAT_ACT_RELU;
    o.max_batch = NB;
    o.attack_backward_act = SAT_ACT_PSOFTPLUS;
    o.attack_backward_param = 10.0f;
    sat_model *ref = NULL;
    TU_CHECK(sat_model_create(ctx, SPEC_RES, &o, &ref));
    tu_own_model(ref);
    const int64_t np = sat_model_param_count(m), d = 3 * 8 * 8;
    memcpy(sat_model_params(ref), sat_model_params(m), sizeof(float) * (size_t)np);
    float x[NB * 3 * 8 * 8], g0[NB * 3 * 8 * 8], g1[NB * 3 * 8 * 8], gr[NB * 3 * 8 * 8], dx[NB * 3 * 8 * 8];
    float logits[NB * 3], dl[NB * 3];
    int32_t y[NB] = {0, 1, 2};
    tu_fill_uniform(x, NB * d, 0.0f, 1.0f, 5);
    TU_CHECK(sat_model_input_gradient(m, x, y, NB, NULL, g0, NULL));
    TU_CHECK(sat_model_input_gradient(ref, x, y, NB, NULL, gr, NULL));

    sat_exec *e = NULL;
    TU_CHECK(sat_exec_create(m, NULL, &e));
    TU_CHECK(sat_exec_forward(e, x, NB, SAT_BN_INFERENCE, logits));
    for (int i = 0; i < NB * 3; i++) dl[i] = 0.1f * (float)(i % 3) - 0.1f;

    TU_CHECK(sat_model_set_backward(m, SAT_ACT_PSOFTPLUS, 10.0f, SAT_ACT_SAME, NAN));
    TU_CHECK(sat_model_input_gradient(m, x, y, NB, NULL, g1, NULL));
    assert_memory_equal(g1, gr, sizeof g1); /* planned again: the inputs are there */
    assert_memory_not_equal(g1, g0, sizeof g1);
    assert_int_equal(sat_exec_backward(e, dl, dx, NULL), SAT_E_STATE);
    assert_non_null(strstr(sat_exec_last_error(e), "forward pass again"));
    TU_CHECK(sat_exec_forward(e, x, NB, SAT_BN_INFERENCE, logits));
    TU_CHECK(sat_exec_backward(e, dl, dx, NULL));

    TU_CHECK(sat_model_set_backward(m, SAT_ACT_SAME, NAN, SAT_ACT_SAME, NAN));
    TU_CHECK(sat_model_input_gradient(m, x, y, NB, NULL, g1, NULL));
    assert_memory_equal(g1, g0, sizeof g1);
    sat_exec_destroy(e);
}

/* Batch norm folded into the convolution before it (the model's inference and attack
 * passes, fold.c) computes what the layers compute unfolded (a SAT_EXEC_TRAIN execution's
 * inference-mode pass): logits and input gradients agree to rounding. The model has every
 * kind of pair: with a bias and without, grouped, SiLU recomputing its input and ReLU
 * reading its output, 16-wide stride-1 layers for the direct kernels; and two batch norms
 * that must not fold (after a convolution with a second reader, after an add). The
 * statistics are far from their initial values, folding writes nothing to the model, and
 * finite differences check the folded gradient. */
static const char *const SPEC_FOLD =
    "input 3 16 16\n"
    "conv 8 k=3 p=1\n"
    "bn\n"
    "act\n"
    "conv 8 k=3 p=1 bias=0\n"
    "bn\n"
    "act relu\n"
    "conv 8 k=3 p=1 g=2 name=c\n"
    "bn\n"
    "add c\n"
    "bn\n"
    "act\n"
    "conv 8 k=3 s=2 p=1 g=4\n"
    "bn\n"
    "act\n"
    "gap\n"
    "dense 4\n";

static void test_bn_fold(void **st) {
    (void)st;
    enum { IN = 3 * 16 * 16, CL = 4 };
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SPEC_FOLD, SAT_ACT_SILU, 8);
    const int folds[] = {2, 5, 13}; /* the batch norms that fold: after conv 1, 4 and 12 */
    int folded = 0;
    for (int i = 0; i < m->num_nodes; i++) folded += m->nodes[i].bn_folded;
    assert_int_equal(folded, 3);
    for (int k = 0; k < 3; k++) assert_true(m->nodes[folds[k]].bn_folded);
    float *p = sat_model_params(m), *s = sat_model_state(m);
    for (int i = 0; i < m->num_nodes; i++) {
        const sat_node *nd = &m->nodes[i];
        if (nd->op != SAT_OP_BN) continue;
        tu_fill_uniform(p + nd->p_gamma, nd->c, 0.5f, 1.5f, 10 + i);
        tu_fill_uniform(p + nd->p_beta, nd->c, -0.3f, 0.3f, 20 + i);
        tu_fill_uniform(s + nd->s_mean, nd->c, -0.2f, 0.2f, 30 + i);
        tu_fill_uniform(s + nd->s_var, nd->c, 0.5f, 2.0f, 40 + i);
    }
    for (int i = 0; i < m->num_nodes; i++) /* and the convolutions' biases */
        if (m->nodes[i].op == SAT_OP_CONV && m->nodes[i].p_b >= 0)
            tu_fill_uniform(p + m->nodes[i].p_b, m->nodes[i].units, -0.2f, 0.2f, 50 + i);
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    float *p0 = tu_alloc(sizeof(float) * np), *s0 = tu_alloc(sizeof(float) * ns);
    memcpy(p0, p, sizeof(float) * np);
    memcpy(s0, s, sizeof(float) * ns);

    float *x = tu_alloc(sizeof(float) * NB * IN), *g1 = tu_alloc(sizeof(float) * NB * IN),
          *g2 = tu_alloc(sizeof(float) * NB * IN);
    int32_t y[NB] = {0, 1, 3};
    tu_fill_uniform(x, NB * IN, 0.0f, 1.0f, 5);
    float l1[NB * CL], l2[NB * CL], dl[NB * CL], losses[NB];
    TU_CHECK(sat_model_forward(m, x, NB, l1));
    TU_CHECK(sat_model_input_gradient(m, x, y, NB, NULL, g1, NULL));
    assert_memory_equal(p, p0, sizeof(float) * np);
    assert_memory_equal(s, s0, sizeof(float) * ns);

    sat_exec_opts o;
    TU_CHECK(sat_exec_opts_init(&o, sizeof o));
    o.kind = SAT_EXEC_TRAIN;
    sat_exec *unfolded = NULL;
    TU_CHECK(sat_exec_create(m, &o, &unfolded));
    TU_CHECK(sat_exec_forward(unfolded, x, NB, SAT_BN_INFERENCE, l2));
    sat__softmax_ce(l2, y, NB, CL, 0.0f, losses, dl, 1.0f);
    TU_CHECK(sat_exec_backward(unfolded, dl, g2, NULL));
    const float dl_max = tu_max_abs_diff(l1, l2, NB * CL), dg_max = tu_max_abs_diff(g1, g2, NB * IN);
    print_message("folded - unfolded: logits %g (of %g), input gradient %g (of %g)\n", dl_max,
                  tu_max_abs(l1, NB * CL), dg_max, tu_max_abs(g1, NB * IN));
    assert_true(dl_max <= 1e-5f * tu_max_abs(l1, NB * CL));
    assert_true(dg_max <= 1e-4f * tu_max_abs(g1, NB * IN));
    assert_true(dl_max > 0.0f); /* the passes did differ: something folded */
    sat_exec_destroy(unfolded);

    /* executions that cannot run a parameter gradient fold too: the model's bits */
    o.kind = SAT_EXEC_INFERENCE;
    sat_exec *e = NULL;
    TU_CHECK(sat_exec_create(m, &o, &e));
    TU_CHECK(sat_exec_forward(e, x, NB, SAT_BN_INFERENCE, l2));
    assert_memory_equal(l1, l2, sizeof l1);
    sat_exec_destroy(e);
    o.kind = SAT_EXEC_INPUT_GRAD;
    TU_CHECK(sat_exec_create(m, &o, &e));
    TU_CHECK(sat_exec_forward(e, x, NB, SAT_BN_INFERENCE, l2));
    sat__softmax_ce(l2, y, NB, CL, 0.0f, losses, dl, 1.0f);
    TU_CHECK(sat_exec_backward(e, dl, g2, NULL));
    assert_memory_equal(g1, g2, sizeof(float) * NB * IN);
    sat_exec_destroy(e);

    check_input_grad(m, IN, 0.03);
    tu_free(x), tu_free(g1), tu_free(g2), tu_free(p0), tu_free(s0);
}

/* An act node's backward writes its input gradient over its output gradient where the plan
 * lets the two share a region: the input read by the act alone, and the act not computing
 * its input again into that gradient first (SiLU after a batch norm does). A chain of two
 * acts on the widest tensor shares one region three ways (the plan takes it because it is
 * smaller). Finite differences check the gradients through it. */
static void test_in_place_act_gradients(void **st) {
    (void)st;
    static const char *const spec = "input 2 6 6\n"
                                    "conv 12 k=3 p=1\n"
                                    "act softplus\n"
                                    "act silu\n"
                                    "conv 2 k=3 p=1 bias=0\n"
                                    "bn\n"
                                    "act silu\n"
                                    "flatten\n"
                                    "dense 3\n";
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, 8);
    sat_exec_opts o;
    TU_CHECK(sat_exec_opts_init(&o, sizeof o));
    o.kind = SAT_EXEC_TRAIN;
    sat_exec *e = NULL;
    TU_CHECK(sat_exec_create(m, &o, &e));
    assert_true(e->a_grad[1] == e->a_grad[2] && e->a_grad[2] == e->a_grad[3]);
    assert_true(e->a_grad[5] != e->a_grad[6]); /* the SiLU after the batch norm recomputes its input */
    assert_true(e->a_grad[4] != e->a_grad[5]);
    sat_exec_destroy(e);
    check_input_grad(m, 2 * 6 * 6, 0.03);
    check_param_grad(m, 2 * 6 * 6, 0.05);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_override_after_planning),
        cmocka_unit_test(test_input_grad_every_activation),
        cmocka_unit_test(test_param_grad_every_activation),
        cmocka_unit_test(test_residual_model_grads),
        cmocka_unit_test(test_stem_ops_grads),
        cmocka_unit_test(test_dropout_train_only),
        cmocka_unit_test(test_dropout_per_example),
        cmocka_unit_test(test_backward_override),
        cmocka_unit_test(test_bn_fold),
        cmocka_unit_test(test_in_place_act_gradients),
    };
    return tu_run_on_every_path("test_model_grad", tests, sizeof tests / sizeof tests[0]);
}
