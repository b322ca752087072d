/* test_onnx_export.c - ONNX export: a spec with every op and every activation, decoded with
 * the protobuf-c code generated from onnx.proto, has the declared opset and IR version, the
 * model's input and output shapes, a well-formed graph (every input defined before use, every
 * name defined once), each layer's ONNX form and attributes, and initializers that hold
 * the model's parameters and running statistics bit for bit. Options, names, the file
 * write and bad calls too. (The numbers the graph computes are checked independently of
 * libsat by tests/python/onnx_export_check.py, which rebuilds it in PyTorch.) */
#include "testutil.h"

#include "onnx.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every op, every activation, both ranks meeting (dense -> conv, a [N, C] gate times a
 * [N, C, H, W] tensor), a grouped conv without bias and a padded max pool. */
static const char *const SPEC_ALL =
    "input 3 8 8\n"
    "normalize mean=0.5,0.4,0.3 std=0.2,0.25,0.3\n"
    "conv 8 k=3 p=1 name=stem\n"
    "bn\n"
    "act relu\n"
    "conv 8 k=3 p=1 g=2 bias=0\n"
    "bn\n"
    "act softplus name=a1\n"
    "add stem\n"
    "maxpool k=3 s=2 p=1\n"
    "act psoftplus param=5\n"
    "conv 8 k=1\n"
    "act silu name=body\n"
    "gap\n"
    "flatten\n"
    "dense 4\n"
    "act gelu\n"
    "dense 8\n"
    "sigmoid name=gate\n"
    "mul body\n"
    "avgpool k=2\n"
    "act gelu-tanh\n"
    "act elu param=0.5\n"
    "act celu param=2\n"
    "act smoothrelu\n"
    "dropout p=0.1\n"
    "dense 6 bias=0\n"
    "conv 5 k=1\n"
    "act silu param=2\n"
    "flatten\n"
    "dense 10\n";

static void free_proto(void *p) { onnx__model_proto__free_unpacked(p, NULL); }

/* A model of spec whose parameters (SmoothReLU's alpha aside, which must stay > 0) and
 * running statistics are moved off their initial values, so that each initializer is
 * told apart. */
static sat_model *model_of(const char *spec, int32_t act) {
    sat_model *m = tu_model(tu_context(1, 0), spec, act, 4);
    float *p = sat_model_params(m), *s = sat_model_state(m);
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    float *noise = tu_alloc((size_t)(np + ns + 1) * sizeof *noise);
    tu_fill_uniform(noise, np + ns, -0.1f, 0.1f, 7);
    uint8_t *is_alpha = tu_alloc((size_t)np + 1);
    for (int32_t i = 0; i < sat_model_layer_count(m); i++) {
        sat_layer_info li = {.struct_size = sizeof li};
        TU_CHECK(sat_model_layer_info(m, i, &li));
        for (int32_t t = 0; t < li.num_params; t++)
            if (li.params[t].role == SAT_TENSOR_ACT_ALPHA) is_alpha[li.params[t].offset] = 1;
    }
    for (int64_t i = 0; i < np; i++)
        if (!is_alpha[i]) p[i] += noise[i];
    for (int64_t i = 0; i < ns; i++) s[i] = 1.0f + 5.0f * noise[np + i]; /* > 0: means and variances */
    return m;
}

static Onnx__ModelProto *decode(const void *buf, size_t size) {
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, buf);
    assert_non_null(mp);
    tu_own(mp, free_proto);
    return mp;
}

static Onnx__ModelProto *export_model(const sat_model *m, const sat_onnx_export_opts *opts) {
    void *buf = NULL;
    size_t size = 0;
    int32_t st = sat_model_save_onnx_buffer(m, opts, &buf, &size);
    if (st) fail_msg("sat_model_save_onnx_buffer -> %d: %s", st, sat_model_last_error(m));
    tu_own_sat_mem(buf);
    assert_true(size > 0);
    return decode(buf, size);
}

static const Onnx__TensorProto *initializer(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}

static size_t count_ops(const Onnx__GraphProto *g, const char *op) {
    size_t n = 0;
    for (size_t i = 0; i < g->n_node; i++) n += !strcmp(g->node[i]->op_type, op);
    return n;
}

/* The node producing tensor `name`, or NULL. */
static const Onnx__NodeProto *producer(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_node; i++)
        if (!strcmp(g->node[i]->output[0], name)) return g->node[i];
    return NULL;
}

static const Onnx__AttributeProto *attribute(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

static void expect_ints(const Onnx__NodeProto *n, const char *name, size_t count, int64_t v) {
    const Onnx__AttributeProto *a = attribute(n, name);
    assert_non_null(a);
    assert_int_equal(a->type, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    assert_int_equal(a->n_ints, count);
    for (size_t i = 0; i < count; i++) assert_int_equal(a->ints[i], v);
}

/* A value of the graph's interface: float, [batch (symbolic, or batch_dim), dims...]. */
static void expect_interface(const Onnx__ValueInfoProto *v, const char *name, int64_t batch_dim, const int64_t *dims,
                             size_t ndim) {
    assert_string_equal(v->name, name);
    assert_int_equal(v->type->value_case, ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE);
    const Onnx__TypeProto__Tensor *t = v->type->tensor_type;
    assert_int_equal(t->elem_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    assert_int_equal(t->shape->n_dim, ndim + 1);
    if (batch_dim == 0) {
        assert_int_equal(t->shape->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
        assert_string_equal(t->shape->dim[0]->dim_param, "batch");
    } else {
        assert_int_equal(t->shape->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
        assert_int_equal(t->shape->dim[0]->dim_value, batch_dim);
    }
    for (size_t d = 0; d < ndim; d++) {
        assert_int_equal(t->shape->dim[d + 1]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
        assert_int_equal(t->shape->dim[d + 1]->dim_value, dims[d]);
    }
}

/* Every node input is the graph input, an initializer or an earlier node's output; every
 * name is defined once; the last node writes the graph output. */
static void expect_well_formed(const Onnx__GraphProto *g) {
    size_t defined_cap = g->n_node + g->n_initializer + 1, n_defined = 0;
    const char **defined = tu_alloc(defined_cap * sizeof *defined);
    defined[n_defined++] = g->input[0]->name;
    for (size_t i = 0; i < g->n_initializer; i++) defined[n_defined++] = g->initializer[i]->name;
    for (size_t i = 0; i < n_defined; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(defined[i], defined[j])) fail_msg("'%s' is defined twice", defined[i]);
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            size_t j = 0;
            while (j < n_defined && strcmp(defined[j], n->input[k])) j++;
            if (j == n_defined) fail_msg("node %zu (%s) reads '%s' before it is defined", i, n->op_type, n->input[k]);
        }
        assert_int_equal(n->n_output, 1);
        for (size_t j = 0; j < n_defined; j++)
            if (!strcmp(defined[j], n->output[0])) fail_msg("'%s' is defined twice", n->output[0]);
        defined[n_defined++] = n->output[0];
    }
    assert_int_equal(g->n_output, 1);
    assert_string_equal(g->node[g->n_node - 1]->output[0], g->output[0]->name);
}

/* The ONNX name of layer i: its label, else what it is and its index. */
static void layer_name(const sat_layer_info *li, int32_t i, char *out, size_t size) {
    if (li->name[0])
        snprintf(out, size, "%s", li->name);
    else
        snprintf(out, size, "%s%d", li->op == SAT_LAYER_ACT ? sat_activation_name(li->activation) : li->op_name, i);
}

/* Each parameter and state tensor of every layer is an initializer "<layer>.<what>" with
 * the tensor's shape and its values bit for bit. */
static void expect_initializers_hold_blocks(sat_model *m, const Onnx__GraphProto *g) {
    static const char *const role_name[] = {"weight", "bias", "scale", "bias", "alpha", "running_mean",
                                            "running_var"};
    const float *p = sat_model_params(m), *s = sat_model_state(m);
    int64_t covered = 0;
    for (int32_t i = 1; i < sat_model_layer_count(m); i++) {
        sat_layer_info li = {.struct_size = sizeof li};
        TU_CHECK(sat_model_layer_info(m, i, &li));
        char layer[64], name[96];
        layer_name(&li, i, layer, sizeof layer);
        for (int32_t t = 0; t < li.num_params + li.num_state; t++) {
            const int is_state = t >= li.num_params;
            const sat_tensor_info *ti = is_state ? &li.state[t - li.num_params] : &li.params[t];
            snprintf(name, sizeof name, "%s.%s", layer, role_name[ti->role]);
            const Onnx__TensorProto *init = initializer(g, name);
            if (!init) fail_msg("no initializer '%s'", name);
            assert_int_equal(init->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
            assert_int_equal(init->n_dims, ti->ndim);
            for (int d = 0; d < ti->ndim; d++) assert_int_equal(init->dims[d], ti->shape[d]);
            assert_int_equal(init->n_float_data, ti->count);
            const float *src = (is_state ? s : p) + ti->offset;
            assert_memory_equal(init->float_data, src, (size_t)ti->count * sizeof(float));
            covered += ti->count;
        }
    }
    assert_int_equal(covered, sat_model_param_count(m) + sat_model_state_count(m));
}

static void test_every_op(void **state) {
    (void)state;
    sat_model *m = model_of(SPEC_ALL, SAT_ACT_RELU);
    const Onnx__ModelProto *mp = export_model(m, NULL);
    assert_int_equal(mp->ir_version, 7);
    assert_int_equal(mp->n_opset_import, 1);
    assert_true(!mp->opset_import[0]->domain || !*mp->opset_import[0]->domain);
    assert_int_equal(mp->opset_import[0]->version, 13);
    assert_string_equal(mp->producer_name, "libsat");
    assert_string_equal(mp->producer_version, sat_version_string());
    const Onnx__GraphProto *g = mp->graph;
    assert_int_equal(g->n_input, 1);
    const int64_t in_dims[3] = {3, 8, 8}, out_dims[1] = {10};
    expect_interface(g->input[0], "input", 0, in_dims, 3);
    expect_interface(g->output[0], "logits", 0, out_dims, 1);
    expect_well_formed(g);
    expect_initializers_hold_blocks(m, g);

    /* normalisation: Sub and Div by [1, C, 1, 1] constants */
    const Onnx__NodeProto *norm = producer(g, "normalize1");
    assert_non_null(norm);
    assert_string_equal(norm->op_type, "Div");
    const Onnx__TensorProto *mean = initializer(g, "normalize1.mean"), *std = initializer(g, "normalize1.std");
    assert_non_null(mean);
    assert_non_null(std);
    assert_int_equal(mean->n_dims, 4);
    assert_int_equal(mean->dims[1], 3);
    assert_float_equal(mean->float_data[1], 0.4f, 0.0f);
    assert_float_equal(std->float_data[2], 0.3f, 0.0f);
    assert_string_equal(producer(g, "normalize1.centred")->op_type, "Sub");

    /* conv attributes; the grouped one has no bias input */
    const Onnx__NodeProto *stem = producer(g, "stem"), *grouped = producer(g, "conv5");
    assert_string_equal(stem->op_type, "Conv");
    assert_int_equal(stem->n_input, 3);
    expect_ints(stem, "kernel_shape", 2, 3);
    expect_ints(stem, "pads", 4, 1);
    expect_ints(stem, "strides", 2, 1);
    assert_int_equal(attribute(stem, "group")->i, 1);
    assert_int_equal(grouped->n_input, 2);
    assert_int_equal(attribute(grouped, "group")->i, 2);

    /* batch norm for inference: running statistics, libsat's epsilon */
    const Onnx__NodeProto *bn = producer(g, "bn3");
    assert_string_equal(bn->op_type, "BatchNormalization");
    assert_int_equal(bn->n_input, 5);
    assert_string_equal(bn->input[3], "bn3.running_mean");
    assert_string_equal(bn->input[4], "bn3.running_var");
    assert_float_equal(attribute(bn, "epsilon")->f, 1e-5f, 0.0f);

    /* pooling */
    const Onnx__NodeProto *mp9 = producer(g, "maxpool9");
    assert_string_equal(mp9->op_type, "MaxPool");
    expect_ints(mp9, "kernel_shape", 2, 3);
    expect_ints(mp9, "strides", 2, 2);
    expect_ints(mp9, "pads", 4, 1);
    assert_string_equal(producer(g, "avgpool20")->op_type, "AveragePool");
    assert_null(attribute(producer(g, "avgpool20"), "pads"));
    assert_string_equal(producer(g, "gap13")->op_type, "GlobalAveragePool");

    /* add and mul; the [N, C] gate gains its unit axes before multiplying [N, C, H, W] */
    assert_string_equal(producer(g, "add8")->op_type, "Add");
    const Onnx__NodeProto *mul = producer(g, "mul19");
    assert_string_equal(mul->op_type, "Mul");
    assert_string_equal(mul->input[0], "mul19.in0_4d");
    assert_string_equal(mul->input[1], "body");
    const Onnx__NodeProto *unsq = producer(g, "mul19.in0_4d");
    assert_string_equal(unsq->op_type, "Unsqueeze");
    assert_string_equal(unsq->input[0], "gate");
    const Onnx__TensorProto *axes = initializer(g, unsq->input[1]);
    assert_int_equal(axes->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    assert_int_equal(axes->n_int64_data, 2);
    assert_int_equal(axes->int64_data[0], 2);
    assert_int_equal(axes->int64_data[1], 3);
    /* dense after a rank-4 tensor flattens it; conv after dense unsqueezes */
    assert_string_equal(producer(g, "dense26")->input[0], "dense26.flat");
    assert_string_equal(producer(g, "dense26.flat")->op_type, "Flatten");
    assert_string_equal(producer(g, "conv27")->input[0], "conv27.in0_4d");
    const Onnx__NodeProto *gemm = producer(g, "dense15");
    assert_string_equal(gemm->op_type, "Gemm");
    assert_int_equal(attribute(gemm, "transB")->i, 1);
    assert_string_equal(producer(g, "flatten14")->op_type, "Flatten");
    assert_string_equal(producer(g, "dropout25")->op_type, "Identity");
    assert_string_equal(producer(g, "gate")->op_type, "Sigmoid");

    /* activations */
    assert_float_equal(attribute(producer(g, "elu22"), "alpha")->f, 0.5f, 0.0f);
    assert_float_equal(attribute(producer(g, "celu23"), "alpha")->f, 2.0f, 0.0f);
    assert_int_equal(count_ops(g, "Erf"), 1);
    assert_int_equal(count_ops(g, "Tanh"), 1);
    assert_int_equal(count_ops(g, "Log"), 1);
    assert_int_equal(count_ops(g, "Softplus"), 2);
    /* the last dense writes the logits */
    const Onnx__NodeProto *last = g->node[g->n_node - 1];
    assert_string_equal(last->op_type, "Gemm");
    assert_string_equal(last->output[0], "logits");
}

/* Each activation's ONNX form, node by node, between two dense layers. */
static void test_activation_forms(void **state) {
    (void)state;
    static const struct {
        int32_t act;
        const char *ops;
    } forms[] = {
        {SAT_ACT_RELU, "Relu"},
        {SAT_ACT_SOFTPLUS, "Softplus"},
        {SAT_ACT_PSOFTPLUS, "Mul Softplus Div"},
        {SAT_ACT_SILU, "Sigmoid Mul"},
        {SAT_ACT_GELU, "Div Erf Add Mul Mul"},
        {SAT_ACT_GELU_TANH, "Mul Mul Mul Add Mul Tanh Add Mul Mul"},
        {SAT_ACT_ELU, "Elu"},
        {SAT_ACT_CELU, "Celu"},
        {SAT_ACT_SMOOTHRELU, "Relu Mul Add Log Div Sub"},
    };
    assert_int_equal(sizeof forms / sizeof forms[0], SAT_ACT_COUNT);
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        sat_model *m = model_of("input 2 3 3\ndense 4\nact\ndense 3\n", forms[f].act);
        const Onnx__GraphProto *g = export_model(m, NULL)->graph;
        char ops[256] = "";
        /* nodes: Flatten, Gemm, the activation's, Gemm */
        for (size_t i = 2; i + 1 < g->n_node; i++)
            snprintf(ops + strlen(ops), sizeof ops - strlen(ops), "%s%s", i > 2 ? " " : "", g->node[i]->op_type);
        if (strcmp(ops, forms[f].ops))
            fail_msg("%s is written as '%s', expected '%s'", sat_activation_name(forms[f].act), ops, forms[f].ops);
        char out[32];
        snprintf(out, sizeof out, "%s2", sat_activation_name(forms[f].act));
        assert_string_equal(g->node[g->n_node - 2]->output[0], out);
    }
}

/* The layers' own constants: parametric softplus's and SiLU's, SmoothReLU's learnable
 * alpha as it is now (not its initial value), GELU's. */
static void test_activation_constants(void **state) {
    (void)state;
    sat_model *m = model_of("input 1 2 2\nact psoftplus param=3\nact silu param=2\nact smoothrelu param=50\n"
                            "act gelu\nflatten\n", SAT_ACT_RELU);
    float *p = sat_model_params(m);
    p[0] = 42.0f; /* SmoothReLU's alpha, the model's only parameter */
    const Onnx__GraphProto *g = export_model(m, NULL)->graph;
    assert_float_equal(initializer(g, "psoftplus1.alpha")->float_data[0], 3.0f, 0.0f);
    assert_int_equal(initializer(g, "psoftplus1.alpha")->n_dims, 0);
    assert_float_equal(initializer(g, "silu2.beta")->float_data[0], 2.0f, 0.0f);
    assert_string_equal(producer(g, "silu2.scaled")->op_type, "Mul");
    assert_float_equal(initializer(g, "smoothrelu3.alpha")->float_data[0], 42.0f, 0.0f);
    assert_float_equal(initializer(g, "const.sqrt2")->float_data[0], sqrtf(2.0f), 0.0f);
    assert_float_equal(initializer(g, "const.one")->float_data[0], 1.0f, 0.0f);
    assert_float_equal(initializer(g, "const.half")->float_data[0], 0.5f, 0.0f);
    /* constants are shared: one "const.one" for SmoothReLU and GELU */
    size_t ones = 0;
    for (size_t i = 0; i < g->n_initializer; i++) ones += !strcmp(g->initializer[i]->name, "const.one");
    assert_int_equal(ones, 1);
}

/* A last layer of rank 4 is flattened into the logits; labels name layers unless they
 * could be taken for another name. */
static void test_output_and_names(void **state) {
    (void)state;
    sat_model *m = model_of("input 1 4 4\nconv 3 k=3 name=conv3\nact name=a.b\nconv 3 k=1 name=input\n"
                            "conv 3 k=1 name=my-layer_1\ngap\n", SAT_ACT_RELU);
    const Onnx__GraphProto *g = export_model(m, NULL)->graph;
    expect_well_formed(g);
    const Onnx__NodeProto *last = g->node[g->n_node - 1];
    assert_string_equal(last->op_type, "Flatten");
    assert_string_equal(last->input[0], "gap5");
    assert_string_equal(last->output[0], "logits");
    /* "conv3" is layer 3's generated name, "a.b" has a dot, "input" is reserved */
    assert_non_null(producer(g, "conv1"));
    assert_non_null(producer(g, "relu2"));
    assert_non_null(producer(g, "conv3"));
    assert_non_null(producer(g, "my-layer_1"));
    assert_non_null(initializer(g, "my-layer_1.weight"));
}

static void test_options(void **state) {
    (void)state;
    sat_model *m = model_of("input 1 2 2\nflatten\ndense 3\n", SAT_ACT_RELU);
    sat_onnx_export_opts o;
    memset(&o, 0x5a, sizeof o);
    TU_CHECK(sat_onnx_export_opts_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.opset, 13);
    assert_int_equal(o.batch_dim, 0);
    o.opset = 17;
    o.batch_dim = 5;
    const Onnx__ModelProto *mp = export_model(m, &o);
    assert_int_equal(mp->opset_import[0]->version, 17);
    assert_int_equal(mp->ir_version, 8);
    const int64_t in_dims[3] = {1, 2, 2}, out_dims[1] = {3};
    expect_interface(mp->graph->input[0], "input", 5, in_dims, 3);
    expect_interface(mp->graph->output[0], "logits", 5, out_dims, 1);
    o.opset = 15;
    assert_int_equal(export_model(m, &o)->ir_version, 8);
    o.opset = 14;
    assert_int_equal(export_model(m, &o)->ir_version, 7);

    void *buf = (void *)&o;
    size_t size = 77;
    const struct {
        int32_t opset, batch_dim, status;
    } bad[] = {{12, 0, SAT_E_UNSUPPORTED}, {18, 0, SAT_E_UNSUPPORTED}, {0, 0, SAT_E_INVALID_ARG},
               {13, -1, SAT_E_INVALID_ARG}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.opset = bad[i].opset;
        o.batch_dim = bad[i].batch_dim;
        assert_int_equal(sat_model_save_onnx_buffer(m, &o, &buf, &size), bad[i].status);
        assert_ptr_equal(buf, (void *)&o);
        assert_int_equal(size, 77);
        assert_non_null(strstr(sat_model_last_error(m), "sat_model_save_onnx_buffer"));
    }
    /* struct_size: too small, or larger with a non-zero unknown tail */
    TU_CHECK(sat_onnx_export_opts_init(&o, sizeof o));
    o.struct_size = 2;
    assert_int_equal(sat_model_save_onnx_buffer(m, &o, &buf, &size), SAT_E_INVALID_ARG);
    unsigned char big[sizeof o + 8];
    memset(big, 0, sizeof big);
    TU_CHECK(sat_onnx_export_opts_init((sat_onnx_export_opts *)(void *)big, sizeof big));
    void *made = NULL;
    TU_CHECK(sat_model_save_onnx_buffer(m, (sat_onnx_export_opts *)(void *)big, &made, &size));
    tu_own_sat_mem(made);
    big[sizeof o + 3] = 1;
    assert_int_equal(sat_model_save_onnx_buffer(m, (sat_onnx_export_opts *)(void *)big, &buf, &size),
                     SAT_E_INVALID_ARG);
    assert_int_equal(sat_onnx_export_opts_init(NULL, sizeof o), SAT_E_INVALID_ARG);
    assert_int_equal(sat_onnx_export_opts_init(&o, 2), SAT_E_INVALID_ARG);
}

/* The file holds the buffer's bytes and replaces an existing file; a failed save leaves
 * the existing file as it was. */
static void test_file(void **state) {
    (void)state;
    sat_model *m = model_of("input 1 2 2\nflatten\ndense 3\n", SAT_ACT_RELU);
    char dir[] = "/tmp/sat-onnx-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    FILE *f = fopen(path, "wb");
    fputs("an older file", f);
    fclose(f);
    void *buf = NULL;
    size_t size = 0, got = 0;
    TU_CHECK(sat_model_save_onnx_buffer(m, NULL, &buf, &size));
    tu_own_sat_mem(buf);
    TU_CHECK(sat_model_save_onnx(m, path, NULL));
    unsigned char *data = tu_read_file(path, &got);
    assert_int_equal(got, size);
    assert_memory_equal(data, buf, size);

    sat_onnx_export_opts o;
    TU_CHECK(sat_onnx_export_opts_init(&o, sizeof o));
    o.opset = 99;
    assert_int_equal(sat_model_save_onnx(m, path, &o), SAT_E_UNSUPPORTED);
    data = tu_read_file(path, &got);
    assert_int_equal(got, size);
    assert_memory_equal(data, buf, size);
    char missing[96];
    snprintf(missing, sizeof missing, "%s/no-such-dir/m.onnx", dir);
    assert_int_equal(sat_model_save_onnx(m, missing, NULL), SAT_E_IO);
    assert_non_null(strstr(sat_model_last_error(m), "no-such-dir"));
    unlink(path);
    rmdir(dir);
}

static void test_bad_calls(void **state) {
    (void)state;
    sat_model *m = model_of("input 1 2 2\nflatten\ndense 3\n", SAT_ACT_RELU);
    void *buf = NULL;
    size_t size = 0;
    assert_int_equal(sat_model_save_onnx_buffer(NULL, NULL, &buf, &size), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "sat_model_save_onnx_buffer"));
    assert_int_equal(sat_model_save_onnx(NULL, "/tmp/x.onnx", NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "sat_model_save_onnx"));
    assert_int_equal(sat_model_save_onnx_buffer(m, NULL, NULL, &size), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_save_onnx_buffer(m, NULL, &buf, NULL), SAT_E_INVALID_ARG);
    assert_null(buf);
    assert_int_equal(sat_model_save_onnx(m, NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_model_save_onnx(m, "", NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_model_last_error(m), "path"));
}

/* ---- out of memory in the middle of a large graph ---- */

typedef struct refusing {
    int64_t count, fail_at, live;
} refusing;

static void *refusing_alloc(void *user, size_t size, size_t align) {
    refusing *r = user;
    if (++r->count == r->fail_at) return NULL;
    void *p = aligned_alloc(align, (size + align - 1) / align * align);
    if (p) r->live++;
    return p;
}

static void refusing_free(void *user, void *p) {
    ((refusing *)user)->live--;
    free(p);
}

/* resnet20's graph takes several arena chunks: each allocation refused in turn gives
 * SAT_E_NOMEM and takes nothing away, until the export succeeds with the same bytes. */
static void test_out_of_memory(void **state) {
    (void)state;
    /* Static: the context and model are released after the test returns, and their frees
     * still count here. */
    static refusing r;
    r = (refusing){0, 0, 0};
    sat_context_opts co;
    TU_CHECK(sat_context_opts_init(&co, sizeof co));
    co.alloc_fn = refusing_alloc;
    co.dealloc_fn = refusing_free;
    co.alloc_user = &r;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&co, &ctx));
    tu_own_context(ctx);
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 32, 32, 10, NULL, NULL, &spec));
    tu_own_sat_mem(spec);
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, spec, NULL, &m));
    tu_own_model(m);
    void *expected = NULL, *buf = NULL;
    size_t expected_size = 0, size = 0;
    r.count = 0;
    TU_CHECK(sat_model_save_onnx_buffer(m, NULL, &expected, &expected_size));
    tu_own_sat_mem(expected);
    const int64_t allocations = r.count;
    assert_true(allocations >= 3); /* the names, and more than one chunk */
    for (int64_t k = 1; k <= allocations; k++) {
        const int64_t live = r.live;
        r.count = 0;
        r.fail_at = k;
        assert_int_equal(sat_model_save_onnx_buffer(m, NULL, &buf, &size), SAT_E_NOMEM);
        assert_null(buf);
        assert_non_null(strstr(sat_model_last_error(m), "out of memory"));
        assert_int_equal(r.live, live);
    }
    r.fail_at = 0;
    TU_CHECK(sat_model_save_onnx_buffer(m, NULL, &buf, &size));
    tu_own_sat_mem(buf);
    assert_int_equal(size, expected_size);
    assert_memory_equal(buf, expected, size);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op),
        cmocka_unit_test(test_activation_forms),
        cmocka_unit_test(test_activation_constants),
        cmocka_unit_test(test_output_and_names),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_out_of_memory),
    };
    return tu_run_group("test_onnx_export", tests, sizeof tests / sizeof tests[0]);
}
