/* testutil.h - helpers shared by the unit tests (cmocka is included here). */
#ifndef SAT_TESTUTIL_H
#define SAT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sat.h"

/* Test-scoped resources.
 *
 * A failing cmocka assertion leaves the test by longjmp, so clean-up code after it never
 * runs, and under AddressSanitizer the leaks would bury the failure. So a test does not
 * free what it allocates or creates itself: it registers it here, and the teardown that
 * tu_run_group and tu_run_on_every_path put on every test releases everything registered
 * during the test, pass or fail, newest first (a trainer before its optimizer and model,
 * a model before its context). A test's own teardown, if it has one, runs after that.
 *
 *   float *x = tu_alloc(n * sizeof *x);          zeroed, released with the test
 *   sat_context *ctx = tu_context(1, 0);         registered
 *   sat_model *m = tu_model(ctx, spec, act, 8);  registered
 *   TU_CHECK(sat_trainer_create(m, opt, &o, &tr));
 *   tu_own_trainer(tr);                          any other handle
 *   tu_release(m);                               early, e.g. to check what destroy does
 */
typedef void (*tu_destroy_fn)(void *handle);
/* Registers handle to be released with destroy; returns it. NULL is not registered. */
void *tu_own(void *handle, tu_destroy_fn destroy);
/* Releases a registered handle now (NULL: nothing); fails the test if it is not registered. */
void tu_release(void *handle);
/* Releases everything registered, newest first (the teardown does this). */
void tu_release_all(void);
/* `bytes` zeroed bytes owned by the test; fails the test if there is no memory. */
void *tu_alloc(size_t bytes);
/* The whole file at path in a tu_alloc block (one zero byte past the end), its length in
 * *size; fails the test if it cannot be read. */
unsigned char *tu_read_file(const char *path, size_t *size);
/* Releases a tu_alloc block early (tu_release under the name that pairs with tu_alloc). */
void tu_free(void *p);
/* tu_own with the library's destroy function of each handle type; each returns its argument. */
sat_context *tu_own_context(sat_context *ctx);
sat_model *tu_own_model(sat_model *model);
sat_optimizer *tu_own_optimizer(sat_optimizer *opt);
sat_trainer *tu_own_trainer(sat_trainer *trainer);
sat_dataset *tu_own_dataset(sat_dataset *ds);
sat_callback_model *tu_own_callback_model(sat_callback_model *model);
/* Memory the library handed out (sat_free). */
void *tu_own_sat_mem(void *p);

/* Runs a cmocka group with the release above on every test; returns the number of failed
 * tests. What a test's setup registers is released with the test; a test's own teardown
 * runs after the release, so it can still remove what the setup made outside the
 * registry (a context the tests' models were built on, a temporary directory). Every
 * unit test program runs its tests through this or tu_run_on_every_path. */
int tu_run_group(const char *name, const struct CMUnitTest *tests, size_t count);

/* From now on, a test of tu_run_group that runs longer than `seconds` (setup included)
 * ends the program with a message naming it: for tests whose bug would be a deadlock
 * rather than a failed assertion. 0 switches it off. Uses SIGALRM. */
void tu_set_watchdog(unsigned seconds);

/* A registered context with `threads` threads; fails the test if creation fails. */
sat_context *tu_context(int32_t threads, uint64_t seed);
/* A registered model from spec with activation act (SAT_ACT_*); fails the test on error. */
sat_model *tu_model(sat_context *ctx, const char *spec, int32_t act, int32_t max_batch);
/* Every byte a call could change in a model, an optimizer over it and a data set, to check
 * that a failed call left its handles as they were. Blocks are tu_alloc'd. */
typedef struct tu_snapshot {
    float *params, *state, *opt_state, *images, *lr_scale;
    int32_t *labels;
    uint8_t *frozen;
    int64_t np, ns, no, nd, pixels, step;
    float base_lr;
    char spec[256];
} tu_snapshot;
void tu_snapshot_take(tu_snapshot *s, sat_model *model, sat_optimizer *opt, const sat_dataset *ds);
void tu_snapshot_drop(tu_snapshot *s);
/* 1 if a and b hold the same bytes. */
int tu_snapshot_same(const tu_snapshot *a, const tu_snapshot *b);
/* Deterministic pseudo-random fill: uniform in [lo, hi). */
void tu_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);
/* Max |a - b| over n values. */
float tu_max_abs_diff(const float *a, const float *b, int64_t n);
/* max |v[i]| (the scale a tolerance is taken relative to). */
float tu_max_abs(const float *v, int64_t n);
/* Relative error |a-b| / max(1e-3, |a|+|b|). */
double tu_rel_err(double a, double b);

/* Runs the cmocka group once on every kernel path this CPU can execute (each BLIS
 * configuration, the library's own micro-kernel, the direct convolutions: see
 * kernel_paths.h) with tu_run_group's teardown, names each path in the output and returns
 * the number of failed tests.
 * Models must be created inside the tests: a model keeps the convolution path it was
 * created with. */
int tu_run_on_every_path(const char *group, const struct CMUnitTest *tests, size_t count);

#define TU_CHECK(call)                                                                     \
    do {                                                                                   \
        int32_t tu_st_ = (call);                                                           \
        if (tu_st_ != SAT_OK) fail_msg("%s -> %d (%s): %s", #call, tu_st_,                 \
                                       sat_status_string(tu_st_), sat_last_error());       \
    } while (0)

#endif
