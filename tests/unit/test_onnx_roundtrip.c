/* test_onnx_roundtrip.c - a model exported to ONNX and imported again computes the same
 * logits, bit for bit: the import maps each exported form back to the layer it came from
 * (weights copied, not recomputed), so the same kernels run on the same numbers. Over a
 * small CNN with batch norm per activation, resnet20 and madry-cnn, and the other layers. */
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
 * model has them; SmoothReLU's alpha stays. */
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

/* Parametric softplus (Mul, Softplus, Div) and SmoothReLU (Relu, Mul, Add, Log, Div, Sub)
 * are standard ONNX that the importer does not map back to a layer yet: it refuses them
 * naming the node, and this test says so until it does. */
static int importer_reads(int32_t act) { return act != SAT_ACT_PSOFTPLUS && act != SAT_ACT_SMOOTHRELU; }

static void test_cnn_each_activation(void **state) {
    (void)state;
    for (int32_t act = 0; act < SAT_ACT_COUNT; act++) {
        sat_model *m = tu_model(tu_context(1, 0), CNN, act, 8);
        perturb(m);
        if (importer_reads(act)) {
            expect_same_logits(m, sat_activation_name(act));
            continue;
        }
        void *buf = NULL;
        size_t size = 0;
        TU_CHECK(sat_model_save_onnx_buffer(m, NULL, &buf, &size));
        tu_own_sat_mem(buf);
        sat_model *back = NULL;
        assert_int_equal(sat_model_load_onnx_buffer(tu_context(1, 0), buf, size, NULL, &back), SAT_E_UNSUPPORTED);
        assert_null(back);
        assert_non_null(strstr(sat_last_error(), sat_activation_name(act)));
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
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_other_layers),
    };
    return tu_run_group("test_onnx_roundtrip", tests, sizeof tests / sizeof tests[0]);
}
