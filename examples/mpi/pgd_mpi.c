/* pgd_mpi.c - data-parallel PGD adversarial training over MPI, with libsat doing the
 * training and MPI only summing the gradient block. Every rank builds the same model (same
 * spec and seed), crafts the adversarial examples of its shard of each global batch
 * (sat_train_compute, with its rank in the trainer's options so its random starts are those
 * of its examples' positions in the global batch), the ranks average the gradient block
 * with one MPI_Allreduce, and every rank applies it (sat_train_apply), so the replicas stay
 * identical. Rank 0 writes the model. The model has no batch norm (docs/distributed.md:
 * batch statistics are per rank), so R ranks x B/R examples are the step of 1 rank x B
 * up to the order of the float sums.
 *
 *   mpirun -np 2 sat-mpi-pgd OUT.model [--steps N] [--batch B] [--compare REF.model TOL]
 *
 * --batch is the global batch (split evenly over the ranks). --compare: rank 0 loads REF
 * (for example the model of a 1-rank run), prints the largest parameter difference and
 * exits with 1 when it is above TOL. Any libsat failure on any rank aborts the job with
 * the message (MPI_Abort), so no rank waits forever in the all-reduce. */
#include <sat.h>

#include <mpi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 12
#define PIXELS (SIDE * SIDE)
#define CLASSES 3
#define SPEC "input 1 12 12\nconv 4 k=3\nact\nflatten\ndense 32\nact\ndense 3\n"

static int rank_id = 0;

static void check(int32_t st, const char *what, const char *msg) {
    if (st == SAT_OK) return;
    fprintf(stderr, "rank %d: %s failed: %s (%s)\n", rank_id, what, sat_status_string(st), msg);
    MPI_Abort(MPI_COMM_WORLD, 2);
}

/* Example i of the data set, the same on every rank: three classes by where a bright
 * blob sits, plus noise from a hash of (i, pixel). */
static uint32_t hash32(uint64_t v) {
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ull;
    v ^= v >> 33;
    return (uint32_t)v;
}

static void example(int64_t i, float *x, int32_t *y) {
    const int32_t k = (int32_t)(hash32((uint64_t)i * 2654435761u) % CLASSES);
    const int r0 = 1 + 3 * k;
    *y = k;
    for (int r = 0; r < SIDE; r++)
        for (int c = 0; c < SIDE; c++) {
            float v = r >= r0 && r < r0 + 4 && c >= r0 && c < r0 + 4 ? 0.75f : 0.2f;
            v += 0.3f * ((float)(hash32((uint64_t)i * PIXELS + (uint64_t)(r * SIDE + c) + 7) >> 8) / 16777216.0f - 0.5f);
            x[r * SIDE + c] = v < 0 ? 0 : v > 1 ? 1 : v;
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
    const char *out = NULL, *ref = NULL;
    int steps = 5, batch = 128;
    double tol = 0.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--compare") && i + 2 < argc) {
            ref = argv[++i];
            tol = atof(argv[++i]);
        } else if (!out && argv[i][0] != '-') out = argv[i];
        else out = NULL, i = argc;
    }
    if (!out || steps < 1 || batch < 1 || batch % ranks != 0) {
        if (rank_id == 0)
            fprintf(stderr, "usage: mpirun -np R %s OUT.model [--steps N] [--batch B, a multiple of R] "
                            "[--compare REF.model TOL]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    const int n = batch / ranks;

    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = 1; /* one core per rank */
    co.seed = 1;        /* same weights on every rank */
    sat_context *ctx = NULL;
    check(sat_context_create(&co, &ctx), "sat_context_create", sat_last_error());
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.activation = SAT_ACT_SILU;
    mo.max_batch = n;
    sat_model *m = NULL;
    check(sat_model_create(ctx, SPEC, &mo, &m), "sat_model_create", sat_last_error());
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.lr = 0.05f;
    oo.momentum = 0.9f;
    sat_optimizer *opt = NULL;
    check(sat_optimizer_create(m, &oo, &opt), "sat_optimizer_create", sat_last_error());
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = SAT_TRAIN_PGD;
    to.eps = 0.1f;
    to.steps = 3;
    to.rank = rank_id;
    to.rank_count = ranks;
    sat_trainer *tr = NULL;
    check(sat_trainer_create(m, opt, &to, &tr), "sat_trainer_create", sat_last_error());

    float *x = malloc(sizeof(float) * (size_t)n * PIXELS);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    if (!x || !y) check(SAT_E_NOMEM, "malloc", "out of memory");
    float *grads = sat_model_grads(m);
    const int64_t np = sat_model_param_count(m);
    float *state = sat_model_state(m);
    const int64_t nstate = sat_model_state_count(m);
    for (int s = 0; s < steps; s++) {
        /* this rank's shard: examples rank*n .. rank*n+n-1 of global batch s */
        for (int e = 0; e < n; e++) example((int64_t)s * batch + (int64_t)rank_id * n + e, x + (size_t)e * PIXELS, y + e);
        sat_step_stats st = {.struct_size = sizeof st};
        check(sat_train_compute(tr, x, y, n, &st), "sat_train_compute", sat_trainer_last_error(tr));
        MPI_Allreduce(MPI_IN_PLACE, grads, (int)np, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int64_t i = 0; i < np; i++) grads[i] /= (float)ranks;
        check(sat_train_apply(tr), "sat_train_apply", sat_trainer_last_error(tr));
        /* Batch norm runs on local statistics: average the running ones so the replicas
         * keep one model (nothing to do for this model, which has none). */
        if (nstate > 0) {
            MPI_Allreduce(MPI_IN_PLACE, state, (int)nstate, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            for (int64_t i = 0; i < nstate; i++) state[i] /= (float)ranks;
        }
        double loss = st.loss;
        MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rank_id == 0) printf("step %d: loss %.4f (%d ranks x %d)\n", s + 1, loss / ranks, ranks, n);
    }
    int status = 0;
    if (rank_id == 0) {
        check(sat_model_save(m, NULL, out), "sat_model_save", sat_model_last_error(m));
        if (ref) status = compare(ctx, m, ref, tol);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(x);
    free(y);
    sat_trainer_destroy(tr);
    sat_optimizer_destroy(opt);
    sat_model_destroy(m);
    sat_context_destroy(ctx);
    MPI_Finalize();
    return status;
}
