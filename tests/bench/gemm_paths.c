/* gemm_paths.c - the GEMMs of a PGD-k adversarial training step, timed on every kernel path
 * this CPU can execute (tests/kernel_paths.h): each BLIS configuration, and the library's
 * own AVX-512 micro-kernel. For each path and model it prints, on one thread:
 *
 *   sup_ms      the step's GEMMs through bli_sgemm with BLIS's small/unpacked ("sup") path
 *               allowed, as stock BLIS runs them
 *   packed_ms   the same with sup switched off, as the library runs them (sup picks kernels
 *               by shape, so a chunked batch or a split product would be summed in
 *               another order: lib/kernels/gemm.c)
 *   libsat_ms   the same through the library's GEMM entry point (sup off, and its blocks)
 *   cost        packed_ms / sup_ms: what order-stable GEMMs cost on this path
 *   gflops      of libsat_ms, and of a 1024^3 product through the library
 *
 * A PGD-k step = k attack iterations (forward + data gradients) + one train pass (forward,
 * data gradients but the first layer's, weight gradients), with every convolution as an
 * im2col GEMM: on AVX-512 CPUs the direct convolutions take over the stride-1 layers, so
 * this is the GEMM work of the im2col path, the bound for choosing a GEMM kernel.
 * Each shape is timed as the median of --reps calls after a warm-up, the three variants
 * interleaved shape by shape so that a busy machine affects them alike.
 *
 *   gemm_paths [--batch 128] [--reps 3] [--model madry-cnn|resnet20|all] [--path NAME] */
#define _POSIX_C_SOURCE 200809L

#include <sat.h>

#include "kernel_paths.h"
#include "kernels/blis_include.h"
#include "kernels/kernels.h"
#include "model_gemms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_model {
    const char *name;
    int c, hw, pgd_steps;
} bench_model;

static const bench_model models[] = {{"madry-cnn", 1, 28, 10}, {"resnet20", 3, 32, 7}};

#define MAX_REPS 32

/* One shape through bli_sgemm on the given context, with or without sup. */
static double time_blis(const cntx_t *cntx, int sup, const gemm_shape *s, float *a, float *b, float *c, int reps) {
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    if (!sup) bli_rntm_disable_l3_sup(&rntm);
    float one = 1.0f, zero = 0.0f;
    const inc_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    const inc_t rsa = s->ta ? 1 : lda, csa = s->ta ? lda : 1, rsb = s->tb ? 1 : ldb, csb = s->tb ? ldb : 1;
    double t[MAX_REPS];
    for (int r = -1; r < reps; r++) {
        const double t0 = now_s();
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, s->m, s->n, s->k, &one, a, rsa, csa, b, rsb, csb, &zero,
                     c, s->n, 1, (cntx_t *)cntx, &rntm);
        if (r >= 0) t[r] = now_s() - t0;
    }
    return median(t, reps);
}

static double time_libsat(const sat_context *ctx, const gemm_shape *s, float *a, float *b, float *c, int reps) {
    const int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    double t[MAX_REPS];
    for (int r = -1; r < reps; r++) {
        const double t0 = now_s();
        sat__gemm(ctx, s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        if (r >= 0) t[r] = now_s() - t0;
    }
    return median(t, reps);
}

/* Step time of one variant from per-shape times. */
static double step_ms(const model_gemms *mg, const double *t, int k) {
    double attack = 0, train = 0;
    for (int i = 0; i < mg->count; i++) {
        if (gemm_in_attack(&mg->g[i])) attack += t[i];
        if (gemm_in_train(&mg->g[i])) train += t[i];
    }
    return 1e3 * (k * attack + train);
}

int main(int argc, char **argv) {
    int batch = 128, reps = 3;
    const char *only_model = "all", *only_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--batch") == 0) batch = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) reps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--model") == 0) only_model = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--path") == 0) only_path = argv[++i];
        else {
            fprintf(stderr, "usage: gemm_paths [--batch 128] [--reps 3] [--model madry-cnn|resnet20|all] "
                            "[--path NAME]\n");
            return 2;
        }
    }
    if (batch < 1 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "gemm_paths: --batch must be >= 1 and --reps 1..%d\n", MAX_REPS);
        return 2;
    }
    sat_context *ctx = NULL;
    if (sat_context_create(NULL, &ctx) != SAT_OK) {
        fprintf(stderr, "gemm_paths: %s\n", sat_last_error());
        return 1;
    }
    kernel_path paths[KERNEL_PATHS_MAX];
    const int np = kernel_paths(paths);
    printf("# CPU: BLIS picks %s; the library's choice: %s; batch %d, 1 thread, medians of %d calls\n",
           kernel_path_native_arch(), sat__gemm_path(), batch, reps);
    printf("%-12s %-34s %10s %10s %10s %6s %8s %12s\n", "model", "path", "sup_ms", "packed_ms", "libsat_ms",
           "cost", "gflops", "1024^3 gflops");
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        const bench_model *bm = &models[mi];
        if (strcmp(only_model, "all") != 0 && strcmp(only_model, bm->name) != 0) continue;
        char *spec = NULL;
        if (sat_preset_spec(bm->name, bm->c, bm->hw, bm->hw, 10, NULL, NULL, &spec) != SAT_OK) {
            fprintf(stderr, "gemm_paths: %s\n", sat_last_error());
            return 1;
        }
        static model_gemms mg;
        spec_gemms(spec, batch, &mg);
        sat_free(spec);
        double f_attack, f_train;
        model_flops(&mg, &f_attack, &f_train);
        const double step_flops = bm->pgd_steps * f_attack + f_train;
        int64_t most = 1024 * 1024;
        for (int i = 0; i < mg.count; i++) {
            const gemm_shape *s = &mg.g[i];
            if (s->m * s->k > most) most = s->m * s->k;
            if (s->k * s->n > most) most = s->k * s->n;
            if (s->m * s->n > most) most = s->m * s->n;
        }
        float *a = malloc(sizeof(float) * (size_t)most), *b = malloc(sizeof(float) * (size_t)most);
        float *c = malloc(sizeof(float) * (size_t)most);
        if (!a || !b || !c) {
            fprintf(stderr, "gemm_paths: out of memory\n");
            return 1;
        }
        for (int64_t i = 0; i < most; i++) a[i] = (float)(i % 13) * 0.01f, b[i] = (float)(i % 7) * 0.02f;
        for (int p = 0; p < np; p++) {
            if (paths[p].direct) continue; /* the GEMM is what is timed here */
            if (only_path && !strstr(paths[p].name, only_path)) continue;
            if (!kernel_path_apply(&paths[p])) continue;
            /* The context bli_sgemm gets: the one the library now runs on. */
            const cntx_t *cntx = paths[p].own_ukr ? NULL : paths[p].cntx;
            double t_sup[MAX_GEMMS], t_packed[MAX_GEMMS], t_lib[MAX_GEMMS];
            for (int i = 0; i < mg.count; i++) {
                const gemm_shape *s = &mg.g[i];
                t_sup[i] = cntx ? time_blis(cntx, 1, s, a, b, c, reps) : 0;
                t_packed[i] = cntx ? time_blis(cntx, 0, s, a, b, c, reps) : 0;
                t_lib[i] = time_libsat(ctx, s, a, b, c, reps);
            }
            const gemm_shape sq = {1024, 1024, 1024, 0, 0, 0, 0};
            const double t_sq = time_libsat(ctx, &sq, a, b, c, reps);
            const double ms_sup = step_ms(&mg, t_sup, bm->pgd_steps), ms_packed = step_ms(&mg, t_packed, bm->pgd_steps);
            const double ms_lib = step_ms(&mg, t_lib, bm->pgd_steps);
            char name[64];
            snprintf(name, sizeof name, "%s", sat__gemm_path());
            if (cntx)
                printf("%-12s %-34s %10.1f %10.1f %10.1f %6.3f %8.1f %12.1f\n", bm->name, name, ms_sup, ms_packed,
                       ms_lib, ms_packed / ms_sup, step_flops / ms_lib * 1e-6, gemm_flops(&sq) / t_sq * 1e-9);
            else /* the library's own kernel has no sup path of its own to compare with */
                printf("%-12s %-34s %10s %10s %10.1f %6s %8.1f %12.1f\n", bm->name, name, "-", "-", ms_lib, "-",
                       step_flops / ms_lib * 1e-6, gemm_flops(&sq) / t_sq * 1e-9);
            fflush(stdout);
        }
        kernel_path_reset();
        free(a), free(b), free(c);
    }
    sat_context_destroy(ctx);
    return 0;
}
