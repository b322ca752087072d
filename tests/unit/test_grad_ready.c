/* test_grad_ready.c - the gradient-ready callback of sat_train_compute, which lets a
 * data-parallel host reduce the gradient block while the backward runs: its ranges come per
 * layer from the block's end down to 0, each ending where the one before began, and each holds
 * at callback time what the block holds at the end (with a clean term and with TRADES, whose
 * earlier backward is added range by range); the host may write a range in place; a refusal
 * fails the call with SAT_E_ABORTED and rolls it back; sat_train_step does not call it; and a
 * trainer with it trains bit for bit as one without. */
#include "rank_rig.h"

#include "train/train.h"

#include <math.h>
#include <string.h>

#define SPEC "input 1 4 4\nconv 4 k=3\nbn\nact\nflatten\ndense 6\nbn\nact\ndense 4\n"
#define PARAM_LAYERS 5 /* conv, bn, dense, bn, dense */
#define D 16
#define K 4
#define N 8
#define STEPS 3
#define MAX_RANGES 64

/* What the callback saw: each range and a copy of its contents at the time. */
typedef struct seen {
    const sat_model *m;
    int32_t calls;
    int32_t refuse_at;  /* call number (1..) to refuse with 7; 0: never */
    int32_t scale;      /* 1: multiply each range by 2 in place, as a reduction writes it */
    int64_t offset[MAX_RANGES], count[MAX_RANGES];
    float *copy;        /* num_params floats, each range copied at its offset */
} seen;

static int32_t record(void *user, int64_t offset, int64_t count) {
    seen *s = user;
    const int32_t call = s->calls++;
    if (call < MAX_RANGES) {
        s->offset[call] = offset;
        s->count[call] = count;
    }
    float *g = sat_model_grads((sat_model *)s->m) + offset;
    if (s->scale)
        for (int64_t i = 0; i < count; i++) g[i] *= 2.0f;
    memcpy(s->copy + offset, g, sizeof(float) * (size_t)count);
    return s->refuse_at == s->calls ? 7 : 0;
}

/* A rig for `method` (PGD with a clean term: its earlier backward is added to the last one's),
 * with the callback recording into *s when s is not NULL. */
static rig make_rig(int32_t method, float clean_fraction, seen *s) {
    sat_trainer_opts to = rig_trainer_opts(method, 0, 1);
    to.clean_fraction = clean_fraction;
    if (s) {
        to.grad_ready = record;
        to.grad_ready_user = s;
    }
    rig r = rig_make(SPEC, N, 5e-4f, &to);
    if (s) {
        memset(s, 0, sizeof *s);
        s->m = r.m;
        s->copy = tu_alloc(sizeof(float) * (size_t)sat_model_param_count(r.m));
    }
    return r;
}

static void make_batch(float *x, int32_t *y, uint64_t seed) { rig_batch(x, y, N, D, K, seed); }

typedef struct method_case {
    int32_t method;
    float clean_fraction;
} method_case;

static const method_case cases[] = {
    {SAT_TRAIN_PGD, 0.0f}, {SAT_TRAIN_PGD, 0.25f}, {SAT_TRAIN_TRADES, 0.0f},
    {SAT_TRAIN_FAST, 0.0f}, {SAT_TRAIN_STANDARD, 0.0f},
};
#define CASES (sizeof cases / sizeof cases[0])

static void test_defaults_to_null(void **st) {
    (void)st;
    sat_trainer_opts o;
    memset(&o, 0xab, sizeof o);
    TU_CHECK(sat_trainer_opts_init(&o, sizeof o));
    assert_null(o.grad_ready);
    assert_null(o.grad_ready_user);
}

/* One range per parameter layer, from the end of the block down to 0, covering it once,
 * each range's contents at callback time the final block's. */
static void test_ranges_cover_the_block_in_order(void **st) {
    (void)st;
    for (size_t k = 0; k < CASES; k++) {
        seen s;
        rig r = make_rig(cases[k].method, cases[k].clean_fraction, &s);
        const int64_t np = sat_model_param_count(r.m);
        for (int step = 0; step < STEPS; step++) {
            float x[N * D];
            int32_t y[N];
            make_batch(x, y, 30 + (uint64_t)step);
            s.calls = 0;
            memset(s.copy, 0xff, sizeof(float) * (size_t)np); /* NaN where no range was copied */
            TU_CHECK(sat_train_compute(r.t, x, y, N, NULL));
            assert_int_equal(s.calls, PARAM_LAYERS);
            int64_t end = np;
            for (int32_t c = 0; c < s.calls; c++) {
                assert_true(s.count[c] >= 1);
                assert_true(s.offset[c] + s.count[c] == end);
                end = s.offset[c];
            }
            assert_true(end == 0);
            assert_memory_equal(s.copy, sat_model_grads(r.m), sizeof(float) * (size_t)np);
            TU_CHECK(sat_train_apply(r.t));
        }
    }
}

/* A range written in place by the callback (as an in-place reduction writes it) is what the
 * call leaves: nothing writes a range once it is handed out. */
static void test_ranges_are_not_written_after(void **st) {
    (void)st;
    for (size_t k = 0; k < CASES; k++) {
        seen s;
        rig plain = make_rig(cases[k].method, cases[k].clean_fraction, NULL);
        rig scaled = make_rig(cases[k].method, cases[k].clean_fraction, &s);
        s.scale = 1;
        float x[N * D];
        int32_t y[N];
        make_batch(x, y, 40);
        TU_CHECK(sat_train_compute(plain.t, x, y, N, NULL));
        TU_CHECK(sat_train_compute(scaled.t, x, y, N, NULL));
        const int64_t np = sat_model_param_count(plain.m);
        for (int64_t i = 0; i < np; i++)
            assert_true(sat_model_grads(scaled.m)[i] == 2.0f * sat_model_grads(plain.m)[i]);
    }
}

/* Training with the callback (compute, apply) equals training without it, bit for bit, and
 * sat_train_step does not call it. */
static void test_same_training_as_without(void **st) {
    (void)st;
    for (size_t k = 0; k < CASES; k++) {
        seen s;
        rig plain = make_rig(cases[k].method, cases[k].clean_fraction, NULL);
        rig with = make_rig(cases[k].method, cases[k].clean_fraction, &s);
        for (int step = 0; step < STEPS; step++) {
            float x[N * D];
            int32_t y[N];
            make_batch(x, y, 50 + (uint64_t)step);
            sat_step_stats sp = {.struct_size = sizeof sp}, sw = {.struct_size = sizeof sw};
            TU_CHECK(sat_train_compute(plain.t, x, y, N, &sp));
            TU_CHECK(sat_train_compute(with.t, x, y, N, &sw));
            assert_memory_equal(&sp, &sw, sizeof sp);
            TU_CHECK(sat_train_apply(plain.t));
            TU_CHECK(sat_train_apply(with.t));
        }
        const int32_t calls = s.calls;
        float x[N * D];
        int32_t y[N];
        make_batch(x, y, 60);
        TU_CHECK(sat_train_step(plain.t, x, y, N, NULL));
        TU_CHECK(sat_train_step(with.t, x, y, N, NULL));
        assert_int_equal(s.calls, calls);
        assert_memory_equal(sat_model_params(plain.m), sat_model_params(with.m),
                            sizeof(float) * (size_t)sat_model_param_count(plain.m));
        assert_memory_equal(sat_model_state(plain.m), sat_model_state(with.m),
                            sizeof(float) * (size_t)sat_model_state_count(plain.m));
    }
}

/* A refusal stops the hand-out, fails the call with SAT_E_ABORTED and leaves the handles as
 * they were: the next call computes what a fresh trainer computes. */
static void test_refusal_rolls_back(void **st) {
    (void)st;
    for (size_t k = 0; k < CASES; k++) {
        seen s, fresh_seen;
        rig r = make_rig(cases[k].method, cases[k].clean_fraction, &s);
        rig fresh = make_rig(cases[k].method, cases[k].clean_fraction, &fresh_seen);
        const int64_t np = sat_model_param_count(r.m), ns = sat_model_state_count(r.m);
        float *params = tu_alloc(sizeof(float) * (size_t)np), *state = tu_alloc(sizeof(float) * (size_t)ns);
        memcpy(params, sat_model_params(r.m), sizeof(float) * (size_t)np);
        memcpy(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
        float x[N * D];
        int32_t y[N];
        make_batch(x, y, 70);
        s.refuse_at = 2;
        assert_int_equal(sat_train_compute(r.t, x, y, N, NULL), SAT_E_ABORTED);
        assert_int_equal(s.calls, 2);
        assert_non_null(strstr(sat_trainer_last_error(r.t), "sat_train_compute"));
        assert_non_null(strstr(sat_trainer_last_error(r.t), "gradient-ready callback returned 7"));
        assert_memory_equal(params, sat_model_params(r.m), sizeof(float) * (size_t)np);
        assert_memory_equal(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
        assert_true(r.t->rng_counter == 0);
        assert_int_equal(sat_optimizer_step_count(r.opt), 0);
        s.refuse_at = 0;
        TU_CHECK(sat_train_compute(r.t, x, y, N, NULL));
        TU_CHECK(sat_train_compute(fresh.t, x, y, N, NULL));
        assert_memory_equal(sat_model_grads(r.m), sat_model_grads(fresh.m), sizeof(float) * (size_t)np);
        assert_memory_equal(sat_model_state(r.m), sat_model_state(fresh.m), sizeof(float) * (size_t)ns);
    }
}

/* With a clean term the handed-out block is the sum of the two backwards' parts, checked
 * against (1-c) g(x_adv) + c g(x) from the model's own gradient call (no batch norm, so the
 * two passes' statistics modes do not matter). */
static void test_clean_term_is_added(void **st) {
    (void)st;
    const float c = 0.25f;
    sat_trainer_opts to = rig_trainer_opts(SAT_TRAIN_PGD, 0, 1);
    to.clean_fraction = c;
    seen s;
    memset(&s, 0, sizeof s);
    to.grad_ready = record;
    to.grad_ready_user = &s;
    rig r = rig_make("input 1 4 4\nconv 4 k=3\nact\nflatten\ndense 6\nact\ndense 4\n", N, 5e-4f, &to);
    const int64_t np = sat_model_param_count(r.m);
    s.m = r.m;
    s.copy = tu_alloc(sizeof(float) * (size_t)np);
    float x[N * D], x_adv[N * D];
    int32_t y[N];
    make_batch(x, y, 80);
    TU_CHECK(sat_train_compute(r.t, x, y, N, NULL));
    memcpy(x_adv, r.t->x_adv, sizeof x_adv);
    float *ref = tu_alloc(sizeof(float) * (size_t)np);
    TU_CHECK(sat_model_train_backward(r.m, x_adv, y, N, 0.0f, NULL, NULL));
    for (int64_t i = 0; i < np; i++) ref[i] = (1.0f - c) * sat_model_grads(r.m)[i];
    TU_CHECK(sat_model_train_backward(r.m, x, y, N, 0.0f, NULL, NULL));
    double worst = 0.0, largest = 0.0;
    for (int64_t i = 0; i < np; i++) {
        ref[i] += c * sat_model_grads(r.m)[i];
        worst = fmax(worst, fabs((double)s.copy[i] - (double)ref[i]));
        largest = fmax(largest, fabs((double)ref[i]));
    }
    assert_true(largest > 1e-3);
    if (!(worst < 1e-5 * fmax(1.0, largest))) fail_msg("off by %g (largest %g)", worst, largest);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_to_null),
        cmocka_unit_test(test_ranges_cover_the_block_in_order),
        cmocka_unit_test(test_ranges_are_not_written_after),
        cmocka_unit_test(test_same_training_as_without),
        cmocka_unit_test(test_refusal_rolls_back),
        cmocka_unit_test(test_clean_term_is_added),
    };
    return tu_run_group("test_grad_ready", tests, sizeof tests / sizeof tests[0]);
}
