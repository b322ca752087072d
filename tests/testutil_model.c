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
    return tu_own_model(m);
}

static void destroy_model(void *h) { sat_model_destroy(h); }
sat_model *tu_own_model(sat_model *model) { return tu_own(model, destroy_model); }
static void destroy_optimizer(void *h) { sat_optimizer_destroy(h); }
sat_optimizer *tu_own_optimizer(sat_optimizer *opt) { return tu_own(opt, destroy_optimizer); }
static void destroy_trainer(void *h) { sat_trainer_destroy(h); }
sat_trainer *tu_own_trainer(sat_trainer *trainer) { return tu_own(trainer, destroy_trainer); }
static void destroy_dataset(void *h) { sat_dataset_destroy(h); }
sat_dataset *tu_own_dataset(sat_dataset *ds) { return tu_own(ds, destroy_dataset); }
static void destroy_callback_model(void *h) { sat_callback_model_destroy(h); }
sat_callback_model *tu_own_callback_model(sat_callback_model *model) {
    return tu_own(model, destroy_callback_model);
}
