/* test_callback_model.c - attacks on a model the host implements in C: a linear classifier
 * z = W x + b given as callbacks must give the same adversarial examples as the equivalent
 * libsat model (dense layer with the same weights) for every attack and for the AutoAttack
 * sequence; without a gradient callback only Square runs; a model that hides its gradients
 * is caught by Square and flagged; a callback's failure stops the attack; bad options are
 * refused. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define D 16
#define NCLS 4
#define N 12
#define MB 5 /* max_batch: the attacks must split the batch into chunks */

typedef struct host_model {
    float w[NCLS * D], b[NCLS];
    int64_t largest_batch;
    int64_t logits_calls, grad_calls;
    int fail_after; /* the logits callback fails on this call (0: never) */
    int mask;       /* the gradient callback returns zeros: gradient masking */
} host_model;

static int32_t host_logits(void *user, const float *x, int64_t n, float *z) {
    host_model *h = user;
    if (n > h->largest_batch) h->largest_batch = n;
    if (h->fail_after && ++h->logits_calls >= h->fail_after) return 7;
    if (!h->fail_after) h->logits_calls++;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < NCLS; k++) {
            double s = h->b[k];
            for (int j = 0; j < D; j++) s += (double)h->w[k * D + j] * x[i * D + j];
            z[i * NCLS + k] = (float)s;
        }
    return 0;
}

static int32_t host_grad(void *user, const float *x, int64_t n, const float *dz, float *dx) {
    (void)x;
    host_model *h = user;
    h->grad_calls++;
    if (h->mask) {
        memset(dx, 0, sizeof(float) * (size_t)(n * D));
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++) {
            double s = 0.0;
            for (int k = 0; k < NCLS; k++) s += (double)dz[i * NCLS + k] * h->w[k * D + j];
            dx[i * D + j] = (float)s;
        }
    return 0;
}

/* Options that describe the host model h (1x4x4 inputs, NCLS classes, batches of MB). */
static sat_callback_model_opts host_opts(host_model *h, int with_grad) {
    sat_callback_model_opts o;
    TU_CHECK(sat_callback_model_opts_init(&o, sizeof o));
    assert_int_equal(o.max_batch, 128);
    o.channels = 1;
    o.height = 4;
    o.width = 4;
    o.num_classes = NCLS;
    o.max_batch = MB;
    o.logits_fn = host_logits;
    o.input_grad_fn = with_grad ? host_grad : NULL;
    o.user = h;
    return o;
}

static sat_callback_model *host_callback_model(sat_context *ctx, host_model *h, int with_grad) {
    const sat_callback_model_opts o = host_opts(h, with_grad);
    sat_callback_model *cm = NULL;
    TU_CHECK(sat_callback_model_create(ctx, &o, &cm));
    return tu_own_callback_model(cm);
}

/* The host model with random weights, its libsat twin, and N inputs labelled with the
 * model's own prediction (every example starts correct), with targets. */
typedef struct fixture {
    sat_context *ctx;
    host_model h;
    sat_model *m;
    float x[N * D];
    int32_t y[N], t[N];
} fixture;

static void setup(fixture *f) {
    f->ctx = tu_context(1, 3);
    memset(&f->h, 0, sizeof f->h);
    tu_fill_uniform(f->h.w, NCLS * D, -1.0f, 1.0f, 31);
    tu_fill_uniform(f->h.b, NCLS, -0.2f, 0.2f, 32);
    f->m = tu_model(f->ctx, "input 1 4 4\ndense 4\n", SAT_ACT_RELU, MB);
    memcpy(sat_model_params(f->m), f->h.w, sizeof f->h.w);
    memcpy(sat_model_params(f->m) + NCLS * D, f->h.b, sizeof f->h.b);
    tu_fill_uniform(f->x, N * D, 0.0f, 1.0f, 33);
    float z[N * NCLS];
    host_logits(&f->h, f->x, N, z);
    f->h.largest_batch = 0;
    f->h.logits_calls = 0;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int k = 1; k < NCLS; k++)
            if (z[i * NCLS + k] > z[i * NCLS + best]) best = k;
        f->y[i] = best;
        f->t[i] = (best + 1 + i % 3) % NCLS;
    }
}

static void test_same_result_as_libsat_model(void **state) {
    (void)state;
    fixture f;
    setup(&f);
    float a[N * D], b[N * D];
    sat_callback_model *cm = host_callback_model(f.ctx, &f.h, 1);
    static const struct {
        int32_t method, targeted, steps;
    } cases[] = {
        {SAT_ATTACK_FGSM, 0, 1},       {SAT_ATTACK_PGD, 0, 10},   {SAT_ATTACK_PGD, 1, 10},
        {SAT_ATTACK_APGD_CE, 0, 20},   {SAT_ATTACK_APGD_DLR, 1, 20}, {SAT_ATTACK_FAB, 0, 20},
        {SAT_ATTACK_FAB, 1, 20},       {SAT_ATTACK_SQUARE, 0, 200},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int32_t norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++) {
            sat_attack_opts o;
            TU_CHECK(sat_attack_opts_init(&o, sizeof o));
            o.method = cases[c].method;
            o.targeted = cases[c].targeted;
            o.steps = cases[c].steps;
            o.norm = norm;
            o.eps = norm == SAT_NORM_LINF ? 0.05f : 0.3f;
            o.seed = 5;
            TU_CHECK(sat_attack(f.m, &o, f.x, f.y, f.t, N, a, NULL));
            TU_CHECK(sat_callback_attack(cm, &o, f.x, f.y, f.t, N, b, NULL));
            const float diff = tu_max_abs_diff(a, b, N * D);
            if (!(diff <= 1e-3f)) /* float rounding of two ways to compute W x + b */
                fail_msg("method %d targeted %d norm %d: callback and libsat model differ by %g",
                         o.method, o.targeted, norm, (double)diff);
            /* the attack moved something: the comparison is not between two copies of x */
            assert_true(tu_max_abs_diff(a, f.x, N * D) > 0.0f || o.method == SAT_ATTACK_FAB);
        }
    assert_int_equal(f.h.largest_batch, MB);
    assert_true(f.h.grad_calls > 0);
}

static void autoattack(sat_callback_model *cm, sat_model *m, const float *x, const int32_t *y, int32_t version,
                       int32_t *outcome, sat_autoattack_result *r) {
    sat_autoattack_opts o;
    TU_CHECK(sat_autoattack_opts_init(&o, sizeof o));
    o.version = version;
    o.eps = 0.1f;
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    if (cm) TU_CHECK(sat_callback_autoattack(cm, &o, x, y, N, NULL, outcome, r));
    else TU_CHECK(sat_autoattack(m, &o, x, y, N, NULL, outcome, r));
}

/* The whole sequence on the host's model matches the sequence on the libsat twin, example
 * by example, in every version ("rand" averages 20 gradient passes of the callback model,
 * which may be randomised; this one is not, so the mean is the same gradient). */
static void test_autoattack_same_as_libsat_model(void **state) {
    (void)state;
    fixture f;
    setup(&f);
    int32_t oa[N], ob[N];
    sat_callback_model *cm = host_callback_model(f.ctx, &f.h, 1);
    for (int32_t version = SAT_AA_STANDARD; version <= SAT_AA_RAND; version++) {
        sat_autoattack_result ra, rb;
        autoattack(NULL, f.m, f.x, f.y, version, oa, &ra);
        autoattack(cm, f.m, f.x, f.y, version, ob, &rb);
        print_message("version %d: robust %.3f (libsat) %.3f (callbacks)\n", version, (double)ra.robust_accuracy,
                      (double)rb.robust_accuracy);
        assert_true(ra.robust_accuracy < ra.clean_accuracy); /* something to compare */
        assert_memory_equal(oa, ob, sizeof oa);
        assert_int_equal(ra.num_attacks, rb.num_attacks);
        assert_true(ra.robust_accuracy == rb.robust_accuracy);
        assert_int_equal(ra.flags, rb.flags);
    }
}

/* A model whose gradient callback hides the gradient (all zeros) defeats the gradient
 * attacks; Square, which needs logits only, breaks it anyway, and the result says so. */
static void test_masked_gradients_flagged(void **state) {
    (void)state;
    fixture f;
    setup(&f);
    int32_t outcome[N];
    sat_callback_model *cm = host_callback_model(f.ctx, &f.h, 1);
    sat_autoattack_result honest, masked;
    autoattack(cm, NULL, f.x, f.y, SAT_AA_STANDARD, outcome, &honest);
    assert_int_equal(honest.flags & (SAT_FLAG_ZERO_GRAD | SAT_FLAG_SQUARE_STRONGER), 0);
    f.h.mask = 1;
    autoattack(cm, NULL, f.x, f.y, SAT_AA_STANDARD, outcome, &masked);
    assert_true(masked.flags & SAT_FLAG_ZERO_GRAD);
    assert_true(masked.flags & SAT_FLAG_SQUARE_STRONGER);
    assert_true(masked.square_only > 0);
    int64_t by_square = 0;
    for (int i = 0; i < N; i++) by_square += outcome[i] == 3;
    assert_int_equal(by_square, masked.square_only);
    /* the gradient attacks saw a more robust model than there is */
    assert_true(masked.accuracy_after[2] > honest.robust_accuracy);
}

static void test_logits_only(void **state) {
    (void)state;
    fixture f;
    setup(&f);
    float a[N * D], b[N * D];
    sat_callback_model *cm = host_callback_model(f.ctx, &f.h, 0);
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    o.method = SAT_ATTACK_SQUARE;
    o.steps = 100;
    TU_CHECK(sat_callback_attack(cm, &o, f.x, f.y, NULL, N, a, NULL));
    TU_CHECK(sat_attack(f.m, &o, f.x, f.y, NULL, N, b, NULL));
    assert_true(tu_max_abs_diff(a, b, N * D) <= 1e-3f);
    /* gradient attacks are refused before anything runs, leaving x_adv alone */
    memcpy(b, f.x, sizeof b);
    for (int32_t method = SAT_ATTACK_FGSM; method <= SAT_ATTACK_FAB; method++) {
        o.method = method;
        f.h.logits_calls = 0;
        assert_int_equal(sat_callback_attack(cm, &o, f.x, f.y, f.t, N, b, NULL), SAT_E_UNSUPPORTED);
        assert_non_null(strstr(sat_callback_model_last_error(cm), "gradient"));
        assert_int_equal(f.h.logits_calls, 0);
        assert_memory_equal(b, f.x, sizeof b);
    }
}

static void test_callback_failure_aborts(void **state) {
    (void)state;
    fixture f;
    setup(&f);
    float a[N * D];
    sat_callback_model *cm = host_callback_model(f.ctx, &f.h, 1);
    f.h.fail_after = 3;
    sat_attack_opts o;
    TU_CHECK(sat_attack_opts_init(&o, sizeof o));
    assert_int_equal(sat_callback_attack(cm, &o, f.x, f.y, NULL, N, a, NULL), SAT_E_ABORTED);
    assert_non_null(strstr(sat_callback_model_last_error(cm), "returned 7"));
}

static void test_bad_options(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    host_model h;
    memset(&h, 0, sizeof h);
    const sat_callback_model_opts o = host_opts(&h, 1);
    sat_callback_model *cm = (sat_callback_model *)&h; /* must be reset to NULL on failure */
    sat_callback_model_opts bad = o;
    bad.logits_fn = NULL;
    assert_int_equal(sat_callback_model_create(ctx, &bad, &cm), SAT_E_INVALID_ARG);
    assert_null(cm);
    assert_non_null(strstr(sat_last_error(), "logits_fn"));
    bad = o;
    bad.height = 0;
    assert_int_equal(sat_callback_model_create(ctx, &bad, &cm), SAT_E_INVALID_ARG);
    bad = o;
    bad.num_classes = 1;
    assert_int_equal(sat_callback_model_create(ctx, &bad, &cm), SAT_E_INVALID_ARG);
    bad = o;
    bad.max_batch = 0;
    assert_int_equal(sat_callback_model_create(ctx, &bad, &cm), SAT_E_INVALID_ARG);
    assert_int_equal(sat_callback_model_create(ctx, NULL, &cm), SAT_E_INVALID_ARG);
    assert_int_equal(sat_callback_model_create(NULL, &o, &cm), SAT_E_INVALID_ARG);
    assert_int_equal(sat_callback_attack(NULL, NULL, NULL, NULL, NULL, 1, NULL, NULL), SAT_E_INVALID_ARG);
    TU_CHECK(sat_callback_model_create(ctx, &o, &cm));
    tu_own_callback_model(cm);
    float x[D] = {0}, xa[D];
    int32_t y = NCLS; /* out of range */
    assert_int_equal(sat_callback_attack(cm, NULL, x, &y, NULL, 1, xa, NULL), SAT_E_INVALID_ARG);
    assert_int_equal(h.logits_calls, 0);
    tu_release(cm);
    sat_callback_model_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_result_as_libsat_model),
        cmocka_unit_test(test_autoattack_same_as_libsat_model),
        cmocka_unit_test(test_masked_gradients_flagged),
        cmocka_unit_test(test_logits_only),
        cmocka_unit_test(test_callback_failure_aborts),
        cmocka_unit_test(test_bad_options),
    };
    return tu_run_group("test_callback_model", tests, sizeof tests / sizeof tests[0]);
}
