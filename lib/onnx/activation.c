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
 * as 1.4142135) move the values by about 1e-7. */
#include "onnx/onnx.h"

#include <math.h>
#include <string.h>

#define POINTS 33
#define MAX_NODES 32
#define TOLERANCE 1e-5

static double probe(int i) { return -8.0 + 16.0 * i / (POINTS - 1); }

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double candidate(int32_t kind, double x) {
    switch (kind) {
    case SAT_ACT_SILU: return x * sigmoid(x);
    case SAT_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SAT_ACT_GELU_TANH: /* 0.79788... = sqrt(2 / pi) */
        return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    default: return sigmoid(x);
    }
}

/* The values at the probe points of the tensor called name: x, a scalar constant, or an
 * output computed earlier; NULL if it is none of them. */
typedef struct values {
    const char *name;
    double v[POINTS];
} values;

static const double *lookup(values *vals, int32_t count, const char *name, const char *x, double *tmp,
                            sat__onnx_const_fn scalar, void *user) {
    if (strcmp(name, x) == 0) {
        for (int i = 0; i < POINTS; i++) tmp[i] = probe(i);
        return tmp;
    }
    for (int32_t j = 0; j < count; j++)
        if (strcmp(vals[j].name, name) == 0) return vals[j].v;
    const Onnx__TensorProto *c = scalar(user, name);
    if (!c || sat__onnx_tensor_count(c) != 1 || !sat__onnx_tensor_is_float(c, 1)) return NULL;
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
        else return 0;
    }
    return 1;
}

static int unary(const char *op) { return !strcmp(op, "Erf") || !strcmp(op, "Tanh") || !strcmp(op, "Sigmoid"); }

int sat__onnx_recognise(Onnx__NodeProto *const *nodes, int32_t count, const char *x, const char *out,
                        sat__onnx_const_fn scalar, void *user, int32_t *kind) {
    if (count < 1 || count > MAX_NODES) return 0;
    values vals[MAX_NODES];
    double ta[POINTS], tb[POINTS];
    for (int32_t j = 0; j < count; j++) {
        const Onnx__NodeProto *nd = nodes[j];
        const int arity = unary(nd->op_type) ? 1 : 2;
        if ((int)nd->n_input != arity || nd->n_output < 1) return 0;
        const double *a = lookup(vals, j, nd->input[0], x, ta, scalar, user);
        const double *b = arity == 2 ? lookup(vals, j, nd->input[1], x, tb, scalar, user) : a;
        if (!a || !b || !eval_node(nd, a, b, vals[j].v)) return 0;
        vals[j].name = nd->output[0];
    }
    const double *y = NULL;
    for (int32_t j = 0; j < count; j++)
        if (strcmp(vals[j].name, out) == 0) y = vals[j].v;
    if (!y) return 0;
    static const int32_t kinds[] = {SAT_ACT_SILU, SAT_ACT_GELU, SAT_ACT_GELU_TANH, SAT__ONNX_FN_SIGMOID};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int same = 1;
        for (int i = 0; i < POINTS && same; i++) {
            const double want = candidate(kinds[k], probe(i));
            same = isfinite(y[i]) && fabs(y[i] - want) <= TOLERANCE * (1.0 + fabs(want));
        }
        if (same) {
            *kind = kinds[k];
            return 1;
        }
    }
    return 0;
}
