/* test_presets.c - the presets of the robustness benchmarks and of the paper's ImageNet
 * networks build at their documented shapes with the documented parameter counts (PyTorch's
 * sum(p.numel()) of the same networks, tests/python/torch_presets.py; the layer-by-layer
 * comparison with PyTorch is tests/python/test_preset_parity.py), wide ResNets' names are
 * parsed and checked, and every activation of a preset follows the model's option. */
#include "testutil.h"

#include <string.h>

typedef struct preset_case {
    const char *name;
    int32_t c, h, w, classes;
    int64_t params; /* as sat.h's sat_preset_spec documentation gives it */
} preset_case;

static const preset_case CASES[] = {
    {"preact-resnet18", 3, 32, 32, 10, 11172170},
    {"wrn-28-10", 3, 32, 32, 10, 36479194},
    {"wrn-34-10", 3, 32, 32, 10, 46160474},
    {"wrn-16-4", 3, 32, 32, 10, 2748890},
    {"resnet50", 3, 224, 224, 1000, 25557032},
    {"resnext50-32x4d", 3, 224, 224, 1000, 25028904},
    {"efficientnet-b0", 3, 224, 224, 1000, 5288548},
};

static sat_model *preset_model(sat_context *ctx, const char *name, int32_t c, int32_t h, int32_t w,
                               int32_t classes, int32_t act) {
    char *spec = NULL;
    TU_CHECK(sat_preset_spec(name, c, h, w, classes, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *m = tu_model(ctx, spec, act, 1);
    tu_release(spec);
    return m;
}

static void test_documented_counts(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const preset_case *p = &CASES[i];
        sat_model *m = preset_model(ctx, p->name, p->c, p->h, p->w, p->classes, SAT_ACT_RELU);
        if (sat_model_param_count(m) != p->params)
            fail_msg("%s: %lld parameters, documented %lld", p->name, (long long)sat_model_param_count(m),
                     (long long)p->params);
        int32_t c, h, w, k;
        TU_CHECK(sat_model_shape(m, &c, &h, &w, &k));
        assert_true(c == p->c && h == p->h && w == p->w && k == p->classes);
        tu_release(m);
    }
}

/* ResNet-50, ResNeXt-50 and EfficientNet-B0 also run at 3x64x64 (Tiny ImageNet's shape):
 * only the classifier's inputs change with the shape, not the convolutions. */
static void test_imagenet_presets_at_64(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    const char *names[] = {"resnet50", "resnext50-32x4d", "efficientnet-b0"};
    const int64_t at_10[] = {23528522, 23000394, 4020358};
    for (int i = 0; i < 3; i++) {
        sat_model *m = preset_model(ctx, names[i], 3, 64, 64, 10, SAT_ACT_SILU);
        assert_int_equal(sat_model_param_count(m), at_10[i]);
        float x[3 * 64 * 64], logits[10];
        tu_fill_uniform(x, 3 * 64 * 64, 0, 1, 3);
        TU_CHECK(sat_model_forward(m, x, 1, logits));
        tu_release(m);
    }
}

static void expect_refused(const char *name, int32_t h, const char *needle) {
    char *spec = (char *)0x1;
    assert_int_equal(sat_preset_spec(name, 3, h, h, 10, NULL, NULL, &spec), SAT_E_INVALID_ARG);
    assert_null(spec);
    if (!strstr(sat_last_error(), needle)) fail_msg("%s: message '%s' lacks '%s'", name, sat_last_error(), needle);
}

static void test_names_and_shapes_refused(void **st) {
    (void)st;
    expect_refused("wrn-27-10", 32, "depth 6n+4");
    expect_refused("wrn-4-2", 32, "depth 6n+4");
    expect_refused("wrn-28-0", 32, "unknown preset 'wrn-28-0'");
    expect_refused("wrn-28-65", 32, "widen factor of 1 to 64");
    expect_refused("wrn-28", 32, "unknown preset 'wrn-28'");
    expect_refused("wrn-28-10x", 32, "unknown preset");
    expect_refused("wrn--10", 32, "unknown preset");
    expect_refused("resnet50", 16, "resnet50 needs at least 32x32 input");
    expect_refused("efficientnet-b0", 31, "at least 32x32");
    expect_refused("preact-resnet18", 7, "at least 8x8");
    expect_refused("resnet18", 32, "known: mlp, madry-cnn, small-cnn, resnet20, preact-resnet18, wrn-D-K");
}

/* A spec text grows as long as the preset needs (a wide ResNet of depth 994 has 165 blocks
 * per stage, more than 10 KB of text). */
static void test_long_specs(void **st) {
    (void)st;
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("wrn-994-1", 3, 32, 32, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    assert_true(strlen(spec) > 10000);
    assert_non_null(strstr(spec, "add b494 name=b495\n")); /* the last block */
    const char *tail = "bn\nact\ngap\ndense 10\n";
    assert_string_equal(spec + strlen(spec) - strlen(tail), tail);
}

/* EfficientNet-B0's stochastic depth: the residual branch of block i (of 16) is dropped per
 * example with probability 0.2 i / 16 in training; 9 of the blocks have a residual. */
static void test_efficientnet_stochastic_depth(void **st) {
    (void)st;
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("efficientnet-b0", 3, 64, 64, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    int count = 0;
    for (const char *p = spec; (p = strstr(p, " per=example\n")) != NULL; p++) count++;
    assert_int_equal(count, 9);
    assert_non_null(strstr(spec, "bn\ndropout p=0.175 per=example\nadd b14 name=b15\n"));
    assert_non_null(strstr(spec, "gap\ndropout p=0.2\ndense 10\n"));
}

/* Every `act` line of a preset is the model's activation, so one option switches a whole
 * network (the gates of squeeze-excitation stay sigmoids). */
static void test_one_option_switches_every_activation(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    const int32_t acts[] = {SAT_ACT_SILU, SAT_ACT_RELU, SAT_ACT_GELU};
    for (int a = 0; a < 3; a++) {
        sat_model *m = preset_model(ctx, "efficientnet-b0", 3, 32, 32, 10, acts[a]);
        int32_t n_act = 0, n_sigmoid = 0;
        for (int32_t i = 0; i < sat_model_layer_count(m); i++) {
            sat_layer_info li;
            li.struct_size = sizeof li;
            TU_CHECK(sat_model_layer_info(m, i, &li));
            if (li.op == SAT_LAYER_ACT) {
                assert_int_equal(li.activation, acts[a]);
                n_act++;
            }
            n_sigmoid += li.op == SAT_LAYER_SIGMOID;
        }
        /* stem and head, two per block (the first block has no expansion) and one per
         * squeeze-excitation: 2 + 16 * 3 - 1 */
        assert_int_equal(n_act, 49);
        assert_int_equal(n_sigmoid, 16);
        tu_release(m);
    }
}

/* The activation every act layer of m has (fails if they differ). */
static int32_t only_activation(const sat_model *m) {
    int32_t act = -100;
    for (int32_t i = 0; i < sat_model_layer_count(m); i++) {
        sat_layer_info li;
        li.struct_size = sizeof li;
        TU_CHECK(sat_model_layer_info(m, i, &li));
        if (li.op != SAT_LAYER_ACT) continue;
        if (act != -100 && li.activation != act) fail_msg("layer %d: activation %d, before %d", i, li.activation, act);
        act = li.activation;
    }
    return act;
}

/* Left at its default, the model's activation option gives each network its original
 * activation (ReLU in the ResNets, SiLU in EfficientNet), libsat's own presets SiLU; any
 * value given, SiLU included, is taken as given; the model holds the activation it became,
 * in its options and in its file. */
static void test_original_activation_by_default(void **st) {
    (void)st;
    sat_model_opts o;
    TU_CHECK(sat_model_opts_init(&o, sizeof o));
    assert_int_equal(o.activation, SAT_ACT_DEFAULT);
    sat_context *ctx = tu_context(1, 0);
    static const struct {
        const char *name;
        int32_t side, act;
    } cases[] = {
        {"preact-resnet18", 8, SAT_ACT_RELU}, {"wrn-10-1", 8, SAT_ACT_RELU},
        {"resnet50", 32, SAT_ACT_RELU},       {"resnext50-32x4d", 32, SAT_ACT_RELU},
        {"efficientnet-b0", 32, SAT_ACT_SILU}, {"resnet20", 8, SAT_ACT_SILU},
        {"madry-cnn", 8, SAT_ACT_SILU},       {"small-cnn", 8, SAT_ACT_SILU},
        {"mlp", 8, SAT_ACT_SILU},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sat_model *m = preset_model(ctx, cases[i].name, 3, cases[i].side, cases[i].side, 10, SAT_ACT_DEFAULT);
        if (only_activation(m) != cases[i].act)
            fail_msg("%s: activation %d by default, expected %d", cases[i].name, only_activation(m), cases[i].act);
        TU_CHECK(sat_model_get_opts(m, &o));
        assert_int_equal(o.activation, cases[i].act);
        tu_release(m);
        m = preset_model(ctx, cases[i].name, 3, cases[i].side, cases[i].side, 10, SAT_ACT_SILU);
        assert_int_equal(only_activation(m), SAT_ACT_SILU);
        tu_release(m);
    }
    /* A spec names its own on the input line; the file keeps what the model became. */
    const char *spec = "input 1 4 4 act=gelu\nflatten\ndense 8\nact\ndense 3 name=out\n";
    sat_model *m = tu_model(ctx, spec, SAT_ACT_DEFAULT, 2);
    assert_int_equal(only_activation(m), SAT_ACT_GELU);
    void *buf = NULL;
    size_t size = 0;
    TU_CHECK(sat_model_save_buffer(m, NULL, &buf, &size));
    tu_own_sat_mem(buf);
    sat_model *back = NULL;
    TU_CHECK(sat_model_load_buffer(ctx, buf, size, NULL, &back));
    tu_own_model(back);
    assert_int_equal(only_activation(back), SAT_ACT_GELU);
    assert_int_equal(only_activation(tu_model(ctx, spec, SAT_ACT_RELU, 2)), SAT_ACT_RELU);
    assert_int_equal(only_activation(tu_model(ctx, "input 1 4 4\nflatten\ndense 8\nact\ndense 3\n",
                                              SAT_ACT_DEFAULT, 2)),
                     SAT_ACT_SILU);
    /* An unknown name, or act= on another line, is refused with the line. */
    sat_model *bad = NULL;
    sat_model_opts_init(&o, sizeof o);
    assert_int_equal(sat_model_create(ctx, "input 1 4 4 act=nope\nflatten\ndense 3\n", &o, &bad),
                     SAT_E_INVALID_ARG);
    assert_null(bad);
    assert_non_null(strstr(sat_last_error(), "line 1: unknown activation 'nope'"));
    assert_int_not_equal(sat_model_create(ctx, "input 1 4 4\nflatten act=relu\ndense 3\n", &o, &bad), SAT_OK);
    assert_null(bad);
    o.activation = -3;
    assert_int_equal(sat_model_create(ctx, spec, &o, &bad), SAT_E_INVALID_ARG);
    assert_null(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_counts),
        cmocka_unit_test(test_imagenet_presets_at_64),
        cmocka_unit_test(test_names_and_shapes_refused),
        cmocka_unit_test(test_long_specs),
        cmocka_unit_test(test_efficientnet_stochastic_depth),
        cmocka_unit_test(test_one_option_switches_every_activation),
        cmocka_unit_test(test_original_activation_by_default),
    };
    return tu_run_group("presets", tests, sizeof tests / sizeof tests[0]);
}
