/* testutil.h - helpers shared by the unit tests (cmocka is included here). */
#ifndef SAT_TESTUTIL_H
#define SAT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sat.h"

/* A context with `threads` threads; fails the test if creation fails. */
sat_context *tu_context(int32_t threads, uint64_t seed);
/* A model from spec with activation act (SAT_ACT_*); fails the test on error. */
sat_model *tu_model(sat_context *ctx, const char *spec, int32_t act, int32_t max_batch);
/* Deterministic pseudo-random fill: uniform in [lo, hi). */
void tu_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);
/* Max |a - b| over n values. */
float tu_max_abs_diff(const float *a, const float *b, int64_t n);
/* Relative error |a-b| / max(1e-3, |a|+|b|). */
double tu_rel_err(double a, double b);

/* Runs the cmocka group once on every kernel path this CPU can execute (each BLIS
 * configuration, the library's own micro-kernel, the direct convolutions: see
 * kernel_paths.h), names each path in the output and returns the number of failed tests.
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
