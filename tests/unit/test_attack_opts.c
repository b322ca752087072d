/* test_attack_opts.c - the attack API's contract: defaults, old and new struct sizes,
 * rejected arguments that leave x_adv untouched, and the per-step trace. */
#include "testutil.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define SPEC "input 1 3 3\ndense 8\nact\ndense 4\n"
#define N 6
#define SZ 9

typedef struct fixture {
    sat_context *ctx;
    sat_model *m;
    float x[N * SZ], xa[N * SZ], sentinel[N * SZ];
    int32_t y[N], t[N];
} fixture;

/* Per test: the context and model are registered, so they go with the test. */
static int setup(void **state) {
    static fixture f;
    f.ctx = tu_context(1, 3);
    f.m = tu_model(f.ctx, SPEC, SAT_ACT_SILU, 4);
    tu_fill_uniform(f.x, N * SZ, 0.0f, 1.0f, 5);
    for (int i = 0; i < N; i++) {
        f.y[i] = i % 4;
        f.t[i] = (i + 1) % 4;
    }
    for (int i = 0; i < N * SZ; i++) f.sentinel[i] = -7.0f;
    *state = &f;
    return 0;
}


static void test_defaults(void **state) {
    (void)state;
    sat_attack_opts o;
    memset(&o, 0xab, sizeof o);
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.method, SAT_ATTACK_PGD);
    assert_int_equal(o.norm, SAT_NORM_LINF);
    assert_int_equal(o.loss, SAT_LOSS_CE);
    assert_true(o.eps == 8.0f / 255.0f);
    assert_true(o.step_size == 0.0f);
    assert_int_equal(o.steps, 10);
    assert_int_equal(o.restarts, 1);
    assert_int_equal(o.random_start, 1);
    assert_int_equal(o.targeted, 0);
    assert_int_equal(o.bn_mode, -1);
    assert_true(o.seed == SAT_SEED_CONTEXT);
    assert_int_equal(sat_attack_opts_init(NULL, sizeof o), SAT_E_INVALID_ARG);
    assert_int_equal(sat_attack_opts_init(&o, 2), SAT_E_INVALID_ARG);
}

/* Expects `st` to be an error with a message and x_adv still holding the sentinel. */
static void expect_rejected(fixture *f, int32_t st, int32_t want, const char *what) {
    if (st != want) fail_msg("%s: status %d, expected %d", what, st, want);
    if (sat_model_last_error(f->m)[0] == '\0') fail_msg("%s: no error message", what);
    if (memcmp(f->xa, f->sentinel, sizeof f->xa) != 0) fail_msg("%s: x_adv was written", what);
}

static void test_struct_sizes(void **state) {
    fixture *f = *state;
    float full[N * SZ];
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, full, NULL));
    /* an older caller that does not know `seed`: the default is used */
    sat_attack_opts old;
    memset(&old, 0x5a, sizeof old);
    TU_CHECK(sat_attack_opts_init(&old, (uint32_t)offsetof(sat_attack_opts, seed)));
    assert_true(old.seed == 0x5a5a5a5a5a5a5a5aull); /* beyond its size: not touched */
    TU_CHECK(sat_attack(f->m, &old, f->x, f->y, NULL, N, f->xa, NULL));
    assert_true(memcmp(full, f->xa, sizeof full) == 0);
    /* NULL options mean the defaults too */
    TU_CHECK(sat_attack(f->m, NULL, f->x, f->y, NULL, N, f->xa, NULL));
    assert_true(memcmp(full, f->xa, sizeof full) == 0);
    /* a newer caller: zero tail accepted, non-zero tail rejected */
    struct {
        sat_attack_opts o;
        uint64_t extra;
    } big;
    TU_CHECK(sat_attack_opts_init(&big.o, sizeof big));
    TU_CHECK(sat_attack(f->m, &big.o, f->x, f->y, NULL, N, f->xa, NULL));
    big.extra = 1;
    memcpy(f->xa, f->sentinel, sizeof f->xa);
    expect_rejected(f, sat_attack(f->m, &big.o, f->x, f->y, NULL, N, f->xa, NULL), SAT_E_INVALID_ARG,
                    "non-zero tail");
}

typedef struct bad_case {
    const char *what;
    void (*set)(sat_attack_opts *o);
} bad_case;

static void neg_eps(sat_attack_opts *o) { o->eps = -0.1f; }
static void nan_eps(sat_attack_opts *o) { o->eps = NAN; }
static void big_eps(sat_attack_opts *o) { o->eps = 1.5f; }
static void zero_steps(sat_attack_opts *o) { o->steps = 0; }
static void zero_restarts(sat_attack_opts *o) { o->restarts = 0; }
static void inf_step(sat_attack_opts *o) { o->step_size = INFINITY; }
static void neg_step(sat_attack_opts *o) { o->step_size = -0.01f; }
static void nan_step(sat_attack_opts *o) { o->step_size = NAN; }
static void bad_method(sat_attack_opts *o) { o->method = 9; }
static void bad_norm(sat_attack_opts *o) { o->norm = 2; }
static void bad_loss(sat_attack_opts *o) { o->loss = -1; }
static void bad_bn(sat_attack_opts *o) { o->bn_mode = 2; }
static void bad_start(sat_attack_opts *o) { o->random_start = 3; }
static void targeted(sat_attack_opts *o) { o->targeted = 1; }
static void dlr(sat_attack_opts *o) { o->method = SAT_ATTACK_APGD_DLR; }

static void test_bad_options(void **state) {
    fixture *f = *state;
    const bad_case cases[] = {
        {"negative eps", neg_eps},  {"NaN eps", nan_eps},         {"eps > 1", big_eps},
        {"zero steps", zero_steps}, {"zero restarts", zero_restarts}, {"Inf step", inf_step},
        {"negative step", neg_step}, {"NaN step", nan_step},       {"unknown method", bad_method},
        {"unknown norm", bad_norm}, {"unknown loss", bad_loss},    {"bad bn_mode", bad_bn},
        {"bad random_start", bad_start}, {"targeted without targets", targeted},
        {"APGD-DLR without targets", dlr},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sat_attack_opts o;
        TU_CHECK(sat_attack_opts_init(&o, sizeof o));
        cases[i].set(&o);
        memcpy(f->xa, f->sentinel, sizeof f->xa);
        expect_rejected(f, sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, NULL), SAT_E_INVALID_ARG,
                        cases[i].what);
    }
    /* FGSM ignores steps, so zero steps are fine there */
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.method = SAT_ATTACK_FGSM;
    o.steps = 0;
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, NULL));
    /* an L2 radius may exceed 1 (it is a Euclidean length in pixel units) */
    o.norm = SAT_NORM_L2;
    o.eps = 2.0f;
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, NULL));
}

static void test_bad_data(void **state) {
    fixture *f = *state;
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    memcpy(f->xa, f->sentinel, sizeof f->xa);
    assert_int_equal(sat_attack(NULL, &o, f->x, f->y, NULL, N, f->xa, NULL), SAT_E_INVALID_ARG);
    expect_rejected(f, sat_attack(f->m, &o, NULL, f->y, NULL, N, f->xa, NULL), SAT_E_INVALID_ARG, "x NULL");
    expect_rejected(f, sat_attack(f->m, &o, f->x, NULL, NULL, N, f->xa, NULL), SAT_E_INVALID_ARG,
                    "labels NULL");
    assert_int_equal(sat_attack(f->m, &o, f->x, f->y, NULL, N, NULL, NULL), SAT_E_INVALID_ARG);
    expect_rejected(f, sat_attack(f->m, &o, f->x, f->y, NULL, 0, f->xa, NULL), SAT_E_SHAPE, "n = 0");
    float xn[N * SZ];
    memcpy(xn, f->x, sizeof xn);
    xn[N * SZ - 1] = NAN;
    expect_rejected(f, sat_attack(f->m, &o, xn, f->y, NULL, N, f->xa, NULL), SAT_E_NUMERIC, "NaN in x");
    int32_t y[N];
    memcpy(y, f->y, sizeof y);
    y[3] = 4;
    expect_rejected(f, sat_attack(f->m, &o, f->x, y, NULL, N, f->xa, NULL), SAT_E_INVALID_ARG, "label 4");
    o.targeted = 1;
    memcpy(y, f->t, sizeof y);
    y[2] = -1;
    expect_rejected(f, sat_attack(f->m, &o, f->x, f->y, y, N, f->xa, NULL), SAT_E_INVALID_ARG, "target -1");
    /* sat_pgd_attack takes no targets */
    expect_rejected(f, sat_pgd_attack(f->m, &o, f->x, f->y, N, f->xa, NULL), SAT_E_INVALID_ARG,
                    "targeted sat_pgd_attack");
    /* targets equal to the labels are allowed */
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, f->y, N, f->xa, NULL));
    /* APGD-DLR needs 4 classes */
    sat_model *m3 = tu_model(f->ctx, "input 1 3 3\ndense 3\n", SAT_ACT_SILU, 4);
    int32_t y3[N] = {0, 1, 2, 0, 1, 2}, t3[N] = {1, 2, 0, 1, 2, 0};
    o.method = SAT_ATTACK_APGD_DLR;
    assert_int_equal(sat_attack(m3, &o, f->x, y3, t3, N, f->xa, NULL), SAT_E_INVALID_ARG);
    assert_true(strstr(sat_model_last_error(m3), "4 classes") != NULL);
}

/* sat_pgd_attack is sat_attack with the method forced to PGD. */
static void test_pgd_entry(void **state) {
    fixture *f = *state;
    float a[N * SZ], b[N * SZ];
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.method = SAT_ATTACK_FGSM;
    TU_CHECK(sat_pgd_attack(f->m, &o, f->x, f->y, N, a, NULL));
    o.method = SAT_ATTACK_PGD;
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, b, NULL));
    assert_true(memcmp(a, b, sizeof a) == 0);
}

/* Options from sat_attack_opts_init draw their random starts from the context's seed (3 in
 * the fixture), as NULL-free callers of the other option structs do; another seed draws
 * others. */
static void test_default_seed_is_the_contexts(void **state) {
    fixture *f = *state;
    float a[N * SZ], b[N * SZ], c[N * SZ];
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.steps = 2;
    o.step_size = 0.001f; /* small steps: the random start shows in the result */
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, a, NULL));
    o.seed = 3;
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, b, NULL));
    o.seed = 4;
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, c, NULL));
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

static void test_trace(void **state) {
    fixture *f = *state;
    enum { CAP = 64 };
    float loss[CAP], acc[CAP], loss2[CAP], acc2[CAP];
    sat_attack_trace tr;
    memset(&tr, 0, sizeof tr);
    tr.struct_size = sizeof tr;
    tr.capacity = CAP;
    tr.loss = loss;
    tr.accuracy = acc;
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.steps = 7;
    o.restarts = 3;
    o.eps = 0.2f;
    TU_CHECK(sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, &tr));
    assert_int_equal(tr.count, 21);
    for (int i = 0; i < 21; i++) {
        assert_true(isfinite(loss[i]));
        assert_true(acc[i] >= 0.0f && acc[i] <= 1.0f);
        /* accuracy is a multiple of 1/N */
        assert_true(fabsf(acc[i] * N - roundf(acc[i] * N)) < 1e-4f);
    }
    /* the same model with room for the whole batch */
    sat_model *m8 = tu_model(f->ctx, SPEC, SAT_ACT_SILU, 8);
    memcpy(sat_model_params(m8), sat_model_params(f->m), sizeof(float) * (size_t)sat_model_param_count(m8));
    float clean[N];
    TU_CHECK(sat_model_input_gradient(m8, f->x, f->y, N, clean, NULL, NULL));
    double cmean = 0;
    for (int i = 0; i < N; i++) cmean += clean[i] / N;
    assert_true(loss[6] > cmean); /* the attack raised the loss */
    /* same trace when the batch is split differently (max_batch 4 vs 8) */
    tr.loss = loss2;
    tr.accuracy = acc2;
    float xa8[N * SZ];
    TU_CHECK(sat_attack(m8, &o, f->x, f->y, NULL, N, xa8, &tr));
    assert_true(memcmp(xa8, f->xa, sizeof xa8) == 0);
    assert_true(tu_max_abs_diff(loss, loss2, 21) < 1e-6f);
    assert_true(memcmp(acc, acc2, sizeof(float) * 21) == 0);
    /* FGSM: one entry per restart; capacity caps the count; capacity 0 needs no arrays */
    o.method = SAT_ATTACK_FGSM;
    TU_CHECK(sat_attack(m8, &o, f->x, f->y, NULL, N, xa8, &tr));
    assert_int_equal(tr.count, 3);
    /* with a single iterate the entry describes x_adv itself */
    o.restarts = 1;
    o.random_start = 0;
    TU_CHECK(sat_attack(m8, &o, f->x, f->y, NULL, N, xa8, &tr));
    assert_int_equal(tr.count, 1);
    float l[N], z[N * 4];
    TU_CHECK(sat_model_input_gradient(m8, xa8, f->y, N, l, NULL, z));
    double lm = 0;
    int correct = 0;
    for (int i = 0; i < N; i++) {
        lm += l[i] / N;
        int b = 0;
        for (int c = 1; c < 4; c++)
            if (z[i * 4 + c] > z[i * 4 + b]) b = c;
        correct += b == f->y[i];
    }
    assert_true(fabs(loss2[0] - lm) < 1e-5);
    assert_true(acc2[0] == (float)correct / N);
    o.restarts = 3;
    o.random_start = 1;
    o.method = SAT_ATTACK_PGD;
    tr.capacity = 5;
    TU_CHECK(sat_attack(m8, &o, f->x, f->y, NULL, N, xa8, &tr));
    assert_int_equal(tr.count, 5);
    tr.capacity = 0;
    tr.loss = tr.accuracy = NULL;
    TU_CHECK(sat_attack(m8, &o, f->x, f->y, NULL, N, xa8, &tr));
    assert_int_equal(tr.count, 0);
    /* bad traces are rejected before anything is written */
    tr.capacity = 4;
    memcpy(f->xa, f->sentinel, sizeof f->xa);
    expect_rejected(f, sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, &tr), SAT_E_INVALID_ARG,
                    "trace without arrays");
    tr.capacity = -1;
    expect_rejected(f, sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, &tr), SAT_E_INVALID_ARG,
                    "negative capacity");
    tr.struct_size = 4;
    expect_rejected(f, sat_attack(f->m, &o, f->x, f->y, NULL, N, f->xa, &tr), SAT_E_INVALID_ARG,
                    "small trace struct");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup(test_struct_sizes, setup),
        cmocka_unit_test_setup(test_bad_options, setup),
        cmocka_unit_test_setup(test_bad_data, setup),
        cmocka_unit_test_setup(test_pgd_entry, setup),
        cmocka_unit_test_setup(test_trace, setup),
        cmocka_unit_test_setup(test_default_seed_is_the_contexts, setup),
    };
    return tu_run_group("test_attack_opts", tests, sizeof tests / sizeof tests[0]);
}
