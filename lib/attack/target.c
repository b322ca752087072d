/* target.c - a libsat model seen through the attack interface (sat__target): its forward
 * pass and the attack plan's backward to the input. */
#include "attack/attack.h"

/* Attacks only ever follow a forward with the attack plan's backward: inference-mode batch
 * norms fold into their convolutions (fold.c). */
static int32_t model_forward(void *self, const float *x, int64_t n, int32_t bn, const float **logits) {
    return sat__forward(self, x, n, bn == SAT__BN_INFER ? SAT__BN_FOLD : bn, logits);
}

static int32_t model_backward(void *self, const float *x, int64_t n, const float *dlogits, float *dx) {
    (void)x; /* the executor keeps what the backward needs from the last forward */
    (void)n;
    return sat__backward(self, SAT__PLAN_ATTACK, dlogits, dx);
}

void sat__target_of_model(sat_model *m, sat__target *t) {
    t->ctx = m->ctx;
    t->err = m->err;
    t->channels = m->in_c;
    t->height = m->in_h;
    t->width = m->in_w;
    t->classes = m->classes;
    t->in_size = m->in_size;
    t->max_batch = m->max_batch;
    t->has_grad = 1;
    t->attack_bn = m->opts.attack_bn_mode;
    t->deterministic = 1;
    t->progress = NULL;
    t->self = m;
    t->forward = model_forward;
    t->backward = model_backward;
}
