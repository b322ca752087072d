/* aa_cost.c - what AutoAttack costs next to APGD-CE alone, on a saved model and the first
 * N test images (Fashion-MNIST from Debian's dataset-fashion-mnist by default).
 *
 *   aa_cost MODEL_FILE [N=1000] [DATA_DIR]
 *
 * Prints the wall time and robust accuracy of APGD-CE (100 iterations, Linf, the model's
 * eps or 0.1) on all N images, then of the standard AutoAttack sequence, on one thread. */
#define _POSIX_C_SOURCE 200809L

#include <sat.h>

#include "model_gemms.h" /* now_s */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const char *msg) {
    fprintf(stderr, "aa_cost: %s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: aa_cost MODEL_FILE [N=1000] [DATA_DIR]\n");
        return 2;
    }
    const int64_t want = argc > 2 ? atoll(argv[2]) : 1000;
    const char *dir = argc > 3 ? argv[3] : sat_default_data_dir();
    sat_context *ctx = NULL;
    sat_model *m = NULL;
    sat_dataset *ds = NULL;
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    if (sat_context_create(NULL, &ctx)) return fail("context", sat_last_error());
    if (sat_model_load(ctx, argv[1], &meta, &m)) return fail(argv[1], sat_last_error());
    if (sat_dataset_load(ctx, SAT_DATA_IDX, dir, SAT_SPLIT_TEST, &ds)) return fail(dir, sat_last_error());
    const int64_t n = want < sat_dataset_size(ds) ? want : sat_dataset_size(ds);
    if (n < 1) return fail("N", "must be at least 1");
    int32_t c, h, w, classes;
    sat_model_shape(m, &c, &h, &w, &classes);
    const int64_t d = (int64_t)c * h * w;
    const float eps = meta.eps > 0 ? meta.eps : 0.1f;
    const float *x = sat_dataset_images(ds);
    const int32_t *y = sat_dataset_labels(ds);
    float *xa = malloc(sizeof(float) * (size_t)(n * d)), *logits = malloc(sizeof(float) * (size_t)(n * classes));
    if (!xa || !logits) return fail("memory", "out of memory");

    sat_attack_opts ao;
    sat_attack_opts_init(&ao, sizeof ao);
    ao.method = SAT_ATTACK_APGD_CE;
    ao.eps = eps;
    ao.steps = 100;
    double t0 = now_s();
    if (sat_attack(m, &ao, x, y, NULL, n, xa, NULL)) return fail("APGD-CE", sat_model_last_error(m));
    const double t_apgd = now_s() - t0;
    if (sat_model_forward(m, xa, n, logits)) return fail("forward", sat_model_last_error(m));
    int64_t robust = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t best = 0;
        for (int32_t k = 1; k < classes; k++)
            if (logits[i * classes + k] > logits[i * classes + best]) best = k;
        robust += best == y[i];
    }

    sat_autoattack_opts aa;
    sat_autoattack_opts_init(&aa, sizeof aa);
    aa.eps = eps;
    sat_autoattack_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    t0 = now_s();
    if (sat_autoattack(m, &aa, x, y, n, NULL, NULL, &r)) return fail("AutoAttack", sat_model_last_error(m));
    const double t_aa = now_s() - t0;

    printf("%s, %lld test images, Linf eps %g, 1 thread\n", argv[1], (long long)n, (double)eps);
    printf("APGD-CE alone (100 iterations): %8.1f s, robust %.2f%%\n", t_apgd, 100.0 * (double)robust / (double)n);
    printf("AutoAttack (standard):          %8.1f s, robust %.2f%% (%.1f times APGD-CE)\n", t_aa,
           100.0 * r.robust_accuracy, t_aa / t_apgd);
    free(xa), free(logits);
    sat_dataset_destroy(ds);
    sat_model_destroy(m);
    sat_context_destroy(ctx);
    return 0;
}
