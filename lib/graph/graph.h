/* graph.h - the model graph, its two execution plans and the executor.
 *
 * A model is a list of nodes in topological order (the spec's line order). Node 0 is the
 * input. Each node produces one tensor of shape [n, c, h, w]. Every op has one entry in
 * the op table (ops.c): shape inference, parameters, workspace, forward, backward.
 *
 * Two plans come from one graph:
 *   ATTACK: forward + gradient w.r.t. the input only (no parameter-gradient GEMMs),
 *           batch norm as chosen for the attack, running statistics never touched.
 *   TRAIN:  forward in training mode + parameter gradients; input gradients only where a
 *           parameter upstream needs them, or when the caller asks for dL/dx (Free-AT).
 * Memory: parameters, gradients and state are flat blocks held by the model (the weights).
 * Activations, gradients and scratch live in the arena of an execution (struct sat_exec),
 * planned once for its kind and largest batch, so a step allocates nothing. Several
 * executions of one model can run at once on different threads: a forward or backward
 * only reads the model, except a training forward (running statistics) and parameter
 * gradients written into the model's own block. */
#ifndef SAT_GRAPH_H
#define SAT_GRAPH_H

#include "core/core.h"
#include "kernels/kernels.h"

enum sat_op {
    SAT_OP_INPUT,
    SAT_OP_NORMALIZE,
    SAT_OP_DENSE,
    SAT_OP_CONV,
    SAT_OP_BN,
    SAT_OP_ACT,
    SAT_OP_MAXPOOL,
    SAT_OP_AVGPOOL,
    SAT_OP_GAP,
    SAT_OP_ADD,
    SAT_OP_FLATTEN,
    SAT_OP_SIGMOID,
    SAT_OP_MUL,
    SAT_OP_DROPOUT,
    SAT_OP_COUNT
};

#define SAT_NAME_MAX 32

typedef struct sat_node {
    int32_t op;
    int32_t in0, in1;           /* producer nodes (-1: none) */
    int32_t c, h, w;            /* output shape per example */
    int64_t size;               /* c*h*w */
    int32_t line;               /* spec line, for messages */
    char name[SAT_NAME_MAX];
    /* attributes */
    int32_t units, k, stride, pad, has_bias;
    int32_t groups;             /* conv: channel groups (1: dense over channels) */
    float rate;                 /* dropout: probability of zeroing a value */
    int32_t per_example;        /* dropout: one draw per example (stochastic depth) */
    int32_t act;                /* SAT_OP_ACT: SAT_ACT_* */
    float act_param;
    sat_conv_geom conv;
    /* offsets into the model's blocks (-1: none) */
    int64_t p_w, p_b, p_gamma, p_beta, p_alpha; /* params / grads */
    int64_t n_w;
    int64_t s_mean, s_var;      /* state */
    int64_t k_mean, k_std;      /* constants (normalize) */
    int32_t consumers;          /* how many nodes read this output */
    int32_t alias;              /* output is the input's buffer (flatten) */
    /* Batch norm folded into the convolution before it in SAT__BN_FOLD passes (fold.c): */
    int32_t bn_folded;          /* batch norm: folded into its input, a conv it alone reads */
    int32_t fold_bn;            /* conv: the batch norm folded into it (-1: none) */
} sat_node;

/* Where a node's backward finds the values its derivative is taken at (ops.c). Most read
 * their input. An act node with ReLU reads its output instead (y > 0 where x > 0) when the
 * execution was planned without a backward override (which needs x); an act node right
 * after a batch norm (its only reader, with parameters) computes its input again from the
 * batch norm's input. Either way the plan need not keep the act's input. */
enum { SAT__ACT_READS_INPUT, SAT__ACT_READS_OUTPUT, SAT__ACT_RECOMPUTES_INPUT };
int32_t sat__act_backward_source(const sat_exec *e, const sat_node *nd);
/* 1 if nd is an act node whose backward may write its input gradient over its output
 * gradient: element by element, dy[k] read before dx[k] is written (not when it first
 * computes its input again into dx). */
int sat__act_in_place(const sat_exec *e, const sat_node *nd);
/* 1 while the model has no backward override, so that ReLU may read its output. */
int sat__model_relu_from_output(const sat_model *m);

/* Batch-norm behaviour of one forward pass. */
#define SAT__BN_INFER 0   /* running statistics */
#define SAT__BN_BATCH 1   /* batch statistics, running ones untouched */
#define SAT__BN_TRAIN 2   /* batch statistics, running ones updated */
#define SAT__BN_FOLD 3    /* running statistics, each batch norm that follows a convolution
                             folded into it; only the attack plan's backward may follow */

#define SAT__PLAN_ATTACK 0
#define SAT__PLAN_TRAIN 1

struct sat_model {
    sat_context *ctx;
    sat_model_opts opts;
    char *spec;
    sat_node *nodes;
    int32_t num_nodes;
    int32_t in_c, in_h, in_w, classes;
    int64_t in_size;
    int64_t max_batch;

    float *params, *grads;
    int64_t num_params;
    float *state;
    float *state_backup;        /* running statistics before a training forward */
    int64_t num_state;
    float *consts;
    int64_t num_consts;

    uint8_t *need_dx[2];        /* per plan and node: compute the gradient w.r.t. its inputs */
    int64_t planned_floats;     /* arena of a training execution for max_batch */
    int64_t fold_floats;        /* the largest conv's folded weights and bias (fold.c) */
    /* Training-mode forwards run so far: with the seed, the key of their dropout masks, so
     * each step draws new ones and a rerun of the same steps draws the same. */
    uint64_t train_forwards;

    /* The execution the model's own calls (forward, input gradient, train backward, attacks,
     * trainer) use: made on first use, so a model run only through sat_exec handles holds
     * only its weights. */
    struct sat_exec *own_exec;
    /* Optimizers, trainers and executions made from this model (atomic, see core.h):
     * destroying the model is refused while any lives. Its own execution is not counted. */
    int32_t live_children;

    char err[SAT_ERRMSG_SIZE];
};

/* A data-parallel rank's part of a batch, attached to an execution by a trainer for the
 * length of its call (NULL: the batch is all there is). */
typedef struct sat__shard {
    int64_t example_base;       /* global index of the batch's first example (dropout masks) */
    sat_bn_reduce_fn bn_reduce; /* NULL: batch norm on this batch's own statistics */
    void *bn_reduce_user;
    double *bn_sums;            /* scratch: 2 * (widest batch-norm layer) + 1 */
    int32_t bn_status;          /* the first failed reduction's return value (0: none yet) */
    sat_grad_ready_fn grad_ready; /* during sat_train_compute: the host's sat_grad_ready_fn */
    void *grad_ready_user;
} sat__shard;

/* The last backward of a training step into the model's gradient block completes and hands
 * out the block range by range, as each becomes final (sat_grad_ready_fn). */
typedef struct sat__grad_handout {
    const float *addend;        /* NULL, or added to each range first: an earlier backward's part */
    sat_grad_ready_fn ready;    /* NULL: the ranges are only completed */
    void *ready_user;
    int32_t status;             /* ready's refusal (0: none) */
} sat__grad_handout;

/* An execution: the memory and bookkeeping of running one model, used by one thread. */
struct sat_exec {
    sat_model *m;
    int32_t kind;               /* SAT_EXEC_* */
    int32_t owned_by_model;     /* the model's own execution (m->own_exec) */
    int64_t max_batch;
    float *arena;
    int64_t arena_size;         /* floats */
    float *ws;                  /* conv workspace, ws_lanes slots (one per thread, see conv.c) */
    int64_t ws_lanes;
    int64_t ws_size;            /* floats */
    /* arena offsets in floats, per node (-1: none) */
    int64_t *a_out;             /* forward output, max_batch * size */
    int64_t *a_grad;            /* gradient of the output */
    int64_t *a_save;            /* batch norm: saved mean, inverse std, scale and shift (4c) */
    int32_t relu_from_output;   /* planned with ReLU backwards reading their outputs */
    int64_t a_scratch;          /* gradient accumulation scratch (fan-out > 1), two halves */
    int64_t scratch_half;
    int64_t a_dlogits, a_losses; /* -1 for an inference execution */
    int64_t a_fold;             /* m->fold_floats: one conv's folded weights and bias */
    /* Activation checkpointing (recompute.c), fixed when e is planned: */
    int32_t recompute_asked;    /* the model's choice (sat__recompute_chosen) then */
    int32_t recompute;          /* 1: only segment ends keep their outputs; each backward runs
                                   a segment's forward again before the segment's backward
                                   (0 although asked where that would save no memory) */
    int32_t *segment;           /* per node, the first node of its segment (recompute only) */
    int32_t segment_held;       /* the first node of the segment whose outputs the region holds */
    float **out_ptr;            /* per node, set by each forward */
    float **grad_ptr;           /* per node */
    uint8_t *grad_fresh;        /* per node, during backward: no contribution yet */

    /* what the last forward was, so that backward can check it matches */
    int64_t run_n;
    int32_t run_bn;
    int32_t run_valid;
    uint64_t run_dropout_key;   /* the dropout masks' key of the last training-mode forward */
    sat__shard *shard;          /* set by a data-parallel trainer during its call, else NULL */
    sat__grad_handout *handout; /* set for a step's last backward (sat__exec_bwd_handout), else NULL */

    char *err;                  /* own_err, or the model's message for its own execution */
    char own_err[SAT_ERRMSG_SIZE];
};

/* One entry per op. */
typedef struct sat_run {
    sat_model *m;
    sat_exec *e;         /* arena, workspace */
    float *grads;        /* backward only: parameter gradients go here (when param_grads) */
    int64_t n;
    int32_t bn;          /* SAT__BN_* */
    int32_t plan;        /* backward only */
    int32_t bwd_act;     /* backward only: derivative used by act nodes (SAT_ACT_SAME) */
    float bwd_param;
    int32_t param_grads; /* backward only */
    int32_t recompute;   /* forward only: a segment run again inside a backward (recompute.c) */
} sat_run;

/* One word of a spec line after the layer keyword: `key=val`, or a positional `val`
 * (key NULL). name= and from= are the parser's, every op takes them. */
typedef struct sat_arg {
    const char *key;
    const char *val;
} sat_arg;

#define SAT__MAX_UNITS (1 << 20)   /* outputs of a dense or conv layer */
#define SAT__MAX_CHANNELS 65536    /* input channels, height and width */

typedef struct sat_op_info {
    const char *name;           /* the spec keyword */
    /* Sets the op's defaults, reads its arguments into the node and checks that the
     * required ones are there; may add constants (normalize). NULL: the op takes no
     * arguments. Returns SAT_OK or SAT_E_INVALID_ARG with a message naming the line. */
    int32_t (*parse)(sat_model *m, sat_node *nd, const sat_arg *args, int32_t count, char *err);
    /* Sets the node's output shape from its inputs and counts parameters, state and
     * constants. Returns SAT_OK or SAT_E_INVALID_ARG with a message into err. */
    int32_t (*infer)(sat_model *m, sat_node *nd, char *err);
    /* Floats of workspace for a batch of n run by `lanes` threads side by side; with
     * backward 0, for the forward alone (an inference execution). */
    int64_t (*workspace)(const sat_node *nd, int64_t n, int64_t lanes, int backward);
    void (*forward)(const sat_run *r, const sat_node *nd, const float *x0, const float *x1, float *y);
    /* dx0/dx1 (may be NULL: not needed) are overwritten. */
    void (*backward)(const sat_run *r, const sat_node *nd, const float *x0, const float *y,
                     const float *dy, float *dx0, float *dx1);
    /* 1 if backward reads its inputs x0/x1. No backward reads its own output y, so an
     * output that no consumer's backward reads is dead once the forward pass has used it
     * (plan.c lets such outputs share memory). */
    int32_t backward_reads_input;
    /* Floats the forward saves for the backward besides the tensors above, for any batch
     * (batch norm: the batch mean and inverse std; nd->a_save). NULL: none. */
    int64_t (*saved)(const sat_node *nd);
    /* Initial parameters and state of the node from the seed, each value a pure function
     * of (seed, position) (init.c's helpers). NULL: the op has none. */
    void (*init)(sat_model *m, const sat_node *nd, uint64_t seed);
} sat_op_info;

extern const sat_op_info sat__ops[SAT_OP_COUNT];

static inline int sat__node_has_params(const sat_node *nd) {
    return nd->p_w >= 0 || nd->p_gamma >= 0 || nd->p_alpha >= 0;
}

/* spec.c: parses a spec into m->nodes (shapes, parameter layout); message into err. */
int32_t sat__parse_spec(sat_model *m, const char *spec, char *err);
/* spec.c: what the ops' parse functions share. Each failing one returns
 * SAT_E_INVALID_ARG with a message naming the spec line. */
/* 1 if a is key=value with this key. */
int sat__arg_is(const sat_arg *a, const char *key);
/* 1 if s is an integer in [lo, hi] (stored in *out), else 0. */
int sat__parse_int(const char *s, long lo, long hi, int32_t *out);
/* The value of a key=value argument as an integer in [lo, hi]. */
int32_t sat__arg_int(const sat_node *nd, const sat_arg *a, long lo, long hi, int32_t *out, char *err);
/* The value as a float > 0. */
int32_t sat__arg_positive(const sat_node *nd, const sat_arg *a, float *out, char *err);
/* The value as a comma-separated list of 1 to max floats (positive: all > 0); *count. */
int32_t sat__arg_floats(const sat_node *nd, const sat_arg *a, float *out, int max, int positive, int *count,
                        char *err);
/* The message for an argument the op does not take. */
int32_t sat__arg_unknown(const sat_node *nd, const sat_arg *a, char *err);
/* The latest node labelled `name` (name=), or -1. */
int sat__spec_label(const sat_model *m, const char *name);
/* plan.c: allocates the model's blocks and the two plans' gradient needs, and checks that
 * a training execution for max_batch can be laid out. */
int32_t sat__plan_model(sat_model *m, char *err);
/* plan.c: lays out an execution's arena for its kind and max_batch and allocates it. */
int32_t sat__plan_exec(sat_exec *e, char *err);
/* Frees what sat__plan_exec planned and allocated for e (the arena and the per-node
 * arrays, not the workspace) and leaves those fields NULL. */
void sat__plan_release(sat_exec *e);
/* Lays e out again for the model's current backward overrides (sat_model_set_backward set
 * one after e was planned to read ReLU outputs); SAT_E_NOMEM leaves e without an arena, to
 * be planned again by its next forward. */
int32_t sat__plan_refresh(sat_exec *e, char *err);
/* fold.c: in a SAT__BN_FOLD pass a batch norm that alone reads a convolution's output is an
 * affine map per channel with fixed coefficients: the convolution runs with weights and bias
 * that give the batch norm's output directly, and the batch norm's forward and backward are
 * skipped. sat__fold_plan marks such pairs and sizes the fold region (with the graph). */
void sat__fold_plan(sat_model *m);
/* Before conv node nd's forward or input gradient in pass r: folds its batch norm into its
 * current parameters, into e's fold region, when the pass folds it. */
void sat__fold_conv(const sat_run *r, const sat_node *nd);
/* The weights and bias (NULL: none) conv node nd runs with in pass r. */
const float *sat__conv_weights(const sat_run *r, const sat_node *nd);
const float *sat__conv_bias(const sat_run *r, const sat_node *nd);
/* 1 when batch norm node nd is skipped in pass r (folded into its input). */
static inline int sat__bn_skipped(const sat_run *r, const sat_node *nd) {
    return r->bn == SAT__BN_FOLD && nd->bn_folded;
}
/* recompute.c: activation checkpointing. sat__recompute_segments cuts the graph into
 * segments at nodes that every later edge leaves from (a residual block's output), about
 * sqrt(total outputs x typical cut) floats of outputs each; segment[i] is the first node of
 * node i's segment, cut[] (N bytes) its scratch. Before the backward of node `end`, the
 * end of a segment, sat__recompute_hold makes the segment region hold that segment's
 * outputs: unless it holds them already (the last segment after its forward), it runs the
 * segment's forward again, with the forward's batch statistics and dropout masks. */
void sat__recompute_segments(const sat_model *m, uint8_t *cut, int32_t *segment);
void sat__recompute_hold(sat_exec *e, int32_t end);
/* 1 if node i ends its segment (the last node ends the last one). */
static inline int sat__segment_ends(const sat_exec *e, int32_t i) {
    return i == e->m->num_nodes - 1 || e->segment[i + 1] == i + 1;
}
/* Whether e is to be planned with recompute: the model's current choice, for executions
 * with a backward (an inference execution keeps nothing past its readers anyway). */
static inline int32_t sat__recompute_chosen(const sat_exec *e) {
    return e->m->opts.activation_checkpointing && e->kind != SAT_EXEC_INFERENCE;
}
/* executor.c: nodes first..last of a forward pass r over e. */
void sat__forward_nodes(sat_exec *e, const sat_run *r, int32_t first, int32_t last);
/* out = a + b over count floats (out may be a), split over the worker pool. */
void sat__graph_add(const sat_model *m, const float *a, const float *b, float *out, int64_t count);
/* Threads beyond this share workspace slots (conv layers then use this many). */
#define SAT__MAX_LANES 16
/* Makes the workspace large enough for the context's current thread count (it may have
 * grown since the model was created). Allocates only when it grows. */
int32_t sat__plan_reserve_lanes(sat_exec *e, char *err);
/* init.c: initial parameters and statistics from a seed (each op's `init`). */
void sat__init_params(sat_model *m, uint64_t seed);
/* init.c: dst[j] = std * N(0,1) drawn at index first + j of SAT_STREAM_INIT. */
void sat__init_normal(float *dst, int64_t first, int64_t count, float std, uint64_t seed);
/* init.c: dst[0..count) = v. */
void sat__init_fill(float *dst, int64_t count, float v);

/* exec.c: an execution of kind SAT_EXEC_* for batches up to max_batch (message into err);
 * counted among the model's live children unless it is the model's own. */
int32_t sat__exec_create(sat_model *m, int32_t kind, int64_t max_batch, int owned_by_model, sat_exec **out,
                         char *err);
void sat__exec_free(sat_exec *e);
/* The model's own execution (a training one for max_batch), made on first use; NULL with
 * a message in m->err if it cannot be. */
sat_exec *sat__model_exec(sat_model *m);
/* After the parameters were replaced (a checkpoint loaded): the model's own execution
 * forgets its last forward, whose activations no longer match them. */
void sat__model_forget_forward(sat_model *m);

/* executor.c */
int32_t sat__exec_fwd(sat_exec *e, const float *x, int64_t n, int32_t bn, const float **logits);
/* Backward from dlogits [run_n x classes] through the plan. grads (NULL: none) receives the
 * parameter gradients, overwritten; dx (may be NULL) the input gradient. */
int32_t sat__exec_bwd(sat_exec *e, int32_t plan, const float *dlogits, float *dx, float *grads);
/* sat__exec_bwd of the train plan into grads as a step's last backward, completing and
 * handing out the block through h; SAT_E_ABORTED when h->ready refuses. */
int32_t sat__exec_bwd_handout(sat_exec *e, const float *dlogits, float *grads, sat__grad_handout *h);
/* The same on the model's own execution; parameter gradients (TRAIN) overwrite m->grads. */
int32_t sat__forward(sat_model *m, const float *x, int64_t n, int32_t bn, const float **logits);
int32_t sat__backward(sat_model *m, int32_t plan, const float *dlogits, float *dx);
/* Resolved activation for the backward of a plan. */
void sat__plan_backward_act(const sat_model *m, int32_t plan, int32_t *act, float *param);

/* model.c: building and freeing a model, and checks shared by the entry points. */
sat_model_opts sat__model_defaults(void);
int32_t sat__model_check_backward(int32_t act, float param);
/* Builds a model without initialising parameters (load and clone fill them); a failure's
 * message goes to the thread-local buffer. */
int32_t sat__model_build(sat_context *ctx, const char *spec, const sat_model_opts *opts,
                         sat_model **out);
void sat__model_free(sat_model *m);
/* x (and labels, may be NULL) of a batch of n examples, up to `most`; message naming fn
 * into err. sat__check_batch: up to the model's max_batch, message into m->err. */
int32_t sat__check_examples(const sat_model *m, const float *x, const int32_t *labels, int64_t n, int64_t most,
                            const char *fn, char *err);
int32_t sat__check_batch(sat_model *m, const float *x, const int32_t *labels, int64_t n,
                         const char *fn);

#endif
