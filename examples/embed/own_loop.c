/* own_loop.c - embedding libsat in a host program that keeps its own data pipeline and its
 * own training loop. The host makes its data (a synthetic four-class image set here; a real
 * program would decode its own files), shuffles and batches it itself, and hands libsat
 * plain float buffers: sat_train_step for one adversarial training step and sat_pgd_attack
 * to measure robustness. Nothing else of libsat's data handling is used.
 *
 * Build: part of the libsat build (target sat-embed-loop), or on its own:
 *   cc own_loop.c $(pkg-config --cflags --libs libsat) -o own_loop */
#include <sat.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 16
#define PIXELS (SIDE * SIDE)
#define CLASSES 4
#define N_TRAIN 1024
#define N_TEST 256
#define BATCH 64
#define EPOCHS 4
#define EPS 0.1f

/* The host's own random numbers (xorshift64*). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}
static float rng_unit(void) { return (float)(rng_u32() >> 8) / 16777216.0f; }

/* Class 0: a bright bar along the top, 1: bottom, 2: left, 3: right; the bar's position
 * jitters by a pixel and every pixel has noise. */
static void make_example(float *img, int32_t label) {
    int shift = (int)(rng_u32() % 3u);
    for (int r = 0; r < SIDE; r++)
        for (int c = 0; c < SIDE; c++) {
            int d = label == 0 ? r : label == 1 ? SIDE - 1 - r : label == 2 ? c : SIDE - 1 - c;
            float v = d >= shift && d < shift + 4 ? 0.6f : 0.25f;
            v += 0.4f * (rng_unit() - 0.5f);
            img[r * SIDE + c] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
}

static void make_set(float *x, int32_t *y, int n) {
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)(rng_u32() % CLASSES);
        make_example(x + (size_t)i * PIXELS, y[i]);
    }
}

static int check(int32_t st, const char *what, const char *detail) {
    if (st == SAT_OK) return 0;
    fprintf(stderr, "own_loop: %s failed: %s (%s)\n", what, detail, sat_status_string(st));
    return 1;
}

/* Fraction of examples whose logits put the label first. */
static float accuracy(sat_model *m, const float *x, const int32_t *y, int n, float *logits) {
    if (sat_model_forward(m, x, n, logits) != SAT_OK) return NAN;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < CLASSES; k++)
            if (logits[i * CLASSES + k] > logits[i * CLASSES + best]) best = k;
        ok += best == y[i];
    }
    return (float)ok / (float)n;
}

int main(void) {
    static float xtr[N_TRAIN * PIXELS], xte[N_TEST * PIXELS], xadv[N_TEST * PIXELS];
    static float xb[BATCH * PIXELS], logits[N_TEST * CLASSES];
    static int32_t ytr[N_TRAIN], yte[N_TEST], yb[BATCH];
    static int order[N_TRAIN];
    make_set(xtr, ytr, N_TRAIN);
    make_set(xte, yte, N_TEST);

    sat_context *ctx = NULL;
    sat_model *model = NULL;
    sat_optimizer *opt = NULL;
    sat_trainer *trainer = NULL;
    int rc = 1;

    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = 1;
    if (check(sat_context_create(&co, &ctx), "sat_context_create", sat_last_error())) return 1;

    /* The host's own architecture, as a spec string; SiLU everywhere. */
    const char *spec = "input 1 16 16\n"
                       "conv 8 k=3 s=2 p=1\nact\n"
                       "flatten\ndense 32\nact\ndense 4\n";
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.activation = SAT_ACT_SILU;
    mo.max_batch = N_TEST;
    if (check(sat_model_create(ctx, spec, &mo, &model), "sat_model_create", sat_last_error()))
        goto out;

    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.lr = 0.05f;
    if (check(sat_optimizer_create(model, &oo, &opt), "sat_optimizer_create", sat_last_error()))
        goto out;
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = SAT_TRAIN_PGD;
    to.eps = EPS;
    to.steps = 5;
    if (check(sat_trainer_create(model, opt, &to, &trainer), "sat_trainer_create",
              sat_last_error()))
        goto out;

    for (int i = 0; i < N_TRAIN; i++) order[i] = i;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        /* The host's own shuffle and batching. */
        for (int i = N_TRAIN - 1; i > 0; i--) {
            int j = (int)(rng_u32() % (uint32_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double loss = 0, acc = 0;
        int batches = 0;
        for (int b = 0; b + BATCH <= N_TRAIN; b += BATCH) {
            for (int i = 0; i < BATCH; i++) {
                memcpy(xb + (size_t)i * PIXELS, xtr + (size_t)order[b + i] * PIXELS,
                       PIXELS * sizeof(float));
                yb[i] = ytr[order[b + i]];
            }
            sat_step_stats s;
            memset(&s, 0, sizeof s);
            s.struct_size = sizeof s;
            if (check(sat_train_step(trainer, xb, yb, BATCH, &s), "sat_train_step",
                      sat_trainer_last_error(trainer)))
                goto out;
            loss += s.loss;
            acc += s.adv_accuracy;
            batches++;
        }
        printf("epoch %d: loss %.4f, adversarial training accuracy %.1f%%\n", epoch + 1,
               loss / batches, 100.0 * acc / batches);
    }

    /* Robustness on the host's test set: PGD-10 examples from libsat, scored by the host. */
    sat_attack_opts ao;
    sat_attack_opts_init(&ao, sizeof ao);
    ao.eps = EPS;
    ao.steps = 10;
    if (check(sat_pgd_attack(model, &ao, xte, yte, N_TEST, xadv, NULL), "sat_pgd_attack",
              sat_model_last_error(model)))
        goto out;
    float clean = accuracy(model, xte, yte, N_TEST, logits);
    float robust = accuracy(model, xadv, yte, N_TEST, logits);
    printf("final clean accuracy %.1f%%, PGD-10 (Linf eps %.2f) accuracy %.1f%%\n",
           100.0 * clean, (double)EPS, 100.0 * robust);
    rc = clean > 0.5f ? 0 : 1;
    if (rc) fprintf(stderr, "own_loop: the model did not learn (clean accuracy %.1f%%)\n",
                    100.0 * clean);
out:
    sat_trainer_destroy(trainer);
    sat_optimizer_destroy(opt);
    sat_model_destroy(model);
    sat_context_destroy(ctx);
    return rc;
}
