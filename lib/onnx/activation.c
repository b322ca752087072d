/* activation.c - recognises an activation that an exporter wrote as a small subgraph of
 * elementwise ops (PyTorch: SiLU as x * Sigmoid(x), GELU as Div, Erf, Add, Mul, Mul, and
 * its tanh form as Pow or Mul, Add, Mul, Tanh, ...) by the values it computes.
 *
 * Why by values and not by the shape of the subgraph: exporters differ in operand order,
 * in whether x^3 is Pow(x, 3) or x * x * x, in where the 0.5 is applied and in the
 * constants' precision; each variant would need its own pattern. The subgraph is
 * evaluated in double precision at points spread over [-8, 8] and compared with each
 * candidate; the candidates differ from one another by far more than the tolerance (GELU
 * and its tanh form by about 1e-3 near +-2), while float32 constants in the file (sqrt(2)
 * as 1.4142135) move the values by about 1e-7.
 *
 * Candidates with a parameter (parametric softplus, SiLU's b, SmoothReLU's a) take it from
 * the subgraph's own scalar constants: each constant is tried as the parameter and the
 * function is then checked by value like the others, so a constant that is not the
 * parameter (softplus(a x) / b with b != a) matches nothing. */
#include "onnx/onnx.h"

#include <math.h>
#include <string.h>

#define POINTS 33
#define MAX_NODES 32
#define TOLERANCE 1e-5

static double probe(int i) { return -8.0 + 16.0 * i / (POINTS - 1); }

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double candidate(int32_t kind, double a, double x) {
    switch (kind) {
    case SAT_ACT_SILU: return x * sigmoid(a * x);
    case SAT_ACT_PSOFTPLUS: return softplus(a * x) / a;
    case SAT_ACT_SMOOTHRELU: return x >= 0 ? x - log1p(a * x) / a : 0.0;
    case SAT_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SAT_ACT_GELU_TANH: /* 0.79788... = sqrt(2 / pi) */
        return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    default: return sigmoid(x);
    }
}

static int has_param(int32_t kind) {
    return kind == SAT_ACT_SILU || kind == SAT_ACT_PSOFTPLUS || kind == SAT_ACT_SMOOTHRELU;
}

/* The values at the probe points of the tensor called name: x, a scalar constant, or an
 * output computed earlier; NULL if it is none of them. */
typedef struct values {
    const char *name;
    double v[POINTS];
} values;

/* The scalar constants the subgraph reads: the parameters to try. */
typedef struct constants {
    const Onnx__TensorProto *src[2 * MAX_NODES];
    int32_t count;
} constants;

static const double *lookup(values *vals, int32_t count, const char *name, const char *x, double *tmp,
                            sat__onnx_const_fn scalar, void *user, constants *seen) {
    if (strcmp(name, x) == 0) {
        for (int i = 0; i < POINTS; i++) tmp[i] = probe(i);
        return tmp;
    }
    for (int32_t j = 0; j < count; j++)
        if (strcmp(vals[j].name, name) == 0) return vals[j].v;
    const Onnx__TensorProto *c = scalar(user, name);
    if (!c || sat__onnx_tensor_count(c) != 1 || !sat__onnx_tensor_is_float(c, 1)) return NULL;
    seen->src[seen->count++] = c;
    for (int i = 0; i < POINTS; i++) tmp[i] = sat__onnx_tensor_at(c, 0);
    return tmp;
}

static int eval_node(const Onnx__NodeProto *nd, const double *a, const double *b, double *y) {
    const char *op = nd->op_type;
    for (int i = 0; i < POINTS; i++) {
        if (!strcmp(op, "Add")) y[i] = a[i] + b[i];
        else if (!strcmp(op, "Sub")) y[i] = a[i] - b[i];
        else if (!strcmp(op, "Mul")) y[i] = a[i] * b[i];
        else if (!strcmp(op, "Div")) y[i] = a[i] / b[i];
        else if (!strcmp(op, "Pow")) y[i] = pow(a[i], b[i]);
        else if (!strcmp(op, "Erf")) y[i] = erf(a[i]);
        else if (!strcmp(op, "Tanh")) y[i] = tanh(a[i]);
        else if (!strcmp(op, "Sigmoid")) y[i] = sigmoid(a[i]);
        else if (!strcmp(op, "Softplus")) y[i] = softplus(a[i]);
        else if (!strcmp(op, "Relu")) y[i] = a[i] > 0 ? a[i] : 0.0;
        else if (!strcmp(op, "Log")) y[i] = log(a[i]);
        else return 0;
    }
    return 1;
}

static int unary(const char *op) {
    static const char *const ops[] = {"Erf", "Tanh", "Sigmoid", "Softplus", "Relu", "Log"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (!strcmp(op, ops[k])) return 1;
    return 0;
}

/* The largest relative difference of y from the candidate (kind, a); Inf where y is not finite. */
static double distance(const double *y, int32_t kind, double a) {
    double worst = 0;
    for (int i = 0; i < POINTS; i++) {
        const double want = candidate(kind, a, probe(i));
        const double d = isfinite(y[i]) ? fabs(y[i] - want) / (1.0 + fabs(want)) : INFINITY;
        worst = d > worst ? d : worst;
    }
    return worst;
}

int sat__onnx_recognise(Onnx__NodeProto *const *nodes, int32_t count, const char *x, const char *out,
                        sat__onnx_const_fn scalar, void *user, sat__onnx_fn *fn) {
    if (count < 1 || count > MAX_NODES) return 0;
    values vals[MAX_NODES];
    constants seen = {.count = 0};
    double ta[POINTS], tb[POINTS];
    for (int32_t j = 0; j < count; j++) {
        const Onnx__NodeProto *nd = nodes[j];
        const int arity = unary(nd->op_type) ? 1 : 2;
        if ((int)nd->n_input != arity || nd->n_output < 1) return 0;
        const double *a = lookup(vals, j, nd->input[0], x, ta, scalar, user, &seen);
        const double *b = arity == 2 ? lookup(vals, j, nd->input[1], x, tb, scalar, user, &seen) : a;
        if (!a || !b || !eval_node(nd, a, b, vals[j].v)) return 0;
        vals[j].name = nd->output[0];
    }
    const double *y = NULL;
    for (int32_t j = 0; j < count; j++)
        if (strcmp(vals[j].name, out) == 0) y = vals[j].v;
    if (!y) return 0;
    /* The closest candidate within the tolerance; a parameter is one of the constants, or
     * SiLU's default 1 (PyTorch's x * Sigmoid(x) has none). */
    static const int32_t kinds[] = {SAT_ACT_SILU, SAT_ACT_PSOFTPLUS, SAT_ACT_SMOOTHRELU, SAT_ACT_GELU,
                                    SAT_ACT_GELU_TANH, SAT__ONNX_FN_SIGMOID};
    double best = TOLERANCE;
    int found = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const int32_t kind = kinds[k];
        for (int32_t c = -1; c < (has_param(kind) ? seen.count : 0); c++) {
            if (c < 0 && has_param(kind) && kind != SAT_ACT_SILU) continue;
            const float a = c < 0 ? 1.0f : (float)sat__onnx_tensor_at(seen.src[c], 0);
            if (!(a > 0) || !isfinite(a)) continue;
            const double d = distance(y, kind, a);
            if (d > best) continue;
            best = d;
            found = 1;
            fn->kind = kind;
            fn->param = c < 0 ? NAN : a;
            fn->param_src = c < 0 ? NULL : seen.src[c];
        }
    }
    return found;
}
