/* export.h - writing a model as a standard ONNX graph.
 *
 * An export builds the graph as protobuf-c structures (onnx.pb-c.h) whose every node,
 * name and attribute lives in one arena taken from the model's context allocator, so a
 * failed allocation anywhere unwinds by freeing the arena. Initializers point at the
 * model's own blocks (parameters, batch-norm statistics, normalisation constants) instead
 * of copying them: they are read only while the graph is packed.
 *
 * Each libsat layer becomes one or more ONNX nodes (export_layers.c); the tensors between
 * them have rank 4 ([N, C, H, W]) or rank 2 ([N, C]: after a dense layer or a flatten),
 * as in a PyTorch export of the same network. */
#ifndef SAT_ONNX_EXPORT_H
#define SAT_ONNX_EXPORT_H

#include "graph/graph.h"
#include "onnx.pb-c.h"

/* The opsets written: from 13 (Softplus, Celu, Erf and Unsqueeze with axes as an input)
 * up to the last one whose definitions of every op emitted are those of 13 and that
 * Debian's onnx checker knows. */
#define SAT__ONNX_OPSET_MIN 13
#define SAT__ONNX_OPSET_MAX 17

/* ONNX names longer than this are never made (layer names are at most SAT_NAME_MAX). */
#define SAT__ONNX_NAME_MAX 96

typedef struct sat__onnx_out_chunk sat__onnx_out_chunk;

typedef struct sat__onnx_out {
    const sat_model *m;
    sat__onnx_out_chunk *chunks; /* the arena */
    int32_t status;          /* SAT_OK, or the first failure (SAT_E_NOMEM): later calls do nothing */
    Onnx__GraphProto *graph;
    size_t node_cap, init_cap;
    /* per layer: its ONNX name, the tensor holding its output, and that tensor's rank */
    const char **layer_name;
    const char **tensor;
    int32_t *rank;
    char *err;
} sat__onnx_out;

/* ---- export_graph.c: the arena and the graph's parts ---- */

/* Starts an export of m (its graph empty, the layers' names chosen); the layers' messages
 * go to err. SAT_E_NOMEM, without a message, if the first allocations fail (then nothing
 * is left to free). */
int32_t sat__onnx_out_begin(sat__onnx_out *o, const sat_model *m, char *err);
/* Frees everything the export allocated. */
void sat__onnx_out_end(sat__onnx_out *o);
/* Zeroed arena memory; NULL (and o->status SAT_E_NOMEM) when out of memory. */
void *sat__onnx_out_alloc(sat__onnx_out *o, size_t size);
/* "<prefix>.<suffix>" in the arena (suffix NULL: a copy of prefix). */
const char *sat__onnx_out_name(sat__onnx_out *o, const char *prefix, const char *suffix);

/* Appends a node of op_type with inputs (count of them) and one output, named after its
 * output. NULL when out of memory. */
Onnx__NodeProto *sat__onnx_out_node(sat__onnx_out *o, const char *op_type, const char *const *inputs, size_t count,
                                const char *output);
void sat__onnx_out_attr_int(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name, int64_t v);
void sat__onnx_out_attr_float(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name, float v);
/* An attribute of two equal ints (kernel_shape, strides), or four (pads). */
void sat__onnx_out_attr_ints(sat__onnx_out *o, Onnx__NodeProto *nd, const char *name, int64_t v, size_t count);

/* A float initializer of shape dims[ndim] holding data, which must stay valid until the
 * graph is packed (it is not copied). Returns its name. */
const char *sat__onnx_out_floats(sat__onnx_out *o, const char *name, const int64_t *dims, size_t ndim,
                             const float *data);
/* A scalar float initializer shared by every node that uses the same name. */
const char *sat__onnx_out_scalar(sat__onnx_out *o, const char *name, float v);
/* The int64 initializer [2, 3]: the axes that make [N, C] into [N, C, 1, 1]. */
const char *sat__onnx_out_hw_axes(sat__onnx_out *o);

/* ---- export_layers.c: the ONNX form of each layer ---- */

/* Emits layer i of o->m, reading the tensors of its producers and setting o->tensor[i]
 * and o->rank[i]. SAT_E_UNSUPPORTED naming the layer for what ONNX cannot express, with
 * the message prefixed by fn. */
int32_t sat__onnx_out_layer(sat__onnx_out *o, int32_t i, const char *fn);

#endif
