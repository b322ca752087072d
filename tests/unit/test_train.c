/* test_train.c - the adversarial trainer's contract: the TRADES loss and gradient against
 * finite differences, Free-AT replays against a separate train-plan backward, bit-identical
 * results for equal seeds (1 and 2 threads, and across a simulated checkpoint resume),
 * argument checks, and the rollback of a step that produces NaN. */
#include "testutil.h"

#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sat_optimizer *make_sgd(sat_model *m, float lr, float momentum, float wd) {
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = lr;
    o.momentum = momentum;
    o.weight_decay = wd;
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(m, &o, &opt));
    return tu_own_optimizer(opt);
}

static sat_trainer *make_trainer(sat_model *m, sat_optimizer *opt, const sat_trainer_opts *o) {
    sat_trainer *t = NULL;
    TU_CHECK(sat_trainer_create(m, opt, o, &t));
    return tu_own_trainer(t);
}

static void make_batch(float *x, int32_t *labels, int64_t n, int64_t size, int32_t classes, uint64_t seed) {
    tu_fill_uniform(x, n * size, 0.0f, 1.0f, seed);
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)((i * 7 + (int64_t)seed) % classes);
}

/* ---- TRADES: loss and parameter gradient against finite differences ---- */

static double trades_reference_loss(sat_model *m, const float *x, const float *xa, const int32_t *y, int64_t n,
                                    int32_t k, double beta, double smooth) {
    float z[64], zp[64];
    TU_CHECK(sat_model_forward(m, x, n, z));
    TU_CHECK(sat_model_forward(m, xa, n, zp));
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double lse = 0, lsep = 0, mx = -1e30, mxp = -1e30;
        for (int j = 0; j < k; j++) {
            mx = fmax(mx, z[i * k + j]);
            mxp = fmax(mxp, zp[i * k + j]);
        }
        for (int j = 0; j < k; j++) {
            lse += exp(z[i * k + j] - mx);
            lsep += exp(zp[i * k + j] - mxp);
        }
        lse = mx + log(lse);
        lsep = mxp + log(lsep);
        for (int j = 0; j < k; j++) {
            double lp = z[i * k + j] - lse, lq = zp[i * k + j] - lsep;
            double target = smooth / k + (j == y[i] ? 1.0 - smooth : 0.0);
            total += -target * lp + beta * exp(lp) * (lp - lq);
        }
    }
    return total / (double)n;
}

static void test_trades_gradient(void **st) {
    (void)st;
    enum { N = 4, K = 3, D = 6 };
    sat_context *ctx = tu_context(1, 5);
    sat_model *m = tu_model(ctx, "input 1 2 3\nflatten\ndense 5\nact\ndense 3\n", SAT_ACT_SILU, N);
    sat_optimizer *opt = make_sgd(m, 0.1f, 0.0f, 0.0f);
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.method = SAT_TRAIN_TRADES;
    o.trades_beta = 2.5f;
    o.label_smoothing = 0.1f;
    sat_trainer *t = make_trainer(m, opt, &o);
    float x[N * D], xa[N * D];
    int32_t y[N];
    make_batch(x, y, N, D, K, 1);
    tu_fill_uniform(xa, N * D, -0.2f, 0.2f, 2);
    for (int i = 0; i < N * D; i++) xa[i] += x[i];

    double loss = 0.0;
    int64_t cc = -1, ca = -1;
    TU_CHECK(sat__trades_loss_grad(t, x, xa, y, N, SAT__BN_TRAIN, &loss, &cc, &ca));
    assert_true(cc >= 0 && cc <= N && ca >= 0 && ca <= N);
    const double ref = trades_reference_loss(m, x, xa, y, N, K, 2.5, 0.1);
    assert_true(tu_rel_err(loss, ref) < 1e-5);
    /* the KL term matters: beta 0 gives a smaller loss here */
    assert_true(loss - trades_reference_loss(m, x, xa, y, N, K, 0.0, 0.1) > 1e-3);

    const int64_t np = sat_model_param_count(m);
    float *p = sat_model_params(m);
    float *grad = tu_alloc(sizeof(float) * (size_t)np);
    memcpy(grad, sat_model_grads(m), sizeof(float) * (size_t)np);
    double worst = 0.0, gmax = 0.0;
    for (int64_t i = 0; i < np; i++) {
        const float keep = p[i], h = 1e-2f;
        p[i] = keep + h;
        double lp = trades_reference_loss(m, x, xa, y, N, K, 2.5, 0.1);
        p[i] = keep - h;
        double lm = trades_reference_loss(m, x, xa, y, N, K, 2.5, 0.1);
        p[i] = keep;
        const double fd = (lp - lm) / (2.0 * h);
        worst = fmax(worst, fabs(fd - grad[i]));
        gmax = fmax(gmax, fabs(grad[i]));
    }
    if (!(worst < 2e-3 * fmax(1.0, gmax))) fail_msg("TRADES gradient off by %g (max |g| %g)", worst, gmax);
    assert_true(gmax > 1e-3);
}

/* ---- Free-AT: a replay's gradients are those of a train-plan backward on x + delta ---- */

static void test_free_replay_gradients(void **st) {
    (void)st;
    enum { N = 6, K = 3, D = 16 };
    sat_context *ctx = tu_context(1, 9);
    sat_model *m = tu_model(ctx, "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 3\n", SAT_ACT_SILU, 8);
    sat_optimizer *opt = make_sgd(m, 0.05f, 0.0f, 0.0f);
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.method = SAT_TRAIN_FREE;
    o.free_replays = 1;
    o.eps = 0.1f;
    o.label_smoothing = 0.05f;
    sat_trainer *t = make_trainer(m, opt, &o);
    float x[N * D], xin[N * D];
    int32_t y[N];
    make_batch(x, y, N, D, K, 3);
    const int64_t np = sat_model_param_count(m);

    TU_CHECK(sat_train_step(t, x, y, N, NULL)); /* delta 0 -> first ascent step */
    assert_int_equal(t->delta_n, N);
    int moved = 0;
    for (int i = 0; i < N * D; i++) {
        assert_true(fabsf(t->delta[i]) <= 0.1f);
        moved += t->delta[i] != 0.0f;
        const float v = x[i] + t->delta[i];
        xin[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
    }
    assert_true(moved > N * D / 2);

    sat_model *ref = NULL;
    TU_CHECK(sat_model_clone(m, &ref));
    tu_own_model(ref);
    float *p1 = tu_alloc(sizeof(float) * (size_t)np);
    memcpy(p1, sat_model_params(m), sizeof(float) * (size_t)np);
    sat_step_stats s;
    s.struct_size = sizeof s;
    TU_CHECK(sat_train_step(t, x, y, N, &s));
    float ref_loss = 0.0f;
    int64_t ref_correct = 0;
    TU_CHECK(sat_model_train_backward(ref, xin, y, N, 0.05f, &ref_loss, &ref_correct));
    const float *g = sat_model_grads(m), *gr = sat_model_grads(ref);
    assert_true(tu_max_abs_diff(g, gr, np) <= 1e-6f);
    assert_true(fabsf(s.loss - ref_loss) <= 1e-6f);
    assert_true(fabsf(s.adv_accuracy - (float)ref_correct / N) <= 1e-6f);
    assert_true(isnan(s.clean_accuracy));
    assert_true(s.lr == 0.05f);
    /* the running statistics moved exactly as the reference's did */
    assert_true(tu_max_abs_diff(sat_model_state(m), sat_model_state(ref), sat_model_state_count(m)) <= 1e-6f);
    /* the weights took one plain SGD step with that gradient */
    for (int64_t i = 0; i < np; i++) assert_true(fabsf(sat_model_params(m)[i] - (p1[i] - 0.05f * g[i])) <= 1e-6f);

    /* m replays per call = m optimizer steps */
    tu_release(t);
    o.free_replays = 3;
    t = make_trainer(m, opt, &o);
    const int64_t before = sat_optimizer_step_count(opt);
    TU_CHECK(sat_train_step(t, x, y, N, NULL));
    assert_int_equal(sat_optimizer_step_count(opt) - before, 3);
    /* a batch of another size starts again from a zero perturbation */
    TU_CHECK(sat_train_step(t, x, y, N - 1, NULL));
    assert_int_equal(t->delta_n, N - 1);
}

/* ---- determinism ---- */

#define DSPEC "input 1 8 8\nconv 4 k=3 p=1\nbn\nact\nmaxpool k=2\nflatten\ndense 16\nact\ndense 3\n"
enum { DN = 16, DD = 64, DK = 3, DSTEPS = 5 };

typedef struct run {
    sat_context *ctx;
    sat_model *m;
    sat_optimizer *opt;
    sat_trainer *t;
} run;

static void run_open(run *r, int32_t threads, int32_t method, uint64_t seed) {
    r->ctx = tu_context(threads, 1);
    r->m = tu_model(r->ctx, DSPEC, SAT_ACT_SILU, DN);
    r->opt = make_sgd(r->m, 0.05f, 0.9f, 5e-4f);
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.method = method;
    o.eps = 0.1f;
    o.steps = 3;
    o.seed = seed;
    r->t = make_trainer(r->m, r->opt, &o);
}

/* Releases a run early, for tests that open several in turn. */
static void run_close(run *r) {
    tu_release(r->t);
    tu_release(r->opt);
    tu_release(r->m);
    tu_release(r->ctx);
}

static void run_steps(run *r, int from, int to) {
    float x[DN * DD];
    int32_t y[DN];
    for (int s = from; s < to; s++) {
        make_batch(x, y, DN, DD, DK, 50 + (uint64_t)s);
        TU_CHECK(sat_train_step(r->t, x, y, DN, NULL));
    }
}

static void assert_same_model(run *a, run *b) {
    const int64_t np = sat_model_param_count(a->m), ns = sat_model_state_count(a->m);
    assert_memory_equal(sat_model_params(a->m), sat_model_params(b->m), sizeof(float) * (size_t)np);
    assert_memory_equal(sat_model_state(a->m), sat_model_state(b->m), sizeof(float) * (size_t)ns);
}

static void test_determinism(void **st) {
    (void)st;
    const int32_t methods[] = {SAT_TRAIN_PGD, SAT_TRAIN_TRADES};
    for (int k = 0; k < 2; k++) {
        run a, b, c, d;
        run_open(&a, 1, methods[k], 77);
        run_open(&b, 1, methods[k], 77);
        run_open(&c, 2, methods[k], 77);
        run_open(&d, 1, methods[k], 78);
        run_steps(&a, 0, DSTEPS);
        run_steps(&b, 0, DSTEPS);
        run_steps(&c, 0, DSTEPS);
        run_steps(&d, 0, DSTEPS);
        assert_same_model(&a, &b);
        assert_same_model(&a, &c);
        /* another seed gives other random starts, hence other weights */
        const int64_t np = sat_model_param_count(a.m);
        assert_true(tu_max_abs_diff(sat_model_params(a.m), sat_model_params(d.m), np) > 0.0f);
        assert_true(a.t->rng_counter == (int64_t)(DSTEPS * SAT__TRAIN_RNG_PER_STEP));
        run_close(&a);
        run_close(&b);
        run_close(&c);
        run_close(&d);
    }
}

/* What a checkpoint stores (parameters, statistics, optimizer state and step, trainer
 * seed and counter), restored into fresh handles, continues bit-exactly. */
static void test_resume(void **st) {
    (void)st;
    run full, first, second;
    run_open(&full, 1, SAT_TRAIN_PGD, 5);
    run_steps(&full, 0, DSTEPS);
    run_open(&first, 1, SAT_TRAIN_PGD, 5);
    run_steps(&first, 0, 2);
    run_open(&second, 1, SAT_TRAIN_PGD, 999); /* wrong seed, overwritten by the restore */
    const int64_t np = sat_model_param_count(first.m), ns = sat_model_state_count(first.m);
    memcpy(sat_model_params(second.m), sat_model_params(first.m), sizeof(float) * (size_t)np);
    memcpy(sat_model_state(second.m), sat_model_state(first.m), sizeof(float) * (size_t)ns);
    assert_true(first.opt->state_count == second.opt->state_count);
    memcpy(second.opt->state, first.opt->state, sizeof(float) * (size_t)first.opt->state_count);
    TU_CHECK(sat_optimizer_set_step_count(second.opt, sat_optimizer_step_count(first.opt)));
    second.t->seed = first.t->seed;
    second.t->rng_counter = first.t->rng_counter;
    run_steps(&second, 2, DSTEPS);
    assert_same_model(&full, &second);
}

/* ---- the training attacks: they stay in the ball and in [0,1], raise the loss, and never
 * touch the running statistics, whatever the batch-norm mode ---- */

static float mean_loss(sat_model *m, const float *x, const int32_t *y, int64_t n) {
    float losses[DN];
    TU_CHECK(sat_model_input_gradient(m, x, y, n, losses, NULL, NULL));
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += losses[i];
    return (float)(s / (double)n);
}

static double mean_kl(sat_model *m, const float *x, const float *xa, int64_t n) {
    float z[DN * DK], za[DN * DK];
    TU_CHECK(sat_model_forward(m, x, n, z));
    TU_CHECK(sat_model_forward(m, xa, n, za));
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += sat__kl_softmax(z + i * DK, za + i * DK, DK, 1.0, NULL, NULL);
    return s / (double)n;
}

static void test_craft_bounds(void **st) {
    (void)st;
    for (int norm = SAT_NORM_LINF; norm <= SAT_NORM_L2; norm++)
        for (int bn = 0; bn <= 1; bn++) {
            run r;
            run_open(&r, 1, SAT_TRAIN_PGD, 3);
            run_steps(&r, 0, 2); /* running statistics away from their initial values */
            r.t->opts.norm = norm;
            r.t->opts.eps = norm == SAT_NORM_L2 ? 0.5f : 0.05f;
            r.t->opts.attack_bn_mode = bn;
            const float eps = r.t->opts.eps;
            float x[DN * DD], xa[DN * DD], state[256];
            int32_t y[DN];
            make_batch(x, y, DN, DD, DK, 12);
            const int64_t ns = sat_model_state_count(r.m);
            memcpy(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
            for (int random = 0; random <= 1; random++) {
                TU_CHECK(sat__craft_ce(r.t, x, y, DN, 5, 2.5f * eps / 5, random, xa));
                for (int64_t e = 0; e < DN; e++) {
                    double l2 = 0, linf = 0;
                    for (int64_t j = 0; j < DD; j++) {
                        const float v = xa[e * DD + j], d = v - x[e * DD + j];
                        assert_true(v >= 0.0f && v <= 1.0f);
                        l2 += (double)d * d;
                        linf = fmax(linf, fabs(d));
                    }
                    assert_true((norm == SAT_NORM_L2 ? sqrt(l2) : linf) <= eps * (1 + 1e-5));
                    assert_true(linf > 0.0);
                }
                assert_true(mean_loss(r.m, xa, y, DN) > mean_loss(r.m, x, y, DN));
            }
            TU_CHECK(sat__craft_kl(r.t, x, y, DN, 3, 2.5f * eps / 3, xa));
            for (int64_t i = 0; i < DN * DD; i++) assert_true(xa[i] >= 0.0f && xa[i] <= 1.0f);
            /* the KL attack finds a larger KL(p(x) || p(x_adv)) than a random point of the
             * sphere (Linf: a random corner) does */
            float xr[DN * DD], dir[DN * DD];
            tu_fill_uniform(dir, DN * DD, -1.0f, 1.0f, 31);
            for (int64_t e = 0; e < DN; e++) {
                double ss = 0;
                for (int64_t j = 0; j < DD; j++) ss += (double)dir[e * DD + j] * dir[e * DD + j];
                for (int64_t j = 0; j < DD; j++) {
                    const float g = dir[e * DD + j];
                    const float step = norm == SAT_NORM_L2 ? (float)(eps * g / sqrt(ss)) : (g > 0 ? eps : -eps);
                    xr[e * DD + j] = fminf(fmaxf(x[e * DD + j] + step, 0.0f), 1.0f);
                }
            }
            if (bn == 0) assert_true(mean_kl(r.m, x, xa, DN) > mean_kl(r.m, x, xr, DN));
            assert_memory_equal(state, sat_model_state(r.m), sizeof(float) * (size_t)ns);
            assert_int_equal(sat__attack_bn(r.t), bn ? SAT__BN_BATCH : SAT__BN_INFER);
            run_close(&r);
        }
}

/* ---- argument checks and rollback ---- */

typedef struct snap {
    float params[4096], state[256], opt[8192];
    int64_t step, counter;
} snap;

static void take(run *r, snap *s) {
    int64_t c = 0;
    const float *os = sat_optimizer_state(r->opt, &c);
    assert_true(sat_model_param_count(r->m) <= 4096 && c <= 8192 && sat_model_state_count(r->m) <= 256);
    memcpy(s->params, sat_model_params(r->m), sizeof(float) * (size_t)sat_model_param_count(r->m));
    memcpy(s->state, sat_model_state(r->m), sizeof(float) * (size_t)sat_model_state_count(r->m));
    memcpy(s->opt, os, sizeof(float) * (size_t)c);
    s->step = sat_optimizer_step_count(r->opt);
    s->counter = r->t->rng_counter;
}

static void assert_unchanged(run *r, const snap *s) {
    int64_t c = 0;
    const float *os = sat_optimizer_state(r->opt, &c);
    assert_memory_equal(s->params, sat_model_params(r->m), sizeof(float) * (size_t)sat_model_param_count(r->m));
    assert_memory_equal(s->state, sat_model_state(r->m), sizeof(float) * (size_t)sat_model_state_count(r->m));
    assert_memory_equal(s->opt, os, sizeof(float) * (size_t)c);
    assert_true(s->step == sat_optimizer_step_count(r->opt));
    assert_true(s->counter == r->t->rng_counter);
}

static void test_bad_batches(void **st) {
    (void)st;
    const int32_t methods[] = {SAT_TRAIN_STANDARD, SAT_TRAIN_PGD, SAT_TRAIN_FAST, SAT_TRAIN_FREE, SAT_TRAIN_TRADES};
    for (int k = 0; k < 5; k++) {
        run r;
        run_open(&r, 1, methods[k], 1);
        run_steps(&r, 0, 1); /* non-trivial optimizer state and statistics */
        snap *s = tu_alloc(sizeof *s);
        take(&r, s);
        float x[(DN + 1) * DD];
        int32_t y[DN + 1];
        make_batch(x, y, DN + 1, DD, DK, 4);
        sat_step_stats stats;
        stats.struct_size = sizeof stats;
        stats.loss = 123.0f;

        x[5] = NAN;
        assert_int_equal(sat_train_step(r.t, x, y, DN, &stats), SAT_E_NUMERIC);
        assert_non_null(strstr(sat_trainer_last_error(r.t), "NaN"));
        x[5] = 0.5f;
        assert_int_equal(sat_train_step(r.t, x, y, DN + 1, &stats), SAT_E_SHAPE);
        assert_int_equal(sat_train_step(r.t, x, y, 0, &stats), SAT_E_SHAPE);
        assert_int_equal(sat_train_step(r.t, x, NULL, DN, &stats), SAT_E_INVALID_ARG);
        assert_int_equal(sat_train_step(r.t, NULL, y, DN, &stats), SAT_E_INVALID_ARG);
        y[3] = DK;
        assert_int_equal(sat_train_step(r.t, x, y, DN, &stats), SAT_E_INVALID_ARG);
        y[3] = -1;
        assert_int_equal(sat_train_step(r.t, x, y, DN, &stats), SAT_E_INVALID_ARG);
        y[3] = 0;
        assert_int_equal(sat_train_step(NULL, x, y, DN, &stats), SAT_E_INVALID_ARG);
        assert_true(stats.loss == 123.0f); /* outputs untouched on failure */
        assert_unchanged(&r, s);

        /* NaN produced inside the step: a huge weight overflows the logits to Inf. */
        float *p = sat_model_params(r.m);
        const int64_t np = sat_model_param_count(r.m);
        for (int64_t i = np - 60; i < np - 3; i++) p[i] = 3e38f;
        take(&r, s);
        assert_int_equal(sat_train_step(r.t, x, y, DN, &stats), SAT_E_NUMERIC);
        assert_true(strlen(sat_trainer_last_error(r.t)) > 0);
        assert_true(stats.loss == 123.0f);
        assert_unchanged(&r, s);
        tu_free(s);
        run_close(&r);
    }
}

static void test_stats(void **st) {
    (void)st;
    run r;
    run_open(&r, 1, SAT_TRAIN_PGD, 1);
    float x[DN * DD];
    int32_t y[DN];
    make_batch(x, y, DN, DD, DK, 8);
    sat_step_stats s;
    s.struct_size = sizeof s;
    TU_CHECK(sat_train_step(r.t, x, y, DN, &s));
    assert_true(s.loss > 0.0f && isfinite(s.loss));
    assert_true(s.adv_accuracy >= 0.0f && s.adv_accuracy <= 1.0f);
    assert_true(isnan(s.clean_accuracy));
    assert_true(s.lr == 0.05f);
    /* an older, shorter stats struct gets only its own fields */
    struct {
        sat_step_stats s;
        float guard;
    } small;
    memset(&small, 0, sizeof small);
    small.s.struct_size = (uint32_t)offsetof(sat_step_stats, clean_accuracy);
    small.s.clean_accuracy = 42.0f;
    TU_CHECK(sat_train_step(r.t, x, y, DN, &small.s));
    assert_true(small.s.clean_accuracy == 42.0f && small.s.struct_size == offsetof(sat_step_stats, clean_accuracy));
    assert_true(small.s.loss > 0.0f);
    run_close(&r);

    /* with a clean fraction the clean accuracy is measured */
    run_open(&r, 1, SAT_TRAIN_PGD, 1);
    tu_release(r.t);
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.clean_fraction = 0.5f;
    r.t = make_trainer(r.m, r.opt, &o);
    TU_CHECK(sat_train_step(r.t, x, y, DN, &s));
    assert_true(s.clean_accuracy >= 0.0f && s.clean_accuracy <= 1.0f);
}

typedef void (*mutate_fn)(sat_trainer_opts *o);
static void m_method(sat_trainer_opts *o) { o->method = 5; }
static void m_norm(sat_trainer_opts *o) { o->norm = 2; }
static void m_eps0(sat_trainer_opts *o) { o->eps = 0.0f; }
static void m_epsnan(sat_trainer_opts *o) { o->eps = NAN; }
static void m_eps2(sat_trainer_opts *o) { o->eps = 2.0f; }
static void m_step(sat_trainer_opts *o) { o->step_size = -0.1f; }
static void m_stepnan(sat_trainer_opts *o) { o->step_size = NAN; }
static void m_stepinf(sat_trainer_opts *o) { o->step_size = INFINITY; }
static void m_steps(sat_trainer_opts *o) { o->steps = 0; }
static void m_rs(sat_trainer_opts *o) { o->random_start = 2; }
static void m_cf(sat_trainer_opts *o) { o->clean_fraction = 1.5f; }
static void m_cfnan(sat_trainer_opts *o) { o->clean_fraction = NAN; }
static void m_cffree(sat_trainer_opts *o) { o->method = SAT_TRAIN_FREE; o->clean_fraction = 0.5f; }
static void m_bn(sat_trainer_opts *o) { o->attack_bn_mode = 2; }
static void m_ls(sat_trainer_opts *o) { o->label_smoothing = 1.0f; }
static void m_lsnan(sat_trainer_opts *o) { o->label_smoothing = NAN; }
static void m_rep(sat_trainer_opts *o) { o->free_replays = 0; }
static void m_beta(sat_trainer_opts *o) { o->trades_beta = -1.0f; }

/* NULL options and options from sat_trainer_opts_init train alike: both take the context's
 * seed; another seed trains another model. */
static void test_default_seed_is_the_contexts(void **st) {
    (void)st;
    run r[3];
    for (int k = 0; k < 3; k++) {
        r[k].ctx = tu_context(1, 21);
        r[k].m = tu_model(r[k].ctx, DSPEC, SAT_ACT_SILU, DN);
        r[k].opt = make_sgd(r[k].m, 0.05f, 0.9f, 5e-4f);
        sat_trainer_opts o;
        sat_trainer_opts_init(&o, sizeof o);
        if (k == 2) o.seed = 22;
        r[k].t = make_trainer(r[k].m, r[k].opt, k == 0 ? NULL : &o);
        run_steps(&r[k], 0, 2);
    }
    assert_same_model(&r[0], &r[1]);
    assert_memory_not_equal(sat_model_params(r[0].m), sat_model_params(r[2].m),
                            sizeof(float) * (size_t)sat_model_param_count(r[0].m));
}

static void test_bad_options(void **st) {
    (void)st;
    sat_trainer_opts o;
    TU_CHECK(sat_trainer_opts_init(&o, sizeof o));
    assert_int_equal(o.method, SAT_TRAIN_PGD);
    assert_int_equal(o.norm, SAT_NORM_LINF);
    assert_true(o.eps == 8.0f / 255.0f && o.step_size == 0.0f && o.steps == 7 && o.random_start == 1);
    assert_true(o.clean_fraction == 0.0f && o.attack_bn_mode == -1 && o.label_smoothing == 0.0f);
    assert_true(o.free_replays == 4 && o.trades_beta == 6.0f && o.seed == SAT_SEED_CONTEXT);

    run r;
    run_open(&r, 1, SAT_TRAIN_PGD, 1);
    const mutate_fn bad[] = {m_method, m_norm, m_eps0, m_epsnan, m_eps2, m_step, m_stepnan, m_stepinf, m_steps, m_rs,
                             m_cf, m_cfnan, m_cffree, m_bn, m_ls, m_lsnan, m_rep, m_beta};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sat_trainer_opts_init(&o, sizeof o);
        bad[i](&o);
        sat_trainer *t = (sat_trainer *)&o;
        int32_t s = sat_trainer_create(r.m, r.opt, &o, &t);
        if (s == SAT_OK) tu_own_trainer(t);
        if (s != SAT_E_INVALID_ARG) fail_msg("case %zu: status %d", i, s);
        assert_null(t);
        assert_true(strlen(sat_last_error()) > 0);
    }
    sat_trainer *t = NULL;
    assert_int_equal(sat_trainer_create(NULL, r.opt, NULL, &t), SAT_E_INVALID_ARG);
    assert_int_equal(sat_trainer_create(r.m, NULL, NULL, &t), SAT_E_INVALID_ARG);
    assert_int_equal(sat_trainer_create(r.m, r.opt, NULL, NULL), SAT_E_INVALID_ARG);
    /* an optimizer of another model */
    sat_model *other = tu_model(r.ctx, DSPEC, SAT_ACT_RELU, 4);
    assert_int_equal(sat_trainer_create(other, r.opt, NULL, &t), SAT_E_INVALID_ARG);
    assert_null(t);
    tu_release(other);
    /* NULL opts: defaults with the context's seed */
    TU_CHECK(sat_trainer_create(r.m, r.opt, NULL, &t));
    tu_own_trainer(t);
    assert_true(t->seed == r.ctx->seed);
    tu_release(t);
    sat_trainer_destroy(NULL);
    assert_string_equal(sat_trainer_last_error(NULL), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trades_gradient), cmocka_unit_test(test_free_replay_gradients),
        cmocka_unit_test(test_bad_batches),     cmocka_unit_test(test_stats),
        cmocka_unit_test(test_bad_options),     cmocka_unit_test(test_craft_bounds),
        cmocka_unit_test(test_default_seed_is_the_contexts),
    };
    const struct CMUnitTest every_path[] = {cmocka_unit_test(test_determinism), cmocka_unit_test(test_resume)};
    const int failed = tu_run_group("test_train", tests, sizeof tests / sizeof tests[0]);
    return failed + tu_run_on_every_path("test_train", every_path, sizeof every_path / sizeof every_path[0]);
}
