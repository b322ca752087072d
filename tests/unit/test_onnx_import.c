/* test_onnx_import.c - sat_model_load_onnx(_buffer): each supported pattern against values
 * computed here by hand, and each error with its status and message. The models are built
 * in memory with the code protoc-c generates from onnx.proto (testutil_onnx.c). */
#include "testutil_onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sat_context *ctx_of(void) { return tu_context(1, 7); }

/* The model's logits for x (n examples, count values in all) against want. */
static void expect_logits(sat_model *m, const float *x, int64_t n, const double *want, int64_t count, double tol) {
    float *got = tu_alloc(sizeof(float) * (size_t)count);
    TU_CHECK(sat_model_forward(m, x, n, got));
    for (int64_t i = 0; i < count; i++)
        if (fabs(got[i] - want[i]) > tol * (1 + fabs(want[i])))
            fail_msg("value %lld: got %.9g, want %.9g", (long long)i, got[i], want[i]);
}

static void assert_spec_has(const sat_model *m, const char *text) {
    if (!strstr(sat_model_spec(m), text)) fail_msg("spec lacks '%s':\n%s", text, sat_model_spec(m));
}

static void expect_error(sat_context *ctx, tu_onnx *g, int32_t status, const char *needle) {
    sat_model *m = NULL;
    int32_t st = tu_onnx_load(ctx, g, NULL, &m);
    if (st != status) fail_msg("status %d, want %d: %s", st, status, sat_last_error());
    assert_null(m);
    if (!strstr(sat_last_error(), needle)) fail_msg("message '%s' lacks '%s'", sat_last_error(), needle);
}

/* ---- dense layers: Gemm in both orientations with alpha and beta, MatMul + Add ---- */

static const float W34[12] = {0.1f, -0.2f, 0.3f, 0.4f, 0.5f, -0.6f, 0.7f, 0.8f, -0.9f, 1.0f, 1.1f, 1.2f};
static const float B3[3] = {0.5f, -1.0f, 2.0f};
static const float X4[8] = {1, 2, 3, 4, -1, 0.5f, 0.25f, 2};

/* y[n][j] = alpha sum_k x[n][k] w(j,k) + beta b[j], w(j,k) from W34 read as [N=3, K=4]
 * (nk) or [K=4, N=3] (kn). */
static void dense_ref(int kn, double alpha, double beta, double *y) {
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += X4[n * 4 + k] * (kn ? W34[k * 3 + j] : W34[j * 4 + k]);
            y[n * 3 + j] = alpha * s + beta * B3[j];
        }
}

static void test_gemm(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    for (int transb = 0; transb < 2; transb++) {
        const int64_t in[2] = {0, 4}, w_nk[2] = {3, 4}, w_kn[2] = {4, 3}, b[1] = {3};
        tu_onnx *g = tu_onnx_new("x", 2, in);
        tu_onnx_init(g, "W", 2, transb ? w_nk : w_kn, W34, transb);
        tu_onnx_init(g, "B", 1, b, B3, 0);
        Onnx__NodeProto *n = tu_onnx_node(g, "Gemm", "fc", "x,W,B", "y");
        tu_onnx_attr_float(n, "alpha", 2.0f);
        tu_onnx_attr_float(n, "beta", 0.5f);
        tu_onnx_attr_int(n, "transB", transb);
        tu_onnx_output(g, "y");
        sat_model *m = NULL;
        TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
        assert_spec_has(m, "dense 3 bias=1");
        double want[6];
        dense_ref(!transb, 2.0, 0.5, want);
        expect_logits(m, X4, 2, want, 6, 1e-6);
    }
}

static void test_matmul_add(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[2] = {0, 4}, w[2] = {4, 3}, b[1] = {3};
    tu_onnx *g = tu_onnx_new("x", 2, in);
    tu_onnx_init(g, "W", 2, w, W34, 0);
    tu_onnx_init(g, "B", 1, b, B3, 0);
    tu_onnx_node(g, "MatMul", "mm", "x,W", "h");
    tu_onnx_node(g, "Add", "bias", "h,B", "y");
    tu_onnx_output(g, "y");
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
    assert_int_equal(sat_model_layer_count(m), 2); /* the Add is the dense layer's bias */
    double want[6];
    dense_ref(1, 1.0, 1.0, want);
    expect_logits(m, X4, 2, want, 6, 1e-6);
}

/* ---- a small CNN: normalisation, conv (pads, strides, groups), BN with another epsilon,
 * ReLU, residual Add, max and average pooling, Flatten, Reshape ---- */

static void test_input_normalisation(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[4] = {0, 3, 2, 2}, c[4] = {1, 3, 1, 1};
    const float mean[3] = {0.5f, 0.25f, -1.0f}, std[3] = {2.0f, 0.5f, 4.0f};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    tu_onnx_init(g, "mean", 4, c, mean, 0);
    tu_onnx_init(g, "std", 4, c, std, 1);
    tu_onnx_node(g, "Sub", "sub", "x,mean", "a");
    tu_onnx_node(g, "Div", "div", "a,std", "b");
    tu_onnx_node(g, "Relu", "relu", "b", "y");
    tu_onnx_output(g, "y");
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
    assert_spec_has(m, "normalize mean=0.5,0.25,-1 std=2,0.5,4");
    float x[12];
    double want[12];
    tu_fill_uniform(x, 12, -2, 2, 3);
    for (int i = 0; i < 12; i++) want[i] = fmax(0.0, (x[i] - mean[i / 4]) / std[i / 4]);
    expect_logits(m, x, 1, want, 12, 1e-6);
}

static void test_conv_bn_residual(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    /* x [2, 4, 4] -> Conv(4 out, 3x3, pad 1, group 2, no bias) -> BN (eps 1e-3) -> Relu ->
     * Add(x) -> MaxPool(2, stride 2) -> AveragePool(2) -> Flatten: 4 logits. */
    const int64_t in[4] = {0, 2, 4, 4}, wd[4] = {2, 1, 3, 3}, cd[1] = {2};
    float w[18];
    tu_fill_uniform(w, 18, -1, 1, 5);
    const float gamma[2] = {1.5f, 0.5f}, beta[2] = {0.1f, -0.2f}, mu[2] = {0.3f, -0.1f}, var[2] = {2.0f, 0.25f};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    tu_onnx_init(g, "w", 4, wd, w, 1);
    tu_onnx_init(g, "gamma", 1, cd, gamma, 0);
    tu_onnx_init(g, "beta", 1, cd, beta, 0);
    tu_onnx_init(g, "mu", 1, cd, mu, 0);
    tu_onnx_init(g, "var", 1, cd, var, 0);
    Onnx__NodeProto *conv = tu_onnx_node(g, "Conv", "conv", "x,w", "c");
    const int64_t pads[4] = {1, 1, 1, 1}, k3[2] = {3, 3}, k2[2] = {2, 2};
    tu_onnx_attr_ints(conv, "pads", 4, pads);
    tu_onnx_attr_ints(conv, "kernel_shape", 2, k3);
    tu_onnx_attr_int(conv, "group", 2);
    Onnx__NodeProto *bn = tu_onnx_node(g, "BatchNormalization", "bn", "c,gamma,beta,mu,var", "b");
    tu_onnx_attr_float(bn, "epsilon", 1e-3f);
    tu_onnx_node(g, "Relu", "relu", "b", "r");
    tu_onnx_node(g, "Add", "res", "r,x", "s");
    Onnx__NodeProto *mp = tu_onnx_node(g, "MaxPool", "mp", "s", "p");
    tu_onnx_attr_ints(mp, "kernel_shape", 2, k2);
    tu_onnx_attr_ints(mp, "strides", 2, k2);
    Onnx__NodeProto *ap = tu_onnx_node(g, "AveragePool", "ap", "p", "q");
    tu_onnx_attr_ints(ap, "kernel_shape", 2, k2);
    tu_onnx_node(g, "Flatten", "flat", "q", "y");
    tu_onnx_output(g, "y");
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
    assert_spec_has(m, "conv 2 k=3 s=1 p=1 g=2 bias=0");

    float x[32];
    tu_fill_uniform(x, 32, -1, 1, 9);
    double s[32], want[2];
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                double acc = 0;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) {
                        const int ii = i + a - 1, jj = j + b - 1;
                        if (ii >= 0 && ii < 4 && jj >= 0 && jj < 4)
                            acc += w[o * 9 + a * 3 + b] * x[o * 16 + ii * 4 + jj];
                    }
                const double z = (acc - mu[o]) / sqrt(var[o] + 1e-3) * gamma[o] + beta[o];
                s[o * 16 + i * 4 + j] = fmax(0.0, z) + x[o * 16 + i * 4 + j];
            }
    for (int o = 0; o < 2; o++) {
        double sum = 0;
        for (int bi = 0; bi < 2; bi++)
            for (int bj = 0; bj < 2; bj++) {
                double mx = -INFINITY;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) mx = fmax(mx, s[o * 16 + (2 * bi + a) * 4 + 2 * bj + b]);
                sum += mx;
            }
        want[o] = sum / 4;
    }
    expect_logits(m, x, 1, want, 2, 1e-5);
}

static void test_reshape_dropout_identity(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[4] = {0, 2, 2, 2};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    const int64_t shape[2] = {-1, 8};
    tu_onnx_init_i64(g, "shape", 2, shape);
    tu_onnx_node(g, "Identity", "id", "x", "a");
    tu_onnx_node(g, "Dropout", "drop", "a", "b,mask");
    tu_onnx_node(g, "Elu", "elu", "b", "c");
    tu_onnx_attr_float(g->graph.node[2], "alpha", 0.5f);
    tu_onnx_node(g, "Reshape", "flat", "c,shape", "y");
    tu_onnx_output(g, "y");
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
    assert_spec_has(m, "act elu param=0.5");
    assert_int_equal(sat_model_layer_count(m), 3); /* input, act, flatten */
    float x[8];
    double want[8];
    tu_fill_uniform(x, 8, -2, 2, 1);
    for (int i = 0; i < 8; i++) want[i] = x[i] > 0 ? x[i] : 0.5 * (exp(x[i]) - 1);
    expect_logits(m, x, 1, want, 8, 1e-6);

    /* A reshape to a size the tensor does not have breaks the graph's own shapes. */
    const int64_t wrong[2] = {-1, 6};
    memcpy(g->graph.initializer[0]->int64_data, wrong, sizeof wrong);
    expect_error(ctx, g, SAT_E_FORMAT, "reshape to 6 features");
}

/* x.view(x.size(0), -1) with a dynamic batch, as PyTorch exports it: Shape, Gather,
 * Unsqueeze, Concat with [-1], Reshape. */
static tu_onnx *batch_view(int64_t features) {
    const int64_t in[4] = {0, 2, 2, 2};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    const int64_t zero = 0;
    tu_onnx_init_i64(g, "index", 1, &zero);
    g->graph.initializer[0]->n_dims = 0; /* a scalar index */
    tu_onnx_init_i64(g, "axes", 1, &zero);
    tu_onnx_init_i64(g, "rest", 1, &features);
    tu_onnx_node(g, "Relu", "r", "x", "h");
    tu_onnx_node(g, "Shape", "shape", "h", "s");
    tu_onnx_attr_int(tu_onnx_node(g, "Gather", "batch", "s,index", "b"), "axis", 0);
    tu_onnx_node(g, "Unsqueeze", "unsq", "b,axes", "u");
    tu_onnx_attr_int(tu_onnx_node(g, "Concat", "cat", "u,rest", "c"), "axis", 0);
    tu_onnx_node(g, "Reshape", "view", "h,c", "y");
    tu_onnx_output(g, "y");
    return g;
}

static void test_batch_shape_reshape(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, batch_view(-1), NULL, &m));
    assert_int_equal(sat_model_layer_count(m), 3); /* input, act, flatten: no layer for the arithmetic */
    assert_spec_has(m, "flatten");
    TU_CHECK(tu_onnx_load(ctx, batch_view(8), NULL, &m));
    expect_error(ctx, batch_view(6), SAT_E_FORMAT, "reshape to 6 features");
    /* The same arithmetic read by something else too is not only a batch size. */
    tu_onnx *g = batch_view(-1);
    tu_onnx_node(g, "Cast", "leak", "c", "z");
    tu_onnx_node(g, "Add", "sum", "y,z", "w");
    g->graph.output[0]->name = "w";
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'view' (Reshape): only a constant target shape");
}

/* ---- activations exported as subgraphs ---- */

/* Adds the subgraph of `kind` on x -> y; PyTorch's exporter order. */
static void add_subgraph(tu_onnx *g, int32_t kind) {
    const int64_t none[1] = {0};
    if (kind == SAT_ACT_SILU) {
        tu_onnx_node(g, "Sigmoid", "sig", "x", "s");
        tu_onnx_node(g, "Mul", "mul", "x,s", "y");
    } else if (kind == SAT_ACT_GELU) {
        const float c[3] = {1.4142135f, 1.0f, 0.5f};
        tu_onnx_init(g, "sqrt2", 0, none, &c[0], 0);
        tu_onnx_init(g, "one", 0, none, &c[1], 0);
        tu_onnx_init(g, "half", 0, none, &c[2], 1);
        tu_onnx_node(g, "Div", "div", "x,sqrt2", "a");
        tu_onnx_node(g, "Erf", "erf", "a", "b");
        tu_onnx_node(g, "Add", "add", "b,one", "c");
        tu_onnx_node(g, "Mul", "mul", "x,c", "d");
        tu_onnx_node(g, "Mul", "mul2", "d,half", "y");
    } else {
        const float c[5] = {3.0f, 0.044715f, 0.7978845608f, 1.0f, 0.5f};
        tu_onnx_init(g, "three", 0, none, &c[0], 0);
        tu_onnx_init(g, "kappa", 0, none, &c[1], 0);
        tu_onnx_init(g, "beta", 0, none, &c[2], 0);
        tu_onnx_init(g, "one", 0, none, &c[3], 0);
        tu_onnx_init(g, "half", 0, none, &c[4], 0);
        tu_onnx_node(g, "Pow", "cube", "x,three", "a");
        tu_onnx_node(g, "Mul", "k", "kappa,a", "b");
        tu_onnx_node(g, "Add", "inner", "x,b", "c");
        tu_onnx_node(g, "Mul", "scale", "beta,c", "d");
        tu_onnx_node(g, "Tanh", "tanh", "d", "e");
        tu_onnx_node(g, "Add", "plus1", "one,e", "f");
        tu_onnx_node(g, "Mul", "xf", "x,f", "h");
        tu_onnx_node(g, "Mul", "halve", "half,h", "y");
    }
}

static double act_ref(int32_t kind, double x) {
    if (kind == SAT_ACT_SILU) return x / (1 + exp(-x));
    if (kind == SAT_ACT_GELU) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static void test_activation_subgraphs(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int32_t kinds[3] = {SAT_ACT_SILU, SAT_ACT_GELU, SAT_ACT_GELU_TANH};
    for (int k = 0; k < 3; k++) {
        const int64_t in[2] = {0, 16};
        tu_onnx *g = tu_onnx_new("x", 2, in);
        add_subgraph(g, kinds[k]);
        tu_onnx_output(g, "y");
        sat_model *m = NULL;
        TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
        char line[64];
        snprintf(line, sizeof line, "act %s", sat_activation_name(kinds[k]));
        assert_spec_has(m, line);
        assert_int_equal(sat_model_layer_count(m), 2);
        float x[16];
        double want[16];
        for (int i = 0; i < 16; i++) x[i] = -4.0f + 0.5f * (float)i, want[i] = act_ref(kinds[k], x[i]);
        expect_logits(m, x, 1, want, 16, 1e-5);
    }
}

/* A subgraph whose intermediate value is read elsewhere is not an activation. */
static void test_subgraph_read_elsewhere(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[2] = {0, 4};
    tu_onnx *g = tu_onnx_new("x", 2, in);
    tu_onnx_node(g, "Relu", "r", "x", "h");
    tu_onnx_node(g, "Sigmoid", "sig", "h", "s");
    tu_onnx_node(g, "Mul", "mul", "h,s", "t");
    tu_onnx_node(g, "Add", "add", "t,s", "y");
    tu_onnx_output(g, "y");
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
    /* Sigmoid's output feeds the Add too: a sigmoid, a mul of two tensors, an add. */
    assert_spec_has(m, "sigmoid");
    assert_spec_has(m, "mul L");
    assert_spec_has(m, "add L");
    float x[4] = {-1, 0.5f, 2, 3};
    double want[4];
    for (int i = 0; i < 4; i++) {
        const double h = fmax(0, x[i]), s = 1 / (1 + exp(-h));
        want[i] = h * s + s;
    }
    expect_logits(m, x, 1, want, 4, 1e-6);
}

/* Squeeze-excitation: a C x 1 x 1 gate from GlobalAveragePool, a 1x1 Conv and Sigmoid. */
static void test_squeeze_excitation(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[4] = {0, 2, 2, 2}, wd[4] = {2, 2, 1, 1}, bd[1] = {2};
    const float w[4] = {0.5f, -1.0f, 2.0f, 0.25f}, b[2] = {0.1f, -0.3f};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    tu_onnx_init(g, "w", 4, wd, w, 0);
    tu_onnx_init(g, "b", 1, bd, b, 0);
    tu_onnx_node(g, "GlobalAveragePool", "squeeze", "x", "p");
    tu_onnx_node(g, "Conv", "excite", "p,w,b", "q");
    tu_onnx_node(g, "Sigmoid", "gate", "q", "s");
    tu_onnx_node(g, "Mul", "scale", "x,s", "t");
    tu_onnx_node(g, "Flatten", "flat", "t", "y");
    tu_onnx_output(g, "y");
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, NULL, &m));
    float x[8];
    double want[8];
    tu_fill_uniform(x, 8, -1, 1, 2);
    double p[2], s[2];
    for (int c = 0; c < 2; c++) p[c] = (x[c * 4] + x[c * 4 + 1] + x[c * 4 + 2] + x[c * 4 + 3]) / 4;
    for (int o = 0; o < 2; o++) s[o] = 1 / (1 + exp(-(w[o * 2] * p[0] + w[o * 2 + 1] * p[1] + b[o])));
    for (int i = 0; i < 8; i++) want[i] = x[i] * s[i / 4];
    expect_logits(m, x, 1, want, 8, 1e-6);
}

/* ---- activations with a parameter, the exporter's forms ---- */

/* x -> y through libsat's export of psoftplus (Mul a, Softplus, Div b), SiLU with b
 * (Mul b, Sigmoid, Mul x) or SmoothReLU (Relu, Mul a, Add 1, Log, Div b, Sub); a and b are
 * the same constant unless b differs, the near miss. */
static tu_onnx *parametric(int32_t kind, float a, float b) {
    const int64_t in[2] = {0, 8}, none[1] = {0}, one_dim[1] = {1};
    const float one = 1.0f;
    tu_onnx *g = tu_onnx_new("x", 2, in);
    /* after a layer: a Mul reading the graph input would be its normalisation */
    tu_onnx_node(g, "Identity", "id", "x", "h");
    tu_onnx_init(g, "a", kind == SAT_ACT_SMOOTHRELU ? 1 : 0, kind == SAT_ACT_SMOOTHRELU ? one_dim : none, &a, 0);
    const char *div = "a";
    if (b != a) {
        tu_onnx_init(g, "b", 0, none, &b, 0);
        div = "b";
    }
    char in2[16];
    if (kind == SAT_ACT_PSOFTPLUS) {
        tu_onnx_node(g, "Mul", "scale", "h,a", "ax");
        tu_onnx_node(g, "Softplus", "sp", "ax", "s");
        snprintf(in2, sizeof in2, "s,%s", div);
        tu_onnx_node(g, "Div", "div", in2, "y");
    } else if (kind == SAT_ACT_SILU) {
        tu_onnx_node(g, "Mul", "scale", "h,a", "ax");
        tu_onnx_node(g, "Sigmoid", "sig", "ax", "s");
        tu_onnx_node(g, "Mul", "mul", "h,s", "y");
    } else {
        tu_onnx_init(g, "one", 0, none, &one, 0);
        tu_onnx_node(g, "Relu", "relu", "h", "r");
        tu_onnx_node(g, "Mul", "scale", "r,a", "ar");
        tu_onnx_node(g, "Add", "plus1", "ar,one", "ar1");
        tu_onnx_node(g, "Log", "log", "ar1", "lg");
        snprintf(in2, sizeof in2, "lg,%s", div);
        tu_onnx_node(g, "Div", "div", in2, "q");
        tu_onnx_node(g, "Sub", "sub", "r,q", "y");
    }
    tu_onnx_output(g, "y");
    return g;
}

static void test_parametric_activations(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const float x[8] = {-3, -1, -0.25f, 0, 0.125f, 0.5f, 1, 2.5f};
    const struct {
        int32_t kind;
        float a;
        const char *line;
    } cases[] = {{SAT_ACT_PSOFTPLUS, 3.0f, "act psoftplus param=3 "},
                 {SAT_ACT_SILU, 2.0f, "act silu param=2 "},
                 {SAT_ACT_SMOOTHRELU, 5.0f, "act smoothrelu param=5 "}};
    for (size_t k = 0; k < 3; k++) {
        sat_model *m = NULL;
        TU_CHECK(tu_onnx_load(ctx, parametric(cases[k].kind, cases[k].a, cases[k].a), NULL, &m));
        assert_spec_has(m, cases[k].line);
        assert_int_equal(sat_model_layer_count(m), 2);
        double want[8];
        for (int i = 0; i < 8; i++) {
            const double a = cases[k].a, v = x[i];
            if (cases[k].kind == SAT_ACT_PSOFTPLUS) want[i] = log(1 + exp(a * v)) / a;
            else if (cases[k].kind == SAT_ACT_SILU) want[i] = v / (1 + exp(-a * v));
            else want[i] = v >= 0 ? v - log(1 + a * v) / a : 0;
        }
        expect_logits(m, x, 1, want, 8, 1e-6);
    }
    /* SmoothReLU's a is the layer's learnable parameter, filled from the file. */
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, parametric(SAT_ACT_SMOOTHRELU, 123.5f, 123.5f), NULL, &m));
    assert_int_equal(sat_model_param_count(m), 1);
    assert_float_equal(sat_model_params(m)[0], 123.5f, 0.0f);
    /* Near misses: softplus(3 x) / 2, (x - log(1 + 5 x) / 4)+: no candidate. */
    expect_error(ctx, parametric(SAT_ACT_PSOFTPLUS, 3.0f, 2.0f), SAT_E_UNSUPPORTED, "node 'scale' (Mul)");
    expect_error(ctx, parametric(SAT_ACT_SMOOTHRELU, 5.0f, 4.0f), SAT_E_UNSUPPORTED, "node 'scale' (Mul)");
    /* SiLU's b from a constant that is not the one the sigmoid reads: x sigmoid(2 x) * 2. */
    tu_onnx *g = parametric(SAT_ACT_SILU, 2.0f, 2.0f);
    g->graph.output[0]->name = "z";
    tu_onnx_node(g, "Mul", "twice", "y,a", "z");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'twice' (Mul)");
}

/* A [N, C] gate (Flatten, Gemm, Sigmoid) unsqueezed to [N, C, 1, 1] before the Mul, with
 * the axes as an input (opset 13) or an attribute (opset 11); other axes, and a tensor
 * that is not [N, C], are refused. */
static tu_onnx *unsqueezed_gate(int as_attr, int64_t axis0, int gate_from_conv) {
    const int64_t in[4] = {0, 2, 2, 2}, wd[2] = {2, 2}, cd[4] = {2, 2, 1, 1}, axes[2] = {axis0, axis0 + 1};
    const float w[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    tu_onnx_init(g, "w", 2, wd, w, 0);
    tu_onnx_init(g, "cw", 4, cd, w, 0);
    tu_onnx_node(g, "GlobalAveragePool", "squeeze", "x", "p");
    tu_onnx_node(g, "Flatten", "flat", "p", "f");
    tu_onnx_attr_int(tu_onnx_node(g, "Gemm", "excite", "f,w", "q"), "transB", 1);
    tu_onnx_node(g, "Sigmoid", "gate", "q", "s");
    if (gate_from_conv) tu_onnx_node(g, "Conv", "conv", "x,cw", "s4");
    const char *gate = gate_from_conv ? "s4" : "s";
    char inputs[16];
    snprintf(inputs, sizeof inputs, "%s%s", gate, as_attr ? "" : ",axes");
    Onnx__NodeProto *u = tu_onnx_node(g, "Unsqueeze", "unsq", inputs, "u");
    if (as_attr) tu_onnx_attr_ints(u, "axes", 2, axes);
    else tu_onnx_init_i64(g, "axes", 2, axes);
    tu_onnx_node(g, "Mul", "scale", "x,u", "t");
    tu_onnx_node(g, "Flatten", "out", "t", "y");
    tu_onnx_output(g, "y");
    return g;
}

static void test_unsqueezed_gate(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const float w[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    float x[8];
    double want[8], p[2], s[2];
    tu_fill_uniform(x, 8, -1, 1, 4);
    for (int c = 0; c < 2; c++) p[c] = (x[c * 4] + x[c * 4 + 1] + x[c * 4 + 2] + x[c * 4 + 3]) / 4;
    for (int o = 0; o < 2; o++) s[o] = 1 / (1 + exp(-(w[o * 2] * p[0] + w[o * 2 + 1] * p[1])));
    for (int i = 0; i < 8; i++) want[i] = x[i] * s[i / 4];
    for (int as_attr = 0; as_attr < 2; as_attr++) {
        sat_model *m = NULL;
        TU_CHECK(tu_onnx_load(ctx, unsqueezed_gate(as_attr, 2, 0), NULL, &m));
        assert_spec_has(m, "mul L");
        expect_logits(m, x, 1, want, 8, 1e-6);
    }
    expect_error(ctx, unsqueezed_gate(0, 1, 0), SAT_E_UNSUPPORTED, "node 'unsq' (Unsqueeze): only axes 2, 3");
    expect_error(ctx, unsqueezed_gate(1, 3, 0), SAT_E_UNSUPPORTED, "node 'unsq' (Unsqueeze): only axes 2, 3");
    expect_error(ctx, unsqueezed_gate(0, 2, 1), SAT_E_UNSUPPORTED, "node 'unsq': only an [N, C] tensor");
}

/* ---- replacing an activation kind on import ---- */

static void test_replace_activation(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[2] = {0, 4};
    tu_onnx *g = tu_onnx_new("x", 2, in);
    tu_onnx_node(g, "Relu", "r", "x", "y");
    tu_onnx_output(g, "y");
    sat_onnx_import_opts o;
    TU_CHECK(sat_onnx_import_opts_init(&o, sizeof o));
    assert_int_equal(o.replace_act_from, -1);
    o.replace_act_from = SAT_ACT_RELU;
    o.replace_act_to = SAT_ACT_SILU;
    o.replace_act_param = 2.0f;
    sat_model *m = NULL;
    TU_CHECK(tu_onnx_load(ctx, g, &o, &m));
    assert_spec_has(m, "act silu param=2");
    float x[4] = {-1, 0, 1, 2};
    double want[4];
    for (int i = 0; i < 4; i++) want[i] = x[i] / (1 + exp(-2.0 * x[i]));
    expect_logits(m, x, 1, want, 4, 1e-6);

    o.replace_act_to = SAT_ACT_COUNT;
    sat_model *bad = NULL;
    assert_int_equal(tu_onnx_load(ctx, g, &o, &bad), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "replace_act_to"));
}

/* ---- errors ---- */

static void test_unsupported(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    const int64_t in[4] = {0, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    float w[18] = {0};
    /* An op libsat has not. */
    tu_onnx *g = tu_onnx_new("x", 4, in);
    tu_onnx_node(g, "LeakyRelu", "leaky_7", "x", "y");
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'leaky_7' (LeakyRelu)");
    /* An attribute value it cannot do. */
    g = tu_onnx_new("x", 4, in);
    tu_onnx_init(g, "w", 4, wd, w, 0);
    const int64_t dil[2] = {2, 2};
    tu_onnx_attr_ints(tu_onnx_node(g, "Conv", "conv_3", "x,w", "y"), "dilations", 2, dil);
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'conv_3' (Conv): dilation 2");
    /* An attribute it does not know. */
    g = tu_onnx_new("x", 4, in);
    tu_onnx_attr_int(tu_onnx_node(g, "Relu", "r", "x", "y"), "mystery", 1);
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'r' (Relu): attribute 'mystery'");
    /* A dynamic size other than the batch. */
    g = tu_onnx_new("x", 4, in);
    g->graph.input[0]->type->tensor_type->shape->dim[2]->value_case =
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    g->graph.input[0]->type->tensor_type->shape->dim[2]->dim_param = "H";
    tu_onnx_node(g, "Relu", "r", "x", "y");
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "dimension 2 is dynamic");
    /* Weights computed in the graph. */
    const int64_t in2[2] = {0, 4};
    g = tu_onnx_new("x", 2, in2);
    tu_onnx_node(g, "Relu", "r", "x", "h");
    tu_onnx_node(g, "MatMul", "mm", "x,h", "y");
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'mm' (MatMul): input 'h' must be an initializer");
    /* A mean over other axes than the two spatial ones (the spatial mean is tested against
     * PyTorch's export in tests/python/test_onnx_torch.py). */
    const int64_t channel_axes[2] = {1, 2}, same_axis[2] = {3, -1};
    g = tu_onnx_new("x", 4, in);
    tu_onnx_attr_ints(tu_onnx_node(g, "ReduceMean", "m", "x", "y"), "axes", 2, channel_axes);
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'm' (ReduceMean): only the mean over the two spatial");
    g = tu_onnx_new("x", 4, in);
    tu_onnx_attr_ints(tu_onnx_node(g, "ReduceMean", "m", "x", "y"), "axes", 2, same_axis);
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_UNSUPPORTED, "node 'm' (ReduceMean): only the mean over the two spatial");
}

static void test_malformed(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    sat_model *m = NULL;
    /* Not protobuf at all. */
    const char junk[] = "this is not an ONNX file";
    assert_int_equal(sat_model_load_onnx_buffer(ctx, junk, sizeof junk, NULL, &m), SAT_E_FORMAT);
    assert_null(m);
    /* Nested deeper than any model: ModelProto.graph (field 7) holding GraphProto.node (1),
     * NodeProto.attribute (5), AttributeProto.g (6), node, attribute, g, ... Written from the
     * inside out, each level a tag and the varint length of the level below. */
    enum { DEPTH = 3000 };
    static const uint8_t tags[3] = {(1 << 3) | 2, (5 << 3) | 2, (6 << 3) | 2};
    uint8_t *buf = tu_alloc(4 * (DEPTH + 1));
    size_t len = 0;
    for (int level = 0; level <= DEPTH; level++) {
        uint8_t hdr[6];
        size_t h = 0, v = len;
        hdr[h++] = level == DEPTH ? (uint8_t)((7 << 3) | 2) : tags[(DEPTH - 1 - level) % 3];
        do {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
        memmove(buf + h, buf, len);
        memcpy(buf, hdr, h);
        len += h;
    }
    assert_int_equal(sat_model_load_onnx_buffer(ctx, buf, len, NULL, &m), SAT_E_FORMAT);
    assert_non_null(strstr(sat_last_error(), "deeper"));

    /* Nodes out of topological order. */
    const int64_t in[2] = {0, 4};
    tu_onnx *g = tu_onnx_new("x", 2, in);
    tu_onnx_node(g, "Relu", "second", "h", "y");
    tu_onnx_node(g, "Relu", "first", "x", "h");
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_FORMAT, "node 'second' (Relu): input 'h' is produced later");
    /* A weight that does not fit its layer. */
    g = tu_onnx_new("x", 2, in);
    const int64_t w[2] = {3, 5};
    float vals[15] = {0};
    tu_onnx_init(g, "W", 2, w, vals, 0);
    tu_onnx_attr_int(tu_onnx_node(g, "Gemm", "fc", "x,W", "y"), "transB", 1);
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_FORMAT, "node 'fc': initializer 'W'");
    /* NaN in a weight. */
    g = tu_onnx_new("x", 2, in);
    const int64_t w2[2] = {4, 3};
    float nan_vals[12] = {0};
    nan_vals[5] = NAN;
    tu_onnx_init(g, "W", 2, w2, nan_vals, 0);
    tu_onnx_node(g, "MatMul", "mm", "x,W", "y");
    tu_onnx_output(g, "y");
    expect_error(ctx, g, SAT_E_NUMERIC, "NaN");
    /* A tensor name defined twice. */
    g = tu_onnx_new("x", 2, in);
    tu_onnx_node(g, "Relu", "a", "x", "h");
    tu_onnx_node(g, "Relu", "b", "x", "h");
    tu_onnx_output(g, "h");
    expect_error(ctx, g, SAT_E_FORMAT, "tensor 'h' is defined twice");
}

static void test_arguments_and_files(void **state) {
    (void)state;
    sat_context *ctx = ctx_of();
    sat_model *m = (sat_model *)1;
    assert_int_equal(sat_model_load_onnx(ctx, NULL, NULL, &m), SAT_E_INVALID_ARG);
    assert_null(m);
    assert_int_equal(sat_model_load_onnx(NULL, "x.onnx", NULL, &m), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_load_onnx(ctx, "x.onnx", NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_load_onnx_buffer(ctx, NULL, 4, NULL, &m), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_load_onnx(ctx, "/nonexistent/model.onnx", NULL, &m), SAT_E_IO);
    assert_non_null(strstr(sat_last_error(), "sat_model_load_onnx"));
    sat_onnx_import_opts o;
    assert_int_equal(sat_onnx_import_opts_init(NULL, sizeof o), SAT_E_INVALID_ARG);
    assert_int_equal(sat_onnx_import_opts_init(&o, 2), SAT_E_INVALID_ARG);

    /* The file and the buffer give the same model. */
    const int64_t in[2] = {0, 3};
    tu_onnx *g = tu_onnx_new("x", 2, in);
    tu_onnx_node(g, "Softplus", "sp", "x", "y");
    tu_onnx_output(g, "y");
    size_t size = 0;
    uint8_t *buf = tu_onnx_pack(g, &size);
    char path[] = "/tmp/test_onnx_import_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    close(fd);
    int32_t st = sat_model_load_onnx(ctx, path, NULL, &m);
    unlink(path);
    TU_CHECK(st);
    tu_own_model(m);
    assert_string_equal(sat_model_spec(m), "input 3 1 1 name=L0\nact softplus from=L0 name=L1\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_matmul_add),
        cmocka_unit_test(test_input_normalisation),
        cmocka_unit_test(test_conv_bn_residual),
        cmocka_unit_test(test_reshape_dropout_identity),
        cmocka_unit_test(test_batch_shape_reshape),
        cmocka_unit_test(test_activation_subgraphs),
        cmocka_unit_test(test_subgraph_read_elsewhere),
        cmocka_unit_test(test_squeeze_excitation),
        cmocka_unit_test(test_parametric_activations),
        cmocka_unit_test(test_unsqueezed_gate),
        cmocka_unit_test(test_replace_activation),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_arguments_and_files),
    };
    return tu_run_group("onnx_import", tests, sizeof tests / sizeof tests[0]) ? 1 : 0;
}
