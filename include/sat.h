/**
 * @file sat.h
 * @brief libsat, Smooth Adversarial Training for image classifiers.
 *
 * The one public header of libsat. C99, also valid C++.
 *
 * Conventions (they hold for every function below unless its comment says otherwise):
 *
 *  - Status: functions return int32_t, SAT_OK (0) on success or one of the negative
 *    SAT_E_* codes. Codes are pinned: never renumbered, never reused.
 *  - Errors leave everything as it was: a call that fails does not modify the handle's
 *    parameters, state, or the caller's output buffers beyond what its comment says.
 *  - Error detail: sat_context_last_error(), sat_model_last_error(), ... give a message
 *    for the last failed call on that handle (valid until the next call on the handle).
 *    Failures before a handle exists (create, load) set a thread-local message read by
 *    sat_last_error().
 *  - Memory: inputs are borrowed for the duration of the call only; outputs go into
 *    caller buffers. Memory handed out by the library is freed with sat_free().
 *  - Data: images are float32, NCHW, contiguous, pixel values in [0,1]. Labels are
 *    int32 in [0, num_classes). Batch sizes are int64_t.
 *  - Threads: one handle is used by one thread at a time; different handles are
 *    independent. A model and the context it was created with must not be used from
 *    two threads at once. The library keeps no mutable global state, never prints
 *    (unless a log callback is set), reads no environment variable and never calls
 *    abort() or exit().
 *  - Reproducibility: with the same inputs, seeds and options, results (logits,
 *    gradients, adversarial examples, trained weights) are bit-identical for any thread
 *    count and any chunking of a batch (max_batch), on one machine with one build of the
 *    library. Across CPUs they are equal up to float rounding: the kernels that a CPU
 *    runs (BLIS's configuration for it, AVX-512 or not) sum in different orders, and
 *    training amplifies those differences (docs/design.md says by how much).
 *  - Options structs begin with `uint32_t struct_size`. Initialise them with their
 *    *_opts_init(&o, sizeof o) function, then change fields. The library reads
 *    min(struct_size, its own size) bytes; a larger struct from a newer header is
 *    accepted only if the unknown tail is all zero bytes.
 *  - `*_destroy(NULL)` is a no-op. A handle that others were made from (a context, a
 *    model, an optimizer) is not destroyed while any of them lives: the call is refused
 *    and the handle stays usable (see "Destroying with a status" at the end).
 */
#ifndef SAT_H
#define SAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the exported functions: default visibility (GCC/Clang) or dllimport/dllexport
 *  (Windows); empty when SAT_STATIC_DEFINE is set for a static build. */
#if defined(SAT_STATIC_DEFINE)
#define SAT_API
#elif defined(_WIN32)
#ifdef SAT_BUILDING_LIBRARY
#define SAT_API __declspec(dllexport)
#else
#define SAT_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define SAT_API __attribute__((visibility("default")))
#else
#define SAT_API
#endif

/* ------------------------------------------------------------------------- */
/* Version                                                                    */
/* ------------------------------------------------------------------------- */

#define SAT_VERSION_MAJOR 0        /**< major version of this header (also the SONAME's) */
#define SAT_VERSION_MINOR 1        /**< minor version of this header */
#define SAT_VERSION_PATCH 0        /**< patch version of this header */
#define SAT_VERSION_STRING "0.1.0" /**< the version of this header as a string */

/** Version of the library actually loaded, e.g. "0.1.0". Static string. */
SAT_API const char *sat_version_string(void);
/** Version numbers of the loaded library. Any pointer may be NULL. */
SAT_API void sat_version(int32_t *major, int32_t *minor, int32_t *patch);
/** One line describing the build (compiler, BLIS version). Static string. */
SAT_API const char *sat_build_info(void);

/* ------------------------------------------------------------------------- */
/* Status codes                                                               */
/* ------------------------------------------------------------------------- */

#define SAT_OK 0                /**< success */
#define SAT_E_INVALID_ARG (-1)  /**< a NULL pointer, an out-of-range value, a bad spec */
#define SAT_E_NOMEM (-2)        /**< an allocation failed */
#define SAT_E_SHAPE (-3)        /**< a batch or buffer size does not fit the model */
#define SAT_E_STATE (-4)        /**< the handle is not in a state that allows the call */
#define SAT_E_IO (-5)           /**< open/read/write/rename failed */
#define SAT_E_FORMAT (-6)       /**< a file or buffer is damaged or not of the expected kind */
#define SAT_E_VERSION (-7)      /**< a file written by an unsupported format version */
#define SAT_E_UNSUPPORTED (-8)  /**< a valid request this build cannot do */
#define SAT_E_NUMERIC (-9)      /**< NaN or Inf in an input or produced by a computation */
#define SAT_E_ABORTED (-10)     /**< a callback asked to stop */
#define SAT_E_INTERNAL (-11)    /**< a bug in libsat: please report it */

/** Static, never NULL, description of a status code ("invalid argument", ...). */
SAT_API const char *sat_status_string(int32_t status);

/** Thread-local message of the last failure that had no handle to hold it
 *  (sat_context_create, sat_model_create, sat_model_load, ...). Never NULL;
 *  "" when there is none. Valid until the next libsat call on this thread. */
SAT_API const char *sat_last_error(void);

/** Frees memory the library handed out (spec strings, saved buffers). NULL is a no-op. */
SAT_API void sat_free(void *ptr);

/* ------------------------------------------------------------------------- */
/* Context                                                                    */
/* ------------------------------------------------------------------------- */

/** Threads, seed, log callback and allocator shared by the handles created with it. */
typedef struct sat_context sat_context;

/** The default of every options struct's `seed` (models, attacks, trainers, evaluation,
 *  AutoAttack): use the seed of the context the handle belongs to. So options from their
 *  *_opts_init function and NULL options seed alike. Any other value is used as it is. */
#define SAT_SEED_CONTEXT UINT64_MAX

#define SAT_LOG_ERROR 0  /**< log level: a call failed */
#define SAT_LOG_WARN 1   /**< log level: something suspicious that did not fail the call */
#define SAT_LOG_INFO 2   /**< log level: progress of long calls */
#define SAT_LOG_DEBUG 3  /**< log level: details for debugging */

/** Log callback: level is SAT_LOG_*, message is valid during the call only. It is called on
 *  the thread of the libsat call that logs. Today the library logs, at SAT_LOG_INFO, each
 *  model it builds (sat_model_create, _clone, _load): layers, parameter count, the memory
 *  planned for activations and gradients, and which kernels run (the BLIS configuration or
 *  the library's own micro-kernel, and whether the direct convolutions are used). */
typedef void (*sat_log_fn)(void *user, int32_t level, const char *message);
/** Allocator hooks. alloc must return memory aligned to `alignment` (a power of two,
 *  at most 64) or NULL. free receives what alloc returned. */
typedef void *(*sat_alloc_fn)(void *user, size_t size, size_t alignment);
/** Frees a block returned by the sat_alloc_fn of the same context (never NULL). */
typedef void (*sat_dealloc_fn)(void *user, void *ptr);

/** Options of sat_context_create(); initialise with sat_context_opts_init(). */
typedef struct sat_context_opts {
    uint32_t struct_size;  /**< sizeof(sat_context_opts), set by sat_context_opts_init() */
    int32_t num_threads;   /**< threads for BLIS and the worker pool; default 1, range 1..256 */
    uint64_t seed;         /**< seed of the models, attacks and trainers whose options leave
                                *   theirs at SAT_SEED_CONTEXT; default 0 */
    sat_log_fn log_fn;     /**< default NULL: the library never prints */
    void *log_user;        /**< passed to log_fn as `user`; default NULL */
    int32_t log_level;     /**< messages up to this level are sent; default SAT_LOG_INFO */
    int32_t reserved0;     /**< must be 0 */
    sat_alloc_fn alloc_fn; /**< default NULL: aligned malloc */
    sat_dealloc_fn dealloc_fn; /**< set together with alloc_fn; default NULL: free */
    void *alloc_user;      /**< passed to alloc_fn and dealloc_fn as `user`; default NULL */
} sat_context_opts;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_context_opts_init(sat_context_opts *opts, uint32_t struct_size);
/** Creates a context. opts may be NULL for defaults. On failure *out is NULL and
 *  sat_last_error() says why. */
SAT_API int32_t sat_context_create(const sat_context_opts *opts, sat_context **out);
/** Destroys a context. All models, data sets and callback models created with it must be
 *  destroyed first: while any lives, nothing is destroyed, the context stays usable and
 *  sat_last_error() says why (sat_context_destroy_checked() also returns SAT_E_STATE). */
SAT_API void sat_context_destroy(sat_context *ctx);
/** Message of the last failed call on ctx ("" if none); valid until the next call on it. */
SAT_API const char *sat_context_last_error(const sat_context *ctx);
/** Changes the thread count (1..256) for later calls. The new threads are started before the
 *  old ones stop: if they cannot be (SAT_E_NOMEM, SAT_E_INTERNAL), the context keeps its
 *  thread count and threads, and stays usable. */
SAT_API int32_t sat_context_set_num_threads(sat_context *ctx, int32_t num_threads);

/* ------------------------------------------------------------------------- */
/* Progress and cancellation                                                  */
/* ------------------------------------------------------------------------- */

/**
 * Progress callback of a context's long calls. `what` names the running public call
 * ("sat_attack", "sat_evaluate", "sat_train_step", ...; a static string), `done` of `total`
 * units of its work are finished. Units are the call's own and say how much is left: for
 * attacks, evaluation and AutoAttack one unit is one example through one attack iteration
 * (or one pass of the model); for a training step one example through one attack step or
 * one optimizer update; for data set loading one example read.
 *
 * Each call reports first with done = 0, then after every bounded piece of work (one
 * attack iteration of one chunk of at most max_batch examples, one evaluated chunk, one
 * optimizer update, one read of at most 1 MiB or 256 records), with done never
 * decreasing, and last with done == total. It is called on the thread that made the call, never concurrently with itself
 * for one context, and must not call libsat on the handles of the running call.
 *
 * Return 0 to go on, anything else to cancel: the call then stops at that point and
 * returns SAT_E_ABORTED with a message naming the call, even at done == total. To cancel
 * from another thread (a GUI's button, a server's deadline, a signal handler), let that
 * thread set a flag that the callback reads. What a cancelled call leaves:
 *  - sat_attack, sat_pgd_attack, sat_callback_attack: x_adv holds the results of the chunks
 *    of max_batch examples finished before, the rest of it is unchanged; trace unchanged.
 *  - sat_evaluate: result unchanged.
 *  - sat_autoattack, sat_callback_autoattack: x_adv may be partly written; outcome and
 *    result unchanged.
 *  - sat_train_step: like a step that fails with SAT_E_NUMERIC: parameters, batch-norm
 *    statistics, optimizer state and step, RNG position and Free-AT's perturbation as
 *    before the call, so the next call with the same batch computes the same bits as if
 *    the cancelled call had never happened.
 *  - sat_dataset_load, sat_dataset_load_idx: *out NULL, nothing allocated; the message is
 *    in sat_last_error().
 * The model's parameters and batch-norm statistics are never changed by a cancelled call.
 */
typedef int32_t (*sat_progress_fn)(void *user, const char *what, int64_t done, int64_t total);

/** Sets (or with fn NULL removes) the progress callback of the long calls made with ctx
 *  and the handles created with it (models, callback models, trainers, data sets); `user`
 *  is passed to it as is and must stay valid while it is set. It applies from the next
 *  call on. Returns SAT_E_INVALID_ARG for a NULL ctx. Threads: like every call on ctx,
 *  not while another thread uses ctx or its handles. */
SAT_API int32_t sat_context_set_progress(sat_context *ctx, sat_progress_fn fn, void *user);

/* ------------------------------------------------------------------------- */
/* Activations                                                                */
/* ------------------------------------------------------------------------- */

/* Activation kinds, and the parameter (`param`) of each: */
#define SAT_ACT_SAME (-1)      /**< in a backward override: use the forward function's derivative */
#define SAT_ACT_DEFAULT (-2)   /**< sat_model_opts.activation: the spec's own, named by its input
                                    line's act= (a preset's original activation), else SiLU */
#define SAT_ACT_RELU 0         /**< max(x,0); no parameter */
#define SAT_ACT_SOFTPLUS 1     /**< log(1+exp(x)) */
#define SAT_ACT_PSOFTPLUS 2    /**< (1/a) log(1+exp(a x)), param a (default 10) */
#define SAT_ACT_SILU 3         /**< x sigmoid(b x), param b (default 1) */
#define SAT_ACT_GELU 4         /**< x Phi(x), erf form */
#define SAT_ACT_GELU_TANH 5    /**< tanh approximation of GELU */
#define SAT_ACT_ELU 6          /**< x if x>0 else a (exp(x)-1), param a (default 1) */
#define SAT_ACT_CELU 7         /**< max(0,x) + min(0, a (exp(x/a)-1)), param a (default 1) */
#define SAT_ACT_SMOOTHRELU 8   /**< x - (1/a) log(1+a x) for x>=0 else 0; a learnable per layer,
                                  param = initial a (default 400) */
#define SAT_ACT_COUNT 9         /**< number of activation kinds (ids are 0..SAT_ACT_COUNT-1) */

/** Name of an activation ("relu", "silu", ...) or NULL if unknown. */
SAT_API const char *sat_activation_name(int32_t act);
/** Looks an activation up by name (case-insensitive; also "swish" for silu).
 *  Returns SAT_E_INVALID_ARG for an unknown name. */
SAT_API int32_t sat_activation_from_name(const char *name, int32_t *act);
/** The default parameter of an activation (10 for psoftplus, 400 for smoothrelu, 1 else). */
SAT_API float sat_activation_default_param(int32_t act);

/* ------------------------------------------------------------------------- */
/* Models                                                                     */
/* ------------------------------------------------------------------------- */

/** A classifier: its graph, options, parameters and batch-norm statistics. The memory
 *  that runs it belongs to executions (sat_exec); the model's own calls use one the model
 *  makes on first use (sat_model_exec()), so the first call that runs a model may fail
 *  with SAT_E_NOMEM. */
typedef struct sat_model sat_model;

#define SAT_BN_INFERENCE 0  /**< batch norm uses running statistics */
#define SAT_BN_BATCH 1      /**< batch norm uses batch statistics (running ones untouched) */

/** Options of sat_model_create(); initialise with sat_model_opts_init(). */
typedef struct sat_model_opts {
    uint32_t struct_size;      /**< sizeof(sat_model_opts), set by sat_model_opts_init() */
    int32_t activation;        /**< SAT_ACT_*: every `act` line without its own kind; default
                                    SAT_ACT_DEFAULT: the spec's input line's act=, else SiLU.
                                    sat_model_get_opts() returns the activation it became. */
    float act_param;           /**< NaN (default): the activation's default parameter */
    int32_t max_batch;         /**< largest batch the model plans memory for; default 128 */
    /** The paper's ablation: the derivative used in the backward pass, separately for the
     *  attacker (input gradients, this field) and the optimizer (parameter gradients,
     *  train_backward_act). SAT_ACT_SAME (default) uses the forward function's own
     *  derivative; else a SAT_ACT_* whose derivative replaces it. */
    int32_t attack_backward_act;
    float attack_backward_param;   /**< NaN (default): default parameter of attack_backward_act */
    int32_t train_backward_act;    /**< as attack_backward_act, for parameter gradients */
    float train_backward_param;    /**< NaN (default): default parameter of train_backward_act */
    int32_t attack_bn_mode;    /**< SAT_BN_INFERENCE (default) or SAT_BN_BATCH */
    uint64_t seed;             /**< parameter initialisation; default SAT_SEED_CONTEXT */
    /** Activation checkpointing, for a host short of memory: 0 (default) keeps every
     *  forward output a backward reads; 1 keeps only the outputs at the ends of segments of
     *  the graph (residual blocks' outputs, a chain's layers), about sqrt(all outputs)
     *  each, and each backward runs the forward of every segment but the last again just
     *  before that segment's backward. Results are bit for bit those without it (batch norm
     *  reuses the forward's batch statistics, dropout its masks); memory drops to the
     *  segment ends plus one segment's outputs, at the price of about one more forward per
     *  backward. Applies to executions with a backward (the model's own, a trainer's,
     *  SAT_EXEC_TRAIN and SAT_EXEC_INPUT_GRAD ones); not stored in model files
     *  (docs/design.md, "Activation checkpointing"). */
    int32_t activation_checkpointing;
} sat_model_opts;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_model_opts_init(sat_model_opts *opts, uint32_t struct_size);

/**
 * Returns the spec text of a preset model, to pass to sat_model_create. Presets:
 *   "mlp"        flatten, dense 256, act, dense 256, act, dense classes
 *   "madry-cnn"  conv5x5x32, act, maxpool2, conv5x5x64, act, maxpool2, dense 1024, act, dense classes
 *   "small-cnn"  conv3x3x16 s2, act, conv3x3x32 s2, act, dense 100, act, dense classes (fast)
 *   "resnet20"   CIFAR ResNet of He et al.: 3 stages x 3 basic blocks, widths 16/32/64, batch norm
 *   "preact-resnet18"  PreAct ResNet-18 of Rice et al. (robust overfitting): 4 stages x 2
 *                pre-activation blocks, widths 64..512, final bn and act; 11,172,170
 *                parameters at 3x32x32 with 10 classes; input at least 8x8
 *   "wrn-D-K"    wide ResNet of Zagoruyko & Komodakis as in the Madry and TRADES code: depth
 *                D = 6n + 4 (n pre-activation blocks per stage), widen factor K (1..64),
 *                widths 16K/32K/64K. At 3x32x32 with 10 classes: "wrn-34-10" 46,160,474,
 *                "wrn-28-10" 36,479,194, "wrn-16-4" 2,748,890 parameters
 *   "resnet50"   torchvision's ResNet-50: 7x7 stride-2 stem, padded 3x3 stride-2 max pooling,
 *                3-4-6-3 bottleneck blocks; 25,557,032 parameters at 3x224x224 with 1000
 *                classes (23,528,522 with 10); input at least 32x32 (3x64x64 works)
 *   "resnext50-32x4d"  the same with 32 groups of 4 channels in each 3x3 conv (doubled
 *                widths); 25,028,904 parameters at 3x224x224 with 1000 classes
 *   "efficientnet-b0"  torchvision's EfficientNet-B0: 16 MBConv blocks (1x1 expansion,
 *                depthwise kxk, squeeze-excitation with a sigmoid gate, 1x1 projection without
 *                activation, residual when the shape is kept, its branch dropped per example
 *                with probability 0.2 i / 16 in block i: stochastic depth), 1x1 head to 1280,
 *                dropout 0.2; 5,288,548 parameters at 3x224x224 with 1000 classes; at least
 *                32x32
 * Every `act` line of a preset is a plain `act`, so sat_model_opts.activation switches all of
 * a preset's activations at once. Left at its default (SAT_ACT_DEFAULT) it gives the original
 * network's activation, which the preset names on its input line: ReLU for preact-resnet18,
 * wrn-D-K, resnet50 and resnext50-32x4d, SiLU for efficientnet-b0. The other presets (mlp,
 * madry-cnn, small-cnn, resnet20) name none and take SiLU, the paper's best, by default.
 * Batch norm uses eps 1e-5 everywhere (torchvision's EfficientNet uses 1e-3).
 * channels/height/width give the input shape, num_classes the output size; mean and std
 * (arrays of `channels` values, or NULL for mean 0 / std 1) the input normalisation: a
 * mean that is not finite or a std that is not finite and positive is SAT_E_INVALID_ARG.
 * *spec_out is freed with sat_free().
 */
SAT_API int32_t sat_preset_spec(const char *name, int32_t channels, int32_t height, int32_t width,
                                int32_t num_classes, const float *mean, const float *std,
                                char **spec_out);

/**
 * Creates a model from a text spec: one layer per line, '#' starts a comment.
 *   input C H W [act=KIND]         first line: input shape per example; act= names the
 *                                   activation of plain `act` lines when the model's option
 *                                   is SAT_ACT_DEFAULT (without it: SiLU)
 *   normalize mean=M1,M2.. std=S1,S2..   (x - mean[c]) / std[c] per channel
 *   dense N [bias=0|1]
 *   conv N k=K [s=S] [p=P] [g=G] [bias=0|1]    square kernel K, stride S (1), padding P (0),
 *                                   G channel groups (1; G = C is depthwise): weights [N, C/G, K, K]
 *   bn                              batch norm over channels (or features after dense)
 *   act [KIND] [param=A]            the model's activation, or an explicit KIND
 *   maxpool k=K [s=S] [p=P]         max over K x K windows, stride S (K); padding P <= K/2
 *                                   (0) on each side never wins the max (PyTorch's MaxPool2d)
 *   avgpool k=K [s=S]   gap   flatten
 *   sigmoid                         1 / (1 + exp(-x)): a gate, whatever the model's activation
 *   dropout p=P [per=value|example] 0 < P < 1: in training-mode forwards (SAT_BN_TRAIN, the
 *                                   trainer's step) each value is zeroed with probability P and
 *                                   the others scaled by 1/(1-P); the identity in inference and in
 *                                   attacks. Masks are drawn from (seed, training forwards so far,
 *                                   layer, example, element): thread-independent and repeatable.
 *                                   per=example: one draw per example, which is dropped or
 *                                   scaled as a whole (stochastic depth on a residual branch)
 *   add NAME                        adds the output of the layer labelled NAME
 *   mul NAME                        multiplies by the output of the layer labelled NAME: one
 *                                   shape, or C x H x W by C x 1 x 1 (either one first) broadcast
 *                                   over H x W (a squeeze-excitation gate)
 * Any layer may carry `name=NAME` (labels its output) and `from=NAME` (takes its input from
 * the layer labelled NAME instead of the previous line). The last layer's output size is
 * the number of classes. A bad spec fails with SAT_E_INVALID_ARG and a message naming the
 * line: "model spec line 4: unknown layer 'conv3'".
 * opts may be NULL for defaults. Parameters are initialised (He-normal weights, zero
 * biases, unit batch-norm scale) from the seed.
 */
SAT_API int32_t sat_model_create(sat_context *ctx, const char *spec, const sat_model_opts *opts,
                                 sat_model **out);
/** Destroys a model. Its optimizers and trainers must be destroyed first: while any lives,
 *  nothing is destroyed, the model stays usable and sat_last_error() says why
 *  (sat_model_destroy_checked() also returns SAT_E_STATE). */
SAT_API void sat_model_destroy(sat_model *model);
/** Message of the last failed call on model ("" if none); valid until the next call on it. */
SAT_API const char *sat_model_last_error(const sat_model *model);
/** A deep copy (parameters, batch-norm statistics, options) on the same context. */
SAT_API int32_t sat_model_clone(const sat_model *model, sat_model **out);

/** Input shape per example and number of classes; any pointer may be NULL. */
SAT_API int32_t sat_model_shape(const sat_model *model, int32_t *channels, int32_t *height,
                                int32_t *width, int32_t *num_classes);
/** The largest batch the model runs in one piece (sat_model_opts.max_batch). */
SAT_API int64_t sat_model_max_batch(const sat_model *model);
/** The normalised spec text the model was built from. Borrowed; lives as long as the model. */
SAT_API const char *sat_model_spec(const sat_model *model);
/** Copy of the options the model was created with (struct_size set by the caller). */
SAT_API int32_t sat_model_get_opts(const sat_model *model, sat_model_opts *opts);
/** Changes the backward-activation overrides and attack batch-norm mode after creation.
 *  Without overrides a ReLU's backward reads its output, so executions do not keep ReLU
 *  inputs; after an override is set, each execution planned that way (the model's own,
 *  a trainer's, one from sat_exec_create) is planned again by its next forward pass, which
 *  may then fail with SAT_E_NOMEM, and a backward of a pass run before the change returns
 *  SAT_E_STATE. Not while another thread uses the model. */
SAT_API int32_t sat_model_set_backward(sat_model *model, int32_t attack_backward_act,
                                       float attack_backward_param, int32_t train_backward_act,
                                       float train_backward_param);

/** Turns activation checkpointing on (1) or off (0) after creation (sat_model_opts
 *  .activation_checkpointing; a loaded model starts with it off). Each execution of the
 *  model that has a backward (the model's own, a trainer's, one from sat_exec_create) is
 *  planned again by its next forward pass, which may then fail with SAT_E_NOMEM (or
 *  SAT_E_SHAPE when the activations without checkpointing exceed the library's limit); a
 *  backward of a pass run before the change still works. Errors: SAT_E_INVALID_ARG (NULL
 *  model, a value other than 0 or 1). Not while another thread uses the model. */
SAT_API int32_t sat_model_set_activation_checkpointing(sat_model *model, int32_t on);

/** Number of trainable parameters (length of the parameter and gradient blocks). */
SAT_API int64_t sat_model_param_count(const sat_model *model);
/** View of the flat parameter block (param_count floats). It stays valid for the life of
 *  the model; writing it is allowed. */
SAT_API float *sat_model_params(sat_model *model);
/** View of the flat gradient block (param_count floats), filled by
 *  sat_model_train_backward(). It stays valid for the life of the model. */
SAT_API float *sat_model_grads(sat_model *model);
/** Number of non-trainable state values (batch-norm running mean and variance). */
SAT_API int64_t sat_model_state_count(const sat_model *model);
/** View of the state values (sat_model_state_count floats), valid for the life of the
 *  model. */
SAT_API float *sat_model_state(sat_model *model);
/** Per-parameter decay mask (1 for weights, 0 for biases, batch-norm and activation
 *  parameters) written into mask[param_count]. */
SAT_API int32_t sat_model_decay_mask(const sat_model *model, uint8_t *mask);

/** Logits (n x num_classes) for a batch of any size n >= 1, batch norm in inference mode
 *  (each batch norm that alone reads a convolution's output folded into it, as in attacks:
 *  see sat_exec_forward). Batches larger than the model's max_batch run in chunks of
 *  max_batch, with the same bits as one call per chunk. SAT_E_SHAPE for n < 1,
 *  SAT_E_NUMERIC for NaN or Inf in x, SAT_E_INVALID_ARG when logits overlaps x (then nothing
 *  is written). Finite pixels outside [0,1] are computed on as they are. */
SAT_API int32_t sat_model_forward(sat_model *model, const float *x, int64_t n, float *logits);

/**
 * Attack plan: cross-entropy loss per example (losses[n], may be NULL) and its gradient
 * with respect to the input (grad[n*C*H*W], may be NULL), batch norm in the attack mode.
 * The gradient is that of the *sum* of per-example losses, so each example's gradient is
 * independent of the batch. No parameter gradients are computed and nothing in the model
 * changes. logits[n*classes] may be NULL. No output buffer may overlap x
 * (SAT_E_INVALID_ARG).
 */
SAT_API int32_t sat_model_input_gradient(sat_model *model, const float *x, const int32_t *labels,
                                         int64_t n, float *losses, float *grad, float *logits);

/**
 * Train plan: forward in training mode (batch statistics, running statistics updated)
 * and backward of the mean cross-entropy (with label smoothing in [0,1)) into the
 * gradient block, which is overwritten. *loss (may be NULL) receives the mean loss and
 * *correct (may be NULL) the number of correctly classified examples.
 * The parameters are not changed: apply an optimizer (sat_optimizer_step or your own).
 */
SAT_API int32_t sat_model_train_backward(sat_model *model, const float *x, const int32_t *labels,
                                         int64_t n, float label_smoothing, float *loss,
                                         int64_t *correct);

/* ------------------------------------------------------------------------- */
/* Executions: any loss, and one model's weights on several threads           */
/* ------------------------------------------------------------------------- */

/** The memory and bookkeeping of running one model (activations, gradients, workspace),
 *  apart from the model's weights. A model can have any number of executions; each is used
 *  by one thread at a time, and executions of one model may run on different threads at
 *  once as long as none of them writes the model (see sat_exec_forward and
 *  sat_exec_backward). */
typedef struct sat_exec sat_exec;

#define SAT_EXEC_INFERENCE 0  /**< forward only: no memory for any backward */
#define SAT_EXEC_INPUT_GRAD 1 /**< forward and backward to the input (the attack plan) */
#define SAT_EXEC_TRAIN 2      /**< forward in any batch-norm mode, backward to the input and/or parameters */

/** Batch norm uses batch statistics and updates the running ones (the model's state), and
 *  dropout layers act: a forward in this mode writes the model. */
#define SAT_BN_TRAIN 2

/** Options of sat_exec_create(); initialise with sat_exec_opts_init(). */
typedef struct sat_exec_opts {
    uint32_t struct_size; /**< sizeof(sat_exec_opts), set by sat_exec_opts_init() */
    int32_t kind;         /**< SAT_EXEC_*; default SAT_EXEC_TRAIN (every call allowed) */
    int64_t max_batch;    /**< largest batch of one forward; 0 (default): the model's max_batch */
} sat_exec_opts;

/** Fills the first struct_size bytes of `*opts` with the defaults (the ones each field's
 *  comment names; bytes beyond the library's own struct become zero) and sets its
 *  struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size below 4. */
SAT_API int32_t sat_exec_opts_init(sat_exec_opts *opts, uint32_t struct_size);

/**
 * Creates an execution of `model` (opts may be NULL for the defaults) and plans its memory
 * once: an SAT_EXEC_INFERENCE execution holds only the outputs a forward needs, reusing
 * memory as soon as a layer's output is consumed; the other kinds also hold what a
 * backward reads and the gradients. The execution borrows the model, which must outlive
 * it: destroy executions before their model. *out is destroyed with sat_exec_destroy().
 * Errors: SAT_E_INVALID_ARG (NULL model or out, unknown kind, max_batch outside 0..65536,
 * a bad struct_size), SAT_E_NOMEM; the message is in sat_last_error().
 * Threading: creating an execution only reads the model.
 */
SAT_API int32_t sat_exec_create(sat_model *model, const sat_exec_opts *opts, sat_exec **out);
/** Frees an execution; NULL and the model's own execution (sat_model_exec()) are no-ops. */
SAT_API void sat_exec_destroy(sat_exec *exec);
/** Message of the last failed call on exec ("" if none); valid until the next call on it.
 *  The model's own execution shares the model's message. */
SAT_API const char *sat_exec_last_error(const sat_exec *exec);

/**
 * Forward pass of a batch of n examples x[n*C*H*W] (1 <= n <= the execution's max_batch)
 * into logits[n*classes] (may be NULL), keeping what sat_exec_backward() needs.
 * bn_mode: SAT_BN_INFERENCE (running statistics), SAT_BN_BATCH (batch statistics, running
 * ones untouched) or SAT_BN_TRAIN (batch statistics, and the running ones updated: only for
 * SAT_EXEC_TRAIN executions; dropout layers act only in this mode). In SAT_BN_INFERENCE mode
 * SAT_EXEC_INFERENCE and SAT_EXEC_INPUT_GRAD executions fold each batch norm that alone reads
 * a convolution's output into that convolution, as the model's own calls do (the same bits as
 * sat_model_forward and sat_model_input_gradient); a SAT_EXEC_TRAIN execution keeps it a layer
 * of its own, since a parameter gradient needs its input, so its results differ from those in
 * rounding only (docs/design.md, "Batch norm folded into the convolution"). A forward in
 * SAT_BN_TRAIN mode writes the model's state (and its count of such forwards, which keys
 * the dropout masks), like an optimizer step writes its parameters: it must not overlap any other call on an
 * execution of the same model. The other modes only read the model, so executions of one
 * model can run them on several threads at once.
 * Errors (nothing changes, the last forward stays usable): SAT_E_INVALID_ARG (NULL exec
 * or x, bad bn_mode, logits overlapping x), SAT_E_STATE (SAT_BN_TRAIN on an execution that is not
 * SAT_EXEC_TRAIN), SAT_E_SHAPE (n outside 1..max_batch), SAT_E_NUMERIC (NaN or Inf in x).
 * SAT_E_NOMEM when more threads need more workspace than can be had, or when the
 * execution is planned again after sat_model_set_backward() set an override; then no
 * forward is left for a backward.
 */
SAT_API int32_t sat_exec_forward(sat_exec *exec, const float *x, int64_t n, int32_t bn_mode,
                                 float *logits);

/**
 * Backward pass of the last forward from the caller's dL/dlogits[n*classes] (n of that
 * forward): to the input, dx[n*C*H*W] (NULL: not wanted), and/or to the parameters,
 * param_grads[sat_model_param_count] (NULL: not wanted; it may be sat_model_grads()), both
 * overwritten. The loss is the caller's: its reduction too. dL/dlogits of a sum of
 * per-example losses gives each example's own input gradient; scaling it by 1/n gives the
 * gradient of the mean (as sat_model_train_backward() does for cross-entropy).
 * The derivative used by activations is the model's attack backward (sat_model_opts
 * attack_backward_act) when only dx is asked for, else the train backward. Batch norm
 * follows the mode of the forward. The parameters are read as they are now; the
 * activations are those of the last forward. A backward may be repeated with other
 * dlogits. Threading: writes only exec, dx and param_grads; two executions writing one
 * param_grads buffer at once is a race.
 * Errors (nothing written): SAT_E_INVALID_ARG (NULL exec or dlogits, dx and param_grads
 * both NULL), SAT_E_STATE (no forward since the execution was made; a SAT_EXEC_INFERENCE
 * execution; param_grads on a SAT_EXEC_INPUT_GRAD one; a backward override set by
 * sat_model_set_backward() since the forward),
 * SAT_E_NUMERIC (NaN or Inf in dlogits).
 */
SAT_API int32_t sat_exec_backward(sat_exec *exec, const float *dlogits, float *dx, float *param_grads);

/** The batch size n of the last forward, the one sat_exec_backward() runs from (its
 *  buffers hold n rows); 0 when there is none (no forward yet) and for NULL. For the
 *  model's own execution, any of the model's own calls sets it. */
SAT_API int64_t sat_exec_last_batch(const sat_exec *exec);

/**
 * The model's own execution (SAT_EXEC_TRAIN, the model's max_batch): the one its own calls
 * (sat_model_forward, sat_model_input_gradient, sat_model_train_backward, attacks, the
 * trainer, evaluation) use, made on first use. Use it for a loss of your own without a
 * second arena. Borrowed: it lives as long as the model, and sat_exec_destroy() on it does
 * nothing. Any of the model's own calls replaces its last forward. Errors go to the model's
 * message. NULL for a NULL model, or when its memory cannot be had (SAT_E_NOMEM in
 * sat_model_last_error()).
 */
SAT_API sat_exec *sat_model_exec(sat_model *model);
/* Layer introspection                                                        */
/* ------------------------------------------------------------------------- */

/* Layer kinds (sat_layer_info.op); sat_layer_info.op_name holds the spec keyword. */
#define SAT_LAYER_INPUT 0      /**< "input": the input, layer 0 of every model */
#define SAT_LAYER_NORMALIZE 1  /**< "normalize": (x - mean[c]) / std[c], constants in the spec */
#define SAT_LAYER_DENSE 2      /**< "dense": weight [out, in] and bias [out] */
#define SAT_LAYER_CONV 3       /**< "conv": weight [out, in/groups, k, k] and bias [out] */
#define SAT_LAYER_BN 4         /**< "bn": scale and shift [c]; running mean and variance [c] */
#define SAT_LAYER_ACT 5        /**< "act": an activation; SmoothReLU has a learnable alpha [1] */
#define SAT_LAYER_MAXPOOL 6    /**< "maxpool": k x k window, stride, padding */
#define SAT_LAYER_AVGPOOL 7    /**< "avgpool": k x k window, stride */
#define SAT_LAYER_GAP 8        /**< "gap": global average pooling to [c, 1, 1] */
#define SAT_LAYER_ADD 9        /**< "add": input0 + input1 */
#define SAT_LAYER_FLATTEN 10   /**< "flatten": [c, h, w] read as [c*h*w, 1, 1] (NCHW order) */
#define SAT_LAYER_SIGMOID 11   /**< "sigmoid": 1 / (1 + exp(-x)), apart from the model's activation */
#define SAT_LAYER_MUL 12       /**< "mul": input0 * input1, a C x 1 x 1 one broadcast over H x W */
#define SAT_LAYER_DROPOUT 13   /**< "dropout": zeroes values with probability p in training-mode
                                    forwards (scaling the rest by 1/(1-p)); else the identity */
#define SAT_LAYER_COUNT 14     /**< number of layer kinds (ids are 0..SAT_LAYER_COUNT-1) */

/* What a tensor of a layer holds (sat_tensor_info.role). */
#define SAT_TENSOR_WEIGHT 0        /**< dense [out, in] or conv [out, in, k, k], row-major */
#define SAT_TENSOR_BIAS 1          /**< dense or conv bias [out] */
#define SAT_TENSOR_BN_SCALE 2      /**< batch-norm gamma [c] (PyTorch: weight) */
#define SAT_TENSOR_BN_SHIFT 3      /**< batch-norm beta [c] (PyTorch: bias) */
#define SAT_TENSOR_ACT_ALPHA 4     /**< SmoothReLU's learnable a [1] */
#define SAT_TENSOR_RUNNING_MEAN 5  /**< batch-norm running mean [c] (state block) */
#define SAT_TENSOR_RUNNING_VAR 6   /**< batch-norm running variance [c] (state block) */

#define SAT_LAYER_MAX_TENSORS 4    /**< capacity of sat_layer_info.params and .state */
#define SAT_LAYER_NAME_MAX 32      /**< capacity of sat_layer_info.name and .op_name, with the NUL */

/** One tensor of a layer: a contiguous range of the parameter block (sat_model_params) or
 *  of the state block (sat_model_state), read as a row-major array of `shape`. */
typedef struct sat_tensor_info {
    int32_t role;      /**< SAT_TENSOR_* */
    int32_t ndim;      /**< dimensions used in shape[] (1, 2 or 4) */
    int64_t offset;    /**< index of its first float in the block */
    int64_t count;     /**< floats: the product of shape[0..ndim-1] */
    int32_t shape[4];  /**< logical shape, row-major (the last index varies fastest); 0 unused */
} sat_tensor_info;

/**
 * One layer of a model (one layer line of its spec), as sat_model_layer_info() reports it.
 *
 * Layout of the blocks, so that weights can be copied from or to another framework
 * without guessing: every tensor is row-major in the shape it reports. A dense weight is
 * [out, in] with `in` the producer's output flattened in C, H, W order (what
 * torch.nn.Linear and torch.flatten use); a conv weight is [out, in/groups, k, k]
 * (torch.nn.Conv2d; groups = the input's channels / shape[1]); batch norm holds gamma,
 * beta, running mean and running (unbiased) variance, with eps 1e-5 and momentum 0.1 as
 * torch.nn.BatchNorm2d / BatchNorm1d. The tensors of a model, over all its layers, cover
 * the parameter and state blocks exactly once each.
 */
typedef struct sat_layer_info {
    uint32_t struct_size;      /**< set by the caller: the library writes this many bytes */
    int32_t op;                /**< SAT_LAYER_* */
    char op_name[SAT_LAYER_NAME_MAX]; /**< the spec keyword ("conv", "bn", ...), NUL-terminated */
    char name[SAT_LAYER_NAME_MAX];    /**< the layer's `name=` label, "" if it has none */
    int32_t line;              /**< line of the spec that made it (1-based) */
    int32_t input0;            /**< index of the layer it reads, -1 for the input layer */
    int32_t input1;            /**< add and mul: index of the second layer it reads; else -1 */
    int32_t channels;          /**< output shape per example: channels (features after dense) */
    int32_t height;            /**< output height (1 after dense, gap, flatten) */
    int32_t width;             /**< output width (1 after dense, gap, flatten) */
    int32_t units;             /**< dense and conv: outputs (out); else 0 */
    int32_t kernel;            /**< conv and pooling: window size k; else 0 */
    int32_t stride;            /**< conv and pooling: stride; else 0 */
    int32_t padding;           /**< conv: zero padding on each side; maxpool: padding on each
                                    side, which never wins the max; else 0 */
    int32_t has_bias;          /**< dense and conv: 1 with a bias tensor; else 0 */
    int32_t activation;        /**< act: SAT_ACT_* as resolved at creation; else -1 */
    float act_param;           /**< act: its parameter (SmoothReLU: the initial a; the
                                    current one is its SAT_TENSOR_ACT_ALPHA tensor); else NaN */
    int32_t num_params;        /**< entries used in params[] */
    int32_t num_state;         /**< entries used in state[] */
    int32_t reserved0;         /**< 0 */
    sat_tensor_info params[SAT_LAYER_MAX_TENSORS]; /**< its ranges of the parameter block */
    sat_tensor_info state[SAT_LAYER_MAX_TENSORS];  /**< its ranges of the state block */
} sat_layer_info;

/** Number of layers: one per layer line of the spec (comments and blank lines are not
 *  layers), the input layer included (so >= 2).
 *  SAT_E_INVALID_ARG (negative) for NULL. Threads: as every call on the model's handle. */
SAT_API int32_t sat_model_layer_count(const sat_model *model);
/**
 * Describes layer `index` (0 = input, in spec order; a layer's inputs always have lower
 * indices, so the layers are in topological order) in `*info`. The caller sets
 * info->struct_size (sizeof *info); the library writes that many bytes (an older, smaller
 * struct gets its prefix; bytes beyond the library's own struct become zero).
 * SAT_E_INVALID_ARG for a NULL model or info, a struct_size below 4 or an index outside
 * 0..sat_model_layer_count()-1, with a message in sat_model_last_error() (for a NULL model,
 * sat_last_error()); *info is then unchanged. The offsets and shapes are fixed when the
 * model is created: they stay valid for its life. Threads: as every call on the model's
 * handle (one thread at a time).
 */
SAT_API int32_t sat_model_layer_info(const sat_model *model, int32_t index, sat_layer_info *info);

/* ------------------------------------------------------------------------- */
/* Attacks                                                                    */
/* ------------------------------------------------------------------------- */

#define SAT_ATTACK_FGSM 0       /**< fast gradient sign method: one step */
#define SAT_ATTACK_PGD 1        /**< projected gradient descent */
#define SAT_ATTACK_APGD_CE 2    /**< APGD (AutoAttack's step-size schedule) on cross-entropy */
#define SAT_ATTACK_APGD_DLR 3   /**< targeted APGD with the DLR loss, needs targets */
#define SAT_ATTACK_FAB 4        /**< FAB, minimum norm; targeted = 1 is FAB-T (needs targets) */
#define SAT_ATTACK_SQUARE 5     /**< Square, score-based black-box: logits only */

#define SAT_NORM_LINF 0         /**< the L-infinity ball: every pixel moves at most eps */
#define SAT_NORM_L2 1           /**< the L2 ball of radius eps per example */

#define SAT_LOSS_CE 0           /**< cross-entropy */
#define SAT_LOSS_MARGIN 1       /**< Carlini-Wagner margin on logits */

/** Options of sat_attack() and sat_pgd_attack(); initialise with sat_attack_opts_init(). */
typedef struct sat_attack_opts {
    uint32_t struct_size;  /**< sizeof(sat_attack_opts), set by sat_attack_opts_init() */
    int32_t method;        /**< SAT_ATTACK_*; default PGD */
    int32_t norm;          /**< SAT_NORM_*; default LINF */
    int32_t loss;          /**< SAT_LOSS_*; default CE. FGSM and PGD only (APGD-CE: CE,
                              APGD-DLR: DLR, FAB and Square: the logit margin) */
    float eps;             /**< radius in [0,1] pixel units; default 8/255 */
    float step_size;       /**< 0 (default): 2.5 eps / steps for PGD; for FGSM eps without and
                              1.25 eps with a random start; APGD starts at 2 eps; FAB and
                              Square ignore it */
    int32_t steps;         /**< default 10 (ignored by FGSM); FAB: iterations (AutoAttack: 100);
                              Square: queries after the first (AutoAttack: 5000) */
    int32_t restarts;      /**< default 1; the worst case per example is kept (FAB: the closest
                              adversarial point) */
    int32_t random_start;  /**< 1 (default) uniform start in the ball; 0 start at x. FAB starts
                              its first restart at x and later ones at random; Square starts
                              on the ball's boundary (docs/attacks.md) */
    int32_t targeted;      /**< 0 (default); 1: minimise the loss towards `targets` (FAB-T:
                              linearise towards the target, succeed on any misclassification;
                              Square: raise the target's margin) */
    int32_t bn_mode;       /**< -1 (default): the model's attack_bn_mode; else SAT_BN_* */
    uint64_t seed;         /**< random starts; default SAT_SEED_CONTEXT */
} sat_attack_opts;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_attack_opts_init(sat_attack_opts *opts, uint32_t struct_size);

/** Per-iteration statistics of an attack (arrays of `capacity` entries, caller owned). */
typedef struct sat_attack_trace {
    uint32_t struct_size;  /**< sizeof(sat_attack_trace), set by the caller */
    int32_t capacity;      /**< entries available in loss/accuracy */
    int32_t count;         /**< entries written (steps x restarts, at most capacity) */
    int32_t reserved0;     /**< must be 0 */
    float *loss;           /**< mean loss after each step */
    float *accuracy;       /**< fraction still correctly classified after each step */
} sat_attack_trace;

/**
 * Crafts adversarial examples x_adv[n*C*H*W] for (x, labels) with the method of opts
 * (NULL: the defaults of sat_attack_opts_init). targets (may be NULL unless targeted or
 * APGD-DLR) gives target labels. Every iterate stays within the eps-ball around x and in
 * [0,1]; the worst iterate found is returned (per example, over restarts). FAB is a
 * minimum-norm attack: its iterates leave the ball, and it returns the closest adversarial
 * point it found when that is within eps, x otherwise. Square uses logits only. Any n >= 1 is
 * accepted: batches above the model's max_batch are processed in chunks. Each example's
 * attack is independent of the others and of the chunking, up to float rounding where a
 * different batch shape makes BLIS choose a different kernel. x_adv may be the same buffer
 * as x; a partial overlap is SAT_E_INVALID_ARG. eps is in [0,1] for Linf and in
 * [0, sqrt(C*H*W)] for L2. trace may be NULL. Pixels of x must be in [0,1]
 * (SAT_E_INVALID_ARG otherwise: the ball would not lie in the box), and finite
 * (SAT_E_NUMERIC); the same holds for evaluation, AutoAttack and the callback attacks.
 * The model's parameters and batch-norm statistics are never changed.
 */
SAT_API int32_t sat_attack(sat_model *model, const sat_attack_opts *opts, const float *x,
                           const int32_t *labels, const int32_t *targets, int64_t n,
                           float *x_adv, sat_attack_trace *trace);
/** sat_attack with method forced to PGD. */
SAT_API int32_t sat_pgd_attack(sat_model *model, const sat_attack_opts *opts, const float *x,
                               const int32_t *labels, int64_t n, float *x_adv,
                               sat_attack_trace *trace);

/* ------------------------------------------------------------------------- */
/* Models outside libsat                                                      */
/* ------------------------------------------------------------------------- */

/** A classifier the host implements (in C, or in another language through its FFI), given
 *  to libsat as callbacks so that libsat's attacks and sat_callback_autoattack can evaluate
 *  it. Attacks see raw [0,1] pixels: put any input normalisation inside the callbacks. */
typedef struct sat_callback_model sat_callback_model;

/** Logits callback: writes logits[n * num_classes] (row-major) for the n examples
 *  x[n * C*H*W] (NCHW, [0,1]); 1 <= n <= max_batch. x and logits are valid during the call
 *  only. Returns 0, or any other value to stop the running call, which then fails with
 *  SAT_E_ABORTED. */
typedef int32_t (*sat_logits_fn)(void *user, const float *x, int64_t n, float *logits);
/** Input-gradient callback: writes dx[n * C*H*W], the gradient with respect to x of
 *  sum_i sum_k dlogits[i * num_classes + k] * logits_k(x_i). It is always called with the
 *  same x and n as the logits callback just before it (possibly several times after one
 *  logits call, with different dlogits). Same return rule as sat_logits_fn. */
typedef int32_t (*sat_input_grad_fn)(void *user, const float *x, int64_t n, const float *dlogits,
                                     float *dx);

/** Options of sat_callback_model_create(); initialise with sat_callback_model_opts_init(). */
typedef struct sat_callback_model_opts {
    uint32_t struct_size;      /**< sizeof(sat_callback_model_opts) */
    int32_t channels;          /**< input channels per example: required (>= 1) */
    int32_t height;            /**< input height: required (>= 1) */
    int32_t width;             /**< input width: required (>= 1) */
    int32_t num_classes;       /**< number of logits: required (>= 2) */
    int32_t max_batch;         /**< largest n passed to the callbacks; default 128, 1..65536 */
    int32_t reserved0;         /**< must be 0 */
    sat_logits_fn logits_fn;   /**< required */
    sat_input_grad_fn input_grad_fn; /**< NULL: only gradient-free attacks (SAT_ATTACK_SQUARE) */
    void *user;                /**< passed to both callbacks */
} sat_callback_model_opts;

/** Defaults: shape and callbacks unset (0 / NULL), max_batch 128. */
SAT_API int32_t sat_callback_model_opts_init(sat_callback_model_opts *opts, uint32_t struct_size);
/** Creates a callback model on ctx from opts (required; the library keeps a copy, and the
 *  `user` pointer, which must stay valid while the model is used). A shape, class count or
 *  max_batch out of range or a NULL logits_fn gives SAT_E_INVALID_ARG with a message in
 *  sat_last_error(); *out is then NULL. Destroy it before ctx. */
SAT_API int32_t sat_callback_model_create(sat_context *ctx, const sat_callback_model_opts *opts,
                                          sat_callback_model **out);
/** Destroys a callback model (NULL: no-op). The callbacks are not called. */
SAT_API void sat_callback_model_destroy(sat_callback_model *model);
/** Message of the last failed call on the model ("" if none). */
SAT_API const char *sat_callback_model_last_error(const sat_callback_model *model);
/**
 * sat_attack on a callback model: the same methods, options, checks and results, computed by
 * the same code. The callbacks are called on the calling thread, one batch at a time, with
 * batches of at most max_batch examples; bn_mode is ignored (the host's model decides).
 * Methods that need gradients fail with SAT_E_UNSUPPORTED, before any callback runs, when
 * the model has no input_grad_fn. A callback returning non-zero stops the call with
 * SAT_E_ABORTED; x_adv then holds the results of the chunks finished before (the rest is
 * unchanged). Uses the model's handle for messages: one thread at a time.
 */
SAT_API int32_t sat_callback_attack(sat_callback_model *model, const sat_attack_opts *opts,
                                    const float *x, const int32_t *labels, const int32_t *targets,
                                    int64_t n, float *x_adv, sat_attack_trace *trace);

/* ------------------------------------------------------------------------- */
/* Optimizers and schedules                                                   */
/* ------------------------------------------------------------------------- */

/** An optimizer bound to one model: its kind, schedule and flat state block. */
typedef struct sat_optimizer sat_optimizer;

#define SAT_OPT_SGD 0          /**< SGD with momentum (optionally Nesterov) */
#define SAT_OPT_ADAM 1         /**< Adam, weight decay added to the gradient */
#define SAT_OPT_ADAMW 2        /**< Adam with decoupled weight decay */

#define SAT_SCHED_CONSTANT 0   /**< the same learning rate throughout */
#define SAT_SCHED_STEP 1       /**< lr *= gamma at each milestone */
#define SAT_SCHED_COSINE 2     /**< cosine decay from lr to 0 over total_steps */
#define SAT_SCHED_ONECYCLE 3   /**< triangular: up to lr at peak_frac of the steps, down to 0 */

#define SAT_MAX_MILESTONES 8   /**< capacity of sat_optimizer_opts.milestones */

/** Options of sat_optimizer_create(); initialise with sat_optimizer_opts_init(). */
typedef struct sat_optimizer_opts {
    uint32_t struct_size;    /**< sizeof(sat_optimizer_opts), set by sat_optimizer_opts_init() */
    int32_t kind;            /**< SAT_OPT_*; default SGD */
    float lr;                /**< default 0.1 */
    float momentum;          /**< SGD; default 0.9 */
    int32_t nesterov;        /**< SGD; default 0 */
    float weight_decay;      /**< default 5e-4 (SGD: L2 added to the gradient; AdamW: decoupled) */
    int32_t decay_biases;    /**< 0 (default): no decay on biases, batch-norm and activation params */
    float beta1;             /**< Adam; default 0.9 */
    float beta2;             /**< Adam; default 0.999 */
    float adam_eps;          /**< Adam; default 1e-8 */
    int32_t schedule;        /**< SAT_SCHED_*; default CONSTANT */
    int32_t reserved1;       /**< must be 0 */
    int64_t total_steps;     /**< for cosine and one-cycle; default 0 (required by them) */
    int64_t warmup_steps;    /**< linear warm-up from 0; default 0 */
    float peak_frac;         /**< one-cycle: where the peak is; default 0.4 */
    float gamma;             /**< step schedule factor; default 0.1 */
    int32_t num_milestones;  /**< step schedule */
    int32_t reserved0;       /**< must be 0 */
    int64_t milestones[SAT_MAX_MILESTONES]; /**< step schedule: steps where lr *= gamma */
} sat_optimizer_opts;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_optimizer_opts_init(sat_optimizer_opts *opts, uint32_t struct_size);
/** An optimizer for one model (its state is a flat block beside the parameters). */
SAT_API int32_t sat_optimizer_create(sat_model *model, const sat_optimizer_opts *opts,
                                     sat_optimizer **out);
/** Destroys an optimizer. Trainers using it must be destroyed first: while any lives,
 *  nothing is destroyed and sat_last_error() says why (sat_optimizer_destroy_checked()
 *  also returns SAT_E_STATE). */
SAT_API void sat_optimizer_destroy(sat_optimizer *opt);
/** Message of the last failed call on opt ("" if none); valid until the next call on it. */
SAT_API const char *sat_optimizer_last_error(const sat_optimizer *opt);
/** Applies one update from the model's gradient block, then advances the schedule.
 *  Returns SAT_E_NUMERIC, changing nothing, if a gradient is NaN or Inf or if the update
 *  would make a parameter or a value of the optimizer's state NaN or Inf (an overflow).
 *  The update is computed twice for that, the first time without writing: no copy of the
 *  parameters is kept. */
SAT_API int32_t sat_optimizer_step(sat_optimizer *opt);
/** Learning rate the next step will use. */
SAT_API float sat_optimizer_lr(const sat_optimizer *opt);
/** Number of steps applied so far (it drives the schedule). */
SAT_API int64_t sat_optimizer_step_count(const sat_optimizer *opt);
/** View of the optimizer's flat state block and its length. */
SAT_API float *sat_optimizer_state(sat_optimizer *opt, int64_t *count);
/** Sets the step count (>= 0), e.g. to resume a schedule; the state block is unchanged. */
SAT_API int32_t sat_optimizer_set_step_count(sat_optimizer *opt, int64_t step);

/* ------------------------------------------------------------------------- */
/* Adversarial training                                                       */
/* ------------------------------------------------------------------------- */

/** An adversarial training loop step: a model, its optimizer, the attack that crafts the
 *  training examples and the buffers for it. */
typedef struct sat_trainer sat_trainer;

#define SAT_TRAIN_STANDARD 0 /**< no attack: training on the clean batch */
#define SAT_TRAIN_PGD 1      /**< Madry et al. */
#define SAT_TRAIN_FAST 2     /**< Wong et al.: FGSM from a uniform random start, step 1.25 eps */
#define SAT_TRAIN_FREE 3     /**< Shafahi et al.: m replays */
#define SAT_TRAIN_TRADES 4   /**< Zhang et al.: CE + beta KL */

/* ------------------------------------------------------------------------- */
/* Data parallelism: synchronised batch norm                                  */
/* ------------------------------------------------------------------------- */

/** Batch-norm reduction callback of a data-parallel trainer (sat_trainer_opts.bn_reduce):
 *  replaces sums[0..count) by their element-wise sums over all ranks, in place (for MPI:
 *  `MPI_Allreduce(MPI_IN_PLACE, sums, count, MPI_DOUBLE, MPI_SUM, comm)`). Every batch-norm
 *  layer of a pass with batch statistics calls it: twice in the forward (first the per-channel
 *  sums of its inputs followed by their count, c + 1 values; then the per-channel centred sums
 *  of squares about the reduced means, c values) and once in the backward (the per-channel sums
 *  of dy and of dy * xhat followed by the count, 2c + 1 values), so the layer normalises with
 *  the statistics of all ranks' examples and back-propagates through them as one process would
 *  with the concatenated batch. The calls come in the same order and with the same counts on
 *  every rank running the same model and options, from the thread that called the trainer.
 *  Return 0 to go on; any other value fails the trainer's call with SAT_E_ABORTED, leaving
 *  the handles as they were (the host must then end or resynchronise the job: the other ranks
 *  are waiting in their own reduction). `user` is sat_trainer_opts.bn_reduce_user. */
typedef int32_t (*sat_bn_reduce_fn)(void *user, double *sums, int64_t count);

/* ------------------------------------------------------------------------- */
/* Data parallelism: gradient ranges ready during the backward                */
/* ------------------------------------------------------------------------- */

/** Gradient-ready callback of a data-parallel trainer (sat_trainer_opts.grad_ready), so that
 *  the host can start reducing the gradient block while the backward computes the rest (for
 *  MPI: an `MPI_Iallreduce` of the range, waited for after sat_train_compute() returns).
 *  sat_train_compute() calls it during the step's last backward pass each time a range
 *  [offset, offset + count) of the model's gradient block (sat_model_grads()) is final: the
 *  range then holds exactly what the block holds when the call returns, and nothing in it is
 *  written again during the call. The ranges are handed out per layer, from the output layer
 *  towards the input: each ends where the one before began (the first ends at the block's end,
 *  the last begins at 0), so together they cover the block exactly once per call, and a host
 *  may merge neighbours into larger buckets. count is at least 1. The ranges and their order
 *  depend only on the model, so they are the same on every rank. It is called from the thread
 *  that called sat_train_compute(); sat_train_step() does not call it. The callback may read
 *  the ranges handed out so far and hand them to a non-blocking reduction (which may write
 *  them in place) but must not touch the part of the block not yet handed out, nor call the
 *  library on this trainer, its model or its optimizer. Return 0 to go on; any other value stops the backward and fails the call with
 *  SAT_E_ABORTED, leaving the handles as they were. When sat_train_compute() fails after some
 *  ranges were handed out (a refusal, a batch-norm reduction's refusal, a cancel), those
 *  ranges are of no use: the host must complete the reductions it started (or end the job)
 *  before it reuses the block. `user` is sat_trainer_opts.grad_ready_user. */
typedef int32_t (*sat_grad_ready_fn)(void *user, int64_t offset, int64_t count);

/** Options of sat_trainer_create(); initialise with sat_trainer_opts_init(). */
typedef struct sat_trainer_opts {
    uint32_t struct_size;    /**< sizeof(sat_trainer_opts), set by sat_trainer_opts_init() */
    int32_t method;          /**< SAT_TRAIN_*; default PGD */
    int32_t norm;            /**< SAT_NORM_*; default LINF */
    float eps;               /**< default 8/255 */
    float step_size;         /**< 0 (default): 2.5 eps / steps (PGD), 1.25 eps (Fast), eps (Free) */
    int32_t steps;           /**< attack steps (PGD, TRADES); default 7 */
    int32_t random_start;    /**< default 1 */
    float clean_fraction;    /**< weight of the clean loss in [0,1]; default 0 */
    int32_t attack_bn_mode;  /**< -1 (default): the model's; else SAT_BN_* */
    float label_smoothing;   /**< default 0 */
    int32_t free_replays;    /**< Free-AT m; default 4 */
    float trades_beta;       /**< default 6 */
    uint64_t seed;           /**< random starts and draws of the attacks; default SAT_SEED_CONTEXT */
    int32_t rank;            /**< data parallelism: this process's rank in 0..rank_count-1; default 0.
                                  With a batch of n, the random starts and dropout masks are
                                  those of examples rank*n .. rank*n+n-1 of one process's batch
                                  of rank_count*n */
    int32_t rank_count;      /**< number of ranks sharing the step (1..); default 1 */
    /** Synchronised batch norm: the reduction of batch-norm sums across ranks (see
     *  sat_bn_reduce_fn); default NULL, each rank normalising with its own batch's statistics.
     *  With it, the running statistics move identically on every rank. */
    sat_bn_reduce_fn bn_reduce;
    void *bn_reduce_user;    /**< passed to bn_reduce as `user`; default NULL */
    /** Overlapping the gradient reduction with the backward: called by sat_train_compute()
     *  with each range of the gradient block as soon as it is final (see sat_grad_ready_fn);
     *  default NULL, and the block is final when the call returns. */
    sat_grad_ready_fn grad_ready;
    void *grad_ready_user;   /**< passed to grad_ready as `user`; default NULL */
} sat_trainer_opts;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_trainer_opts_init(sat_trainer_opts *opts, uint32_t struct_size);
/** A trainer that crafts adversarial examples with the model and updates it with opt
 *  (opts NULL: defaults). All buffers are allocated here, for the
 *  model's max_batch, so a step allocates nothing (a TRADES trainer also holds a second
 *  execution of the model: activation memory as large as the model's own). The trainer
 *  borrows model and opt;
 *  destroy it before them, and do not use them from another thread while it lives.
 *  Bad options give SAT_E_INVALID_ARG with a message in sat_last_error(). */
SAT_API int32_t sat_trainer_create(sat_model *model, sat_optimizer *opt,
                                   const sat_trainer_opts *opts, sat_trainer **out);
/** Destroys a trainer (before its model and optimizer). */
SAT_API void sat_trainer_destroy(sat_trainer *trainer);
/** Message of the last failed call on trainer ("" if none); valid until the next call on it. */
SAT_API const char *sat_trainer_last_error(const sat_trainer *trainer);

/** What sat_train_step() reports about one step. */
typedef struct sat_step_stats {
    uint32_t struct_size;    /**< sizeof(sat_step_stats), set by the caller */
    int32_t reserved0;       /**< must be 0 */
    float loss;              /**< mean training loss of the step */
    float adv_accuracy;      /**< accuracy on the adversarial examples (before the update) */
    float clean_accuracy;    /**< accuracy on the clean batch when it was computed, else NaN */
    float lr;                /**< learning rate used */
} sat_step_stats;

/** One adversarial training step on a batch of n (1..max_batch) examples: crafts the
 *  adversarial batch with the configured method through the attack plan (running
 *  statistics untouched), then updates the weights through the train plan and the
 *  optimizer. For SAT_TRAIN_FREE one call replays the batch free_replays times (that many
 *  optimizer steps), keeping the perturbation between calls of the same batch size.
 *  stats may be NULL. A NaN or Inf (in x or produced by the step) gives SAT_E_NUMERIC and
 *  leaves parameters, statistics, optimizer state and RNG position as they were. Finite
 *  pixels outside [0,1] are accepted (unlike sat_attack): the adversarial methods clip their
 *  examples to [0,1], so such a pixel moves into the box. */
SAT_API int32_t sat_train_step(sat_trainer *trainer, const float *x, const int32_t *labels,
                               int64_t n, sat_step_stats *stats);

/* ------------------------------------------------------------------------- */
/* Data parallelism: a step split into gradient and update                    */
/* ------------------------------------------------------------------------- */

/** The first half of sat_train_step(), for data parallelism (the library does no
 *  communication): crafts the adversarial batch and writes the mean gradient of this batch's
 *  training loss to the model's gradient block (sat_model_grads()), without updating the
 *  weights. The batch-norm running statistics move as in sat_train_step and the trainer's
 *  RNG position advances by one step. Each rank then reduces the gradient block (an average
 *  over ranks: sum and divide by the rank count) and calls sat_train_apply().
 *  sat_train_compute() then sat_train_apply() with the block unchanged equals sat_train_step()
 *  bit for bit. With sat_trainer_opts.rank and rank_count set, rank r's random starts are
 *  those of its examples in one process's concatenated batch.
 *
 *  Errors: SAT_E_INVALID_ARG (NULL trainer or labels, bad stats struct_size), SAT_E_SHAPE,
 *  SAT_E_NUMERIC, SAT_E_ABORTED; SAT_E_UNSUPPORTED for SAT_TRAIN_FREE, whose replays update
 *  the weights inside one step (use sat_train_step). On failure the parameters, running
 *  statistics, optimizer and RNG position are as they were and the gradient block's contents
 *  are unspecified; the message is in sat_trainer_last_error().
 *  Ownership: x and labels are read during the call only. stats may be NULL.
 *  Threads: one thread at a time per trainer, as sat_train_step. */
SAT_API int32_t sat_train_compute(sat_trainer *trainer, const float *x, const int32_t *labels,
                                  int64_t n, sat_step_stats *stats);
/** The second half of sat_train_step(): one optimizer update of the trainer's model from its
 *  gradient block (as left by sat_train_compute() and reduced by the caller).
 *  Errors: SAT_E_INVALID_ARG for a NULL trainer; SAT_E_NUMERIC when the update makes a
 *  parameter NaN or Inf, and then the parameters and the optimizer's state and step count are
 *  restored; the message is in sat_trainer_last_error().
 *  Threads: one thread at a time per trainer (and its model and optimizer). */
SAT_API int32_t sat_train_apply(sat_trainer *trainer);

/* ------------------------------------------------------------------------- */
/* Evaluation                                                                 */
/* ------------------------------------------------------------------------- */

#define SAT_EVAL_MAX_STEPS 16   /**< capacity of sat_eval_opts.steps */

#define SAT_FLAG_ZERO_GRAD 1u        /**< some input gradients are all zero */
#define SAT_FLAG_NONFINITE_GRAD 2u   /**< NaN/Inf input gradients */
#define SAT_FLAG_NOT_CONVERGED 4u    /**< robust accuracy still falling between the last two k */
#define SAT_FLAG_ONE_STEP_STRONGER 8u /**< FGSM beats the strongest multi-step PGD */
#define SAT_FLAG_SQUARE_STRONGER 16u  /**< sat_autoattack only: Square broke more than 0.2% of
                                           the examples after every gradient attack before it
                                           had failed on them */

/** Options of sat_evaluate(); initialise with sat_eval_opts_init(). */
typedef struct sat_eval_opts {
    uint32_t struct_size;          /**< sizeof(sat_eval_opts), set by sat_eval_opts_init() */
    int32_t norm;                  /**< default LINF */
    float eps;                     /**< default 8/255 */
    float step_size;               /**< 0 (default): 2.5 eps / k for each k */
    int32_t num_steps;             /**< entries used in steps[]; default 3: 1, 10, 20 */
    int32_t steps[SAT_EVAL_MAX_STEPS]; /**< PGD step counts k to evaluate, ascending */
    int32_t restarts;              /**< default 1 */
    int32_t apgd;                  /**< 1: also APGD-CE + APGD-T; default 0 */
    int32_t apgd_steps;            /**< default 100 */
    int32_t apgd_targets;          /**< target classes for APGD-T; default 3 */
    int32_t batch;                 /**< chunk size; default: the model's max batch */
    uint64_t seed;                 /**< random starts of the attacks; default SAT_SEED_CONTEXT */
} sat_eval_opts;

/** What sat_evaluate() measured. Accuracies are fractions in [0,1]. */
typedef struct sat_eval_result {
    uint32_t struct_size;          /**< sizeof(sat_eval_result), set by the caller */
    int32_t num_steps;             /**< entries of robust_accuracy (the options' num_steps) */
    int64_t n;                     /**< examples evaluated */
    float clean_accuracy;          /**< accuracy on the unperturbed examples */
    float robust_accuracy[SAT_EVAL_MAX_STEPS]; /**< under PGD-steps[i] */
    float fgsm_accuracy;           /**< under FGSM */
    float apgd_accuracy;           /**< worst case of APGD-CE and APGD-T; NaN if not run */
    uint32_t flags;                /**< SAT_FLAG_* */
    int32_t reserved0;             /**< 0 */
} sat_eval_result;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_eval_opts_init(sat_eval_opts *opts, uint32_t struct_size);
/** Clean and robust accuracy on n examples (processed in chunks). */
SAT_API int32_t sat_evaluate(sat_model *model, const sat_eval_opts *opts, const float *x,
                             const int32_t *labels, int64_t n, sat_eval_result *result);

/* ---- AutoAttack (Croce & Hein, arXiv 2003.01690): the field's standard evaluation ---- */

/* Versions of the sequence (sat_autoattack_opts.version). */
#define SAT_AA_STANDARD 0  /**< APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries) */
#define SAT_AA_PLUS 1      /**< APGD-CE and APGD-DLR (5 restarts each), FAB (5 restarts), Square,
                                APGD-T, FAB-T */
#define SAT_AA_RAND 2      /**< APGD-CE, APGD-DLR, gradients averaged over 20 passes (randomised
                                models) */

/* The attacks of a sequence, as listed in sat_autoattack_result.attacks. */
#define SAT_AA_ATTACK_APGD_CE 0   /**< APGD on cross-entropy */
#define SAT_AA_ATTACK_APGD_T 1    /**< APGD on the targeted DLR loss, one run per target class */
#define SAT_AA_ATTACK_FAB_T 2     /**< targeted FAB, one run per target class */
#define SAT_AA_ATTACK_SQUARE 3    /**< Square */
#define SAT_AA_ATTACK_APGD_DLR 4  /**< APGD on the untargeted DLR loss */
#define SAT_AA_ATTACK_FAB 5       /**< untargeted FAB */

#define SAT_AA_MAX_ATTACKS 8      /**< capacity of the per-attack arrays of sat_autoattack_result */

/* Per-example outcomes (sat_autoattack's `outcome`); values >= 0 are the position in
 * sat_autoattack_result.attacks of the attack that broke the example. */
#define SAT_AA_ROBUST (-1)         /**< correct when clean and under every attack */
#define SAT_AA_MISCLASSIFIED (-2)  /**< already wrong when clean: not attacked */

/** Options of sat_autoattack(); initialise with sat_autoattack_opts_init(). */
typedef struct sat_autoattack_opts {
    uint32_t struct_size;  /**< sizeof(sat_autoattack_opts) */
    int32_t version;       /**< SAT_AA_*; default SAT_AA_STANDARD */
    int32_t norm;          /**< SAT_NORM_LINF (default) or SAT_NORM_L2 */
    float eps;             /**< default 8/255; Linf in [0,1], L2 in [0, sqrt(C*H*W)] */
    uint64_t seed;         /**< random starts and Square's draws; default SAT_SEED_CONTEXT */
} sat_autoattack_opts;

/** What sat_autoattack() measured. The caller sets struct_size; the library writes that many
 *  bytes (an older, smaller struct gets its prefix). */
typedef struct sat_autoattack_result {
    uint32_t struct_size;  /**< set by the caller: the library writes this many bytes */
    int32_t num_attacks;   /**< entries used in attacks[] and accuracy_after[] */
    int64_t n;             /**< examples evaluated */
    float clean_accuracy;  /**< fraction classified correctly without attack */
    float robust_accuracy; /**< fraction correct under every attack of the sequence */
    int32_t attacks[SAT_AA_MAX_ATTACKS];        /**< SAT_AA_ATTACK_*, in the order run; -1 unused */
    float accuracy_after[SAT_AA_MAX_ATTACKS];   /**< robust accuracy after attacks[0..i]; NaN unused */
    uint32_t flags;        /**< SAT_FLAG_*: see docs/attacks.md for their meaning here */
    int32_t reserved0;     /**< 0 */
    int64_t square_only;   /**< examples Square broke that every gradient attack before it missed */
} sat_autoattack_result;

/** Fills `*opts` with the defaults named in sat_autoattack_opts' field comments. */
SAT_API int32_t sat_autoattack_opts_init(sat_autoattack_opts *opts, uint32_t struct_size);
/**
 * AutoAttack's sequence on n examples (any n >= 1): each attack runs, in the version's
 * order, only on the examples that are still classified correctly (batch norm in inference
 * mode decides), and an example counts as robust only if it survives all of them. Targets
 * are the classes with the highest clean logits other than the label (at most
 * num_classes - 1 of them; APGD-T and APGD-DLR need at least 4 and 3 classes and are left
 * out below that). Each example's random draws depend on its index in x only.
 * opts may be NULL for the defaults. x_adv[n*C*H*W] (may be NULL; must not overlap x)
 * receives the adversarial example of each broken example and x elsewhere; outcome[n] (may
 * be NULL) receives SAT_AA_ROBUST, SAT_AA_MISCLASSIFIED or the position of the attack that
 * broke it. result is required, with struct_size set. Flags: SAT_FLAG_ZERO_GRAD /
 * SAT_FLAG_NONFINITE_GRAD from the clean-point gradients; SAT_FLAG_NOT_CONVERGED when the
 * attacks after the first two still break more than max(1, n/100) examples;
 * SAT_FLAG_ONE_STEP_STRONGER when FGSM breaks more than that many of the examples left
 * robust; SAT_FLAG_SQUARE_STRONGER (see above).
 * Bad options or data give SAT_E_INVALID_ARG / SAT_E_SHAPE / SAT_E_NUMERIC with nothing
 * written. The model is not changed. Cost: each attack runs only on the survivors of the
 * ones before, so on a model that few examples resist the first attack dominates; on a
 * robust one the later attacks do (70% robust: about 50 times APGD-CE alone, docs/results.md).
 * Threads: like sat_attack (the model's handle, one thread at a time).
 */
SAT_API int32_t sat_autoattack(sat_model *model, const sat_autoattack_opts *opts, const float *x,
                               const int32_t *labels, int64_t n, float *x_adv, int32_t *outcome,
                               sat_autoattack_result *result);
/** sat_autoattack on a callback model (the same sequence, by the same code). Needs the
 *  input-gradient callback (SAT_E_UNSUPPORTED without it); a callback returning non-zero
 *  stops it with SAT_E_ABORTED, with x_adv partly written and outcome and result not. */
SAT_API int32_t sat_callback_autoattack(sat_callback_model *model, const sat_autoattack_opts *opts,
                                        const float *x, const int32_t *labels, int64_t n,
                                        float *x_adv, int32_t *outcome,
                                        sat_autoattack_result *result);

/* ------------------------------------------------------------------------- */
/* Datasets                                                                   */
/* ------------------------------------------------------------------------- */

/** Images and labels held by the library, with an epoch order and augmentation. */
typedef struct sat_dataset sat_dataset;

#define SAT_DATA_IDX 0      /**< MNIST / Fashion-MNIST: DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] */
#define SAT_DATA_CIFAR10 1  /**< DIR/data_batch_{1..5}.bin, DIR/test_batch.bin */

#define SAT_SPLIT_TRAIN 0   /**< the training files */
#define SAT_SPLIT_TEST 1    /**< the test files */

/** Directory of Debian's dataset-fashion-mnist package. Static string. */
SAT_API const char *sat_default_data_dir(void);

/** Loads a data set from the files of `format` in dir (for IDX, DIR/name is tried before
 *  DIR/name.gz; for CIFAR-10 the parent of cifar-10-batches-bin/ works too), or an IDX
 *  image/label file pair given directly with sat_dataset_load_idx. Pixels are scaled to
 *  [0,1]. Headers are validated before anything large is allocated. A missing file gives
 *  SAT_E_IO, a bad magic, truncated file, count mismatch or label >= 10 gives SAT_E_FORMAT;
 *  the message in sat_last_error() names the file. On failure *out is NULL. */
SAT_API int32_t sat_dataset_load(sat_context *ctx, int32_t format, const char *dir, int32_t split,
                                 sat_dataset **out);
/** Loads an IDX image file and label file given by path (gzip or plain), as
 *  sat_dataset_load() does. */
SAT_API int32_t sat_dataset_load_idx(sat_context *ctx, const char *images_path,
                                     const char *labels_path, sat_dataset **out);
/** Makes a data set from caller arrays (copied). Labels must be in [0, num_classes);
 *  NaN or Inf pixels give SAT_E_NUMERIC. */
SAT_API int32_t sat_dataset_from_arrays(sat_context *ctx, const float *x, const int32_t *labels,
                                        int64_t n, int32_t channels, int32_t height, int32_t width,
                                        int32_t num_classes, sat_dataset **out);
/** Destroys a data set (before its context). */
SAT_API void sat_dataset_destroy(sat_dataset *ds);
/** Message of the last failed call on ds ("" if none); valid until the next call on it. */
SAT_API const char *sat_dataset_last_error(const sat_dataset *ds);
/** Number of examples; SAT_E_INVALID_ARG (negative) for NULL. */
SAT_API int64_t sat_dataset_size(const sat_dataset *ds);
/** Shape of one example and number of classes; any pointer may be NULL. */
SAT_API int32_t sat_dataset_shape(const sat_dataset *ds, int32_t *channels, int32_t *height,
                                  int32_t *width, int32_t *num_classes);
/** Borrowed view of all images, in file order (n*C*H*W floats, valid for the life of the
 *  data set). */
SAT_API const float *sat_dataset_images(const sat_dataset *ds);
/** Borrowed view of all labels, in file order (n values, valid for the life of the data
 *  set). */
SAT_API const int32_t *sat_dataset_labels(const sat_dataset *ds);
/** Moves `count` examples (1..n-1) chosen by a seeded permutation into a new data set
 *  (a held-out validation split); both parts keep their original relative order. The
 *  new handle is independent and destroyed on its own. */
SAT_API int32_t sat_dataset_split(sat_dataset *ds, int64_t count, uint64_t seed,
                                  sat_dataset **held_out);
/** Keeps only the first `count` examples (1..n). */
SAT_API int32_t sat_dataset_truncate(sat_dataset *ds, int64_t count);

#define SAT_AUG_NONE 0u   /**< no augmentation */
#define SAT_AUG_CROP 1u   /**< random crop with 4 pixels of zero padding */
#define SAT_AUG_FLIP 2u   /**< random horizontal flip */

/** Starts an epoch: the order becomes a permutation that is a pure function of
 *  (seed, epoch), and augmentation (SAT_AUG_* flags) is drawn from (seed, epoch, position),
 *  so batches do not depend on the batch size or on earlier calls. Before any shuffle the
 *  order is the file order, without augmentation. */
SAT_API int32_t sat_dataset_shuffle(sat_dataset *ds, uint64_t seed, int64_t epoch, uint32_t aug);
/** Copies batch `index` of size `batch` of the current order into x[batch*C*H*W] and
 *  labels[batch]; the last batch may be shorter: *n_out (may be NULL) receives its size.
 *  An index past the end gives SAT_E_INVALID_ARG. */
SAT_API int32_t sat_dataset_batch(sat_dataset *ds, int64_t index, int64_t batch, float *x,
                                  int32_t *labels, int64_t *n_out);

/* ------------------------------------------------------------------------- */
/* Model and checkpoint files                                                 */
/* ------------------------------------------------------------------------- */

/** What a model was trained for and how; stored in model files. */
typedef struct sat_model_meta {
    uint32_t struct_size;  /**< sizeof(sat_model_meta), set by sat_model_meta_init() */
    int32_t norm;        /**< SAT_NORM_* of the threat model; default LINF */
    float eps;           /**< radius of the threat model; NaN (default) if unknown */
    int32_t method;      /**< SAT_TRAIN_*; default STANDARD */
    int32_t steps;       /**< attack steps of the training; default 0 */
    int32_t epochs;      /**< epochs trained; default 0 */
    float clean_accuracy;  /**< as measured at save time; NaN if unknown */
    float robust_accuracy; /**< as measured at save time; NaN if unknown */
} sat_model_meta;

/** Fills `*meta` with the defaults (unknown threat model and accuracies) and sets its
 *  struct_size; pass `sizeof *meta` as struct_size. */
SAT_API int32_t sat_model_meta_init(sat_model_meta *meta, uint32_t struct_size);

/** Saves a model (spec, options, parameters, batch-norm statistics, meta) to path. The file
 *  is written to a temporary file in the same directory, flushed and renamed, so an
 *  existing file is replaced whole or not at all. meta may be NULL. */
SAT_API int32_t sat_model_save(const sat_model *model, const sat_model_meta *meta, const char *path);
/** Loads a model file (a checkpoint file also works: it holds a whole model). A missing
 *  file gives SAT_E_IO; a damaged, truncated or hostile file SAT_E_FORMAT, a file from a
 *  newer format SAT_E_VERSION; the message in sat_last_error() names the file and the
 *  problem, *out stays NULL, and it never crashes. meta may be NULL. */
SAT_API int32_t sat_model_load(sat_context *ctx, const char *path, sat_model_meta *meta,
                               sat_model **out);
/** sat_model_save() into memory: *buf_out (freed with sat_free()) receives *size_out
 *  bytes of a model file. */
SAT_API int32_t sat_model_save_buffer(const sat_model *model, const sat_model_meta *meta,
                                      void **buf_out, size_t *size_out);
/** sat_model_load() from `size` bytes at buf, with the same checks and errors. */
SAT_API int32_t sat_model_load_buffer(sat_context *ctx, const void *buf, size_t size,
                                      sat_model_meta *meta, sat_model **out);

/** A checkpoint: the model file plus the optimizer's state, step count, and the trainer's
 *  RNG position, so a resumed run continues bit-exactly. `epoch` and `batch_index` are the
 *  host's loop position, returned by sat_checkpoint_load. */
SAT_API int32_t sat_checkpoint_save(const sat_trainer *trainer, const sat_model_meta *meta,
                                    int64_t epoch, int64_t batch_index, const char *path);
/** Restores parameters, statistics, optimizer state and trainer RNG (and Free-AT's
 *  perturbation) into existing handles built with the same spec and optimizer kind. The
 *  whole file is validated before anything is copied: on failure nothing is changed
 *  (SAT_E_IO / SAT_E_FORMAT / SAT_E_VERSION, or SAT_E_INVALID_ARG when the file does not
 *  match the handles). epoch and batch_index may be NULL. */
SAT_API int32_t sat_checkpoint_load(sat_trainer *trainer, const char *path, int64_t *epoch,
                                    int64_t *batch_index);

/* ------------------------------------------------------------------------- */
/* Runtime control of an optimizer: learning rate, parameter groups, freezing */
/* ------------------------------------------------------------------------- */

/* A trainer borrows its optimizer (sat_trainer_create), so these calls on that optimizer
 * handle take effect from the trainer's next sat_train_step. Parameter groups are ranges of
 * the flat parameter block (sat_model_params), e.g. one layer's weights. */

/** Sets the base learning rate (finite, > 0): the rate the schedule scales, so under a
 *  cosine, step or one-cycle schedule the next step uses `lr` times the schedule's factor
 *  at the current step count (sat_optimizer_lr() tells), and the schedule is not
 *  restarted. SAT_E_INVALID_ARG for a bad lr (nothing changes). Saved in checkpoints.
 *  Threads: like sat_optimizer_step (one thread at a time per optimizer). */
SAT_API int32_t sat_optimizer_set_lr(sat_optimizer *opt, float lr);
/** The base learning rate (sat_optimizer_opts.lr or the last sat_optimizer_set_lr());
 *  NaN for NULL. */
SAT_API float sat_optimizer_base_lr(const sat_optimizer *opt);
/** Multiplies the learning rate of parameters offset .. offset+count-1 of the flat block
 *  by `scale` (finite, >= 0; every scale starts at 1). A scale of 0 stops the parameter
 *  moving while the optimizer state (momentum, Adam moments) still follows its gradient;
 *  to stop both, freeze it. For AdamW the decoupled weight decay is scaled too, as it is
 *  proportional to the learning rate. SAT_E_INVALID_ARG for a range outside the block or a
 *  bad scale (nothing changes). Saved in checkpoints. The scales take memory (a float per
 *  parameter) only from the first call that sets one other than 1: that call may return
 *  SAT_E_NOMEM, changing nothing. */
SAT_API int32_t sat_optimizer_set_lr_scale(sat_optimizer *opt, int64_t offset, int64_t count,
                                           float scale);
/** Copies the per-parameter learning-rate scales into scales[param_count]. */
SAT_API int32_t sat_optimizer_get_lr_scale(const sat_optimizer *opt, float *scales);
/** Sets the freeze mask: mask[param_count] of 0 (trained) and 1 (frozen); NULL unfreezes
 *  everything. A frozen parameter is skipped by every update (sat_optimizer_step, and so
 *  sat_train_step): its value does not change (no gradient step, no weight decay) and its
 *  optimizer state (momentum buffer, Adam moments) is not updated either, so unfreezing it
 *  resumes from the state it had. The step count, which drives the schedule and Adam's bias
 *  correction, is the optimizer's and keeps advancing. Gradients are still computed for
 *  frozen parameters (sat_model_grads). Any value above 1 gives SAT_E_INVALID_ARG and
 *  nothing changes. Saved in checkpoints. The mask takes memory (a byte per parameter) only
 *  while some parameter is frozen: a call that freezes the first may return SAT_E_NOMEM,
 *  changing nothing. */
SAT_API int32_t sat_optimizer_set_frozen(sat_optimizer *opt, const uint8_t *mask);
/** Copies the freeze mask into mask[param_count] (1 = frozen). */
SAT_API int32_t sat_optimizer_get_frozen(const sat_optimizer *opt, uint8_t *mask);

/* ------------------------------------------------------------------------- */
/* Checkpoints of a model and an optimizer, without a trainer                */
/* ------------------------------------------------------------------------- */

/** Saves the optimizer's model (as sat_model_save does, with meta, which may be NULL) and
 *  the optimizer: state block, step count, base learning rate, learning-rate scales and
 *  freeze mask. For a host's own training loop (sat_model_train_backward or its own loss,
 *  then sat_optimizer_step): loading it into fresh handles built with the same spec and
 *  optimizer options continues bit-exactly. The same atomic write as sat_model_save (a
 *  temporary file renamed over path; an existing file is replaced whole or kept). The file
 *  is a checkpoint without trainer state: sat_model_load() reads it;
 *  sat_checkpoint_load() refuses it with SAT_E_FORMAT (docs/file-format.md). Errors go to
 *  sat_optimizer_last_error(). */
SAT_API int32_t sat_optimizer_checkpoint_save(const sat_optimizer *opt, const sat_model_meta *meta,
                                              const char *path);
/** Restores a sat_optimizer_checkpoint_save() file into the optimizer and its model
 *  (parameters, batch-norm statistics, optimizer state, step count and settings). The
 *  whole file is checked first, so on failure nothing changes: SAT_E_IO / SAT_E_FORMAT /
 *  SAT_E_VERSION for an unreadable, damaged or newer file, SAT_E_FORMAT for a trainer
 *  checkpoint (load that with sat_checkpoint_load()), SAT_E_INVALID_ARG when the file's
 *  model spec, counts or optimizer kind differ from the handles'. meta (may be NULL)
 *  receives the stored meta. */
SAT_API int32_t sat_optimizer_checkpoint_load(sat_optimizer *opt, const char *path,
                                              sat_model_meta *meta);

/* ------------------------------------------------------------------------- */
/* ONNX                                                                       */
/* ------------------------------------------------------------------------- */

/** Options of sat_model_load_onnx(); initialise with sat_onnx_import_opts_init(). */
typedef struct sat_onnx_import_opts {
    uint32_t struct_size;      /**< sizeof(sat_onnx_import_opts), set by sat_onnx_import_opts_init() */
    /** An activation kind (SAT_ACT_*) that every activation of the graph of that kind is
     *  replaced with on import (the paper's change: ReLU -> SiLU, keeping the weights);
     *  -1 (default): none. */
    int32_t replace_act_from;
    int32_t replace_act_to;    /**< SAT_ACT_* put in its place; default SAT_ACT_SILU */
    float replace_act_param;   /**< NaN (default): replace_act_to's default parameter */
    int32_t max_batch;         /**< the model's max_batch (sat_model_opts); default 128 */
} sat_onnx_import_opts;

/** Fills the first struct_size bytes of `*opts` with the library's defaults (the ones
 *  each field's comment names; bytes beyond the library's own struct become zero) and
 *  sets its struct_size; pass `sizeof *opts`. SAT_E_INVALID_ARG for NULL or a struct_size
 *  below 4. */
SAT_API int32_t sat_onnx_import_opts_init(sat_onnx_import_opts *opts, uint32_t struct_size);

/**
 * Builds a model from an ONNX file (a ModelProto, as torch.onnx.export writes it): the
 * graph becomes a spec (sat_model_spec() shows it), its initializers the parameter and
 * batch-norm state blocks. The graph's one input, N x C x H x W (or N x F, N x C x L) with
 * every size but the batch fixed, is the model's input; its one output, read as N x K
 * (a 4-D output flattened in C, H, W order), the logits.
 *
 * Supported (docs/onnx.md lists the details): Conv (square kernels, equal strides and
 * symmetric pads, groups, with or without bias), Gemm, MatMul (+ Add of a bias),
 * BatchNormalization in inference, Relu, Softplus, Elu, Celu, Sigmoid, SiLU written as
 * x * Sigmoid(x), GELU as exported (the Erf subgraph and the tanh form), MaxPool,
 * AveragePool without padding, GlobalAveragePool, Add and Mul of two computed tensors,
 * Flatten, Reshape to 2-D, Sub/Div/Mul/Add by per-channel constants at the input (the
 * input normalisation, the model's `normalize`), Identity, Dropout in inference, Constant.
 * The model's activation option is irrelevant: every activation line names its kind.
 *
 * opts may be NULL for defaults. Errors (*out stays NULL, message in sat_last_error()):
 * SAT_E_INVALID_ARG (NULL ctx, path or out, an empty path, bad opts), SAT_E_IO (the file
 * cannot be read), SAT_E_FORMAT (not an ONNX model, damaged or hostile data, a graph that
 * breaks ONNX's rules or whose weights do not fit its own layers), SAT_E_UNSUPPORTED (an op,
 * attribute or dynamic shape libsat does not support: the message names the node and its
 * op type), SAT_E_NUMERIC (NaN or Inf in a weight), SAT_E_NOMEM. It never crashes on a
 * hostile file: nesting, counts and sizes are bounded. Memory comes from ctx's allocator.
 * Threads: as sat_model_create().
 */
SAT_API int32_t sat_model_load_onnx(sat_context *ctx, const char *path, const sat_onnx_import_opts *opts,
                                    sat_model **out);
/** sat_model_load_onnx() from `size` bytes at buf (borrowed during the call only), with
 *  the same checks and errors; SAT_E_INVALID_ARG for a NULL buf. */
SAT_API int32_t sat_model_load_onnx_buffer(sat_context *ctx, const void *buf, size_t size,
                                           const sat_onnx_import_opts *opts, sat_model **out);

/* ------------------------------------------------------------------------- */
/* ONNX export                                                                */
/* ------------------------------------------------------------------------- */

/* A model written as a standard ONNX graph (ModelProto, opset 13 or later) that PyTorch-,
 * ONNX Runtime- or TensorRT-based tools read: input "input" [batch, C, H, W] (pixels in
 * [0,1]; the model's normalisation is in the graph), output "logits" [batch, classes].
 * Batch norm is written for inference, with the running statistics; dropout as Identity;
 * every activation as standard ops (docs/onnx.md lists the ONNX form of each layer and
 * activation). Weights are stored as float initializers named after their layer
 * ("conv3.weight", "bn4.running_var", ...; a layer's `name=` label when it is one). */

/** How sat_model_save_onnx() writes a model. */
typedef struct sat_onnx_export_opts {
    uint32_t struct_size; /**< sizeof(sat_onnx_export_opts), set by sat_onnx_export_opts_init() */
    int32_t opset;        /**< ONNX opset the model declares: 13 (default) to 17. The ops written
                               are the same for each (their definitions did not change); a
                               value outside 13..17 gives SAT_E_UNSUPPORTED (< 1:
                               SAT_E_INVALID_ARG) */
    int32_t batch_dim;    /**< first dimension of the input and the logits: 0 (default) a
                               symbolic dimension named "batch", > 0 that fixed size */
} sat_onnx_export_opts;

/** Fills `*opts` with the defaults (opset 13, symbolic batch dimension) and sets its
 *  struct_size; pass `sizeof *opts` as struct_size. */
SAT_API int32_t sat_onnx_export_opts_init(sat_onnx_export_opts *opts, uint32_t struct_size);

/** Writes the model to path as an ONNX file; opts may be NULL (the defaults). The file is
 *  written like sat_model_save()'s: to a temporary file in the same directory, flushed and
 *  renamed, so an existing file is replaced whole or kept. The model is only read (its
 *  error message buffer aside): several threads may export one model while no call
 *  changes it. Errors (message in sat_model_last_error(); for a NULL model in
 *  sat_last_error()): SAT_E_INVALID_ARG for a NULL or empty path or bad options,
 *  SAT_E_UNSUPPORTED for an opset outside 13..17 or a layer ONNX cannot express (the
 *  message names the layer), SAT_E_NOMEM, SAT_E_IO (the previous file is untouched). */
SAT_API int32_t sat_model_save_onnx(const sat_model *model, const char *path, const sat_onnx_export_opts *opts);
/** sat_model_save_onnx() into memory: *buf_out (freed with sat_free()) receives *size_out
 *  bytes of an ONNX file. On failure *buf_out and *size_out are left unchanged. */
SAT_API int32_t sat_model_save_onnx_buffer(const sat_model *model, const sat_onnx_export_opts *opts,
                                           void **buf_out, size_t *size_out);

/* ------------------------------------------------------------------------- */
/* Destroying with a status                                                   */
/* ------------------------------------------------------------------------- */

/* Handles made from a context (models, data sets, callback models), from a model
 * (optimizers, trainers, executions) and from an optimizer (trainers) are counted: a parent
 * cannot be destroyed while a child lives. The void *_destroy functions keep their
 * signature for existing programs and refuse silently (the message is in sat_last_error());
 * these return the status. Counts are atomic: children may be made and destroyed on
 * different threads. */

/** sat_context_destroy() with a status: SAT_OK (also for NULL) when destroyed; SAT_E_STATE
 *  when a model, data set or callback model made with it is still alive: then nothing is
 *  destroyed, the context stays usable, and the message is in sat_context_last_error() and
 *  sat_last_error(). */
SAT_API int32_t sat_context_destroy_checked(sat_context *ctx);
/** sat_model_destroy() with a status: SAT_E_STATE, leaving the model usable, while an
 *  optimizer, trainer or execution made from it lives (message in sat_model_last_error()
 *  and sat_last_error()); SAT_OK (also for NULL) when destroyed. */
SAT_API int32_t sat_model_destroy_checked(sat_model *model);
/** sat_optimizer_destroy() with a status: SAT_E_STATE, leaving the optimizer usable, while a
 *  trainer uses it (message in sat_optimizer_last_error() and sat_last_error()); SAT_OK
 *  (also for NULL) when destroyed. */
SAT_API int32_t sat_optimizer_destroy_checked(sat_optimizer *opt);

#ifdef __cplusplus
}
#endif

#endif /* SAT_H */
