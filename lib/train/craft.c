/* craft.c - the attacks a trainer runs to make its training batch: PGD / FGSM on the
 * cross-entropy (PGD-AT, Fast-AT) and the KL attack of TRADES. They run the attack plan
 * (input gradients only, batch norm in the trainer's attack mode, running statistics never
 * touched) and draw their random starts from the trainer's counter-based stream, so the
 * batch they make is a function of (seed, counter, x) whatever the thread count. */
#include "train/train.h"

#include "attack/attack.h"

#include <math.h>
#include <string.h>

int32_t sat__attack_bn(const sat_trainer *t) {
    int32_t mode = t->opts.attack_bn_mode >= 0 ? t->opts.attack_bn_mode : t->model->opts.attack_bn_mode;
    return mode == SAT_BN_BATCH ? SAT__BN_BATCH : SAT__BN_INFER;
}

/* The geometry is the attack module's, so training and evaluation share one threat model. */
void sat__project(int32_t norm, float eps, const float *x, float *x_adv, int64_t n, int64_t size) {
    for (int64_t e = 0; e < n; e++) sat__attack_project(norm, eps, x + e * size, x_adv + e * size, size);
}

void sat__ascent_step(int32_t norm, float alpha, const float *g, float *x_adv, int64_t n, int64_t size) {
    for (int64_t e = 0; e < n; e++) sat__attack_ascend(norm, alpha, g + e * size, x_adv + e * size, size);
}

/* Uniform start in the ball: Linf per pixel; L2 a normal direction with radius
 * eps * u^(1/d) (uniform in volume). Normal draws use u64 indices [base, base + 2 n d),
 * the radii the second half of the step's range. */
static void random_start(const sat_trainer *t, const float *x, float *x_adv, int64_t n, uint64_t base) {
    const int64_t d = t->model->in_size;
    const float eps = t->opts.eps;
    if (t->opts.norm == SAT_NORM_L2) {
        for (int64_t e = 0; e < n; e++) {
            float *a = x_adv + e * d;
            double ss = 0.0;
            for (int64_t j = 0; j < d; j++) {
                a[j] = sat__rng_normal(t->seed, SAT_STREAM_TRAIN, (base >> 1) + (uint64_t)(e * d + j));
                ss += (double)a[j] * (double)a[j];
            }
            double u = sat__rng_uniform(t->seed, SAT_STREAM_TRAIN, base + SAT__TRAIN_RNG_PER_STEP / 2 + (uint64_t)e);
            double r = (double)eps * pow(u, 1.0 / (double)d) / (ss > 0.0 ? sqrt(ss) : 1.0);
            for (int64_t j = 0; j < d; j++) a[j] = x[e * d + j] + (float)(r * a[j]);
        }
    } else {
        for (int64_t i = 0; i < n * d; i++) {
            float u = sat__rng_uniform(t->seed, SAT_STREAM_TRAIN, base + (uint64_t)i);
            x_adv[i] = x[i] + eps * (2.0f * u - 1.0f);
        }
    }
    sat__project(t->opts.norm, eps, x, x_adv, n, d);
}

static int32_t attack_gradient_ok(sat_trainer *t, int64_t n) {
    if (!sat__all_finite(t->grad_x, n * t->model->in_size))
        return sat__fail(t->err, SAT_E_NUMERIC, "sat_train_step: the attack's input gradient is not finite");
    return SAT_OK;
}

int32_t sat__craft_ce(sat_trainer *t, const float *x, const int32_t *labels, int64_t n, int32_t steps,
                      float step_size, int random, uint64_t rng_base, float *x_adv) {
    sat_model *m = t->model;
    const int64_t d = m->in_size;
    const int32_t bn = sat__attack_bn(t);
    if (random)
        random_start(t, x, x_adv, n, rng_base);
    else
        memcpy(x_adv, x, sizeof(float) * (size_t)(n * d));
    for (int32_t s = 0; s < steps; s++) {
        const float *logits;
        int32_t st = sat__forward(m, x_adv, n, bn, &logits);
        if (st) return sat__fail(t->err, st, "sat_train_step: %s", m->err);
        /* Gradient of the summed loss: each example's step is independent of the batch. */
        sat__softmax_ce(logits, labels, n, m->classes, 0.0f, NULL, t->dlogits, 1.0f);
        st = sat__backward(m, SAT__PLAN_ATTACK, t->dlogits, t->grad_x);
        if (st) return sat__fail(t->err, st, "sat_train_step: %s", m->err);
        if ((st = attack_gradient_ok(t, n))) return st;
        sat__ascent_step(t->opts.norm, step_size, t->grad_x, x_adv, n, d);
        sat__project(t->opts.norm, t->opts.eps, x, x_adv, n, d);
        if ((st = sat__progress_add(t->progress, n))) return st;
    }
    return SAT_OK;
}

/* Softmax of each row of logits into p (double accumulation). */
static void softmax_rows(const float *logits, float *p, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *l = logits + i * k;
        double mx = l[0], se = 0.0;
        for (int64_t j = 1; j < k; j++) mx = l[j] > mx ? l[j] : mx;
        for (int64_t j = 0; j < k; j++) se += exp((double)l[j] - mx);
        for (int64_t j = 0; j < k; j++) p[i * k + j] = (float)(exp((double)l[j] - mx) / se);
    }
}

int32_t sat__craft_kl(sat_trainer *t, const float *x, int64_t n, int32_t steps, float step_size,
                      uint64_t rng_base, float *x_adv) {
    sat_model *m = t->model;
    const int64_t d = m->in_size, k = m->classes;
    const int32_t bn = sat__attack_bn(t);
    const float *logits;
    int32_t st = sat__forward(m, x, n, bn, &logits);
    if (st) return sat__fail(t->err, st, "sat_train_step: %s", m->err);
    float *p = t->logits_a; /* p(x), fixed during the attack */
    float *q = t->logits_b;
    softmax_rows(logits, p, n, k);
    for (int64_t i = 0; i < n * d; i++)
        x_adv[i] = x[i] + 0.001f * sat__rng_normal(t->seed, SAT_STREAM_TRAIN, (rng_base >> 1) + (uint64_t)i);
    sat__project(t->opts.norm, t->opts.eps, x, x_adv, n, d);
    for (int32_t s = 0; s < steps; s++) {
        st = sat__forward(m, x_adv, n, bn, &logits);
        if (st) return sat__fail(t->err, st, "sat_train_step: %s", m->err);
        softmax_rows(logits, q, n, k);
        /* d KL(p || q) / d logits(x_adv) = q - p */
        for (int64_t i = 0; i < n * k; i++) t->dlogits[i] = q[i] - p[i];
        st = sat__backward(m, SAT__PLAN_ATTACK, t->dlogits, t->grad_x);
        if (st) return sat__fail(t->err, st, "sat_train_step: %s", m->err);
        if ((st = attack_gradient_ok(t, n))) return st;
        sat__ascent_step(t->opts.norm, step_size, t->grad_x, x_adv, n, d);
        sat__project(t->opts.norm, t->opts.eps, x, x_adv, n, d);
        if ((st = sat__progress_add(t->progress, n))) return st;
    }
    return SAT_OK;
}
