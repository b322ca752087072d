/* attack.h - the attack module's internal interface: loss functions with their logit
 * gradients, the ball/box geometry, and one entry point that runs any attack on a batch.
 * The public sat_attack / sat_evaluate and the trainer (lib/train/craft.c) all go through
 * sat__attack_run, so there is one PGD.
 *
 * Conventions: the attacker always *maximises* an objective (targeted attacks maximise
 * the negative loss towards the target), so every step is an ascent step and "better"
 * always means a higher objective. Examples are independent: the random start of an
 * example depends only on (seed, restart, its global index), never on the batch split. */
#ifndef SAT_ATTACK_H
#define SAT_ATTACK_H

#include "graph/graph.h"

/* ---- the model as attacks see it ----
 * Every attack runs on this interface, whoever implements the model: a libsat model
 * (sat__target_of_model) or a host's callbacks (sat_callback_model). */
typedef struct sat__target {
    sat_context *ctx;        /* allocations */
    char *err;               /* where failure messages go */
    int32_t channels, height, width, classes;
    int64_t in_size;         /* channels * height * width */
    int64_t max_batch;       /* largest n forward accepts */
    int32_t has_grad;        /* 0: backward is unavailable (gradient-free attacks only) */
    int32_t attack_bn;       /* the model's batch-norm mode for attacks, SAT_BN_* */
    int32_t deterministic;   /* 1: the same input always gives the same logits */
    sat__progress *progress; /* the public call's progress (NULL: none); attacks add one unit
                                per example and iteration (sat__attack_tick) */
    void *self;
    /* Logits [n x classes] of n <= max_batch examples, valid until the next call; bn is
     * SAT__BN_INFER or SAT__BN_BATCH (a host model ignores it). */
    int32_t (*forward)(void *self, const float *x, int64_t n, int32_t bn, const float **logits);
    /* Input gradient dx [n x in_size] of sum_i <dlogits_i, logits_i>, for the x and n of the
     * last forward call (which the caller passes again). May be called several times after
     * one forward. */
    int32_t (*backward)(void *self, const float *x, int64_t n, const float *dlogits, float *dx);
} sat__target;

/* The attack view of a libsat model: forward and the attack plan's backward. */
void sat__target_of_model(sat_model *m, sat__target *t);
/* The attack view of a host's callback model (has_grad 0 without an input-gradient callback). */
void sat__target_of_callback(sat_callback_model *m, sat__target *t);

/* ---- objectives (the value the attacker maximises) ---- */
#define SAT__OBJ_CE 0        /* CE(z, y) */
#define SAT__OBJ_CE_T 1      /* -CE(z, t) */
#define SAT__OBJ_MARGIN 2    /* max_{j!=y} z_j - z_y (Carlini-Wagner) */
#define SAT__OBJ_MARGIN_T 3  /* z_t - max_{j!=t} z_j */
#define SAT__OBJ_DLR 4       /* -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3 + 1e-12), >= 3 classes */
#define SAT__OBJ_DLR_T 5     /* -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12), >= 4 classes */
#define SAT__OBJ_KL 6        /* KL(softmax(r) || softmax(z)), r the reference logits (TRADES) */
#define SAT__OBJ_COUNT 7

/* Each writes obj[i] (may be NULL) and d(sum_i obj_i)/d(logits) into dlogits[n x classes]
 * (may be NULL), and returns the sum. pi1 >= pi2 >= ... are the logits sorted in
 * decreasing order (ties broken by the lower class index). Computed in double. */
double sat__loss_ce(const float *logits, const int32_t *labels, int64_t n, int32_t classes,
                    float *obj, float *dlogits);
double sat__loss_margin(const float *logits, const int32_t *labels, int64_t n, int32_t classes,
                        float *obj, float *dlogits);
double sat__loss_dlr(const float *logits, const int32_t *labels, int64_t n, int32_t classes,
                     float *obj, float *dlogits);
double sat__loss_dlr_targeted(const float *logits, const int32_t *labels, const int32_t *targets,
                              int64_t n, int32_t classes, float *obj, float *dlogits);
/* ref: the reference logits [n x classes] the KL is measured from. */
double sat__loss_kl(const float *logits, const float *ref, int64_t n, int32_t classes, float *obj,
                    float *dlogits);
/* Dispatch on SAT__OBJ_*; targets are used by the *_T objectives only, ref by SAT__OBJ_KL. */
double sat__attack_objective(int32_t objective, const float *logits, const int32_t *labels,
                             const int32_t *targets, const float *ref, int64_t n, int32_t classes,
                             float *obj, float *dlogits);

/* ---- geometry on one example of `size` values ----
 * Projects xa onto {|xa - x| <= eps in `norm`} and then clips it to [0,1]. Clipping after
 * the projection only moves coordinates towards x, so the result is in both sets. */
void sat__attack_project(int32_t norm, float eps, const float *x, float *xa, int64_t size);
/* xa += step * sign(g) (Linf) or step * g / ||g||_2 (L2; no move when g is zero). Not
 * projected. */
void sat__attack_ascend(int32_t norm, float step, const float *g, float *xa, int64_t size);
/* xa = x + a random point of the ball, clipped to [0,1]: uniform in the ball's volume
 * (Linf: uniform per pixel; L2: a uniform direction times eps * u^(1/size)). Drawn from
 * the counter RNG with key (seed, restart), stream SAT_STREAM_ATTACK, index
 * example * (size+1) + pixel. */
void sat__attack_random_start(int32_t norm, float eps, uint64_t seed, int32_t restart,
                              int64_t example, const float *x, float *xa, int64_t size);
/* xa = x + sigma N(0,1) per pixel, clipped to [0,1] (TRADES' start): the same key and
 * indices as sat__attack_random_start's L2 normals. */
void sat__attack_noise_start(float sigma, uint64_t seed, int32_t restart, int64_t example, const float *x,
                             float *xa, int64_t size);

/* ---- running an attack ---- */

#define SAT__START_NOISE 2 /* random_start: TRADES' small Gaussian start */

/* Options after defaults and checks; what sat__attack_resolve makes of sat_attack_opts, or
 * what the trainer asks for (lib/train/craft.c). */
typedef struct sat__attack_cfg {
    int32_t method;        /* SAT_ATTACK_* */
    int32_t norm;          /* SAT_NORM_* */
    int32_t objective;     /* SAT__OBJ_* */
    int32_t hit_target;    /* 1: success = classified as the target; 0: misclassified */
    int32_t uses_targets;  /* the attack reads targets (targeted objectives, FAB-T) */
    float eps;
    float step;            /* PGD/FGSM step; APGD initial step */
    int32_t steps;         /* 1 for FGSM */
    int32_t restarts;
    int32_t random_start;  /* 0: start at x; 1: uniform in the ball; SAT__START_NOISE */
    float start_sigma;     /* SAT__START_NOISE: x + start_sigma N(0,1) */
    int32_t bn;            /* SAT__BN_INFER or SAT__BN_BATCH */
    int32_t keep_last;     /* 1: a restart yields its last iterate (training uses the last
                              one, as PGD-AT, Fast-AT and TRADES do); 0: its best one. */
    int32_t eot;           /* passes averaged per evaluation on non-deterministic models; 1 */
    uint64_t seed;
} sat__attack_cfg;

/* Copies opts (NULL: defaults) over the defaults, checks every field against the model,
 * and fills cfg. On error returns SAT_E_INVALID_ARG with a message in m->err. */
int32_t sat__attack_resolve(const sat__target *m, const sat_attack_opts *opts, sat__attack_cfg *cfg);

/* Checks a batch for the public calls: x and labels non-NULL, n >= 1 (any size: work is
 * chunked), x finite (else SAT_E_NUMERIC), labels in range. Message into m->err. */
int32_t sat__attack_check_data(const sat__target *m, const float *x, const int32_t *labels, int64_t n,
                               const char *fn);

/* ---- measurements shared by sat_evaluate and sat_autoattack ---- */

/* Predictions pred[n] (and logits_out[n x classes] unless NULL) with batch norm in inference
 * mode (the deployed model), in chunks of max_batch. */
int32_t sat__predict(const sat__target *m, const float *x, int64_t n, int32_t *pred, float *logits_out);
/* Input gradient of CE at x (the attack batch-norm mode), in chunks of max_batch: ORs
 * SAT_FLAG_ZERO_GRAD into *flags if some example's gradient is exactly zero,
 * SAT_FLAG_NONFINITE_GRAD if some value is NaN or Inf. grad and dlogits are scratch of
 * max_batch x in_size and max_batch x classes. */
int32_t sat__gradient_flags(const sat__target *m, const float *x, const int32_t *labels, int64_t n, float *grad,
                            float *dlogits, uint32_t *flags);
/* AutoAttack's targets: the class with the (t+1)-th largest logit other than the label
 * (ties: lower index first), per example. */
void sat__pick_targets(const float *logits, const int32_t *labels, int64_t nc, int32_t classes, int32_t t,
                       int32_t *targets);

/* sat_attack on any target: resolves opts, checks the data, runs, fills the trace. fn names
 * the public call in messages. */
int32_t sat__attack_target(const sat__target *m, const sat_attack_opts *opts, const char *fn, const float *x,
                           const int32_t *labels, const int32_t *targets, int64_t n, float *x_adv,
                           sat_attack_trace *trace);

/* Optional outputs of sat__attack_run. */
typedef struct sat__attack_out {
    float *obj;              /* [n] objective at the returned x_adv, or NULL */
    int32_t *pred;           /* [n] predicted class at x_adv (attack batch-norm mode), or NULL */
    double *trace_obj;       /* [trace_len] per-step sums of the objective, added to, or NULL */
    int64_t *trace_correct;  /* [trace_len] per-step counts classified as the label, added to */
    int64_t trace_len;       /* entries available; step s of restart r goes to r*steps + s */
} sat__attack_out;

/* Bytes of scratch sat__attack_run needs for n examples (chunks of max_batch). */
size_t sat__attack_work_bytes(const sat__target *m, const sat__attack_cfg *cfg, int64_t n);

/* Runs the attack of cfg on n >= 1 already validated examples (labels in range, targets in
 * range when the objective needs them, x finite), in chunks of the model's max_batch.
 * ref_logits [n x classes] are the reference of SAT__OBJ_KL (NULL for the others).
 * index_base is the global index of x[0] for the random starts, or index (if not NULL)
 * gives each example's global index. x_adv may be x itself
 * (in place) but must not otherwise overlap it. work: sat__attack_work_bytes bytes aligned
 * to SAT_ALIGN, or NULL to allocate through the context (SAT_E_NOMEM on failure, before
 * anything is written). Parameters and running statistics are never changed. */
int32_t sat__attack_run(const sat__target *m, const sat__attack_cfg *cfg, const float *x,
                        const int32_t *labels, const int32_t *targets, const float *ref_logits,
                        int64_t n, int64_t index_base, const int64_t *index, float *x_adv, void *work,
                        sat__attack_out *out);

/* The two algorithms on one chunk (nc <= max_batch), used by sat__attack_run. */
typedef struct sat__attack_chunk {
    const sat__target *m;
    const sat__attack_cfg *cfg;
    const float *x;
    const int32_t *labels, *targets;
    const float *ref_logits;  /* [nc x classes] SAT__OBJ_KL's reference, or NULL */
    int64_t nc, index_base;
    const int64_t *index;     /* [nc] global indices of the examples, or NULL: index_base + i */
    float *eot_grad, *eot_obj; /* [nc x size], [nc]: one pass of an expectation (cfg->eot > 1) */
    float *best;              /* [nc x size] the returned point per example */
    float *best_obj;          /* [nc] */
    uint8_t *best_hit;        /* [nc] */
    int32_t *best_pred;       /* [nc] */
    unsigned char *scratch;   /* the rest of the work block */
    sat__attack_out *out;
} sat__attack_chunk;

/* Start points of restart r for every example of the chunk (cfg->random_start), in the
 * ball and in [0,1]. */
void sat__attack_start(const sat__attack_chunk *c, int32_t r, float *xa);
/* Evaluates the objective at xa (nc examples, with their labels and targets): obj[nc],
 * pred[nc], and when grad is non-NULL the input gradient of the summed objective. dlogits is
 * scratch of nc x classes. With cfg->eot > 1 on a model that is not deterministic, obj and
 * grad are the means over eot passes (expectation over transformation) and pred is the
 * last pass's. */
int32_t sat__attack_eval(sat__attack_chunk *c, const float *xa, const int32_t *labels, const int32_t *targets,
                         int64_t nc, float *obj, int32_t *pred, float *dlogits, float *grad);
/* The global index of example i of the chunk (random streams are keyed by it). */
static inline int64_t sat__attack_index(const sat__attack_chunk *c, int64_t i) {
    return c->index ? c->index[i] : c->index_base + i;
}
/* Offers candidate xa (objective obj, prediction pred) for each example: it replaces the
 * kept point if it succeeds where the kept one does not, or succeeds equally with a higher
 * objective. `force` accepts it unconditionally (the first candidate). */
void sat__attack_offer(sat__attack_chunk *c, const float *xa, const float *obj,
                       const int32_t *pred, int force);
/* Reports one iteration of the chunk done (nc units); SAT_E_ABORTED when the host cancels. */
static inline int32_t sat__attack_tick(const sat__attack_chunk *c) {
    return sat__progress_add(c->m->progress, c->nc);
}
/* Adds one step's statistics to the trace. */
void sat__attack_trace_add(sat__attack_chunk *c, int64_t entry, const float *obj, const int32_t *pred);

/* One allocation through the context holding `count` regions of sizes[i] bytes, each aligned
 * to SAT_ALIGN; regions[i] receives region i. Returns the block (free it with sat__dealloc),
 * or NULL with SAT_E_NOMEM and a message naming fn in m->err. */
void *sat__attack_alloc_regions(const sat__target *m, const size_t *sizes, void **regions, size_t count,
                                const char *fn);

/* Scratch layout: consecutive blocks, each rounded up to SAT_ALIGN bytes. */
static inline size_t sat__attack_align(size_t bytes) {
    return (bytes + SAT_ALIGN - 1) / SAT_ALIGN * SAT_ALIGN;
}
static inline void *sat__attack_carve(unsigned char **p, size_t bytes) {
    void *r = *p;
    *p += sat__attack_align(bytes);
    return r;
}

int32_t sat__pgd_chunk(sat__attack_chunk *c);
int32_t sat__apgd_chunk(sat__attack_chunk *c);
int32_t sat__fab_chunk(sat__attack_chunk *c);
int32_t sat__square_chunk(sat__attack_chunk *c);
/* APGD's checkpoints for `steps` iterations: writes up to cap of them (the number of
 * iterations done when each is reached, e.g. 22, 41, 57, 70, 80, 87, 93, 99 for 100) and
 * returns how many there are. */
int32_t sat__apgd_checkpoints(int32_t steps, int32_t *iters, int32_t cap);
size_t sat__pgd_scratch_bytes(const sat__target *m, int64_t nc);
size_t sat__apgd_scratch_bytes(const sat__target *m, int64_t nc);
size_t sat__fab_scratch_bytes(const sat__target *m, int64_t nc);
size_t sat__square_scratch_bytes(const sat__target *m, int64_t nc);

/* FAB's projection of t onto {z : <w, z> = b} inside [0,1]^size, shortest in the Linf or L2
 * norm: writes the step d (t + d is the projection; when the box cannot reach the
 * hyperplane, the box corner closest to it). work holds size pairs. */
typedef struct sat__fab_pair {
    double beta, a;
} sat__fab_pair;
void sat__fab_project(int32_t norm, const float *t, const float *w, double b, float *d, int64_t size,
                      sat__fab_pair *work);
/* Square's p: the fraction of pixels a proposal changes before query it (0-based). */
double sat__square_p(int32_t it);

#endif
