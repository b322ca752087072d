/* test_concurrency.c - two handles on two threads at once: one thread trains a model while
 * another attacks a second model, with the two models on their own contexts or on one
 * shared context, the worker pool at 1 to 4 threads and the thread count changed between
 * rounds. The results must be those of the same calls made one after the other on one
 * thread, bit for bit. The ThreadSanitizer build runs this program too (tests/sanitize),
 * where any data race fails it. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

static const char *const SPEC =
    "input 1 8 8\nconv 4 k=3 p=1\nbn\nact\nmaxpool k=2\nflatten\ndense 16\nact\ndense 3\n";
enum { N = 6, PIX = 64, PHASES = 4, STEPS = 2 };

/* The pool's thread count in each phase: 1..4, changed between phases. */
static const int32_t SCHEDULE[PHASES] = {1, 3, 2, 4};

typedef struct pair {
    sat_context *ctx_a, *ctx_b; /* the same context when shared */
    sat_model *trained, *attacked;
    sat_trainer *trainer;
    const float *x;
    const int32_t *labels;
    float *x_adv; /* PHASES * STEPS batches */
    int32_t train_status, attack_status;
    int phase;
} pair;

static void *train_main(void *arg) {
    pair *p = arg;
    for (int s = 0; s < STEPS && p->train_status == SAT_OK; s++)
        p->train_status = sat_train_step(p->trainer, p->x, p->labels, N, NULL);
    return NULL;
}

static void *attack_main(void *arg) {
    pair *p = arg;
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.eps = 0.1f;
    o.steps = 4;
    for (int s = 0; s < STEPS && p->attack_status == SAT_OK; s++) {
        o.seed = (uint64_t)(100 + p->phase * STEPS + s);
        p->attack_status = sat_pgd_attack(p->attacked, &o, p->x, p->labels, N,
                                          p->x_adv + (p->phase * STEPS + s) * N * PIX, NULL);
    }
    return NULL;
}

static sat_context *context(int32_t threads) {
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = threads;
    o.seed = 9;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    return tu_own_context(ctx);
}

static sat_model *model(sat_context *ctx, uint64_t seed) {
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.max_batch = N;
    o.seed = seed;
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, SPEC, &o, &m));
    return tu_own_model(m);
}

/* Builds the two models (and the trainer) on ctx_a and ctx_b. */
static void make_pair(pair *p, sat_context *a, sat_context *b, const float *x, const int32_t *y) {
    memset(p, 0, sizeof *p);
    p->ctx_a = a, p->ctx_b = b, p->x = x, p->labels = y;
    p->trained = model(a, 1);
    p->attacked = model(b, 2);
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(p->trained, NULL, &opt));
    tu_own_optimizer(opt);
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.steps = 3;
    to.seed = 4;
    TU_CHECK(sat_trainer_create(p->trained, opt, &to, &p->trainer));
    tu_own_trainer(p->trainer);
    p->x_adv = tu_alloc(sizeof(float) * PHASES * STEPS * N * PIX);
}

/* Runs every phase; concurrent: the training and the attacks on two threads at once. */
static void run_pair(pair *p, int concurrent, int change_threads) {
    for (p->phase = 0; p->phase < PHASES; p->phase++) {
        if (change_threads) {
            TU_CHECK(sat_context_set_num_threads(p->ctx_a, SCHEDULE[p->phase]));
            if (p->ctx_b != p->ctx_a)
                TU_CHECK(sat_context_set_num_threads(p->ctx_b, SCHEDULE[(p->phase + 1) % PHASES]));
        }
        if (concurrent) {
            pthread_t t, a;
            assert_int_equal(pthread_create(&t, NULL, train_main, p), 0);
            assert_int_equal(pthread_create(&a, NULL, attack_main, p), 0);
            assert_int_equal(pthread_join(t, NULL), 0);
            assert_int_equal(pthread_join(a, NULL), 0);
        } else {
            train_main(p);
            attack_main(p);
        }
        if (p->train_status) fail_msg("train: %d: %s", p->train_status, sat_trainer_last_error(p->trainer));
        if (p->attack_status)
            fail_msg("attack: %d: %s", p->attack_status, sat_model_last_error(p->attacked));
    }
}

static void assert_same(const pair *ref, const pair *p, const char *what) {
    int64_t np = sat_model_param_count(ref->trained), ns = sat_model_state_count(ref->trained);
    if (memcmp(sat_model_params(ref->trained), sat_model_params(p->trained), (size_t)np * sizeof(float)))
        fail_msg("%s: the trained parameters differ from one thread's", what);
    if (memcmp(sat_model_state(ref->trained), sat_model_state(p->trained), (size_t)ns * sizeof(float)))
        fail_msg("%s: the batch-norm statistics differ from one thread's", what);
    if (memcmp(ref->x_adv, p->x_adv, sizeof(float) * PHASES * STEPS * N * PIX))
        fail_msg("%s: the adversarial examples differ from one thread's", what);
}

typedef struct data {
    float x[N * PIX];
    int32_t y[N];
} data;

static data *make_data(void) {
    data *d = tu_alloc(sizeof *d);
    tu_fill_uniform(d->x, N * PIX, 0, 1, 21);
    for (int i = 0; i < N; i++) d->y[i] = i % 3;
    return d;
}

/* One thread, one context with one thread: the reference. */
static void reference(pair *ref, const data *d) {
    sat_context *c = context(1);
    make_pair(ref, c, c, d->x, d->y);
    run_pair(ref, 0, 0);
}

static void test_two_contexts(void **st) {
    (void)st;
    data *d = make_data();
    pair ref, p;
    reference(&ref, d);
    for (int32_t threads = 1; threads <= 4; threads++) {
        make_pair(&p, context(threads), context(5 - threads), d->x, d->y);
        run_pair(&p, 1, 0);
        assert_same(&ref, &p, "two contexts");
    }
    make_pair(&p, context(2), context(2), d->x, d->y);
    run_pair(&p, 1, 1);
    assert_same(&ref, &p, "two contexts, thread count changed between phases");
}

/* Progress reports from both threads at once: the callback is the host's, so it counts
 * atomically; the library's own bookkeeping of a report lives in each call. */
static int32_t count_report(void *user, const char *what, int64_t done, int64_t total) {
    (void)what, (void)done, (void)total;
    __atomic_fetch_add((int64_t *)user, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Different handles are independent even when they share their context: the pool serves
 * one call at a time and a call that finds it busy runs on its own thread. The context
 * also has a progress callback, which both threads' calls report to. */
static void test_shared_context(void **st) {
    (void)st;
    data *d = make_data();
    pair ref, p;
    reference(&ref, d);
    int64_t *reports = tu_alloc(sizeof *reports);
    for (int32_t threads = 1; threads <= 4; threads++) {
        sat_context *c = context(threads);
        TU_CHECK(sat_context_set_progress(c, count_report, reports));
        make_pair(&p, c, c, d->x, d->y);
        run_pair(&p, 1, 0);
        assert_same(&ref, &p, "one shared context");
    }
    sat_context *c = context(2);
    make_pair(&p, c, c, d->x, d->y);
    run_pair(&p, 1, 1);
    assert_same(&ref, &p, "one shared context, thread count changed between phases");
    assert_true(__atomic_load_n(reports, __ATOMIC_RELAXED) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_contexts),
        cmocka_unit_test(test_shared_context),
    };
    tu_set_watchdog(120); /* a broken lock hangs rather than fails */
    return tu_run_group("concurrency", tests, sizeof tests / sizeof *tests);
}
