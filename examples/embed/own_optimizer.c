/* own_optimizer.c - embedding libsat as a differentiable model only. The host writes the
 * attack and the optimizer itself:
 *   - its own PGD (Linf, random start, sign steps, projection, clipping to [0,1]) from
 *     sat_model_input_gradient, which gives the input gradient without touching the model;
 *   - its own SGD with momentum and weight decay, applied directly to the flat parameter
 *     block (sat_model_params) from the flat gradient block (sat_model_grads) that
 *     sat_model_train_backward fills.
 * This is how a host plugs libsat into an existing training framework, a parameter server
 * or an all-reduce across machines: one contiguous float block in, one out.
 *
 * Build: part of the libsat build (target sat-embed-custom), or on its own:
 *   cc own_optimizer.c $(pkg-config --cflags --libs libsat) -lm -o own_optimizer */
#include <sat.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 12
#define PIXELS (SIDE * SIDE)
#define CLASSES 3
#define N_TRAIN 768
#define N_TEST 192
#define BATCH 64
#define EPOCHS 5
#define EPS 0.1f
#define PGD_STEPS 5
#define LR 0.05f
#define MOMENTUM 0.9f
#define WEIGHT_DECAY 5e-4f

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}
static float rng_unit(void) { return (float)(rng_u32() >> 8) / 16777216.0f; }

/* Three classes by where a bright 4x4 blob sits: top-left, centre, bottom-right. */
static void make_set(float *x, int32_t *y, int n) {
    for (int i = 0; i < n; i++) {
        int32_t k = (int32_t)(rng_u32() % CLASSES);
        int r0 = 1 + 3 * k + (int)(rng_u32() % 2u), c0 = r0;
        y[i] = k;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                float v = r >= r0 && r < r0 + 4 && c >= c0 && c < c0 + 4 ? 0.75f : 0.2f;
                v += 0.3f * (rng_unit() - 0.5f);
                x[(size_t)i * PIXELS + r * SIDE + c] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
    }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The host's PGD: x_adv = clip(proj(x_adv + step * sign(grad))), from a random start. */
static int pgd(sat_model *m, const float *x, const int32_t *y, int n, float *xadv, float *grad) {
    const float step = 2.5f * EPS / PGD_STEPS;
    for (int i = 0; i < n * PIXELS; i++) xadv[i] = clampf(x[i] + EPS * (2 * rng_unit() - 1), 0, 1);
    for (int s = 0; s < PGD_STEPS; s++) {
        int32_t st = sat_model_input_gradient(m, xadv, y, n, NULL, grad, NULL);
        if (st) {
            fprintf(stderr, "own_optimizer: sat_model_input_gradient: %s\n",
                    sat_model_last_error(m));
            return 1;
        }
        for (int i = 0; i < n * PIXELS; i++) {
            float g = grad[i] > 0 ? step : grad[i] < 0 ? -step : 0;
            float v = clampf(xadv[i] + g, x[i] - EPS, x[i] + EPS);
            xadv[i] = clampf(v, 0, 1);
        }
    }
    return 0;
}

/* The host's SGD with momentum; weight decay only where the model's mask says so. */
static void sgd_step(float *p, const float *g, float *velocity, const uint8_t *decay, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + (decay[i] ? WEIGHT_DECAY * p[i] : 0.0f);
        velocity[i] = MOMENTUM * velocity[i] + gi;
        p[i] -= LR * velocity[i];
    }
}

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
    static float xtr[N_TRAIN * PIXELS], xte[N_TEST * PIXELS];
    static float xadv[N_TEST * PIXELS], grad[N_TEST * PIXELS], logits[N_TEST * CLASSES];
    static int32_t ytr[N_TRAIN], yte[N_TEST];
    make_set(xtr, ytr, N_TRAIN);
    make_set(xte, yte, N_TEST);

    sat_context *ctx = NULL;
    sat_model *model = NULL;
    float *velocity = NULL;
    uint8_t *decay = NULL;
    int rc = 1;
    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = 1;
    if (sat_context_create(&co, &ctx) != SAT_OK) {
        fprintf(stderr, "own_optimizer: %s\n", sat_last_error());
        return 1;
    }
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.activation = SAT_ACT_GELU;
    mo.max_batch = N_TEST;
    const char *spec = "input 1 12 12\nflatten\ndense 64\nact\ndense 64\nact\ndense 3\n";
    if (sat_model_create(ctx, spec, &mo, &model) != SAT_OK) {
        fprintf(stderr, "own_optimizer: %s\n", sat_last_error());
        goto out;
    }
    const int64_t np = sat_model_param_count(model);
    float *params = sat_model_params(model);
    const float *grads = sat_model_grads(model);
    velocity = calloc((size_t)np, sizeof *velocity);
    decay = malloc((size_t)np);
    if (!velocity || !decay || sat_model_decay_mask(model, decay) != SAT_OK) {
        fprintf(stderr, "own_optimizer: setup failed\n");
        goto out;
    }
    printf("model with %lld parameters; training with the host's PGD-%d and SGD\n",
           (long long)np, PGD_STEPS);

    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        double loss_sum = 0;
        int64_t correct_sum = 0;
        for (int b = 0; b + BATCH <= N_TRAIN; b += BATCH) {
            const float *x = xtr + (size_t)b * PIXELS;
            const int32_t *y = ytr + b;
            if (pgd(model, x, y, BATCH, xadv, grad)) goto out;
            float loss = 0;
            int64_t correct = 0;
            int32_t st = sat_model_train_backward(model, xadv, y, BATCH, 0.0f, &loss, &correct);
            if (st) {
                fprintf(stderr, "own_optimizer: sat_model_train_backward: %s\n",
                        sat_model_last_error(model));
                goto out;
            }
            sgd_step(params, grads, velocity, decay, np);
            loss_sum += loss;
            correct_sum += correct;
        }
        printf("epoch %d: adversarial loss %.4f, adversarial accuracy %.1f%%\n", epoch + 1,
               loss_sum / (N_TRAIN / BATCH), 100.0 * (double)correct_sum / N_TRAIN);
    }

    if (pgd(model, xte, yte, N_TEST, xadv, grad)) goto out;
    float clean = accuracy(model, xte, yte, N_TEST, logits);
    float robust = accuracy(model, xadv, yte, N_TEST, logits);
    printf("final clean accuracy %.1f%%, host PGD-%d (Linf eps %.2f) accuracy %.1f%%\n",
           100.0 * clean, PGD_STEPS, (double)EPS, 100.0 * robust);
    rc = clean > 0.5f ? 0 : 1;
    if (rc) fprintf(stderr, "own_optimizer: the model did not learn\n");
out:
    free(velocity);
    free(decay);
    sat_model_destroy(model);
    sat_context_destroy(ctx);
    return rc;
}
