/* test_optim_control.c - runtime control of an optimizer: the base learning rate (which the
 * schedule keeps scaling), per-parameter learning-rate scales over ranges of the flat block,
 * and the freeze mask (frozen parameters and their optimizer state never change, through
 * sat_optimizer_step and through sat_train_step). Bad arguments change nothing. The scales
 * and the mask take memory only once a host sets a value other than the default. */
#include "testutil.h"

#include "train/train.h" /* whether the per-parameter blocks exist */

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Layer 1: 16 x 8 weights + 8 biases = offsets 0..135; layer 2: 8 x 3 + 3 = 136..162. */
#define SPEC "input 1 4 4\nflatten\ndense 8\nact\ndense 3\n"
#define NP 163
#define L1 136
#define BATCH 4
#define IN 16

static sat_model *make_model(sat_context *ctx) {
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, BATCH);
    assert_int_equal(sat_model_param_count(m), NP);
    return m;
}

static sat_optimizer *make_opt(sat_model *m, int32_t kind, float wd, int32_t schedule) {
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.kind = kind;
    o.lr = 0.05f;
    o.weight_decay = wd;
    o.schedule = schedule;
    o.total_steps = 10;
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(m, &o, &opt));
    return tu_own_optimizer(opt);
}

/* A backward of batch i into the model's gradient block. */
static void backward(sat_model *m, int i) {
    float x[BATCH * IN];
    int32_t y[BATCH];
    tu_fill_uniform(x, BATCH * IN, 0.0f, 1.0f, 50 + (uint64_t)i);
    for (int e = 0; e < BATCH; e++) y[e] = (i + e) % 3;
    TU_CHECK(sat_model_train_backward(m, x, y, BATCH, 0.0f, NULL, NULL));
}

static void test_set_lr_is_scaled_by_the_schedule(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    sat_model *m = make_model(ctx);
    sat_optimizer *opt = make_opt(m, SAT_OPT_SGD, 0.0f, SAT_SCHED_COSINE);
    assert_true(sat_optimizer_base_lr(opt) == 0.05f);
    TU_CHECK(sat_optimizer_set_step_count(opt, 5)); /* cosine at 5 of 10: factor 0.5 */
    TU_CHECK(sat_optimizer_set_lr(opt, 0.2f));
    assert_true(sat_optimizer_base_lr(opt) == 0.2f);
    assert_float_equal(sat_optimizer_lr(opt), 0.1f, 1e-7f);
    /* The new rate is the one the next update uses. */
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.momentum = 0.0f;
    o.weight_decay = 0.0f;
    o.lr = 0.05f;
    sat_optimizer *plain = NULL;
    TU_CHECK(sat_optimizer_create(m, &o, &plain));
    tu_own_optimizer(plain);
    TU_CHECK(sat_optimizer_set_lr(plain, 0.5f));
    backward(m, 0);
    float before[NP], g[NP];
    memcpy(before, sat_model_params(m), sizeof before);
    memcpy(g, sat_model_grads(m), sizeof g);
    TU_CHECK(sat_optimizer_step(plain));
    for (int i = 0; i < NP; i++) assert_true(sat_model_params(m)[i] == before[i] - 0.5f * g[i]);
    /* Refused values change nothing. */
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sat_optimizer_set_lr(opt, bad[i]), SAT_E_INVALID_ARG);
        assert_non_null(strstr(sat_optimizer_last_error(opt), "sat_optimizer_set_lr"));
        assert_true(sat_optimizer_base_lr(opt) == 0.2f);
    }
    assert_int_equal(sat_optimizer_set_lr(NULL, 0.1f), SAT_E_INVALID_ARG);
    assert_true(isnan(sat_optimizer_base_lr(NULL)));
}

/* Groups at scales 0, 1 and 3; under plain SGD a group at scale 3 moves exactly 3 lr g and
 * the rest exactly as an optimizer without scales. */
static void test_lr_scale_groups(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    sat_model *m = make_model(ctx);
    sat_model *ref = tu_model(ctx, SPEC, SAT_ACT_SILU, BATCH);
    memcpy(sat_model_params(ref), sat_model_params(m), sizeof(float) * NP);
    sat_optimizer *opt = make_opt(m, SAT_OPT_ADAMW, 0.01f, SAT_SCHED_CONSTANT);
    sat_optimizer *ropt = make_opt(ref, SAT_OPT_ADAMW, 0.01f, SAT_SCHED_CONSTANT);
    TU_CHECK(sat_optimizer_set_lr_scale(opt, L1, NP - L1, 0.0f)); /* layer 2 does not move */
    TU_CHECK(sat_optimizer_set_lr_scale(opt, 0, L1, 3.0f));
    TU_CHECK(sat_optimizer_set_lr_scale(opt, 0, 8, 1.0f)); /* the first 8 weights back at 1 */
    float scales[NP];
    TU_CHECK(sat_optimizer_get_lr_scale(opt, scales));
    for (int i = 0; i < NP; i++) assert_true(scales[i] == (i < 8 ? 1.0f : i < L1 ? 3.0f : 0.0f));

    float start[NP];
    memcpy(start, sat_model_params(m), sizeof start);
    for (int s = 0; s < 3; s++) {
        backward(m, s);
        backward(ref, s);
        TU_CHECK(sat_optimizer_step(opt));
        TU_CHECK(sat_optimizer_step(ropt));
    }
    const float *p = sat_model_params(m), *q = sat_model_params(ref);
    /* Scale 0 holds a group still (AdamW's decoupled decay included); scale 3 moves its
     * group about three times as far as the unscaled reference. */
    for (int i = L1; i < NP; i++) assert_true(p[i] == start[i]);
    int moved_more = 0;
    for (int i = 8; i < L1; i++)
        if (fabsf(p[i] - start[i]) > 2.0f * fabsf(q[i] - start[i])) moved_more++;
    assert_true(moved_more > (L1 - 8) / 2);

    /* One step from the same point: scale 3 moves exactly 3 times as far under SGD. */
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.momentum = 0.0f;
    o.weight_decay = 0.0f;
    sat_optimizer *sgd = NULL, *rsgd = NULL;
    TU_CHECK(sat_optimizer_create(m, &o, &sgd));
    tu_own_optimizer(sgd);
    TU_CHECK(sat_optimizer_create(ref, &o, &rsgd));
    tu_own_optimizer(rsgd);
    TU_CHECK(sat_optimizer_set_lr_scale(sgd, 0, L1, 3.0f));
    memcpy(sat_model_params(ref), sat_model_params(m), sizeof(float) * NP);
    backward(m, 9);
    backward(ref, 9);
    memcpy(start, sat_model_params(m), sizeof start);
    float g[NP];
    memcpy(g, sat_model_grads(m), sizeof g);
    TU_CHECK(sat_optimizer_step(sgd));
    TU_CHECK(sat_optimizer_step(rsgd));
    for (int i = 0; i < NP; i++) {
        if (i < L1)
            assert_true(p[i] == start[i] - 0.1f * 3.0f * g[i]);
        else
            assert_true(p[i] == q[i]);
    }

    /* Bad ranges and scales are refused and change nothing. */
    assert_int_equal(sat_optimizer_set_lr_scale(opt, -1, 2, 1.0f), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_set_lr_scale(opt, NP - 1, 2, 1.0f), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_set_lr_scale(opt, 0, -1, 1.0f), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_set_lr_scale(opt, 0, NP, -0.5f), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_set_lr_scale(opt, 0, NP, NAN), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_optimizer_last_error(opt), "sat_optimizer_set_lr_scale"));
    float again[NP];
    TU_CHECK(sat_optimizer_get_lr_scale(opt, again));
    assert_memory_equal(again, scales, sizeof again);
    TU_CHECK(sat_optimizer_set_lr_scale(opt, NP, 0, 2.0f)); /* an empty range at the end */
    assert_int_equal(sat_optimizer_get_lr_scale(opt, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_set_lr_scale(NULL, 0, 1, 1.0f), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_get_lr_scale(NULL, again), SAT_E_INVALID_ARG);
}

static void freeze_first_layer(sat_optimizer *opt) {
    uint8_t mask[NP];
    memset(mask, 0, sizeof mask);
    memset(mask, 1, L1);
    TU_CHECK(sat_optimizer_set_frozen(opt, mask));
    uint8_t back[NP];
    TU_CHECK(sat_optimizer_get_frozen(opt, back));
    assert_memory_equal(back, mask, sizeof mask);
}

/* With weight decay and Adam moments, frozen parameters and their state stay exactly as
 * they were; the others move. */
static void test_frozen_params_never_change(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    const int32_t kinds[] = {SAT_OPT_SGD, SAT_OPT_ADAM, SAT_OPT_ADAMW};
    for (size_t k = 0; k < 3; k++) {
        sat_model *m = make_model(ctx);
        sat_optimizer *opt = make_opt(m, kinds[k], 0.05f, SAT_SCHED_CONSTANT);
        freeze_first_layer(opt);
        float start[NP];
        memcpy(start, sat_model_params(m), sizeof start);
        for (int s = 0; s < 4; s++) {
            backward(m, s);
            TU_CHECK(sat_optimizer_step(opt));
        }
        const float *p = sat_model_params(m);
        assert_memory_equal(p, start, sizeof(float) * L1);
        for (int i = L1; i < NP; i++) assert_true(p[i] != start[i]);
        int64_t count = 0;
        const float *state = sat_optimizer_state(opt, &count);
        const int64_t blocks = count / NP;
        for (int64_t b = 0; b < blocks; b++)
            for (int i = 0; i < L1; i++) assert_true(state[b * NP + i] == 0.0f);
        /* Unfreezing lets them move again. */
        TU_CHECK(sat_optimizer_set_frozen(opt, NULL));
        backward(m, 7);
        TU_CHECK(sat_optimizer_step(opt));
        int moved = 0;
        for (int i = 0; i < L1; i++) moved += p[i] != start[i];
        assert_true(moved > L1 / 2);
        tu_release(opt);
        tu_release(m);
    }
}

/* A frozen first layer trains the rest exactly as zeroing the first layer's gradient
 * would, when nothing else moves it (no weight decay; SGD momentum of a zero gradient
 * stays zero). */
static void test_frozen_equals_zeroed_gradient(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    sat_model *a = make_model(ctx);
    sat_model *b = tu_model(ctx, SPEC, SAT_ACT_SILU, BATCH);
    memcpy(sat_model_params(b), sat_model_params(a), sizeof(float) * NP);
    sat_optimizer *oa = make_opt(a, SAT_OPT_SGD, 0.0f, SAT_SCHED_CONSTANT);
    sat_optimizer *ob = make_opt(b, SAT_OPT_SGD, 0.0f, SAT_SCHED_CONSTANT);
    freeze_first_layer(oa);
    for (int s = 0; s < 5; s++) {
        backward(a, s);
        backward(b, s);
        memset(sat_model_grads(b), 0, sizeof(float) * L1);
        TU_CHECK(sat_optimizer_step(oa));
        TU_CHECK(sat_optimizer_step(ob));
    }
    assert_memory_equal(sat_model_params(a), sat_model_params(b), sizeof(float) * NP);
}

/* Freezing holds through the trainer too (PGD-AT, weight decay on). */
static void test_frozen_through_train_step(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    sat_model *m = make_model(ctx);
    sat_optimizer *opt = make_opt(m, SAT_OPT_SGD, 5e-3f, SAT_SCHED_CONSTANT);
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.steps = 2;
    sat_trainer *tr = NULL;
    TU_CHECK(sat_trainer_create(m, opt, &to, &tr));
    tu_own_trainer(tr);
    freeze_first_layer(opt);
    TU_CHECK(sat_optimizer_set_lr(opt, 0.2f)); /* reaches the trainer's next step */
    float start[NP];
    memcpy(start, sat_model_params(m), sizeof start);
    float x[BATCH * IN];
    int32_t y[BATCH] = {0, 1, 2, 0};
    tu_fill_uniform(x, BATCH * IN, 0.0f, 1.0f, 5);
    sat_step_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    for (int s = 0; s < 3; s++) TU_CHECK(sat_train_step(tr, x, y, BATCH, &stats));
    assert_true(stats.lr == 0.2f);
    assert_memory_equal(sat_model_params(m), start, sizeof(float) * L1);
    int moved = 0;
    for (int i = L1; i < NP; i++) moved += sat_model_params(m)[i] != start[i];
    assert_int_equal(moved, NP - L1);
}

static void test_bad_mask_changes_nothing(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    sat_model *m = make_model(ctx);
    sat_optimizer *opt = make_opt(m, SAT_OPT_SGD, 0.0f, SAT_SCHED_CONSTANT);
    freeze_first_layer(opt);
    uint8_t mask[NP];
    memset(mask, 0, sizeof mask);
    mask[NP - 1] = 2;
    assert_int_equal(sat_optimizer_set_frozen(opt, mask), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_optimizer_last_error(opt), "mask[162]"));
    uint8_t back[NP];
    TU_CHECK(sat_optimizer_get_frozen(opt, back));
    for (int i = 0; i < NP; i++) assert_int_equal(back[i], i < L1 ? 1 : 0);
    assert_int_equal(sat_optimizer_get_frozen(opt, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_set_frozen(NULL, mask), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_get_frozen(NULL, back), SAT_E_INVALID_ARG);
}

/* An optimizer nobody tunes holds no scales and no mask, reads back as all 1 and all 0, and
 * saves the same checkpoint bytes as one whose scales were set and set back to 1; a mask
 * with nothing frozen gives its memory back. */
static void test_untuned_holds_no_blocks(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 1);
    sat_model *m = make_model(ctx);
    sat_optimizer *a = make_opt(m, SAT_OPT_ADAMW, 0.01f, SAT_SCHED_CONSTANT);
    sat_optimizer *b = make_opt(m, SAT_OPT_ADAMW, 0.01f, SAT_SCHED_CONSTANT);
    assert_null(a->lr_scale);
    assert_null(a->frozen);
    TU_CHECK(sat_optimizer_set_lr_scale(a, 0, NP, 1.0f)); /* the default: nothing to hold */
    TU_CHECK(sat_optimizer_set_frozen(a, NULL));
    assert_null(a->lr_scale);
    assert_null(a->frozen);
    float scales[NP];
    uint8_t mask[NP];
    TU_CHECK(sat_optimizer_get_lr_scale(a, scales));
    TU_CHECK(sat_optimizer_get_frozen(a, mask));
    for (int i = 0; i < NP; i++) assert_true(scales[i] == 1.0f && mask[i] == 0);

    TU_CHECK(sat_optimizer_set_lr_scale(b, 10, 5, 0.5f));
    assert_non_null(b->lr_scale);
    TU_CHECK(sat_optimizer_set_lr_scale(b, 10, 5, 1.0f));
    memset(mask, 0, sizeof mask);
    mask[7] = 1;
    TU_CHECK(sat_optimizer_set_frozen(b, mask));
    assert_non_null(b->frozen);
    mask[7] = 0;
    TU_CHECK(sat_optimizer_set_frozen(b, mask));
    assert_null(b->frozen);

    /* the same steps and the same file either way */
    for (int i = 0; i < 3; i++) {
        backward(m, i);
        TU_CHECK(sat_optimizer_step(a));
        TU_CHECK(sat_optimizer_step(b));
    }
    char pa[64], pb[64];
    snprintf(pa, sizeof pa, "/tmp/sat_untuned_%d_a.satc", (int)getpid());
    snprintf(pb, sizeof pb, "/tmp/sat_untuned_%d_b.satc", (int)getpid());
    TU_CHECK(sat_optimizer_checkpoint_save(a, NULL, pa));
    TU_CHECK(sat_optimizer_checkpoint_save(b, NULL, pb));
    size_t na = 0, nb = 0;
    unsigned char *fa = tu_read_file(pa, &na), *fb = tu_read_file(pb, &nb);
    assert_true(na == nb && na > 0);
    assert_memory_equal(fa, fb, na);
    tu_free(fa), tu_free(fb);
    remove(pa), remove(pb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_lr_is_scaled_by_the_schedule),
        cmocka_unit_test(test_lr_scale_groups),
        cmocka_unit_test(test_frozen_params_never_change),
        cmocka_unit_test(test_frozen_equals_zeroed_gradient),
        cmocka_unit_test(test_frozen_through_train_step),
        cmocka_unit_test(test_bad_mask_changes_nothing),
        cmocka_unit_test(test_untuned_holds_no_blocks),
    };
    return tu_run_group("test_optim_control", tests, sizeof tests / sizeof tests[0]);
}
