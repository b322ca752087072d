/* onnx.h - what the ONNX reader, the importer and the writer share: unpacking a ModelProto
 * (with the context's allocator, guarded against hostile files), reading its tensors, and
 * the translation of a graph into a libsat spec plus the weights to copy into the blocks.
 *
 * The protobuf types are generated at build time from Debian's onnx.proto (protoc-c,
 * cmake/SatOnnxProto.cmake); nothing of them is public. */
#ifndef SAT_ONNX_H
#define SAT_ONNX_H

#include "core/core.h"
#include "onnx.pb-c.h"

/* Limits against hostile files; a real classifier is far below each. */
#define SAT__ONNX_MAX_NODES 4096         /* graph nodes (a spec has at most 4096 layers) */
#define SAT__ONNX_MAX_TENSORS 8192       /* initializers */
#define SAT__ONNX_MAX_DEPTH 32           /* nesting of protobuf messages */
#define SAT__ONNX_MAX_DIMS 8             /* rank of a tensor */
#define SAT__ONNX_MAX_ELEMENTS ((int64_t)1 << 30) /* values in one tensor */

/* protobuf-c leaves an absent string field NULL. */
#define SAT__S(s) ((s) ? (s) : "")

/* ---- reader.c ---- */
/* Unpacks a ModelProto from size bytes with ctx's allocator. A nesting deeper than
 * SAT__ONNX_MAX_DEPTH, bad wire data or a missing graph is SAT_E_FORMAT with a message
 * starting with `what`. *out is freed with sat__onnx_free. */
int32_t sat__onnx_unpack(const sat_context *ctx, const uint8_t *data, size_t size, const char *what,
                         Onnx__ModelProto **out, char *err);
void sat__onnx_free(const sat_context *ctx, Onnx__ModelProto *model);

/* ---- tensor.c ---- */
/* The number of values of t from its dims (checked: each >= 0, rank and total within the
 * limits above), or -1. */
int64_t sat__onnx_tensor_count(const Onnx__TensorProto *t);
/* 1 if t holds `count` values of a floating type (FLOAT or DOUBLE) in one of the places
 * ONNX allows (raw_data, float_data, double_data); external data is not read. */
int sat__onnx_tensor_is_float(const Onnx__TensorProto *t, int64_t count);
/* Value i of a tensor accepted by sat__onnx_tensor_is_float, as a double. */
double sat__onnx_tensor_at(const Onnx__TensorProto *t, int64_t i);
/* 1 if t holds `count` INT64 values (raw_data or int64_data); value i by _int_at. */
int sat__onnx_tensor_is_int64(const Onnx__TensorProto *t, int64_t count);
int64_t sat__onnx_tensor_int_at(const Onnx__TensorProto *t, int64_t i);

/* ---- translate.c: a graph as a libsat spec plus the weights ---- */
/* One tensor of the model's blocks filled from an initializer: layer `layer`'s tensor of
 * role SAT_TENSOR_* gets value j of src (a 2-D [K, N] src read transposed when transpose),
 * times scale, plus add. With src NULL, a check instead: the layer's size must be
 * `channels` (a Reshape's target size), or with SAT__ONNX_VECTOR, the layer C x 1 x 1. */
#define SAT__ONNX_VECTOR (-1)
typedef struct sat__onnx_copy {
    int32_t layer;
    int32_t role;
    const Onnx__TensorProto *src;
    const char *node;           /* the node it comes from, for messages */
    int32_t transpose;
    float scale, add;
    int64_t channels;
} sat__onnx_copy;

typedef struct sat__onnx_plan {
    char *spec;                 /* the spec text, ctx's allocator */
    size_t len, cap;
    int32_t layers;             /* lines so far, the input included */
    sat__onnx_copy *copies;
    int32_t num_copies, cap_copies;
    int32_t failed;             /* an allocation failed */
} sat__onnx_plan;

/* What the caller of the translation chooses: an activation kind replaced by another. */
typedef struct sat__onnx_act_swap {
    int32_t from, to;           /* SAT_ACT_*, from -1: none */
    float param;                /* NaN: to's default */
} sat__onnx_act_swap;

/* Translates the model's graph. SAT_E_UNSUPPORTED names the node and its op type,
 * SAT_E_FORMAT a graph that breaks ONNX's own rules; the plan is freed on failure. */
int32_t sat__onnx_translate(const sat_context *ctx, const Onnx__ModelProto *model, const sat__onnx_act_swap *swap,
                            sat__onnx_plan *plan, char *err);
void sat__onnx_plan_free(const sat_context *ctx, sat__onnx_plan *plan);

/* ---- activation.c: elementwise subgraphs recognised by their values ---- */
/* Which function of one variable a small elementwise subgraph computes: fn->kind is a
 * SAT_ACT_* (SiLU, parametric softplus, SmoothReLU, GELU in both forms), or
 * SAT__ONNX_FN_SIGMOID; 0 if none matches. A parameter is one of the subgraph's scalar
 * constants, fn->param_src (NULL and param NaN: the kind's default, or none). The subgraph
 * is nodes[0..count) in topological order, `x` the name of its variable input, `out` the
 * output compared; scalar constants come from scalar(name). */
#define SAT__ONNX_FN_SIGMOID (-2)
typedef const Onnx__TensorProto *(*sat__onnx_const_fn)(void *user, const char *name);
typedef struct sat__onnx_fn {
    int32_t kind;
    float param;
    const Onnx__TensorProto *param_src;
} sat__onnx_fn;
int sat__onnx_recognise(Onnx__NodeProto *const *nodes, int32_t count, const char *x, const char *out,
                        sat__onnx_const_fn scalar, void *user, sat__onnx_fn *fn);

#endif
