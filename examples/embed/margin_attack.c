/* margin_attack.c - an attack loop written by the host with an objective of its own: PGD in
 * the L-infinity ball on the Carlini-Wagner margin max_{j != y} z_j - z_y. Each step runs
 * sat_exec_forward, computes the margin and its gradient with respect to the logits (+1 on
 * the best other class, -1 on the label), and sat_exec_backward gives the gradient with
 * respect to the input; the host takes a signed step and projects onto the ball and the
 * pixel box, keeping per example the best iterate (a misclassified one first, then the
 * highest margin).
 *
 * An input-gradient execution plans no parameter gradients, and several such executions of
 * one model may run on different threads. The program checks its loop against the
 * library's own PGD with the margin loss from the same start (sat_pgd_attack,
 * random_start = 0): the adversarial examples must be the same, bit for bit. It then uses
 * what only a host loop can do: a margin with a confidence threshold kappa (stop pushing an
 * example once its margin exceeds kappa), and checks that the attack still succeeds where
 * the plain one did. It prints "margin_attack: ok" and exits 0 only then.
 *
 * Build: part of the libsat build (target sat-embed-margin), or on its own:
 *   cc margin_attack.c $(pkg-config --cflags --libs libsat) -lm -o margin_attack */
#include <sat.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 8
#define PIXELS (SIDE * SIDE)
#define CLASSES 4
#define N 64
#define EPS 0.15f
#define STEPS 10
#define STEP_SIZE 0.04f

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float rng_unit(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / 16777216.0f;
}

static void make_batch(float *x, int32_t *y, int n) {
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)(rng_unit() * CLASSES) % CLASSES;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                int d = y[i] == 0 ? r : y[i] == 1 ? SIDE - 1 - r : y[i] == 2 ? c : SIDE - 1 - c;
                float v = (d < 2 ? 0.7f : 0.3f) + 0.5f * (rng_unit() - 0.5f);
                x[i * PIXELS + r * SIDE + c] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
    }
}

static int argmax(const float *z, int skip) {
    int best = -1;
    for (int c = 0; c < CLASSES; c++)
        if (c != skip && (best < 0 || z[c] > z[best])) best = c;
    return best;
}

/* Margin per example and its gradient; examples whose margin is above kappa get a zero
 * gradient (they are adversarial with confidence kappa already). */
static void margin(const float *z, const int32_t *y, float kappa, float *obj, int32_t *pred, float *dz) {
    for (int i = 0; i < N; i++) {
        const float *zi = z + i * CLASSES;
        const int o = argmax(zi, y[i]);
        obj[i] = (float)((double)zi[o] - (double)zi[y[i]]);
        pred[i] = argmax(zi, -1);
        memset(dz + i * CLASSES, 0, sizeof(float) * CLASSES);
        if (obj[i] <= kappa) {
            dz[i * CLASSES + o] = 1.0f;
            dz[i * CLASSES + y[i]] = -1.0f;
        }
    }
}

/* Keeps iterate xa of example i if it is better than the best so far. */
static void offer(const float *xa, const float *obj, const int32_t *pred, const int32_t *y, int force, float *best,
                  float *best_obj, int *best_hit) {
    for (int i = 0; i < N; i++) {
        const int hit = pred[i] != y[i];
        if (force || (hit && !best_hit[i]) || (hit == best_hit[i] && obj[i] > best_obj[i])) {
            memcpy(best + i * PIXELS, xa + i * PIXELS, sizeof(float) * PIXELS);
            best_obj[i] = obj[i];
            best_hit[i] = hit;
        }
    }
}

/* PGD from x itself; the best iterate per example goes to best. */
static int attack(sat_exec *e, const float *x, const int32_t *y, float kappa, float *best, int *best_hit) {
    static float xa[N * PIXELS], g[N * PIXELS], z[N * CLASSES], dz[N * CLASSES], obj[N], best_obj[N];
    static int32_t pred[N];
    memcpy(xa, x, sizeof xa);
    for (int s = 0; s <= STEPS; s++) {
        if (sat_exec_forward(e, xa, N, SAT_BN_INFERENCE, z) != SAT_OK) return 1;
        margin(z, y, kappa, obj, pred, dz);
        if (s > 0) offer(xa, obj, pred, y, s == 1, best, best_obj, best_hit);
        if (s == STEPS) break;
        if (sat_exec_backward(e, dz, g, NULL) != SAT_OK) return 1;
        for (int i = 0; i < N * PIXELS; i++) {
            xa[i] += g[i] > 0.0f ? STEP_SIZE : (g[i] < 0.0f ? -STEP_SIZE : 0.0f);
            const float lo = fmaxf(x[i] - EPS, 0.0f), hi = fminf(x[i] + EPS, 1.0f);
            xa[i] = xa[i] < lo ? lo : (xa[i] > hi ? hi : xa[i]);
        }
    }
    return 0;
}

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "margin_attack: %s: %s\n", what, detail);
    return 1;
}

int main(void) {
    sat_context *ctx = NULL;
    if (sat_context_create(NULL, &ctx) != SAT_OK) return fail("context", sat_last_error());
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.max_batch = N;
    mo.seed = 3;
    sat_model *m = NULL;
    if (sat_model_create(ctx, "input 1 8 8\nconv 8 k=3 p=1\nbn\nact\nflatten\ndense 32\nact\ndense 4\n", &mo, &m))
        return fail("model", sat_last_error());
    /* A little training so that the attack has something to break. */
    sat_optimizer *opt = NULL;
    if (sat_optimizer_create(m, NULL, &opt)) return fail("optimizer", sat_last_error());
    static float x[N * PIXELS], ours[N * PIXELS], lib[N * PIXELS], soft[N * PIXELS];
    int32_t y[N];
    for (int i = 0; i < 30; i++) {
        make_batch(x, y, N);
        if (sat_model_train_backward(m, x, y, N, 0.0f, NULL, NULL) || sat_optimizer_step(opt))
            return fail("training", sat_model_last_error(m));
    }
    make_batch(x, y, N);

    sat_exec_opts eo;
    sat_exec_opts_init(&eo, sizeof eo);
    eo.kind = SAT_EXEC_INPUT_GRAD;
    sat_exec *e = NULL;
    if (sat_exec_create(m, &eo, &e)) return fail("execution", sat_last_error());
    int hit[N], hit_soft[N];
    if (attack(e, x, y, INFINITY, ours, hit)) return fail("attack", sat_exec_last_error(e));

    sat_attack_opts ao;
    sat_attack_opts_init(&ao, sizeof ao);
    ao.loss = SAT_LOSS_MARGIN;
    ao.eps = EPS;
    ao.step_size = STEP_SIZE;
    ao.steps = STEPS;
    ao.random_start = 0;
    if (sat_pgd_attack(m, &ao, x, y, N, lib, NULL)) return fail("sat_pgd_attack", sat_model_last_error(m));
    int differ = 0, broken = 0;
    for (int i = 0; i < N * PIXELS; i++) differ += ours[i] != lib[i];
    for (int i = 0; i < N; i++) broken += hit[i];
    printf("host PGD on the margin: %d of %d examples misclassified; %d values differ from sat_pgd_attack\n",
           broken, N, differ);
    if (differ) return fail("check", "the host loop and sat_pgd_attack disagree");
    if (broken == 0) return fail("check", "the attack found nothing");

    /* kappa = 0: an example stops moving once misclassified; it stays misclassified. */
    if (attack(e, x, y, 0.0f, soft, hit_soft)) return fail("attack", sat_exec_last_error(e));
    int broken_soft = 0, moved_less = 0;
    for (int i = 0; i < N; i++) {
        broken_soft += hit_soft[i];
        double d_ours = 0, d_soft = 0;
        for (int k = 0; k < PIXELS; k++) {
            d_ours += fabsf(ours[i * PIXELS + k] - x[i * PIXELS + k]);
            d_soft += fabsf(soft[i * PIXELS + k] - x[i * PIXELS + k]);
        }
        moved_less += hit[i] && d_soft < d_ours;
    }
    printf("with kappa = 0: %d misclassified, %d of them closer to x than with the plain margin\n", broken_soft,
           moved_less);
    if (broken_soft < broken) return fail("check", "the thresholded margin lost adversarial examples");

    sat_exec_destroy(e);
    sat_optimizer_destroy(opt);
    sat_model_destroy(m);
    sat_context_destroy(ctx);
    printf("margin_attack: ok\n");
    return 0;
}
