/* test_onnx_roundtrip.c - a model exported to ONNX and imported again computes the same
 * logits, bit for bit: the import maps each exported form back to the layer it came from
 * (weights copied, not recomputed), so the same kernels run on the same numbers. Over a
 * small CNN with batch norm per activation (default and other parameters, SmoothReLU's
 * learnable alpha trained apart per layer), resnet20 and madry-cnn, squeeze-excitation
 * gates, and the other layers. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

enum { N = 3 };

/* The model's activation appears after a conv with batch norm, a grouped strided conv and
 * a dense layer with batch norm. */
static const char *const CNN =
    "input 3 8 8\n"
    "normalize mean=0.49,0.48,0.45 std=0.25,0.24,0.26\n"
    "conv 4 k=3 p=1\n"
    "bn\n"
    "act\n"
    "conv 4 k=3 s=2 p=1 g=2\n"
    "bn\n"
    "act\n"
    "maxpool k=3 s=2 p=1\n"
    "flatten\n"
    "dense 16\n"
    "bn\n"
    "act\n"
    "dense 5\n";

/* Residual add, average and global pooling, dropout, a dense layer reading a 4-D tensor,
 * ELU and CELU with their own parameters, sigmoid as a layer. */
static const char *const OTHER_LAYERS =
    "input 2 6 6\n"
    "conv 6 k=3 p=1 bias=0 name=trunk\n"
    "act elu param=0.7\n"
    "conv 6 k=3 p=1\n"
    "act celu param=1.3\n"
    "add trunk\n"
    "avgpool k=2 s=2\n"
    "dropout p=0.3\n"
    "sigmoid\n"
    "dense 8\n"
    "act gelu-tanh\n"
    "dense 4\n";

/* Parameters moved off their initial values and running statistics set, as a trained
 * model has them; SmoothReLU's alpha stays (test_trained_smoothrelu moves it). */
static void perturb(sat_model *m) {
    float *p = sat_model_params(m), *s = sat_model_state(m);
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    float *noise = tu_alloc((size_t)(np + ns + 1) * sizeof *noise);
    tu_fill_uniform(noise, np + ns, -0.1f, 0.1f, 11);
    for (int32_t i = 0; i < sat_model_layer_count(m); i++) {
        sat_layer_info li = {.struct_size = sizeof li};
        TU_CHECK(sat_model_layer_info(m, i, &li));
        for (int32_t t = 0; t < li.num_params; t++)
            if (li.params[t].role != SAT_TENSOR_ACT_ALPHA)
                for (int64_t j = 0; j < li.params[t].count; j++) p[li.params[t].offset + j] += noise[li.params[t].offset + j];
    }
    for (int64_t j = 0; j < ns; j++) s[j] = 1.0f + 5.0f * noise[np + j];
}

/* Exports m, imports the file, and compares the logits of a batch bit for bit. */
static void expect_same_logits(sat_model *m, const char *what) {
    void *buf = NULL;
    size_t size = 0;
    TU_CHECK(sat_model_save_onnx_buffer(m, NULL, &buf, &size));
    tu_own_sat_mem(buf);
    sat_context *ctx = tu_context(1, 0);
    sat_model *back = NULL;
    int32_t st = sat_model_load_onnx_buffer(ctx, buf, size, NULL, &back);
    if (st) fail_msg("%s: re-import -> %d: %s", what, st, sat_last_error());
    tu_own_model(back);
    int32_t c, h, w, k, c2, h2, w2, k2;
    TU_CHECK(sat_model_shape(m, &c, &h, &w, &k));
    TU_CHECK(sat_model_shape(back, &c2, &h2, &w2, &k2));
    assert_int_equal(c, c2);
    assert_int_equal(h, h2);
    assert_int_equal(w, w2);
    assert_int_equal(k, k2);
    assert_int_equal(sat_model_param_count(m), sat_model_param_count(back));
    const int64_t size_x = (int64_t)N * c * h * w;
    float *x = tu_alloc((size_t)size_x * sizeof *x);
    float *a = tu_alloc((size_t)N * k * sizeof *a), *b = tu_alloc((size_t)N * k * sizeof *b);
    tu_fill_uniform(x, size_x, 0.0f, 1.0f, 3);
    TU_CHECK(sat_model_forward(m, x, N, a));
    TU_CHECK(sat_model_forward(back, x, N, b));
    if (memcmp(a, b, (size_t)N * k * sizeof *a))
        fail_msg("%s: logits differ after the round trip by up to %g", what, (double)tu_max_abs_diff(a, b, N * k));
}

static void test_cnn_each_activation(void **state) {
    (void)state;
    for (int32_t act = 0; act < SAT_ACT_COUNT; act++) {
        sat_model *m = tu_model(tu_context(1, 0), CNN, act, 8);
        perturb(m);
        expect_same_logits(m, sat_activation_name(act));
    }
}

/* The CNN with `act` (kind and parameter) on each of its activation lines, in spec[cap]. */
static const char *cnn_with(const char *act, char *spec, size_t cap) {
    size_t len = 0;
    for (const char *p = CNN; *p;) {
        const char *end = strchr(p, '\n') + 1;
        if (!strncmp(p, "act\n", 4)) len += (size_t)snprintf(spec + len, cap - len, "act %s\n", act);
        else len += (size_t)snprintf(spec + len, cap - len, "%.*s", (int)(end - p), p);
        p = end;
    }
    return spec;
}

/* Each parametric activation with parameters other than its default, in all three
 * places of the CNN; SiLU's b = 1 exported without its Mul is the default case above. */
static void test_activation_parameters(void **state) {
    (void)state;
    static const char *const acts[] = {"psoftplus param=3.5", "psoftplus param=1", "psoftplus param=37.25",
                                       "silu param=1.7",      "silu param=0.25",   "elu param=0.3",
                                       "celu param=2.5",      "smoothrelu param=7", "smoothrelu param=1"};
    for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
        char spec[1024];
        sat_model *m = tu_model(tu_context(1, 0), cnn_with(acts[k], spec, sizeof spec), SAT_ACT_RELU, 8);
        perturb(m);
        expect_same_logits(m, acts[k]);
    }
}

/* SmoothReLU's alpha is learnable: after a few SGD steps each layer has its own (from a
 * start of 3, where its gradient is large enough to move it), and the ONNX file carries
 * each one back into the parameter block. */
static void test_trained_smoothrelu(void **state) {
    (void)state;
    char spec[1024];
    sat_model *m = tu_model(tu_context(1, 0), cnn_with("smoothrelu param=3", spec, sizeof spec), SAT_ACT_RELU, 8);
    perturb(m);
    sat_optimizer_opts oo;
    TU_CHECK(sat_optimizer_opts_init(&oo, sizeof oo));
    oo.lr = 0.5f;
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(m, &oo, &opt));
    tu_own_optimizer(opt);
    float x[8 * 3 * 8 * 8];
    int32_t y[8];
    tu_fill_uniform(x, 8 * 3 * 8 * 8, 0.0f, 1.0f, 5);
    for (int32_t j = 0; j < 8; j++) y[j] = j % 5;
    for (int step = 0; step < 3; step++) {
        TU_CHECK(sat_model_train_backward(m, x, y, 8, 0.0f, NULL, NULL));
        TU_CHECK(sat_optimizer_step(opt));
    }
    float alpha[3];
    int32_t n = 0;
    for (int32_t i = 0; i < sat_model_layer_count(m); i++) {
        sat_layer_info li = {.struct_size = sizeof li};
        TU_CHECK(sat_model_layer_info(m, i, &li));
        for (int32_t t = 0; t < li.num_params; t++)
            if (li.params[t].role == SAT_TENSOR_ACT_ALPHA) alpha[n++] = sat_model_params(m)[li.params[t].offset];
    }
    assert_int_equal(n, 3);
    assert_true(alpha[0] != 3.0f && alpha[0] != alpha[1] && alpha[1] != alpha[2] && alpha[0] != alpha[2]);
    expect_same_logits(m, "smoothrelu trained");
}

/* Squeeze-excitation: a gate from gap, dense, act, dense, sigmoid ([N, C], exported with an
 * Unsqueeze to [N, C, 1, 1]) and one from 1x1 convolutions (already 4-D), either operand first. */
static void test_squeeze_excitation(void **state) {
    (void)state;
    static const char *const SE = "input 3 8 8\n"
                                  "conv 6 k=3 p=1 name=stem\n"
                                  "act\n"
                                  "gap\n"
                                  "dense 3\n"
                                  "act\n"
                                  "dense 6\n"
                                  "sigmoid name=gate\n"
                                  "mul gate from=stem name=scaled\n"
                                  "gap\n"
                                  "conv 6 k=1\n"
                                  "sigmoid\n"
                                  "mul scaled\n"
                                  "conv 4 k=3 s=2 p=1 name=trunk\n"
                                  "gap\n"
                                  "flatten\n"
                                  "dense 4\n"
                                  "sigmoid name=gate2\n"
                                  "mul trunk from=gate2\n"
                                  "dense 5\n";
    for (int32_t act = 0; act < SAT_ACT_COUNT; act += SAT_ACT_COUNT - 1) {
        sat_model *m = tu_model(tu_context(1, 0), SE, act, 8);
        perturb(m);
        expect_same_logits(m, "squeeze-excitation");
    }
}

static void test_presets(void **state) {
    (void)state;
    static const struct {
        const char *preset;
        int32_t c, hw, act;
    } cases[] = {{"resnet20", 3, 32, SAT_ACT_SILU}, {"resnet20", 3, 32, SAT_ACT_RELU}, {"madry-cnn", 1, 28, SAT_ACT_GELU}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *spec = NULL;
        TU_CHECK(sat_preset_spec(cases[i].preset, cases[i].c, cases[i].hw, cases[i].hw, 10, NULL, NULL, &spec));
        tu_own_sat_mem(spec);
        sat_model *m = tu_model(tu_context(1, 0), spec, cases[i].act, 8);
        perturb(m);
        char what[64];
        snprintf(what, sizeof what, "%s %s", cases[i].preset, sat_activation_name(cases[i].act));
        expect_same_logits(m, what);
    }
}

static void test_other_layers(void **state) {
    (void)state;
    sat_model *m = tu_model(tu_context(1, 0), OTHER_LAYERS, SAT_ACT_RELU, 8);
    perturb(m);
    expect_same_logits(m, "other layers");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_each_activation),
        cmocka_unit_test(test_activation_parameters),
        cmocka_unit_test(test_trained_smoothrelu),
        cmocka_unit_test(test_squeeze_excitation),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_other_layers),
    };
    return tu_run_group("test_onnx_roundtrip", tests, sizeof tests / sizeof tests[0]);
}
