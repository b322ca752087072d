/* test_pool.c - the worker pool runs every index exactly once, for any thread count and
 * many calls in a row, and the context can change its thread count. */
#include "testutil.h"
#include "core/core.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_set_threads),
    };
    return tu_run_group("test_pool", tests, sizeof tests / sizeof tests[0]);
}
