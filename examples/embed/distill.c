/* distill.c - a loss the library does not have, written by the host: knowledge distillation
 * (Hinton et al. 2015). A teacher is trained a little with the library's own cross-entropy
 * step; then a smaller student learns from the teacher's softened logits:
 *
 *   L = (1 - a) CE(s, y) + a T^2 KL(softmax(t / T) || softmax(s / T)), averaged over the batch
 *   dL/ds = [(1 - a) (softmax(s) - onehot(y)) + a T (softmax(s / T) - softmax(t / T))] / n
 *
 * The host computes L and dL/ds from the logits of sat_exec_forward and hands dL/ds to
 * sat_exec_backward, which writes the parameter gradients the optimizer applies. The
 * teacher only needs logits: an inference execution, which plans no backward memory.
 *
 * The program checks what it does: the distillation loss goes down; with a = 0 the
 * gradient is the library's own cross-entropy gradient (sat_model_train_backward); and
 * the gradient of the full loss matches central finite differences. It prints
 * "distill: ok" and exits 0 only then.
 *
 * Build: part of the libsat build (target sat-embed-distill), or on its own:
 *   cc distill.c $(pkg-config --cflags --libs libsat) -lm -o distill */
#include <sat.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 8
#define PIXELS (SIDE * SIDE)
#define CLASSES 4
#define BATCH 32
#define STEPS 60
#define ALPHA 0.7
#define TEMP 4.0

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float rng_unit(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / 16777216.0f;
}

/* Four classes of bars (top, bottom, left, right) in noise. */
static void make_batch(float *x, int32_t *y) {
    for (int i = 0; i < BATCH; i++) {
        y[i] = (int32_t)(rng_unit() * CLASSES) % CLASSES;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                int d = y[i] == 0 ? r : y[i] == 1 ? SIDE - 1 - r : y[i] == 2 ? c : SIDE - 1 - c;
                float v = (d < 2 ? 0.7f : 0.3f) + 0.5f * (rng_unit() - 0.5f);
                x[i * PIXELS + r * SIDE + c] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
    }
}

static void softmax(const float *z, double t, double *p) {
    double mx = z[0], s = 0;
    for (int c = 1; c < CLASSES; c++) mx = z[c] > mx ? z[c] : mx;
    for (int c = 0; c < CLASSES; c++) s += p[c] = exp((z[c] - mx) / t);
    for (int c = 0; c < CLASSES; c++) p[c] /= s;
}

/* The distillation loss of a batch (mean) and, if ds is not NULL, its gradient. */
static double kd_loss(const float *s, const float *t, const int32_t *y, int n, double a, double temp,
                      float *ds) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double ps[CLASSES], pst[CLASSES], ptt[CLASSES];
        softmax(s + i * CLASSES, 1.0, ps);
        softmax(s + i * CLASSES, temp, pst);
        softmax(t + i * CLASSES, temp, ptt);
        double kl = 0;
        for (int c = 0; c < CLASSES; c++) kl += ptt[c] > 0 ? ptt[c] * (log(ptt[c]) - log(pst[c])) : 0;
        total += (1 - a) * -log(ps[y[i]]) + a * temp * temp * kl;
        if (ds)
            for (int c = 0; c < CLASSES; c++)
                ds[i * CLASSES + c] =
                    (float)(((1 - a) * (ps[c] - (c == y[i])) + a * temp * (pst[c] - ptt[c])) / n);
    }
    return total / n;
}

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "distill: %s: %s\n", what, detail);
    return 1;
}

#define CHECK(call, what, handle_err)                        \
    do {                                                     \
        if ((call) != SAT_OK) return fail(what, handle_err); \
    } while (0)

int main(void) {
    sat_context *ctx = NULL;
    if (sat_context_create(NULL, &ctx) != SAT_OK) return fail("context", sat_last_error());
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.max_batch = BATCH;
    mo.seed = 1;
    sat_model *teacher = NULL, *student = NULL;
    if (sat_model_create(ctx, "input 1 8 8\nflatten\ndense 64\nact\ndense 64\nact\ndense 4\n", &mo, &teacher))
        return fail("teacher", sat_last_error());
    mo.seed = 2;
    if (sat_model_create(ctx, "input 1 8 8\nflatten\ndense 16\nbn\nact\ndense 4\n", &mo, &student))
        return fail("student", sat_last_error());

    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.lr = 0.05f;
    oo.weight_decay = 0;
    sat_optimizer *topt = NULL, *sopt = NULL;
    if (sat_optimizer_create(teacher, &oo, &topt) || sat_optimizer_create(student, &oo, &sopt))
        return fail("optimizer", sat_last_error());

    float x[BATCH * PIXELS], t[BATCH * CLASSES], s[BATCH * CLASSES], ds[BATCH * CLASSES];
    int32_t y[BATCH];
    /* The teacher: a few of the library's own cross-entropy steps. */
    for (int i = 0; i < 40; i++) {
        make_batch(x, y);
        CHECK(sat_model_train_backward(teacher, x, y, BATCH, 0.0f, NULL, NULL), "teacher step",
              sat_model_last_error(teacher));
        CHECK(sat_optimizer_step(topt), "teacher update", sat_optimizer_last_error(topt));
    }

    sat_exec_opts eo;
    sat_exec_opts_init(&eo, sizeof eo);
    eo.kind = SAT_EXEC_INFERENCE;
    sat_exec *tex = NULL, *sex = NULL;
    if (sat_exec_create(teacher, &eo, &tex)) return fail("teacher execution", sat_last_error());
    eo.kind = SAT_EXEC_TRAIN;
    if (sat_exec_create(student, &eo, &sex)) return fail("student execution", sat_last_error());
    float *grads = sat_model_grads(student);
    const int64_t np = sat_model_param_count(student);

    /* Distillation: the student's loss on a fixed held-out batch, before and after. */
    float hx[BATCH * PIXELS], ht[BATCH * CLASSES];
    int32_t hy[BATCH];
    make_batch(hx, hy);
    CHECK(sat_exec_forward(tex, hx, BATCH, SAT_BN_INFERENCE, ht), "teacher forward", sat_exec_last_error(tex));
    CHECK(sat_exec_forward(sex, hx, BATCH, SAT_BN_INFERENCE, s), "student forward", sat_exec_last_error(sex));
    const double before = kd_loss(s, ht, hy, BATCH, ALPHA, TEMP, NULL);
    for (int i = 0; i < STEPS; i++) {
        make_batch(x, y);
        CHECK(sat_exec_forward(tex, x, BATCH, SAT_BN_INFERENCE, t), "teacher forward", sat_exec_last_error(tex));
        CHECK(sat_exec_forward(sex, x, BATCH, SAT_BN_TRAIN, s), "student forward", sat_exec_last_error(sex));
        double l = kd_loss(s, t, y, BATCH, ALPHA, TEMP, ds);
        CHECK(sat_exec_backward(sex, ds, NULL, grads), "student backward", sat_exec_last_error(sex));
        CHECK(sat_optimizer_step(sopt), "student update", sat_optimizer_last_error(sopt));
        if (i % 20 == 0) printf("step %2d  distillation loss %.4f\n", i, l);
    }
    CHECK(sat_exec_forward(sex, hx, BATCH, SAT_BN_INFERENCE, s), "student forward", sat_exec_last_error(sex));
    const double after = kd_loss(s, ht, hy, BATCH, ALPHA, TEMP, NULL);
    printf("held-out distillation loss %.4f -> %.4f\n", before, after);
    if (!(after < 0.8 * before)) return fail("check", "the distillation loss did not go down");

    /* a = 0 is plain cross-entropy: the gradient is the library's own. */
    float *own = malloc(sizeof(float) * (size_t)np), *mine = malloc(sizeof(float) * (size_t)np);
    float *st0 = malloc(sizeof(float) * (size_t)sat_model_state_count(student));
    if (!own || !mine || !st0) return fail("memory", "out of memory");
    const size_t state_bytes = sizeof(float) * (size_t)sat_model_state_count(student);
    memcpy(st0, sat_model_state(student), state_bytes);
    CHECK(sat_model_train_backward(student, x, y, BATCH, 0.0f, NULL, NULL), "train backward",
          sat_model_last_error(student));
    memcpy(own, grads, sizeof(float) * (size_t)np);
    memcpy(sat_model_state(student), st0, state_bytes);
    CHECK(sat_exec_forward(sex, x, BATCH, SAT_BN_BATCH, s), "student forward", sat_exec_last_error(sex));
    kd_loss(s, t, y, BATCH, 0.0, 1.0, ds);
    CHECK(sat_exec_backward(sex, ds, NULL, mine), "student backward", sat_exec_last_error(sex));
    double worst = 0;
    for (int64_t i = 0; i < np; i++) {
        double e = fabs((double)own[i] - mine[i]) / (1e-4 + fabs((double)own[i]));
        worst = e > worst ? e : worst;
    }
    printf("a = 0: largest relative difference from the library's cross-entropy gradient %.2e\n", worst);
    if (!(worst < 1e-3)) return fail("check", "the cross-entropy gradient differs from the library's");

    /* The full loss against central differences, on the parameters with the largest
     * gradients (batch statistics, running ones untouched: the loss is a function of the
     * parameters alone). */
    CHECK(sat_exec_forward(sex, x, BATCH, SAT_BN_BATCH, s), "student forward", sat_exec_last_error(sex));
    kd_loss(s, t, y, BATCH, ALPHA, TEMP, ds);
    CHECK(sat_exec_backward(sex, ds, NULL, mine), "student backward", sat_exec_last_error(sex));
    float *p = sat_model_params(student);
    double worst_fd = 0;
    for (int k = 0; k < 8; k++) {
        int64_t best = 0;
        for (int64_t i = 1; i < np; i++)
            if (fabsf(mine[i]) > fabsf(mine[best])) best = i;
        const float h = 1e-2f, keep = p[best];
        p[best] = keep + h;
        CHECK(sat_exec_forward(sex, x, BATCH, SAT_BN_BATCH, s), "forward", sat_exec_last_error(sex));
        const double up = kd_loss(s, t, y, BATCH, ALPHA, TEMP, NULL);
        p[best] = keep - h;
        CHECK(sat_exec_forward(sex, x, BATCH, SAT_BN_BATCH, s), "forward", sat_exec_last_error(sex));
        const double down = kd_loss(s, t, y, BATCH, ALPHA, TEMP, NULL);
        p[best] = keep;
        const double fd = (up - down) / (2.0 * h);
        const double e = fabs(fd - mine[best]) / (1e-3 + fabs(fd) + fabs(mine[best]));
        worst_fd = e > worst_fd ? e : worst_fd;
        mine[best] = 0; /* next largest */
    }
    printf("finite differences: largest relative difference %.2e\n", worst_fd);
    if (!(worst_fd < 2e-2)) return fail("check", "the gradient does not match finite differences");

    free(own);
    free(mine);
    free(st0);
    sat_exec_destroy(tex);
    sat_exec_destroy(sex);
    sat_optimizer_destroy(topt);
    sat_optimizer_destroy(sopt);
    sat_model_destroy(teacher);
    sat_model_destroy(student);
    sat_context_destroy(ctx);
    printf("distill: ok\n");
    return 0;
}
