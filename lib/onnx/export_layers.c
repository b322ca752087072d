/* export_layers.c - the ONNX form of each libsat layer and activation (docs/onnx.md lists
 * them). Where PyTorch's exporter has a form for the same function (SiLU, GELU, Softplus
 * with beta), it is the one written, so one importer reads both. */
#include "onnx/export.h"

#include <math.h>

/* The output tensor of the layer: its own name. */
static const char *out_of(const sat__onnx_out *o, int32_t i) { return o->layer_name[i]; }

/* The name of layer i's tensor `what` ("conv3.weight", "silu5.sigmoid"). */
static const char *part(sat__onnx_out *o, int32_t i, const char *what) {
    return sat__onnx_out_name(o, out_of(o, i), what);
}

/* Layer i's initializer `what` holding data of shape dims[ndim]. */
static const char *layer_tensor(sat__onnx_out *o, int32_t i, const char *what, const int64_t *dims, size_t ndim,
                                const float *data) {
    return sat__onnx_out_floats(o, part(o, i, what), dims, ndim, data);
}

/* One node with one or two inputs. */
static Onnx__NodeProto *op1(sat__onnx_out *o, const char *type, const char *x, const char *out) {
    const char *in[1] = {x};
    return sat__onnx_out_node(o, type, in, 1, out);
}

static Onnx__NodeProto *op2(sat__onnx_out *o, const char *type, const char *a, const char *b, const char *out) {
    const char *in[2] = {a, b};
    return sat__onnx_out_node(o, type, in, 2, out);
}

/* Producer p's tensor as layer i needs it: rank 4 ([N, C] gains two unit axes) or rank 2
 * ([N, C, H, W] flattened). which names the input ("in0", "in1") in the new tensor's name. */
static const char *as_rank(sat__onnx_out *o, int32_t i, int32_t p, int32_t rank, const char *which) {
    if (o->rank[p] == rank) return o->tensor[p];
    const char *name = part(o, i, which);
    if (rank == 2) {
        sat__onnx_out_attr_int(o, op1(o, "Flatten", o->tensor[p], name), "axis", 1);
        return name;
    }
    op2(o, "Unsqueeze", o->tensor[p], sat__onnx_out_hw_axes(o), name);
    return name;
}

/* A per-layer constant [1, C] or [1, C, 1, 1] (by rank) holding c values of data. */
static const char *channel_const(sat__onnx_out *o, int32_t i, const char *what, const float *data, int32_t c,
                                 int32_t rank) {
    const int64_t dims[4] = {1, c, 1, 1};
    return layer_tensor(o, i, what, dims, (size_t)rank, data);
}

static void emit_normalize(sat__onnx_out *o, int32_t i, const char *x, int32_t rank) {
    const sat_model *m = o->m;
    const sat_node *nd = &m->nodes[i];
    const char *mean = channel_const(o, i, "mean", m->consts + nd->k_mean, nd->c, rank);
    const char *std = channel_const(o, i, "std", m->consts + nd->k_std, nd->c, rank);
    const char *centred = part(o, i, "centred");
    op2(o, "Sub", x, mean, centred);
    op2(o, "Div", centred, std, out_of(o, i));
}

/* Gemm (transB: the weight is [out, in] as in PyTorch) or Conv, with the bias if any. */
static void emit_weighted(sat__onnx_out *o, int32_t i, const char *x) {
    const sat_model *m = o->m;
    const sat_node *nd = &m->nodes[i];
    const int conv = nd->op == SAT_OP_CONV;
    const int64_t in_per_group = conv ? nd->conv.c_in / nd->groups : m->nodes[nd->in0].size;
    const int64_t wdims[4] = {nd->units, in_per_group, nd->k, nd->k};
    const int64_t bdims[1] = {nd->units};
    const char *in[3] = {x, layer_tensor(o, i, "weight", wdims, conv ? 4 : 2, m->params + nd->p_w)};
    size_t count = 2;
    if (nd->p_b >= 0) in[count++] = layer_tensor(o, i, "bias", bdims, 1, m->params + nd->p_b);
    Onnx__NodeProto *n = sat__onnx_out_node(o, conv ? "Conv" : "Gemm", in, count, out_of(o, i));
    if (!conv) {
        sat__onnx_out_attr_int(o, n, "transB", 1);
        return;
    }
    sat__onnx_out_attr_ints(o, n, "dilations", 1, 2);
    sat__onnx_out_attr_int(o, n, "group", nd->groups);
    sat__onnx_out_attr_ints(o, n, "kernel_shape", nd->k, 2);
    sat__onnx_out_attr_ints(o, n, "pads", nd->pad, 4);
    sat__onnx_out_attr_ints(o, n, "strides", nd->stride, 2);
}

/* Inference batch norm: the running statistics, libsat's epsilon. */
static void emit_bn(sat__onnx_out *o, int32_t i, const char *x) {
    const sat_model *m = o->m;
    const sat_node *nd = &m->nodes[i];
    const int64_t dims[1] = {nd->c};
    const char *in[5] = {x, layer_tensor(o, i, "scale", dims, 1, m->params + nd->p_gamma),
                         layer_tensor(o, i, "bias", dims, 1, m->params + nd->p_beta),
                         layer_tensor(o, i, "running_mean", dims, 1, m->state + nd->s_mean),
                         layer_tensor(o, i, "running_var", dims, 1, m->state + nd->s_var)};
    Onnx__NodeProto *n = sat__onnx_out_node(o, "BatchNormalization", in, 5, out_of(o, i));
    sat__onnx_out_attr_float(o, n, "epsilon", SAT_BN_EPS);
    /* ONNX's momentum weighs the old statistics: PyTorch's 0.1 is ONNX's 0.9 */
    sat__onnx_out_attr_float(o, n, "momentum", 1.0f - SAT_BN_MOMENTUM);
}

static void emit_pool(sat__onnx_out *o, int32_t i, const char *x) {
    const sat_node *nd = &o->m->nodes[i];
    Onnx__NodeProto *n = op1(o, nd->op == SAT_OP_MAXPOOL ? "MaxPool" : "AveragePool", x, out_of(o, i));
    sat__onnx_out_attr_ints(o, n, "kernel_shape", nd->k, 2);
    if (nd->op == SAT_OP_MAXPOOL) sat__onnx_out_attr_ints(o, n, "pads", nd->pad, 4);
    sat__onnx_out_attr_ints(o, n, "strides", nd->stride, 2);
}

/* ---- activations ---- */

/* x sigmoid(b x): PyTorch's Mul(x, Sigmoid(x)) when b = 1. */
static void emit_silu(sat__onnx_out *o, int32_t i, const char *x, float b) {
    const char *z = x;
    if (b != 1.0f) {
        z = part(o, i, "scaled");
        op2(o, "Mul", x, sat__onnx_out_scalar(o, part(o, i, "beta"), b), z);
    }
    const char *s = part(o, i, "sigmoid");
    op1(o, "Sigmoid", z, s);
    op2(o, "Mul", x, s, out_of(o, i));
}

/* (1/a) Softplus(a x), PyTorch's form of Softplus(beta=a). */
static void emit_psoftplus(sat__onnx_out *o, int32_t i, const char *x, float a) {
    const char *alpha = sat__onnx_out_scalar(o, part(o, i, "alpha"), a);
    const char *scaled = part(o, i, "scaled"), *sp = part(o, i, "softplus");
    op2(o, "Mul", x, alpha, scaled);
    op1(o, "Softplus", scaled, sp);
    op2(o, "Div", sp, alpha, out_of(o, i));
}

/* x Phi(x) = (x (1 + erf(x / sqrt 2))) 0.5, PyTorch's exact GELU (opset 13 has no Gelu). */
static void emit_gelu(sat__onnx_out *o, int32_t i, const char *x) {
    const char *scaled = part(o, i, "scaled"), *erf = part(o, i, "erf"), *cdf2 = part(o, i, "erf_plus_one");
    const char *prod = part(o, i, "x_erf_plus_one");
    op2(o, "Div", x, sat__onnx_out_scalar(o, "const.sqrt2", 1.41421356237309505f), scaled);
    op1(o, "Erf", scaled, erf);
    op2(o, "Add", erf, sat__onnx_out_scalar(o, "const.one", 1.0f), cdf2);
    op2(o, "Mul", x, cdf2, prod);
    op2(o, "Mul", prod, sat__onnx_out_scalar(o, "const.half", 0.5f), out_of(o, i));
}

/* 0.5 (x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), in PyTorch's order of operations. */
static void emit_gelu_tanh(sat__onnx_out *o, int32_t i, const char *x) {
    const char *sq = part(o, i, "square"), *cube = part(o, i, "cube"), *kc = part(o, i, "kappa_cube");
    const char *inner = part(o, i, "inner"), *u = part(o, i, "u"), *t = part(o, i, "tanh");
    const char *t1 = part(o, i, "tanh_plus_one"), *prod = part(o, i, "x_tanh_plus_one");
    op2(o, "Mul", x, x, sq);
    op2(o, "Mul", x, sq, cube);
    op2(o, "Mul", sat__onnx_out_scalar(o, "const.gelu_kappa", 0.044715f), cube, kc);
    op2(o, "Add", x, kc, inner);
    op2(o, "Mul", sat__onnx_out_scalar(o, "const.sqrt_2_over_pi", 0.79788456080286536f), inner, u);
    op1(o, "Tanh", u, t);
    op2(o, "Add", sat__onnx_out_scalar(o, "const.one", 1.0f), t, t1);
    op2(o, "Mul", x, t1, prod);
    op2(o, "Mul", sat__onnx_out_scalar(o, "const.half", 0.5f), prod, out_of(o, i));
}

/* x - log(1 + a x) / a for x >= 0, else 0: r = Relu(x) gives both branches, with a the
 * layer's learnable parameter. */
static void emit_smoothrelu(sat__onnx_out *o, int32_t i, const char *x) {
    const sat_node *nd = &o->m->nodes[i];
    const int64_t dims[1] = {1};
    const char *a = layer_tensor(o, i, "alpha", dims, 1, o->m->params + nd->p_alpha);
    const char *r = part(o, i, "relu"), *ar = part(o, i, "scaled"), *ar1 = part(o, i, "scaled_plus_one");
    const char *lg = part(o, i, "log"), *q = part(o, i, "log_over_alpha");
    op1(o, "Relu", x, r);
    op2(o, "Mul", r, a, ar);
    op2(o, "Add", ar, sat__onnx_out_scalar(o, "const.one", 1.0f), ar1);
    op1(o, "Log", ar1, lg);
    op2(o, "Div", lg, a, q);
    op2(o, "Sub", r, q, out_of(o, i));
}

static int32_t emit_act(sat__onnx_out *o, int32_t i, const char *x, const char *fn) {
    const sat_node *nd = &o->m->nodes[i];
    switch (nd->act) {
    case SAT_ACT_RELU: op1(o, "Relu", x, out_of(o, i)); break;
    case SAT_ACT_SOFTPLUS: op1(o, "Softplus", x, out_of(o, i)); break;
    case SAT_ACT_PSOFTPLUS: emit_psoftplus(o, i, x, nd->act_param); break;
    case SAT_ACT_SILU: emit_silu(o, i, x, nd->act_param); break;
    case SAT_ACT_GELU: emit_gelu(o, i, x); break;
    case SAT_ACT_GELU_TANH: emit_gelu_tanh(o, i, x); break;
    case SAT_ACT_ELU:
    case SAT_ACT_CELU:
        sat__onnx_out_attr_float(o, op1(o, nd->act == SAT_ACT_ELU ? "Elu" : "Celu", x, out_of(o, i)), "alpha",
                                 nd->act_param);
        break;
    case SAT_ACT_SMOOTHRELU: emit_smoothrelu(o, i, x); break;
    default:
        return sat__fail(o->err, SAT_E_UNSUPPORTED,
                         "%s: layer %d ('%s', model spec line %d): activation %d has no ONNX form", fn, i, out_of(o, i),
                         nd->line, nd->act);
    }
    return SAT_OK;
}

/* ---- layers ---- */

int32_t sat__onnx_out_layer(sat__onnx_out *o, int32_t i, const char *fn) {
    const sat_node *nd = &o->m->nodes[i];
    const int32_t r0 = nd->in0 >= 0 ? o->rank[nd->in0] : 4;
    const char *x = nd->in0 >= 0 ? o->tensor[nd->in0] : NULL;
    int32_t rank = r0;
    switch (nd->op) {
    case SAT_OP_INPUT:
        rank = 4;
        break;
    case SAT_OP_NORMALIZE:
        emit_normalize(o, i, x, r0);
        break;
    case SAT_OP_DENSE:
        emit_weighted(o, i, as_rank(o, i, nd->in0, 2, "flat"));
        rank = 2;
        break;
    case SAT_OP_CONV:
        emit_weighted(o, i, as_rank(o, i, nd->in0, 4, "in0_4d"));
        rank = 4;
        break;
    case SAT_OP_BN:
        emit_bn(o, i, x);
        break;
    case SAT_OP_ACT: {
        int32_t st = emit_act(o, i, x, fn);
        if (st) return st;
        break;
    }
    case SAT_OP_MAXPOOL:
    case SAT_OP_AVGPOOL:
        emit_pool(o, i, as_rank(o, i, nd->in0, 4, "in0_4d"));
        rank = 4;
        break;
    case SAT_OP_GAP:
        op1(o, "GlobalAveragePool", as_rank(o, i, nd->in0, 4, "in0_4d"), out_of(o, i));
        rank = 4;
        break;
    case SAT_OP_ADD:
    case SAT_OP_MUL: {
        /* one rank for both: [N, C] meets [N, C, H, W] only as [N, C, 1, 1] */
        rank = r0 == o->rank[nd->in1] ? r0 : 4;
        op2(o, nd->op == SAT_OP_ADD ? "Add" : "Mul", as_rank(o, i, nd->in0, rank, "in0_4d"),
            as_rank(o, i, nd->in1, rank, "in1_4d"), out_of(o, i));
        break;
    }
    case SAT_OP_FLATTEN:
        if (r0 == 2)
            op1(o, "Identity", x, out_of(o, i));
        else
            sat__onnx_out_attr_int(o, op1(o, "Flatten", x, out_of(o, i)), "axis", 1);
        rank = 2;
        break;
    case SAT_OP_SIGMOID:
        op1(o, "Sigmoid", x, out_of(o, i));
        break;
    case SAT_OP_DROPOUT: /* inference: the identity */
        op1(o, "Identity", x, out_of(o, i));
        break;
    default:
        return sat__fail(o->err, SAT_E_UNSUPPORTED, "%s: layer %d ('%s', model spec line %d): op %d has no ONNX form",
                         fn, i, out_of(o, i), nd->line, nd->op);
    }
    o->tensor[i] = out_of(o, i);
    o->rank[i] = rank;
    return SAT_OK;
}
