/* test_pool.c - the worker pool runs every index exactly once, for any thread count and
 * many calls in a row, also when several threads submit to one pool at once, and the
 * context can change its thread count. */
#include "testutil.h"
#include "core/core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    int32_t *hits;
} job;

static void mark(void *arg, int64_t begin, int64_t end) {
    job *j = arg;
    for (int64_t i = begin; i < end; i++) j->hits[i]++;
}

static void test_every_index_once(void **st) {
    (void)st;
    const int32_t threads[] = {1, 2, 3, 8};
    for (int t = 0; t < 4; t++) {
        sat_context *ctx = tu_context(threads[t], 0);
        for (int64_t n = 0; n < 40; n++) {
            int32_t hits[40];
            memset(hits, 0, sizeof hits);
            job j = {hits};
            for (int rep = 0; rep < 25; rep++) sat__parallel_for(ctx, n, mark, &j);
            for (int64_t i = 0; i < n; i++) assert_int_equal(hits[i], 25);
            for (int64_t i = n; i < 40; i++) assert_int_equal(hits[i], 0);
        }
        tu_release(ctx);
    }
}

static void test_set_threads(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    TU_CHECK(sat_context_set_num_threads(ctx, 2));
    int32_t hits[10] = {0};
    job j = {hits};
    sat__parallel_for(ctx, 10, mark, &j);
    for (int i = 0; i < 10; i++) assert_int_equal(hits[i], 1);
    assert_int_equal(sat_context_set_num_threads(ctx, 0), SAT_E_INVALID_ARG);
    assert_int_equal(sat_context_set_num_threads(ctx, 257), SAT_E_INVALID_ARG);
    tu_release(ctx);
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = 0;
    sat_context *bad = NULL;
    assert_int_equal(sat_context_create(&o, &bad), SAT_E_INVALID_ARG);
    assert_null(bad);
    assert_non_null(strstr(sat_last_error(), "num_threads"));
}

/* An allocator that refuses everything once `refuse` is set. */
typedef struct gate {
    int refuse;
} gate;

static void *gate_alloc(void *user, size_t size, size_t alignment) {
    if (((gate *)user)->refuse) return NULL;
    void *p = NULL;
    return posix_memalign(&p, alignment < sizeof(void *) ? sizeof(void *) : alignment, size) ? NULL : p;
}

static void gate_free(void *user, void *ptr) {
    (void)user;
    free(ptr);
}

/* A thread count that cannot be had leaves the context with the pool it had. */
static void test_set_threads_failure_keeps_pool(void **st) {
    (void)st;
    static gate g;
    g.refuse = 0;
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = 3;
    o.alloc_fn = gate_alloc;
    o.dealloc_fn = gate_free;
    o.alloc_user = &g;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    tu_own_context(ctx);
    const struct sat_pool *before = ctx->pool;
    g.refuse = 1;
    assert_int_equal(sat_context_set_num_threads(ctx, 5), SAT_E_NOMEM);
    g.refuse = 0;
    assert_non_null(strstr(sat_context_last_error(ctx), "keeps its 3"));
    assert_int_equal(ctx->num_threads, 3);
    assert_ptr_equal(ctx->pool, before);
    int32_t hits[30] = {0};
    job j = {hits};
    sat__parallel_for(ctx, 30, mark, &j); /* the old workers still answer */
    for (int i = 0; i < 30; i++) assert_int_equal(hits[i], 1);
    TU_CHECK(sat_context_set_num_threads(ctx, 5));
    assert_int_equal(ctx->num_threads, 5);
}

/* Executions of one model on several threads share the context's pool: a call that finds
 * the pool busy runs its range itself. Every call still runs each index exactly once. */
typedef struct submitter {
    sat_context *ctx;
    int32_t hits[1000];
} submitter;

static void *submit_many(void *arg) {
    submitter *s = arg;
    job j = {s->hits};
    for (int rep = 0; rep < 200; rep++) sat__parallel_for(s->ctx, 1000, mark, &j);
    return NULL;
}

static void test_concurrent_submitters(void **st) {
    (void)st;
    sat_context *ctx = tu_context(3, 0);
    submitter *subs = tu_alloc(4 * sizeof *subs);
    pthread_t tid[4];
    for (int t = 0; t < 4; t++) {
        subs[t].ctx = ctx;
        assert_int_equal(pthread_create(&tid[t], NULL, submit_many, &subs[t]), 0);
    }
    for (int t = 0; t < 4; t++) pthread_join(tid[t], NULL);
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 1000; i++) assert_int_equal(subs[t].hits[i], 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_set_threads),
        cmocka_unit_test(test_set_threads_failure_keeps_pool),
        cmocka_unit_test(test_concurrent_submitters),
    };
    tu_set_watchdog(120); /* a broken lock hangs rather than fails */
    return tu_run_group("test_pool", tests, sizeof tests / sizeof tests[0]);
}
