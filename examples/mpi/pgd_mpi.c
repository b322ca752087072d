/* pgd_mpi.c - data-parallel PGD adversarial training over MPI, with libsat doing the
 * training and MPI only summing. Every rank loads the same data set and builds the same
 * model (same spec and seed). Each epoch has one order (a pure function of the data seed
 * and the epoch), cut into global batches of B examples; rank r takes examples
 * r*B/R .. (r+1)*B/R-1 of each, crafts their adversarial examples (sat_train_compute, with
 * its rank in the trainer's options so its random starts and dropout masks are those of
 * its examples' positions in the global batch), the ranks average the gradient block and
 * every rank applies it (sat_train_apply), so the replicas stay identical. The average is
 * overlapped with the backward: the trainer hands out each layer's gradients as soon as they
 * are final (sat_trainer_opts.grad_ready), which start an MPI_Iallreduce per bucket of
 * neighbouring layers, waited for after sat_train_compute (--no-overlap: one MPI_Allreduce
 * of the block after it; the sums per element, hence the weights, are the same). Batch norm
 * is synchronised: the trainer hands each layer's sums to an MPI_Allreduce
 * (sat_trainer_opts.bn_reduce), so R ranks x B/R examples are the step of one process with
 * B, up to the order of the float sums.
 *
 * Rank 0 alone writes the model, the checkpoints and the log. A checkpoint records the
 * epoch and the examples done in it; --resume continues from it with any rank count, at
 * any checkpoint while the global batch stays the same, and with another global batch at
 * an epoch boundary. Any libsat or MPI failure on any rank aborts the job with a message
 * (MPI_Abort), so no rank waits forever in an all-reduce; a rank that is killed makes
 * mpirun end the others. Checkpoints are written to a temporary file and renamed, so the
 * last one stays loadable whenever the job dies.
 *
 *   mpirun -np R sat-mpi-pgd OUT.model [options]      (--help lists them) */
#include <sat.h>

#include <mpi.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 3
/* Two small models for C x 12 x 12 images (%d: channels, then classes), without and with
 * batch norm. */
#define SPEC_TINY "input %d 12 12\nconv 4 k=3\nact\nflatten\ndense 32\nact\ndense %d\n"
#define SPEC_TINY_BN "input %d 12 12\nconv 8 k=3\nbn\nact\nconv 8 k=3 s=2\nbn\nact\nflatten\ndense 32\nbn\nact\ndense %d\n"

static int rank_id = 0;

static void check(int32_t st, const char *what, const char *msg) {
    if (st == SAT_OK) return;
    fprintf(stderr, "rank %d: %s failed: %s (%s); ending the job\n", rank_id, what, sat_status_string(st), msg);
    MPI_Abort(MPI_COMM_WORLD, 2);
}

/* MPI calls return their errors (MPI_ERRORS_RETURN): one that fails ends the job. */
static void check_mpi(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    fprintf(stderr, "rank %d: %s failed: %s (did another rank die?); ending the job\n", rank_id, what, text);
    MPI_Abort(MPI_COMM_WORLD, 3);
}

typedef struct args {
    const char *out, *data, *model, *checkpoint, *log, *compare;
    double tol;
    int batch, epochs, steps, attack_steps, examples, side, channels, ckpt_every, resume, sync_bn, threads;
    int kill_rank, kill_at, overlap;
    long bucket;
    float eps, lr;
} args;

static void usage(const char *prog) {
    fprintf(stderr,
            "usage: mpirun -np R %s OUT.model [options]\n"
            "  --data DIR            IDX data set (DIR/train-images-idx3-ubyte ...); default: synthetic\n"
            "  --examples N          synthetic examples (default 1024); --shape C,SIDE (default 1,12)\n"
            "  --model NAME          tiny (default), tiny-bn, or a preset (madry-cnn, resnet20, ...)\n"
            "  --batch B             global batch, a multiple of R (default 128)\n"
            "  --epochs E            (default 1); --steps N: stop after N steps in all\n"
            "  --attack-steps K      PGD steps (default 3); --eps (0.1); --lr (0.05)\n"
            "  --local-bn            batch norm on each rank's own statistics (default: synchronised)\n"
            "  --checkpoint PATH     written by rank 0 at each epoch end and every --checkpoint-every steps\n"
            "  --resume              continue from --checkpoint\n"
            "  --log PATH            one JSON line per step, written by rank 0\n"
            "  --threads T           threads per rank (default 1)\n"
            "  --no-overlap          reduce the gradient block after the backward, not during it (--overlap)\n"
            "  --bucket F            overlapped: the smallest all-reduce, in floats (default 65536)\n"
            "  --compare REF TOL     rank 0: exit 1 if a parameter differs from REF's by more than TOL\n"
            "  --kill-at STEP --kill-rank R   testing: that rank kills itself before that step\n",
            prog);
}

static int parse(int argc, char **argv, args *a) {
    *a = (args){.batch = 128, .epochs = 1, .attack_steps = 3, .examples = 1024, .side = 12, .channels = 1,
                .sync_bn = 1, .threads = 1, .overlap = 1, .bucket = 65536, .kill_rank = -1, .kill_at = -1,
                .eps = 0.1f, .lr = 0.05f, .model = "tiny"};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const int more = i + 1 < argc;
        if (!strcmp(f, "--data") && more) a->data = argv[++i];
        else if (!strcmp(f, "--examples") && more) a->examples = atoi(argv[++i]);
        else if (!strcmp(f, "--shape") && more) {
            if (sscanf(argv[++i], "%d,%d", &a->channels, &a->side) != 2) return 0;
        } else if (!strcmp(f, "--model") && more) a->model = argv[++i];
        else if (!strcmp(f, "--batch") && more) a->batch = atoi(argv[++i]);
        else if (!strcmp(f, "--epochs") && more) a->epochs = atoi(argv[++i]);
        else if (!strcmp(f, "--steps") && more) a->steps = atoi(argv[++i]);
        else if (!strcmp(f, "--attack-steps") && more) a->attack_steps = atoi(argv[++i]);
        else if (!strcmp(f, "--eps") && more) a->eps = (float)atof(argv[++i]);
        else if (!strcmp(f, "--lr") && more) a->lr = (float)atof(argv[++i]);
        else if (!strcmp(f, "--local-bn")) a->sync_bn = 0;
        else if (!strcmp(f, "--checkpoint") && more) a->checkpoint = argv[++i];
        else if (!strcmp(f, "--checkpoint-every") && more) a->ckpt_every = atoi(argv[++i]);
        else if (!strcmp(f, "--resume")) a->resume = 1;
        else if (!strcmp(f, "--log") && more) a->log = argv[++i];
        else if (!strcmp(f, "--threads") && more) a->threads = atoi(argv[++i]);
        else if (!strcmp(f, "--no-overlap")) a->overlap = 0;
        else if (!strcmp(f, "--overlap")) a->overlap = 1;
        else if (!strcmp(f, "--bucket") && more) a->bucket = atol(argv[++i]);
        else if (!strcmp(f, "--kill-at") && more) a->kill_at = atoi(argv[++i]);
        else if (!strcmp(f, "--kill-rank") && more) a->kill_rank = atoi(argv[++i]);
        else if (!strcmp(f, "--compare") && i + 2 < argc) {
            a->compare = argv[++i];
            a->tol = atof(argv[++i]);
        } else if (!a->out && f[0] != '-') a->out = f;
        else return 0;
    }
    return a->out && a->batch > 0 && a->epochs > 0 && a->steps >= 0 && a->attack_steps > 0 && a->examples > 0 &&
           a->side >= 8 && a->channels > 0 && a->threads > 0 && a->bucket > 0 && a->ckpt_every >= 0 &&
           (!a->resume || a->checkpoint);
}

/* ---- the data: an IDX set, or a synthetic one (three classes by where a bright blob
 * sits, plus noise from a hash of (example, pixel)), the same on every rank ---- */
static uint32_t hash32(uint64_t v) {
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ull;
    v ^= v >> 33;
    return (uint32_t)v;
}

static sat_dataset *synthetic(sat_context *ctx, const args *a) {
    const int s = a->side, c = a->channels, blob = s / 3;
    const int64_t pixels = (int64_t)c * s * s;
    float *x = malloc(sizeof(float) * (size_t)(a->examples * pixels));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)a->examples);
    if (!x || !y) check(SAT_E_NOMEM, "malloc", "out of memory for the data");
    for (int64_t i = 0; i < a->examples; i++) {
        const int32_t k = (int32_t)(hash32((uint64_t)i * 2654435761u) % CLASSES);
        const int r0 = k * (s - blob) / (CLASSES - 1);
        y[i] = k;
        for (int64_t p = 0; p < pixels; p++) {
            const int r = (int)(p / s % s), col = (int)(p % s);
            float v = r >= r0 && r < r0 + blob && col >= r0 && col < r0 + blob ? 0.75f : 0.2f;
            v += 0.3f * ((float)(hash32((uint64_t)(i * pixels + p) + 7) >> 8) / 16777216.0f - 0.5f);
            x[i * pixels + p] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
    sat_dataset *ds = NULL;
    check(sat_dataset_from_arrays(ctx, x, y, a->examples, c, s, s, CLASSES, &ds), "sat_dataset_from_arrays",
          sat_last_error());
    free(x);
    free(y);
    return ds;
}

static sat_model *build_model(sat_context *ctx, const args *a, const sat_dataset *ds, int32_t n) {
    int32_t c = 0, h = 0, w = 0, k = 0;
    sat_dataset_shape(ds, &c, &h, &w, &k);
    char *preset = NULL, tiny[256];
    const char *spec = NULL;
    const char *fmt = !strcmp(a->model, "tiny") ? SPEC_TINY : !strcmp(a->model, "tiny-bn") ? SPEC_TINY_BN : NULL;
    if (fmt && (h != 12 || w != 12)) {
        fprintf(stderr, "rank %d: --model %s is for 12x12 images\n", rank_id, a->model);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (fmt) {
        snprintf(tiny, sizeof tiny, fmt, c, k);
        spec = tiny;
    } else {
        check(sat_preset_spec(a->model, c, h, w, k, NULL, NULL, &preset), "sat_preset_spec", sat_last_error());
        spec = preset;
    }
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.activation = SAT_ACT_SILU;
    mo.max_batch = n;
    sat_model *m = NULL;
    check(sat_model_create(ctx, spec, &mo, &m), "sat_model_create", sat_last_error());
    sat_free(preset);
    return m;
}

/* ---- synchronised batch norm: the trainer's sums, summed over the ranks ---- */
static int32_t allreduce_sums(void *user, double *sums, int64_t count) {
    double *seconds = user;
    const double t0 = MPI_Wtime();
    const int rc = MPI_Allreduce(MPI_IN_PLACE, sums, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *seconds += MPI_Wtime() - t0;
    return rc == MPI_SUCCESS ? 0 : 1;
}

/* ---- the gradient block's all-reduce, overlapped with the backward: the trainer hands out
 * ranges from the block's end down to 0, each ending where the last began; neighbours are
 * gathered into buckets of at least --bucket floats, one MPI_Iallreduce each ---- */
typedef struct overlap {
    float *grads;
    long bucket;
    int64_t pending_end;        /* the gathered but not yet started range ends here */
    MPI_Request *requests;
    int count, capacity;
} overlap;

static int32_t start_reduction(void *user, int64_t offset, int64_t count) {
    overlap *o = user;
    if (o->pending_end < 0) o->pending_end = offset + count;
    if (o->pending_end - offset < o->bucket && offset > 0) return 0; /* gather more */
    if (o->count == o->capacity) {
        const int grown = o->capacity ? 2 * o->capacity : 16;
        MPI_Request *r = realloc(o->requests, sizeof *r * (size_t)grown);
        if (!r) return 1;
        o->requests = r;
        o->capacity = grown;
    }
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, o->grads + offset, (int)(o->pending_end - offset), MPI_FLOAT,
                                  MPI_SUM, MPI_COMM_WORLD, &o->requests[o->count]);
    if (rc != MPI_SUCCESS) return 1;
    o->count++;
    o->pending_end = -1;
    /* Open MPI progresses non-blocking collectives inside MPI calls: give it one per bucket. */
    int done = 0;
    return MPI_Testall(o->count, o->requests, &done, MPI_STATUSES_IGNORE) == MPI_SUCCESS ? 0 : 1;
}

/* The step's gradient all-reduce: waits for the overlapped buckets, or reduces the block now. */
static void finish_reduction(overlap *o, const args *a, int64_t np) {
    if (a->overlap) {
        check_mpi(MPI_Waitall(o->count, o->requests, MPI_STATUSES_IGNORE), "MPI_Waitall of the gradient buckets");
        o->count = 0;
    } else {
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, o->grads, (int)np, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                  "MPI_Allreduce of the gradient block");
    }
}

static int compare(sat_context *ctx, const sat_model *m, const char *ref_path, double tol) {
    sat_model *ref = NULL;
    check(sat_model_load(ctx, ref_path, NULL, &ref), "sat_model_load", sat_last_error());
    const int64_t np = sat_model_param_count(m);
    if (sat_model_param_count(ref) != np) {
        fprintf(stderr, "compare: %s has another parameter count\n", ref_path);
        sat_model_destroy(ref);
        return 1;
    }
    const float *a = sat_model_params((sat_model *)m), *b = sat_model_params(ref);
    double worst = 0.0;
    for (int64_t i = 0; i < np; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    printf("largest parameter difference to %s: %.3g (tolerance %.3g)\n", ref_path, worst, tol);
    sat_model_destroy(ref);
    return worst <= tol ? 0 : 1;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_id);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    args a;
    if (!parse(argc, argv, &a) || a.batch % ranks != 0) {
        if (rank_id == 0) usage(argv[0]);
        MPI_Finalize();
        return 2;
    }
    const int n = a.batch / ranks;

    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = a.threads;
    co.seed = 1; /* the same weights on every rank */
    sat_context *ctx = NULL;
    check(sat_context_create(&co, &ctx), "sat_context_create", sat_last_error());
    sat_dataset *ds = NULL;
    if (a.data) check(sat_dataset_load(ctx, SAT_DATA_IDX, a.data, SAT_SPLIT_TRAIN, &ds), "sat_dataset_load",
                      sat_last_error());
    else ds = synthetic(ctx, &a);
    const int64_t per_epoch = sat_dataset_size(ds) / a.batch; /* whole global batches only */
    if (per_epoch < 1) {
        if (rank_id == 0) fprintf(stderr, "the data set has fewer than --batch %d examples\n", a.batch);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    sat_model *m = build_model(ctx, &a, ds, n);
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.lr = a.lr;
    oo.momentum = 0.9f;
    sat_optimizer *opt = NULL;
    check(sat_optimizer_create(m, &oo, &opt), "sat_optimizer_create", sat_last_error());
    double bn_seconds = 0.0;
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = SAT_TRAIN_PGD;
    to.eps = a.eps;
    to.steps = a.attack_steps;
    to.rank = rank_id;
    to.rank_count = ranks;
    if (a.sync_bn) {
        to.bn_reduce = allreduce_sums;
        to.bn_reduce_user = &bn_seconds;
    }
    overlap ov = {.grads = sat_model_grads(m), .bucket = a.bucket, .pending_end = -1};
    if (a.overlap) {
        to.grad_ready = start_reduction;
        to.grad_ready_user = &ov;
    }
    sat_trainer *tr = NULL;
    check(sat_trainer_create(m, opt, &to, &tr), "sat_trainer_create", sat_last_error());

    /* Where to start: a checkpoint holds the epoch and the examples done in it. */
    int64_t epoch0 = 0, done0 = 0;
    if (a.resume) {
        check(sat_checkpoint_load(tr, a.checkpoint, &epoch0, &done0), "sat_checkpoint_load",
              sat_trainer_last_error(tr));
        if (done0 % a.batch != 0) {
            if (rank_id == 0)
                fprintf(stderr, "%s stopped after %lld examples of epoch %lld, not a multiple of --batch %d: "
                                "resume with the run's global batch, or from an epoch boundary\n",
                        a.checkpoint, (long long)done0, (long long)epoch0 + 1, a.batch);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        if (rank_id == 0)
            printf("resumed from %s: epoch %lld, %lld examples done, %d ranks\n", a.checkpoint,
                   (long long)epoch0 + 1, (long long)done0, ranks);
    }
    FILE *log = NULL;
    if (rank_id == 0 && a.log && !(log = fopen(a.log, a.resume ? "a" : "w"))) {
        fprintf(stderr, "rank 0: cannot write the log %s; ending the job\n", a.log);
        MPI_Abort(MPI_COMM_WORLD, 3);
    }

    int32_t c = 0, h = 0, w = 0;
    sat_model_shape(m, &c, &h, &w, NULL);
    const size_t pixels = (size_t)c * (size_t)h * (size_t)w;
    float *x = malloc(sizeof(float) * (size_t)n * pixels);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    if (!x || !y) check(SAT_E_NOMEM, "malloc", "out of memory");
    float *grads = sat_model_grads(m);
    const int64_t np = sat_model_param_count(m);
    float *state = sat_model_state(m);
    const int64_t nstate = sat_model_state_count(m);
    int64_t steps_done = 0;
    double compute_s = 0.0, reduce_s = 0.0, timed_start = 0.0;
    int stop = 0;
    for (int64_t epoch = epoch0; epoch < a.epochs && !stop; epoch++) {
        check(sat_dataset_shuffle(ds, 17, epoch, SAT_AUG_NONE), "sat_dataset_shuffle", sat_dataset_last_error(ds));
        for (int64_t b = epoch == epoch0 ? done0 / a.batch : 0; b < per_epoch; b++) {
            if (a.steps && steps_done == a.steps) {
                stop = 1;
                if (rank_id == 0 && a.checkpoint)
                    check(sat_checkpoint_save(tr, NULL, epoch, b * a.batch, a.checkpoint), "sat_checkpoint_save",
                          sat_trainer_last_error(tr));
                break;
            }
            if (rank_id == a.kill_rank && steps_done == a.kill_at) raise(SIGKILL);
            /* this rank's shard: batch b*R + rank of size n is examples b*B + rank*n .. of the order */
            check(sat_dataset_batch(ds, b * ranks + rank_id, n, x, y, NULL), "sat_dataset_batch",
                  sat_dataset_last_error(ds));
            if (steps_done == 1) { /* the first step warms up: time the rest */
                compute_s = reduce_s = bn_seconds = 0.0;
                timed_start = MPI_Wtime();
            }
            const double t0 = MPI_Wtime();
            sat_step_stats st = {.struct_size = sizeof st};
            check(sat_train_compute(tr, x, y, n, &st), "sat_train_compute", sat_trainer_last_error(tr));
            const double t1 = MPI_Wtime();
            finish_reduction(&ov, &a, np);
            const double t2 = MPI_Wtime();
            compute_s += t1 - t0;
            reduce_s += t2 - t1;
            for (int64_t i = 0; i < np; i++) grads[i] /= (float)ranks;
            check(sat_train_apply(tr), "sat_train_apply", sat_trainer_last_error(tr));
            /* Local batch norm: average the running statistics so the replicas keep one model
             * (synchronised, they are already equal). */
            if (!a.sync_bn && nstate > 0) {
                check_mpi(MPI_Allreduce(MPI_IN_PLACE, state, (int)nstate, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                          "MPI_Allreduce of the running statistics");
                for (int64_t i = 0; i < nstate; i++) state[i] /= (float)ranks;
            }
            double sums[2] = {st.loss, st.adv_accuracy};
            check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                      "MPI_Allreduce of the statistics");
            steps_done++;
            if (rank_id == 0) {
                printf("epoch %lld step %lld: loss %.4f adv acc %.3f (%d ranks x %d)\n", (long long)epoch + 1,
                       (long long)b + 1, sums[0] / ranks, sums[1] / ranks, ranks, n);
                if (log)
                    fprintf(log,
                            "{\"epoch\":%lld,\"batch\":%lld,\"ranks\":%d,\"loss\":%.6f,\"adv_accuracy\":%.4f,"
                            "\"lr\":%.6g,\"compute_s\":%.6f,\"allreduce_s\":%.6f}\n",
                            (long long)epoch + 1, (long long)b + 1, ranks, sums[0] / ranks, sums[1] / ranks,
                            (double)st.lr, t1 - t0, t2 - t1);
                const int every = a.ckpt_every && steps_done % a.ckpt_every == 0 && b + 1 < per_epoch;
                if (a.checkpoint && every)
                    check(sat_checkpoint_save(tr, NULL, epoch, (b + 1) * a.batch, a.checkpoint),
                          "sat_checkpoint_save", sat_trainer_last_error(tr));
            }
        }
        if (!stop && rank_id == 0 && a.checkpoint)
            check(sat_checkpoint_save(tr, NULL, epoch + 1, 0, a.checkpoint), "sat_checkpoint_save",
                  sat_trainer_last_error(tr));
    }
    int status = 0;
    if (rank_id == 0) {
        if (steps_done > 1) {
            const double wall = MPI_Wtime() - timed_start, k = (double)(steps_done - 1);
            printf("timed %lld steps: %.1f images/s; per step %.4f s compute (of which %.4f s batch-norm "
                   "reductions), %.4f s gradient all-reduce of %lld floats%s\n",
                   (long long)(steps_done - 1), k * a.batch / wall, compute_s / k, bn_seconds / k, reduce_s / k,
                   (long long)np, a.overlap ? " (the wait after the overlapped backward)" : "");
        }
        check(sat_model_save(m, NULL, a.out), "sat_model_save", sat_model_last_error(m));
        if (a.compare) status = compare(ctx, m, a.compare, a.tol);
        if (log) fclose(log);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(x);
    free(y);
    free(ov.requests);
    sat_trainer_destroy(tr);
    sat_optimizer_destroy(opt);
    sat_model_destroy(m);
    sat_dataset_destroy(ds);
    sat_context_destroy(ctx);
    MPI_Finalize();
    return status;
}
