/* train.h - internal definitions of the optimizer and the adversarial trainer.
 *
 * What a checkpoint must save and restore to resume bit-exactly:
 *   optimizer: state[0..state_count) (flat float block), step (int64)
 *   trainer:   seed (uint64), rng_counter (int64); for Free-AT also delta[0..delta_n *
 *              model->in_size) and delta_n (the persistent perturbation; delta_n 0 = none)
 * Everything else is derived from the options and the model at creation. */
#ifndef SAT_TRAIN_H
#define SAT_TRAIN_H

#include "graph/graph.h"

struct sat_optimizer {
    sat_model *model;            /* borrowed */
    sat_optimizer_opts opts;     /* validated copy */
    /* SGD: momentum buffer [num_params] (0 floats when momentum is 0).
     * Adam/AdamW: first moments m [num_params] followed by second moments v [num_params]. */
    float *state;
    int64_t state_count;
    int64_t step;                /* updates applied so far; the schedule's position */
    /* Weight decay applies to the weight blocks ([start, end) pairs, sorted; every other
     * parameter too under opts.decay_biases): sat_model_decay_mask as ranges. */
    int64_t *weight_ranges;
    int64_t num_weight_ranges;
    /* Runtime control (set after creation, saved in checkpoints): opts.lr is the base rate
     * the schedule scales; lr_scale multiplies it per parameter (1 by default); a frozen
     * parameter (1) is skipped by the update: no change, no decay, no state update. Each
     * block is allocated when a host first sets a value other than the default (NULL: all
     * scales 1, nothing frozen), so an optimizer no host tunes holds two parameter-sized
     * blocks less. */
    float *lr_scale;
    uint8_t *frozen;
    int32_t live_children;       /* trainers using it (atomic, see core.h) */
    char err[SAT_ERRMSG_SIZE];
};

/* optimizer_control.c: allocates the learning-rate scales (all 1) or the freeze mask (all
 * 0) if the optimizer has none yet; SAT_E_NOMEM (a message naming fn into err) changes
 * nothing. */
int32_t sat__optimizer_own_scales(sat_optimizer *opt, const char *fn, char *err);
int32_t sat__optimizer_own_frozen(sat_optimizer *opt, const char *fn, char *err);

/* The counter advances by this fixed amount per step (sat_train_step or sat_train_compute), whatever the method
 * and batch, so a step's position (and the key of its random starts) is a function of the
 * number of steps. */
#define SAT__TRAIN_RNG_PER_STEP (1ull << 32)

struct sat_trainer {
    sat_model *model;            /* borrowed */
    sat_optimizer *opt;          /* borrowed */
    sat_trainer_opts opts;       /* validated copy */
    uint64_t seed;               /* RNG key (opts.seed) */
    int64_t rng_counter;         /* index base of the next step in SAT_STREAM_TRAIN */
    const char *call;            /* the running public call, for messages and progress */

    /* Free-AT: persistent perturbation for batches of delta_n examples (0: none yet). */
    float *delta;
    int64_t delta_n;
    float *delta_backup;         /* snapshot for the rollback of a failed step */
    int64_t delta_n_backup;

    /* Work buffers, all sized for the model's max_batch at creation. */
    float *x_adv;                /* adversarial batch [max_batch * in_size] */
    float *grad_x;               /* input gradient [max_batch * in_size] */
    float *dlogits;              /* [max_batch * classes] */
    float *logits_a;             /* saved logits [max_batch * classes] */
    float *logits_b;
    float *grad_acc;             /* parameter-gradient accumulator [num_params]; TRADES and a
                                  * clean fraction only (else NULL) */
    float *param_backup;         /* Free-AT only: snapshot for the rollback of a failed step
                                  * [num_params] (else NULL) */
    float *opt_backup;           /* Free-AT only: [opt->state_count] */
    float *bn_backup;            /* running statistics [num_state] */
    void *attack_work;           /* the attack's scratch (sat__craft_work_bytes) */
    sat_exec *clean_exec;        /* TRADES: runs f(x) while the model's own execution keeps
                                    f(x'), so both backwards need no repeated forward */
    sat__progress *progress;     /* the running step's progress (NULL between steps): one unit
                                    per example and attack step or update */
    sat__shard shard;            /* this rank's part of the batch, attached to the executions
                                    during a step (example base, batch-norm reduction) */
    char err[SAT_ERRMSG_SIZE];
};

/* ---- optim.c / schedule.c ---- */
/* Learning rate of update number `step` (0-based) under validated options. */
double sat__schedule_lr(const sat_optimizer_opts *o, int64_t step);
/* Validates optimizer options; message into err. */
int32_t sat__optimizer_check_opts(const sat_optimizer_opts *o, char *err);

/* ---- craft.c: the attacks that make the training batch, run by the attack module's PGD
 * (attack plan, batch norm in the trainer's attack mode, running statistics untouched).
 * Random starts are drawn under a key made of the trainer's seed and rng_counter, at the
 * examples' global indices: rank * n + i for example i of a rank's batch of n. x_adv
 * stays in the eps-ball and in [0,1]. */
int32_t sat__attack_bn(const sat_trainer *t);
/* Bytes of t->attack_work: the attack's scratch for max_batch examples. */
size_t sat__craft_work_bytes(const sat_trainer *t);
/* PGD / FGSM on the cross-entropy: `steps` signed (Linf) or normalised (L2) steps from x
 * or (random_start) from a uniform point of the ball. */
int32_t sat__craft_ce(sat_trainer *t, const float *x, const int32_t *labels, int64_t n,
                      int32_t steps, float step_size, int random_start, float *x_adv);
/* TRADES: maximises KL(p(x) || p(x_adv)) from x + 0.001 N(0,1); uses t->logits_a. */
int32_t sat__craft_kl(sat_trainer *t, const float *x, const int32_t *labels, int64_t n, int32_t steps,
                      float step_size, float *x_adv);
/* Per-example sat__attack_ascend: alpha sign(g) (Linf) or alpha g / ||g|| (L2). */
void sat__ascent_step(int32_t norm, float alpha, const float *g, float *x_adv, int64_t n,
                      int64_t size);

/* trainer.c: the step's last backward, of the train plan on e (after its forward) from
 * t->dlogits into the gradient block: adds `addend` (NULL: nothing; else an earlier
 * backward's part of the gradient) range by range and, in sat_train_compute, hands each range
 * to sat_trainer_opts.grad_ready as it becomes final. Message into t->err. */
int32_t sat__last_backward(sat_trainer *t, sat_exec *e, const float *addend);

/* ---- trades.c ----
 * TRADES loss of a batch for a given clean x and adversarial x_adv:
 *   mean_i [ CE_s(f(x_i), y_i) + beta * KL(p(x_i) || p(x_adv_i)) ]
 * and its parameter gradient, written to the model's gradient block (t->grad_acc is used
 * as scratch). bn is a SAT__BN_* mode; with SAT__BN_TRAIN the forward on x_adv updates the
 * running statistics and the forwards on x use batch statistics without updating them, so
 * the statistics move once per step. *loss receives the mean loss; correct_clean and
 * correct_adv (may be NULL) the number of x and x_adv classified correctly. */
int32_t sat__trades_loss_grad(sat_trainer *t, const float *x, const float *x_adv,
                              const int32_t *labels, int64_t n, int32_t bn, double *loss,
                              int64_t *correct_clean, int64_t *correct_adv);

#endif
