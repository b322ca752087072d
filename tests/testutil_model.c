/* testutil_model.c - model helpers for the unit tests (separate object so kernel-only
 * tests do not pull in the model API). */
#include "testutil.h"

sat_model *tu_model(sat_context *ctx, const char *spec, int32_t act, int32_t max_batch) {
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = act;
    o.max_batch = max_batch;
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, spec, &o, &m));
    return m;
}

