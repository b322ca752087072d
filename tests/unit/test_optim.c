/* test_optim.c - optimizers and learning-rate schedules: SGD (momentum, Nesterov, weight
 * decay) and Adam/AdamW against a hand computation in double on a tiny model, the decay
 * mask, the refusal of non-finite gradients, each schedule's closed form, and option
 * validation. */
#include "testutil.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define SPEC "input 1 1 3\nflatten\ndense 4\nact\ndense 2\n"
#define STEPS 4

typedef struct fixture {
    sat_context *ctx;
    sat_model *model;
    int64_t np;
    uint8_t mask[64];
} fixture;

static void setup(fixture *f) {
    f->ctx = tu_context(1, 3);
    f->model = tu_model(f->ctx, SPEC, SAT_ACT_RELU, 4);
    f->np = sat_model_param_count(f->model);
    assert_true(f->np == 3 * 4 + 4 + 4 * 2 + 2);
    TU_CHECK(sat_model_decay_mask(f->model, f->mask));
    int weights = 0;
    for (int64_t i = 0; i < f->np; i++) weights += f->mask[i];
    assert_int_equal(weights, 3 * 4 + 4 * 2); /* biases are excluded */
    tu_fill_uniform(sat_model_params(f->model), f->np, -1.0f, 1.0f, 11);
}

/* Releases the fixture early, for tests that make several in turn. */
static void teardown(fixture *f) {
    tu_release(f->model);
    tu_release(f->ctx);
}

/* Gradient of step s: a fixed pseudo-random pattern per step. */
static void set_grads(fixture *f, int s) {
    tu_fill_uniform(sat_model_grads(f->model), f->np, -2.0f, 2.0f, 100 + (uint64_t)s);
}

static sat_optimizer *make_opt(fixture *f, const sat_optimizer_opts *o) {
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(f->model, o, &opt));
    return tu_own_optimizer(opt);
}

static void check_sgd(int nesterov, float momentum, int decay_biases) {
    fixture f;
    setup(&f);
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = 0.05f;
    o.momentum = momentum;
    o.nesterov = nesterov;
    o.weight_decay = 0.01f;
    o.decay_biases = decay_biases;
    sat_optimizer *opt = make_opt(&f, &o);
    double p[64], buf[64] = {0};
    const float *params = sat_model_params(f.model);
    for (int64_t i = 0; i < f.np; i++) p[i] = params[i];
    for (int s = 0; s < STEPS; s++) {
        set_grads(&f, s);
        const float *g = sat_model_grads(f.model);
        for (int64_t i = 0; i < f.np; i++) {
            double d = g[i] + ((decay_biases || f.mask[i]) ? 0.01 * p[i] : 0.0);
            if (momentum > 0) {
                buf[i] = momentum * buf[i] + d;
                d = nesterov ? d + momentum * buf[i] : buf[i];
            }
            p[i] -= 0.05 * d;
        }
        TU_CHECK(sat_optimizer_step(opt));
    }
    assert_int_equal(sat_optimizer_step_count(opt), STEPS);
    for (int64_t i = 0; i < f.np; i++) assert_true(fabs(params[i] - p[i]) < 1e-5);
    int64_t count = -1;
    const float *state = sat_optimizer_state(opt, &count);
    assert_true(count == (momentum > 0 ? f.np : 0));
    for (int64_t i = 0; i < count; i++) assert_true(fabs(state[i] - buf[i]) < 1e-5);
    tu_release(opt);
    teardown(&f);
}

static void test_sgd(void **st) {
    (void)st;
    check_sgd(0, 0.0f, 0);
    check_sgd(0, 0.9f, 0);
    check_sgd(1, 0.9f, 0);
    check_sgd(1, 0.5f, 1);
}

static void check_adam(int kind, float wd) {
    fixture f;
    setup(&f);
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.kind = kind;
    o.lr = 0.01f;
    o.weight_decay = wd;
    o.beta1 = 0.8f;
    o.beta2 = 0.99f;
    o.adam_eps = 1e-6f;
    sat_optimizer *opt = make_opt(&f, &o);
    double p[64], mm[64] = {0}, vv[64] = {0};
    const float *params = sat_model_params(f.model);
    for (int64_t i = 0; i < f.np; i++) p[i] = params[i];
    for (int s = 0; s < STEPS; s++) {
        set_grads(&f, s);
        const float *g = sat_model_grads(f.model);
        const double t = s + 1;
        for (int64_t i = 0; i < f.np; i++) {
            double gi = g[i];
            if (f.mask[i]) {
                if (kind == SAT_OPT_ADAMW)
                    p[i] -= 0.01 * wd * p[i];
                else
                    gi += wd * p[i];
            }
            mm[i] = 0.8 * mm[i] + 0.2 * gi;
            vv[i] = 0.99 * vv[i] + 0.01 * gi * gi;
            const double mh = mm[i] / (1 - pow(0.8, t)), vh = vv[i] / (1 - pow(0.99, t));
            p[i] -= 0.01 * mh / (sqrt(vh) + 1e-6);
        }
        TU_CHECK(sat_optimizer_step(opt));
    }
    for (int64_t i = 0; i < f.np; i++) assert_true(fabs(params[i] - p[i]) < 2e-5);
    int64_t count = 0;
    const float *state = sat_optimizer_state(opt, &count);
    assert_true(count == 2 * f.np);
    for (int64_t i = 0; i < f.np; i++) {
        assert_true(fabs(state[i] - mm[i]) < 1e-5);
        assert_true(fabs(state[f.np + i] - vv[i]) < 1e-5);
    }
    tu_release(opt);
    teardown(&f);
}

static void test_adam(void **st) {
    (void)st;
    check_adam(SAT_OPT_ADAM, 0.0f);
    check_adam(SAT_OPT_ADAM, 0.1f);
    check_adam(SAT_OPT_ADAMW, 0.1f);
}

/* With a zero gradient and plain SGD, decay alone moves the parameters: weights shrink by
 * (1 - lr wd), biases stay put unless decay_biases. */
static void test_no_decay_on_biases(void **st) {
    (void)st;
    for (int db = 0; db <= 1; db++) {
        fixture f;
        setup(&f);
        sat_optimizer_opts o;
        sat_optimizer_opts_init(&o, sizeof o);
        o.lr = 0.5f;
        o.momentum = 0.0f;
        o.weight_decay = 0.2f;
        o.decay_biases = db;
        sat_optimizer *opt = make_opt(&f, &o);
        float before[64];
        float *params = sat_model_params(f.model);
        memcpy(before, params, sizeof(float) * (size_t)f.np);
        memset(sat_model_grads(f.model), 0, sizeof(float) * (size_t)f.np);
        TU_CHECK(sat_optimizer_step(opt));
        int biases = 0;
        for (int64_t i = 0; i < f.np; i++) {
            if (f.mask[i] || db)
                assert_true(fabsf(params[i] - 0.9f * before[i]) < 1e-6f);
            else {
                biases++;
                assert_true(params[i] == before[i]);
            }
        }
        assert_int_equal(biases, db ? 0 : 6);
        tu_release(opt);
        teardown(&f);
    }
}

/* An optimizer after one good step (non-zero state to protect), with copies of the
 * parameters and state to check a refused step against. */
typedef struct kept {
    float params[64], state[128];
    int64_t count;
} kept;

static sat_optimizer *stepped(fixture *f, const sat_optimizer_opts *o, kept *k) {
    sat_optimizer *opt = make_opt(f, o);
    set_grads(f, 0);
    TU_CHECK(sat_optimizer_step(opt));
    memcpy(k->params, sat_model_params(f->model), sizeof(float) * (size_t)f->np);
    const float *sv = sat_optimizer_state(opt, &k->count);
    assert_true(k->count <= 128);
    memcpy(k->state, sv, sizeof(float) * (size_t)k->count);
    return opt;
}

/* The step is refused with a message containing `what` and changes nothing. */
static void assert_refused(fixture *f, sat_optimizer *opt, const kept *k, const char *what) {
    assert_int_equal(sat_optimizer_step(opt), SAT_E_NUMERIC);
    assert_non_null(strstr(sat_optimizer_last_error(opt), what));
    int64_t count = 0;
    const float *sv = sat_optimizer_state(opt, &count);
    assert_int_equal(count, k->count);
    assert_memory_equal(k->params, sat_model_params(f->model), sizeof(float) * (size_t)f->np);
    assert_memory_equal(k->state, sv, sizeof(float) * (size_t)count);
    assert_int_equal(sat_optimizer_step_count(opt), 1);
}

static void test_nonfinite_gradient(void **st) {
    (void)st;
    const int kinds[] = {SAT_OPT_SGD, SAT_OPT_ADAM, SAT_OPT_ADAMW};
    for (int k = 0; k < 3; k++) {
        fixture f;
        setup(&f);
        sat_optimizer_opts o;
        sat_optimizer_opts_init(&o, sizeof o);
        o.kind = kinds[k];
        kept before;
        sat_optimizer *opt = stepped(&f, &o, &before);
        for (int bad = 0; bad < 2; bad++) {
            set_grads(&f, 1);
            sat_model_grads(f.model)[f.np - 1 - bad * 5] = bad ? INFINITY : NAN;
            assert_refused(&f, opt, &before, "NaN or Inf");
        }
        tu_release(opt);
        teardown(&f);
    }
}

/* Finite gradients whose update overflows: SGD's step lr * d and Adam's second moment g^2
 * become Inf. The step must refuse and leave parameters, state and step count alone. */
static void test_overflowing_update(void **st) {
    (void)st;
    const int kinds[] = {SAT_OPT_SGD, SAT_OPT_ADAM, SAT_OPT_ADAMW};
    for (int k = 0; k < 3; k++) {
        fixture f;
        setup(&f);
        sat_optimizer_opts o;
        sat_optimizer_opts_init(&o, sizeof o);
        o.kind = kinds[k];
        o.lr = 10.0f;
        o.momentum = 0.9f;
        kept before;
        sat_optimizer *opt = stepped(&f, &o, &before);
        set_grads(&f, 1);
        sat_model_grads(f.model)[2] = 3e38f;
        assert_refused(&f, opt, &before, "would make");
        /* and the next good step is the one it would have been */
        set_grads(&f, 2);
        TU_CHECK(sat_optimizer_step(opt));
        assert_int_equal(sat_optimizer_step_count(opt), 2);
        tu_release(opt);
        teardown(&f);
    }
}

static float lr_at(sat_optimizer *opt, int64_t step) {
    TU_CHECK(sat_optimizer_set_step_count(opt, step));
    return sat_optimizer_lr(opt);
}

static void expect_lr(sat_optimizer *opt, int64_t step, double want) {
    float got = lr_at(opt, step);
    if (!(fabs(got - want) <= 1e-6 * (1.0 + fabs(want))))
        fail_msg("lr at step %lld: got %.9g, want %.9g", (long long)step, (double)got, want);
}

static void test_schedules(void **st) {
    (void)st;
    fixture f;
    setup(&f);
    const double PI = 3.14159265358979323846;
    sat_optimizer_opts o;
    sat_optimizer *opt;

    /* constant with 4 warm-up steps: lr (t+1)/4 then lr */
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = 0.2f;
    o.warmup_steps = 4;
    opt = make_opt(&f, &o);
    assert_true(fabsf(sat_optimizer_lr(opt) - 0.05f) < 1e-7f); /* a new optimizer is at step 0 */
    expect_lr(opt, 0, 0.05);
    expect_lr(opt, 2, 0.15);
    expect_lr(opt, 3, 0.2);
    expect_lr(opt, 1000, 0.2);
    /* a step advances the schedule */
    TU_CHECK(sat_optimizer_set_step_count(opt, 1));
    memset(sat_model_grads(f.model), 0, sizeof(float) * (size_t)f.np);
    TU_CHECK(sat_optimizer_step(opt));
    assert_int_equal(sat_optimizer_step_count(opt), 2);
    assert_true(fabsf(sat_optimizer_lr(opt) - 0.15f) < 1e-7f);
    tu_release(opt);

    /* step: gamma at each milestone */
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = 0.1f;
    o.schedule = SAT_SCHED_STEP;
    o.gamma = 0.5f;
    o.num_milestones = 2;
    o.milestones[0] = 10;
    o.milestones[1] = 25;
    opt = make_opt(&f, &o);
    expect_lr(opt, 0, 0.1);
    expect_lr(opt, 9, 0.1);
    expect_lr(opt, 10, 0.05);
    expect_lr(opt, 24, 0.05);
    expect_lr(opt, 25, 0.025);
    expect_lr(opt, 500, 0.025);
    tu_release(opt);

    /* cosine to 0 over 100 steps, with 10 warm-up steps multiplying it */
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = 0.4f;
    o.schedule = SAT_SCHED_COSINE;
    o.total_steps = 100;
    o.warmup_steps = 10;
    opt = make_opt(&f, &o);
    for (int64_t t = 0; t < 120; t += 7) {
        double c = t < 100 ? 0.5 * (1 + cos(PI * (double)t / 100.0)) : 0.0;
        double w = t < 10 ? (double)(t + 1) / 10.0 : 1.0;
        expect_lr(opt, t, 0.4 * c * w);
    }
    expect_lr(opt, 50, 0.2);
    expect_lr(opt, 99, 0.4 * 0.5 * (1 + cos(PI * 0.99)));
    expect_lr(opt, 100, 0.0);
    tu_release(opt);

    /* one-cycle: 0 -> lr at 0.4*200 = 80 -> 0 at 200, evaluated at t+1 */
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = 1.0f;
    o.schedule = SAT_SCHED_ONECYCLE;
    o.total_steps = 200;
    opt = make_opt(&f, &o);
    expect_lr(opt, 0, 1.0 / 80.0);
    expect_lr(opt, 39, 0.5);
    expect_lr(opt, 79, 1.0);
    expect_lr(opt, 139, 0.5);
    expect_lr(opt, 198, 1.0 / 120.0);
    expect_lr(opt, 199, 0.0);
    expect_lr(opt, 300, 0.0);
    tu_release(opt);
    teardown(&f);
}

/* A caller compiled against an older, shorter struct: fields beyond its size take the
 * defaults whatever the bytes there; a longer struct with a non-zero tail is refused. */
static void test_struct_size(void **st) {
    (void)st;
    fixture f;
    setup(&f);
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = 0.05f;
    o.schedule = 99; /* invalid, but beyond the old size */
    o.struct_size = (uint32_t)offsetof(sat_optimizer_opts, schedule);
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(f.model, &o, &opt));
    tu_own_optimizer(opt);
    expect_lr(opt, 12345, 0.05); /* constant schedule from the defaults */
    tu_release(opt);

    /* init with a short size leaves the caller's tail alone */
    unsigned char raw[sizeof(sat_optimizer_opts) + 16];
    memset(raw, 0xAB, sizeof raw);
    TU_CHECK(sat_optimizer_opts_init((sat_optimizer_opts *)(void *)raw, 8));
    assert_int_equal(raw[8], 0xAB);

    struct {
        sat_optimizer_opts o;
        uint64_t extra;
    } big;
    memset(&big, 0, sizeof big);
    sat_optimizer_opts_init(&big.o, sizeof big);
    TU_CHECK(sat_optimizer_create(f.model, &big.o, &opt)); /* zero tail: accepted */
    sat_optimizer_destroy(opt);
    big.extra = 1;
    assert_int_equal(sat_optimizer_create(f.model, &big.o, &opt), SAT_E_INVALID_ARG);
    assert_null(opt);
    teardown(&f);
}

typedef void (*mutate_fn)(sat_optimizer_opts *o);
static void m_lr0(sat_optimizer_opts *o) { o->lr = 0.0f; }
static void m_lrneg(sat_optimizer_opts *o) { o->lr = -0.1f; }
static void m_lrnan(sat_optimizer_opts *o) { o->lr = NAN; }
static void m_lrinf(sat_optimizer_opts *o) { o->lr = INFINITY; }
static void m_mom1(sat_optimizer_opts *o) { o->momentum = 1.0f; }
static void m_momneg(sat_optimizer_opts *o) { o->momentum = -0.1f; }
static void m_momnan(sat_optimizer_opts *o) { o->momentum = NAN; }
static void m_kind(sat_optimizer_opts *o) { o->kind = 3; }
static void m_nest(sat_optimizer_opts *o) { o->nesterov = 1; o->momentum = 0.0f; }
static void m_wd(sat_optimizer_opts *o) { o->weight_decay = -1e-4f; }
static void m_wdnan(sat_optimizer_opts *o) { o->weight_decay = NAN; }
static void m_b1(sat_optimizer_opts *o) { o->kind = SAT_OPT_ADAM; o->beta1 = 1.0f; }
static void m_b2(sat_optimizer_opts *o) { o->beta2 = NAN; }
static void m_aeps(sat_optimizer_opts *o) { o->adam_eps = 0.0f; }
static void m_sched(sat_optimizer_opts *o) { o->schedule = 4; }
static void m_cos(sat_optimizer_opts *o) { o->schedule = SAT_SCHED_COSINE; }
static void m_one(sat_optimizer_opts *o) { o->schedule = SAT_SCHED_ONECYCLE; }
static void m_peak(sat_optimizer_opts *o) { o->schedule = SAT_SCHED_ONECYCLE; o->total_steps = 10; o->peak_frac = 1.0f; }
static void m_warm(sat_optimizer_opts *o) { o->warmup_steps = -1; }
static void m_mile(sat_optimizer_opts *o) {
    o->schedule = SAT_SCHED_STEP;
    o->num_milestones = 3;
    o->milestones[0] = 5;
    o->milestones[1] = 9;
    o->milestones[2] = 9;
}
static void m_milen(sat_optimizer_opts *o) { o->schedule = SAT_SCHED_STEP; o->num_milestones = SAT_MAX_MILESTONES + 1; }
static void m_gamma(sat_optimizer_opts *o) { o->schedule = SAT_SCHED_STEP; o->gamma = 0.0f; }
static void m_db(sat_optimizer_opts *o) { o->decay_biases = 2; }

static void test_bad_options(void **st) {
    (void)st;
    fixture f;
    setup(&f);
    const mutate_fn bad[] = {m_lr0, m_lrneg, m_lrnan, m_lrinf, m_mom1, m_momneg, m_momnan, m_kind,
                             m_nest, m_wd, m_wdnan, m_b1, m_b2, m_aeps, m_sched, m_cos, m_one,
                             m_peak, m_warm, m_mile, m_milen, m_gamma, m_db};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sat_optimizer_opts o;
        sat_optimizer_opts_init(&o, sizeof o);
        bad[i](&o);
        sat_optimizer *opt = (sat_optimizer *)&o; /* must be reset to NULL */
        int32_t s = sat_optimizer_create(f.model, &o, &opt);
        if (s == SAT_OK) tu_own_optimizer(opt);
        if (s != SAT_E_INVALID_ARG) fail_msg("case %zu: status %d", i, s);
        assert_null(opt);
        assert_true(strlen(sat_last_error()) > 0);
    }
    sat_optimizer *opt = NULL;
    assert_int_equal(sat_optimizer_create(NULL, NULL, &opt), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_create(f.model, NULL, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_step(NULL), SAT_E_INVALID_ARG);
    assert_true(isnan(sat_optimizer_lr(NULL)));
    assert_int_equal(sat_optimizer_set_step_count(NULL, 1), SAT_E_INVALID_ARG);
    sat_optimizer_destroy(NULL);
    TU_CHECK(sat_optimizer_create(f.model, NULL, &opt)); /* NULL opts: defaults */
    tu_own_optimizer(opt);
    assert_true(fabsf(sat_optimizer_lr(opt) - 0.1f) < 1e-7f);
    assert_int_equal(sat_optimizer_set_step_count(opt, -1), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_step_count(opt), 0);
    tu_release(opt);
    teardown(&f);
}

static void test_defaults(void **st) {
    (void)st;
    sat_optimizer_opts o;
    TU_CHECK(sat_optimizer_opts_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.kind, SAT_OPT_SGD);
    assert_true(o.lr == 0.1f && o.momentum == 0.9f && o.weight_decay == 5e-4f);
    assert_true(o.beta1 == 0.9f && o.beta2 == 0.999f && o.adam_eps == 1e-8f);
    assert_true(o.peak_frac == 0.4f && o.gamma == 0.1f);
    assert_int_equal(o.schedule, SAT_SCHED_CONSTANT);
    assert_int_equal(sat_optimizer_opts_init(NULL, sizeof o), SAT_E_INVALID_ARG);
    assert_int_equal(sat_optimizer_opts_init(&o, 2), SAT_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adam),              cmocka_unit_test(test_no_decay_on_biases),
        cmocka_unit_test(test_nonfinite_gradient), cmocka_unit_test(test_overflowing_update),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_struct_size),       cmocka_unit_test(test_bad_options),
    };
    return tu_run_group("test_optim", tests, sizeof tests / sizeof tests[0]);
}
