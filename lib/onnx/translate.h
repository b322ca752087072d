/* translate.h - the state of one translation of an ONNX graph into a libsat spec, shared by
 * the walk over the graph (translate.c) and the translation of each op (nodes.c). */
#ifndef SAT_ONNX_TRANSLATE_H
#define SAT_ONNX_TRANSLATE_H

#include "onnx/onnx.h"

#define SAT__T_INPUT 0 /* the graph's input */
#define SAT__T_CONST 1 /* an initializer or a Constant node's value */
#define SAT__T_NODE 2  /* an output of a node */

/* A tensor of the graph, by name. */
typedef struct sat__onnx_entry {
    const char *name;
    int32_t kind;                      /* SAT__T_* */
    const Onnx__TensorProto *tensor;   /* SAT__T_CONST */
    int32_t node;                      /* SAT__T_NODE: the node producing it */
    int32_t layer;                     /* the libsat layer holding its value; -1: none (yet) */
    int32_t uses;                      /* readers among the nodes translated, + 1 for the graph output */
} sat__onnx_entry;

typedef struct sat__onnx_tr {
    const sat_context *ctx;
    const Onnx__GraphProto *g;
    sat__onnx_entry *ents;             /* sorted by name */
    int32_t num_ents;
    uint8_t *needed;                   /* per node: the graph output depends on it */
    uint8_t *done;                     /* per node: translated (or folded into another) */
    int32_t input_rank;                /* of the graph input, 2..4 */
    int64_t input_channels;            /* its size on axis 1 */
    const char *output;                /* the graph output's name */
    sat__onnx_plan *plan;
    sat__onnx_act_swap swap;
    char *err;
} sat__onnx_tr;

/* translate.c */
sat__onnx_entry *sat__onnx_find(const sat__onnx_tr *t, const char *name);
/* Appends a spec line "text from=L<in0> name=L<n>" (no from= for in0 < 0); the new layer's
 * index, or -1 when out of memory (plan->failed). */
int32_t sat__onnx_emit(sat__onnx_tr *t, int32_t in0, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void sat__onnx_copy_add(sat__onnx_tr *t, const sat__onnx_copy *c);
/* A message naming node i and its op type; returns status (SAT_E_UNSUPPORTED for what
 * libsat cannot do, SAT_E_FORMAT for what breaks ONNX's rules). */
int32_t sat__onnx_fail(const sat__onnx_tr *t, int32_t status, int32_t i, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The same for the translation `t` in scope, as ops.c's FAIL does for its messages. */
#define UNSUPPORTED(i, ...) sat__onnx_fail(t, SAT_E_UNSUPPORTED, (i), __VA_ARGS__)
#define MALFORMED(i, ...) sat__onnx_fail(t, SAT_E_FORMAT, (i), __VA_ARGS__)

/* nodes.c */
/* Translates node i (needed, not done) and everything it folds in. */
int32_t sat__onnx_node(sat__onnx_tr *t, int32_t i);
/* Folds the chain of Sub/Div/Mul/Add by per-channel constants that reads the graph input
 * into one normalize line (none if there is no such chain). */
int32_t sat__onnx_normalize(sat__onnx_tr *t);

/* batch_shape.c: 1 if Reshape node `reshape` takes its shape from the subgraph PyTorch
 * exports for x.view(x.size(0), -1) (or K for -1); *features the -1 or K. That subgraph's
 * nodes (Shape, Gather, Unsqueeze, Concat) are then marked done. */
int sat__onnx_batch_shape(sat__onnx_tr *t, int32_t reshape, int64_t *features);

#endif
