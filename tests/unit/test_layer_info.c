/* test_layer_info.c - layer introspection: on a spec with every op and every kind of tensor,
 * the reported tensors cover the parameter and state blocks exactly once, agree with the
 * decay mask and with the shapes the spec implies, name their producers, and bad calls fail
 * without writing. */
#include "testutil.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

static const char *const SPEC_ALL =
    "input 2 7 7\n"
    "normalize mean=0.4,0.6 std=0.3,0.5\n"
    "conv 4 k=3 s=2 p=1\n"
    "act smoothrelu param=5\n"
    "conv 3 k=1\n"
    "bn\n"
    "act name=a\n"
    "conv 3 k=3 p=1 bias=0\n"
    "add a\n"
    "avgpool k=2\n"
    "act\n"
    "maxpool k=1 name=mp\n"
    "gap name=g\n"
    "dense 3 from=mp\n"
    "add g\n"
    "flatten\n"
    "dense 5 bias=0\n"
    "bn\n"
    "act gelu\n"
    "dense 4\n";

#define NUM_LAYERS 20

static const char *const OPS[NUM_LAYERS] = {
    "input", "normalize", "conv", "act", "conv", "bn",   "act",     "conv", "add", "avgpool",
    "act",   "maxpool",   "gap",  "dense", "add", "flatten", "dense", "bn", "act", "dense"};

static sat_model *model_all(void) {
    sat_context *ctx = tu_context(1, 0);
    return tu_model(ctx, SPEC_ALL, SAT_ACT_SILU, 4);
}

static sat_layer_info layer(const sat_model *m, int32_t i) {
    sat_layer_info li;
    memset(&li, 0xab, sizeof li);
    li.struct_size = sizeof li;
    TU_CHECK(sat_model_layer_info(m, i, &li));
    return li;
}

static void expect_tensor(const sat_tensor_info *t, int32_t role, int ndim, int32_t s0, int32_t s1,
                          int32_t s2, int32_t s3) {
    const int32_t s[4] = {s0, s1, s2, s3};
    assert_int_equal(t->role, role);
    assert_int_equal(t->ndim, ndim);
    int64_t count = 1;
    for (int d = 0; d < 4; d++) {
        assert_int_equal(t->shape[d], d < ndim ? s[d] : 0);
        if (d < ndim) count *= s[d];
    }
    assert_int_equal(t->count, count);
}

static void test_ops_shapes_and_inputs(void **st) {
    (void)st;
    sat_model *m = model_all();
    assert_int_equal(sat_model_layer_count(m), NUM_LAYERS);
    for (int32_t i = 0; i < NUM_LAYERS; i++) {
        sat_layer_info li = layer(m, i);
        assert_string_equal(li.op_name, OPS[i]);
        assert_int_equal(li.line, i + 1);
        assert_int_equal(li.reserved0, 0);
        /* the producer is the previous line unless the spec says from= (or add's second input) */
        if (i == 0) assert_int_equal(li.input0, -1);
        else if (i != 13) assert_int_equal(li.input0, i - 1);
        if (li.op != SAT_LAYER_ADD) assert_int_equal(li.input1, -1);
        for (int32_t t = li.num_params; t < SAT_LAYER_MAX_TENSORS; t++) assert_int_equal(li.params[t].ndim, 0);
        for (int32_t t = li.num_state; t < SAT_LAYER_MAX_TENSORS; t++) assert_int_equal(li.state[t].ndim, 0);
    }
    sat_layer_info li = layer(m, 0);
    assert_int_equal(li.op, SAT_LAYER_INPUT);
    assert_true(li.channels == 2 && li.height == 7 && li.width == 7 && li.num_params == 0);

    li = layer(m, 2); /* conv 4 k=3 s=2 p=1 on 2x7x7 */
    assert_int_equal(li.op, SAT_LAYER_CONV);
    assert_true(li.channels == 4 && li.height == 4 && li.width == 4);
    assert_true(li.units == 4 && li.kernel == 3 && li.stride == 2 && li.padding == 1 && li.has_bias == 1);
    assert_int_equal(li.num_params, 2);
    expect_tensor(&li.params[0], SAT_TENSOR_WEIGHT, 4, 4, 2, 3, 3);
    expect_tensor(&li.params[1], SAT_TENSOR_BIAS, 1, 4, 0, 0, 0);
    assert_int_equal(li.params[0].offset, 0); /* the first layer with parameters starts the block */

    li = layer(m, 3); /* act smoothrelu param=5: its own kind and a learnable alpha */
    assert_int_equal(li.op, SAT_LAYER_ACT);
    assert_int_equal(li.activation, SAT_ACT_SMOOTHRELU);
    assert_true(li.act_param == 5.0f);
    assert_int_equal(li.num_params, 1);
    expect_tensor(&li.params[0], SAT_TENSOR_ACT_ALPHA, 1, 1, 0, 0, 0);
    assert_true(sat_model_params(m)[li.params[0].offset] == 5.0f);

    li = layer(m, 5); /* bn after conv 3 */
    assert_int_equal(li.op, SAT_LAYER_BN);
    assert_true(li.num_params == 2 && li.num_state == 2);
    expect_tensor(&li.params[0], SAT_TENSOR_BN_SCALE, 1, 3, 0, 0, 0);
    expect_tensor(&li.params[1], SAT_TENSOR_BN_SHIFT, 1, 3, 0, 0, 0);
    expect_tensor(&li.state[0], SAT_TENSOR_RUNNING_MEAN, 1, 3, 0, 0, 0);
    expect_tensor(&li.state[1], SAT_TENSOR_RUNNING_VAR, 1, 3, 0, 0, 0);
    for (int32_t c = 0; c < 3; c++) /* initialised as documented: gamma 1, variance 1 */
        assert_true(sat_model_params(m)[li.params[0].offset + c] == 1.0f &&
                    sat_model_state(m)[li.state[1].offset + c] == 1.0f);

    li = layer(m, 6); /* act without a kind: the model's activation and its default */
    assert_string_equal(li.name, "a");
    assert_true(li.activation == SAT_ACT_SILU && li.act_param == 1.0f && li.num_params == 0);

    li = layer(m, 7); /* conv bias=0 */
    assert_true(li.has_bias == 0 && li.num_params == 1);
    expect_tensor(&li.params[0], SAT_TENSOR_WEIGHT, 4, 3, 3, 3, 3);

    li = layer(m, 8); /* add a */
    assert_true(li.op == SAT_LAYER_ADD && li.input0 == 7 && li.input1 == 6);

    li = layer(m, 9);
    assert_true(li.op == SAT_LAYER_AVGPOOL && li.kernel == 2 && li.stride == 2); /* stride: k by default */
    assert_true(li.channels == 3 && li.height == 2 && li.width == 2);
    li = layer(m, 11);
    assert_true(li.op == SAT_LAYER_MAXPOOL && li.kernel == 1 && li.stride == 1 && li.height == 2);
    assert_int_equal(li.activation, -1);
    assert_true(isnan(li.act_param));
    li = layer(m, 12);
    assert_true(li.op == SAT_LAYER_GAP && li.channels == 3 && li.height == 1 && li.width == 1);

    li = layer(m, 13); /* dense 3 from=mp: reads the 3x2x2 maxpool output as 12 features */
    assert_true(li.op == SAT_LAYER_DENSE && li.input0 == 11 && li.units == 3);
    expect_tensor(&li.params[0], SAT_TENSOR_WEIGHT, 2, 3, 12, 0, 0);
    expect_tensor(&li.params[1], SAT_TENSOR_BIAS, 1, 3, 0, 0, 0);
    li = layer(m, 14);
    assert_true(li.input0 == 13 && li.input1 == 12);
    li = layer(m, 15);
    assert_true(li.op == SAT_LAYER_FLATTEN && li.channels == 3 && li.height == 1);

    li = layer(m, 16); /* dense 5 bias=0 */
    assert_int_equal(li.num_params, 1);
    expect_tensor(&li.params[0], SAT_TENSOR_WEIGHT, 2, 5, 3, 0, 0);
    li = layer(m, 17); /* bn after dense: over features */
    assert_true(li.channels == 5 && li.height == 1 && li.num_state == 2);
    expect_tensor(&li.state[0], SAT_TENSOR_RUNNING_MEAN, 1, 5, 0, 0, 0);
    li = layer(m, 18);
    assert_true(li.activation == SAT_ACT_GELU && li.act_param == 1.0f);
    li = layer(m, 19);
    assert_true(li.channels == 4 && li.units == 4);
    expect_tensor(&li.params[0], SAT_TENSOR_WEIGHT, 2, 4, 5, 0, 0);
    expect_tensor(&li.params[1], SAT_TENSOR_BIAS, 1, 4, 0, 0, 0);
}

/* Every float of the parameter and state blocks belongs to exactly one reported tensor, and
 * the weights are exactly what the decay mask marks. */
static void check_cover(const sat_model *m) {
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    int32_t *pc = tu_alloc(sizeof(int32_t) * (size_t)np), *sc = tu_alloc(sizeof(int32_t) * (size_t)(ns + 1));
    uint8_t *mask = tu_alloc((size_t)np), *weight = tu_alloc((size_t)np);
    TU_CHECK(sat_model_decay_mask(m, mask));
    const int32_t layers = sat_model_layer_count(m);
    for (int32_t i = 0; i < layers; i++) {
        sat_layer_info li = layer(m, i);
        assert_true(li.num_params >= 0 && li.num_params <= SAT_LAYER_MAX_TENSORS);
        assert_true(li.num_state >= 0 && li.num_state <= SAT_LAYER_MAX_TENSORS);
        for (int32_t t = 0; t < li.num_params; t++) {
            const sat_tensor_info *ti = &li.params[t];
            assert_true(ti->offset >= 0 && ti->count >= 1 && ti->offset + ti->count <= np);
            for (int64_t j = 0; j < ti->count; j++) {
                pc[ti->offset + j]++;
                weight[ti->offset + j] = ti->role == SAT_TENSOR_WEIGHT;
            }
        }
        for (int32_t t = 0; t < li.num_state; t++) {
            const sat_tensor_info *ti = &li.state[t];
            assert_true(ti->offset >= 0 && ti->count >= 1 && ti->offset + ti->count <= ns);
            for (int64_t j = 0; j < ti->count; j++) sc[ti->offset + j]++;
        }
    }
    for (int64_t j = 0; j < np; j++) {
        if (pc[j] != 1) fail_msg("parameter %lld is covered %d times", (long long)j, pc[j]);
        assert_int_equal(weight[j], mask[j]);
    }
    for (int64_t j = 0; j < ns; j++)
        if (sc[j] != 1) fail_msg("state value %lld is covered %d times", (long long)j, sc[j]);
    tu_free(pc);
    tu_free(sc);
    tu_free(mask);
    tu_free(weight);
}

static void test_tensors_cover_blocks_once(void **st) {
    (void)st;
    sat_model *m = model_all();
    assert_true(sat_model_state_count(m) == 2 * 3 + 2 * 5);
    check_cover(m);
    /* a preset with residual blocks and batch norm throughout */
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 32, 32, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *r = tu_model(tu_context(1, 0), spec, SAT_ACT_SMOOTHRELU, 1);
    check_cover(r);
}

/* The reported layout is the one the executor reads: a conv weight [out][in][ki][kj] and
 * bias set through the offsets give the convolution computed by hand. */
static void test_layout_is_what_forward_reads(void **st) {
    (void)st;
    sat_model *m = tu_model(tu_context(1, 0), "input 2 3 3\nconv 2 k=2\nflatten\ndense 3\n", SAT_ACT_RELU, 1);
    sat_layer_info conv = layer(m, 1), dense = layer(m, 3);
    float *p = sat_model_params(m);
    float x[18];
    tu_fill_uniform(x, 18, 0.0f, 1.0f, 5);
    float logits[3];
    TU_CHECK(sat_model_forward(m, x, 1, logits));
    const float *w = p + conv.params[0].offset, *b = p + conv.params[1].offset;
    const float *dw = p + dense.params[0].offset, *db = p + dense.params[1].offset;
    double h[2][2][2];
    for (int o = 0; o < 2; o++)
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 2; c++) {
                double s = b[o];
                for (int i = 0; i < 2; i++)
                    for (int ki = 0; ki < 2; ki++)
                        for (int kj = 0; kj < 2; kj++)
                            s += (double)w[((o * 2 + i) * 2 + ki) * 2 + kj] * x[(i * 3 + r + ki) * 3 + c + kj];
                h[o][r][c] = s;
            }
    for (int k = 0; k < 3; k++) {
        double z = db[k];
        for (int f = 0; f < 8; f++) z += (double)dw[k * 8 + f] * (&h[0][0][0])[f]; /* [out][in], in = C,H,W */
        assert_true(fabs(z - logits[k]) < 1e-5);
    }
}

static void test_errors_write_nothing(void **st) {
    (void)st;
    sat_model *m = model_all();
    assert_true(sat_model_layer_count(NULL) == SAT_E_INVALID_ARG);
    sat_layer_info li, keep;
    memset(&li, 0x5a, sizeof li);
    li.struct_size = sizeof li;
    keep = li;
    assert_int_equal(sat_model_layer_info(NULL, 0, &li), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "sat_model_layer_info"));
    assert_int_equal(sat_model_layer_info(m, 0, NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(m), "sat_model_layer_info"));
    assert_int_equal(sat_model_layer_info(m, -1, &li), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(m), "layer -1"));
    assert_int_equal(sat_model_layer_info(m, NUM_LAYERS, &li), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(m), "0..19"));
    assert_memory_equal(&li, &keep, sizeof li);
    li.struct_size = 3;
    keep = li;
    assert_int_equal(sat_model_layer_info(m, 0, &li), SAT_E_INVALID_ARG);
    assert_memory_equal(&li, &keep, sizeof li);
}

/* An older caller's smaller struct gets its prefix only; a newer caller's larger struct gets
 * zeros beyond the library's own. */
static void test_struct_size_prefix(void **st) {
    (void)st;
    sat_model *m = model_all();
    const size_t prefix = offsetof(sat_layer_info, line);
    unsigned char buf[sizeof(sat_layer_info) + 16];
    memset(buf, 0x77, sizeof buf);
    sat_layer_info *li = (sat_layer_info *)(void *)buf;
    li->struct_size = (uint32_t)prefix;
    TU_CHECK(sat_model_layer_info(m, 2, li));
    assert_int_equal(li->op, SAT_LAYER_CONV);
    assert_string_equal(li->name, "");
    for (size_t i = prefix; i < sizeof buf; i++) assert_int_equal(buf[i], 0x77);

    memset(buf, 0x77, sizeof buf);
    li->struct_size = (uint32_t)sizeof buf;
    TU_CHECK(sat_model_layer_info(m, 2, li));
    assert_int_equal(li->struct_size, sizeof buf);
    assert_int_equal(li->units, 4);
    for (size_t i = sizeof(sat_layer_info); i < sizeof buf; i++) assert_int_equal(buf[i], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_shapes_and_inputs),
        cmocka_unit_test(test_tensors_cover_blocks_once),
        cmocka_unit_test(test_layout_is_what_forward_reads),
        cmocka_unit_test(test_errors_write_nothing),
        cmocka_unit_test(test_struct_size_prefix),
    };
    return tu_run_group("test_layer_info", tests, sizeof tests / sizeof tests[0]);
}
