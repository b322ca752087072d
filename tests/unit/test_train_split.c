/* test_train_split.c - the step split for data parallelism: sat_train_compute then
 * sat_train_apply equals sat_train_step bit for bit (PGD-AT, TRADES, Fast-AT, clean
 * training, with batch norm), compute leaves the weights alone, Free-AT is refused, a bad
 * apply is rolled back, and per-rank random starts: two ranks of n examples draw the starts
 * one process draws for their 2n, so averaging their gradients matches one process's step. */
#include "rank_rig.h"

#include "train/train.h"

#include <math.h>
#include <string.h>

#define SPEC "input 1 4 4\nconv 4 k=3\nbn\nact\nflatten\ndense 6\nbn\nact\ndense 4\n"
#define SPEC_NO_BN "input 1 4 4\nconv 4 k=3\nact\nflatten\ndense 6\nact\ndense 4\n"
#define D 16
#define K 4
#define N 8
#define STEPS 3

/* One model, its SGD (momentum, weight decay) and a trainer of `method`; PGD-AT adds a
 * clean term, for its gradient too. */
static rig make_rig(const char *spec, int32_t max_batch, int32_t method, int32_t rank, int32_t ranks) {
    sat_trainer_opts to = rig_trainer_opts(method, rank, ranks);
    if (method == SAT_TRAIN_PGD) to.clean_fraction = 0.25f;
    return rig_make(spec, max_batch, 5e-4f, &to);
}

static void make_batch(float *x, int32_t *y, int64_t n, uint64_t seed) { rig_batch(x, y, n, D, K, seed); }

static void assert_same_floats(const float *a, const float *b, int64_t count) {
    assert_memory_equal(a, b, sizeof(float) * (size_t)count);
}

static void test_compute_apply_equals_step(void **st) {
    (void)st;
    const int32_t methods[] = {SAT_TRAIN_PGD, SAT_TRAIN_TRADES, SAT_TRAIN_FAST, SAT_TRAIN_STANDARD};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        rig a = make_rig(SPEC, N, methods[k], 0, 1), b = make_rig(SPEC, N, methods[k], 0, 1);
        for (int s = 0; s < STEPS; s++) {
            float x[N * D];
            int32_t y[N];
            make_batch(x, y, N, 10 + (uint64_t)s);
            sat_step_stats sa = {.struct_size = sizeof sa}, sb = {.struct_size = sizeof sb};
            TU_CHECK(sat_train_step(a.t, x, y, N, &sa));
            TU_CHECK(sat_train_compute(b.t, x, y, N, &sb));
            TU_CHECK(sat_train_apply(b.t));
            assert_memory_equal(&sa, &sb, sizeof sa);
        }
        assert_same_floats(sat_model_params(a.m), sat_model_params(b.m), sat_model_param_count(a.m));
        assert_same_floats(sat_model_state(a.m), sat_model_state(b.m), sat_model_state_count(a.m));
        int64_t ca = 0, cb = 0;
        const float *oa = sat_optimizer_state(a.opt, &ca), *ob = sat_optimizer_state(b.opt, &cb);
        assert_int_equal(ca, cb);
        assert_same_floats(oa, ob, ca);
        assert_int_equal(sat_optimizer_step_count(a.opt), STEPS);
        assert_int_equal(sat_optimizer_step_count(b.opt), STEPS);
        assert_true(a.t->rng_counter == b.t->rng_counter);
    }
}

static void test_compute_leaves_the_weights(void **st) {
    (void)st;
    rig r = make_rig(SPEC, N, SAT_TRAIN_PGD, 0, 1);
    const int64_t np = sat_model_param_count(r.m), ns = sat_model_state_count(r.m);
    float *before = tu_alloc(sizeof(float) * (size_t)np), *state = tu_alloc(sizeof(float) * (size_t)ns);
    memcpy(before, sat_model_params(r.m), sizeof(float) * (size_t)np);
    memcpy(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
    float x[N * D];
    int32_t y[N];
    make_batch(x, y, N, 3);
    TU_CHECK(sat_train_compute(r.t, x, y, N, NULL));
    assert_same_floats(before, sat_model_params(r.m), np);
    assert_int_equal(sat_optimizer_step_count(r.opt), 0);
    double g2 = 0.0;
    for (int64_t i = 0; i < np; i++) g2 += (double)sat_model_grads(r.m)[i] * sat_model_grads(r.m)[i];
    assert_true(g2 > 0.0);
    /* the running statistics move as in a step */
    assert_memory_not_equal(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
}

static void test_free_at_is_refused(void **st) {
    (void)st;
    rig r = make_rig(SPEC, N, SAT_TRAIN_FREE, 0, 1);
    float x[N * D];
    int32_t y[N];
    make_batch(x, y, N, 4);
    const int64_t ns = sat_model_state_count(r.m);
    float *state = tu_alloc(sizeof(float) * (size_t)ns);
    memcpy(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
    assert_int_equal(sat_train_compute(r.t, x, y, N, NULL), SAT_E_UNSUPPORTED);
    assert_non_null(strstr(sat_trainer_last_error(r.t), "sat_train_compute"));
    assert_non_null(strstr(sat_trainer_last_error(r.t), "Free-AT"));
    assert_same_floats(state, sat_model_state(r.m), ns);
    assert_true(r.t->rng_counter == 0);
    /* the whole step still works */
    TU_CHECK(sat_train_step(r.t, x, y, N, NULL));
}

static void test_bad_calls(void **st) {
    (void)st;
    rig r = make_rig(SPEC, N, SAT_TRAIN_PGD, 0, 1);
    float x[N * D];
    int32_t y[N];
    make_batch(x, y, N, 5);
    assert_int_equal(sat_train_compute(NULL, x, y, N, NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "sat_train_compute"));
    assert_int_equal(sat_train_apply(NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_last_error(), "sat_train_apply"));
    assert_int_equal(sat_train_compute(r.t, x, NULL, N, NULL), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_trainer_last_error(r.t), "sat_train_compute"));
    assert_int_equal(sat_train_compute(r.t, x, y, N + 1, NULL), SAT_E_SHAPE);
    assert_true(r.t->rng_counter == 0);
}

static void test_nonfinite_apply_is_rolled_back(void **st) {
    (void)st;
    rig r = make_rig(SPEC, N, SAT_TRAIN_PGD, 0, 1);
    float x[N * D];
    int32_t y[N];
    make_batch(x, y, N, 6);
    TU_CHECK(sat_train_step(r.t, x, y, N, NULL)); /* some momentum to restore */
    const int64_t np = sat_model_param_count(r.m);
    int64_t nopt = 0;
    const float *ostate = sat_optimizer_state(r.opt, &nopt);
    float *params = tu_alloc(sizeof(float) * (size_t)np), *opt = tu_alloc(sizeof(float) * (size_t)nopt);
    memcpy(params, sat_model_params(r.m), sizeof(float) * (size_t)np);
    memcpy(opt, ostate, sizeof(float) * (size_t)nopt);
    sat_model_grads(r.m)[np / 2] = NAN; /* as a broken reduction would leave it */
    assert_int_equal(sat_train_apply(r.t), SAT_E_NUMERIC);
    assert_non_null(strstr(sat_trainer_last_error(r.t), "sat_train_apply"));
    assert_same_floats(params, sat_model_params(r.m), np);
    assert_same_floats(opt, sat_optimizer_state(r.opt, &nopt), nopt);
    assert_int_equal(sat_optimizer_step_count(r.opt), 1);
}

static void test_rank_options_checked(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 7);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, N);
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(m, NULL, &opt));
    tu_own_optimizer(opt);
    const int32_t bad[][2] = {{2, 2}, {-1, 2}, {0, 0}, {0, -3}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sat_trainer_opts o;
        sat_trainer_opts_init(&o, sizeof o);
        assert_int_equal(o.rank, 0);
        assert_int_equal(o.rank_count, 1);
        o.rank = bad[i][0];
        o.rank_count = bad[i][1];
        sat_trainer *t = (sat_trainer *)1;
        assert_int_equal(sat_trainer_create(m, opt, &o, &t), SAT_E_INVALID_ARG);
        assert_null(t);
        assert_non_null(strstr(sat_last_error(), "rank"));
    }
}

/* Rank r of 2 with n examples crafts, bit for bit, rows r*n.. of one process's 2n batch;
 * the two ranks' starts differ on equal inputs. */
static void test_rank_random_starts(void **st) {
    (void)st;
    float x[2 * N * D];
    int32_t y[2 * N];
    make_batch(x, y, 2 * N, 8);
    rig one = make_rig(SPEC_NO_BN, 2 * N, SAT_TRAIN_PGD, 0, 1);
    TU_CHECK(sat_train_compute(one.t, x, y, 2 * N, NULL));
    float *same_input = tu_alloc(sizeof(float) * N * D);
    for (int32_t r = 0; r < 2; r++) {
        rig part = make_rig(SPEC_NO_BN, N, SAT_TRAIN_PGD, r, 2);
        TU_CHECK(sat_train_compute(part.t, x + r * N * D, y + r * N, N, NULL));
        assert_same_floats(one.t->x_adv + r * N * D, part.t->x_adv, N * D);
        rig again = make_rig(SPEC_NO_BN, N, SAT_TRAIN_PGD, r, 2);
        TU_CHECK(sat_train_compute(again.t, x, y, N, NULL));
        if (r == 0) memcpy(same_input, again.t->x_adv, sizeof(float) * N * D);
        else assert_memory_not_equal(same_input, again.t->x_adv, sizeof(float) * N * D);
    }
}

/* Data parallelism in one process: 2 ranks x N, gradients averaged, against 1 rank x 2N.
 * Only the order of the float sums differs, so the weights agree to rounding. */
static void test_two_ranks_match_one(void **st) {
    (void)st;
    rig one = make_rig(SPEC_NO_BN, 2 * N, SAT_TRAIN_PGD, 0, 1);
    rig rank[2] = {make_rig(SPEC_NO_BN, N, SAT_TRAIN_PGD, 0, 2), make_rig(SPEC_NO_BN, N, SAT_TRAIN_PGD, 1, 2)};
    const int64_t np = sat_model_param_count(one.m);
    float *sum = tu_alloc(sizeof(float) * (size_t)np);
    for (int s = 0; s < STEPS; s++) {
        float x[2 * N * D];
        int32_t y[2 * N];
        make_batch(x, y, 2 * N, 20 + (uint64_t)s);
        TU_CHECK(sat_train_step(one.t, x, y, 2 * N, NULL));
        for (int r = 0; r < 2; r++) TU_CHECK(sat_train_compute(rank[r].t, x + r * N * D, y + r * N, N, NULL));
        for (int64_t i = 0; i < np; i++)
            sum[i] = 0.5f * (sat_model_grads(rank[0].m)[i] + sat_model_grads(rank[1].m)[i]);
        for (int r = 0; r < 2; r++) {
            memcpy(sat_model_grads(rank[r].m), sum, sizeof(float) * (size_t)np);
            TU_CHECK(sat_train_apply(rank[r].t));
        }
    }
    const float *p1 = sat_model_params(one.m);
    assert_same_floats(sat_model_params(rank[0].m), sat_model_params(rank[1].m), np);
    double worst = 0.0;
    for (int64_t i = 0; i < np; i++) {
        const double diff = fabs((double)p1[i] - (double)sat_model_params(rank[0].m)[i]);
        if (diff > worst) worst = diff;
    }
    assert_true(worst < 1e-5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compute_apply_equals_step),
        cmocka_unit_test(test_compute_leaves_the_weights),
        cmocka_unit_test(test_free_at_is_refused),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_nonfinite_apply_is_rolled_back),
        cmocka_unit_test(test_rank_options_checked),
        cmocka_unit_test(test_rank_random_starts),
        cmocka_unit_test(test_two_ranks_match_one),
    };
    return tu_run_group("test_train_split", tests, sizeof tests / sizeof tests[0]);
}
