/* testutil_onnx.h - builds small ONNX models in memory for the tests, with the C code
 * protoc-c generates from onnx.proto (the same the library reads with). Everything is
 * allocated with tu_alloc and released with the test. */
#ifndef SAT_TESTUTIL_ONNX_H
#define SAT_TESTUTIL_ONNX_H

#include "onnx.pb-c.h"
#include "testutil.h"

typedef struct tu_onnx {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
} tu_onnx;

/* A model whose graph has one float input `name` of the given rank: dims[0] (the batch) is
 * a symbolic "N", the others fixed. Opset 13. */
tu_onnx *tu_onnx_new(const char *name, int rank, const int64_t *dims);
/* An initializer: float32 values in float_data (raw_data when raw is set). */
Onnx__TensorProto *tu_onnx_init(tu_onnx *g, const char *name, int ndims, const int64_t *dims, const float *vals,
                                int raw);
/* An INT64 initializer (Reshape's shape). */
void tu_onnx_init_i64(tu_onnx *g, const char *name, int count, const int64_t *vals);
/* A node; inputs and outputs are comma-separated names ("" for none). */
Onnx__NodeProto *tu_onnx_node(tu_onnx *g, const char *op, const char *name, const char *inputs,
                              const char *outputs);
void tu_onnx_attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
void tu_onnx_attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v);
void tu_onnx_attr_float(Onnx__NodeProto *n, const char *name, float v);
/* The graph output (its type is left out, as the library does not need it). */
void tu_onnx_output(tu_onnx *g, const char *name);
/* The packed bytes (tu_alloc'ed) and their count. */
uint8_t *tu_onnx_pack(tu_onnx *g, size_t *size);
/* Packs and imports with opts (may be NULL); returns the status, *out the model. */
int32_t tu_onnx_load(sat_context *ctx, tu_onnx *g, const sat_onnx_import_opts *opts, sat_model **out);

#endif
