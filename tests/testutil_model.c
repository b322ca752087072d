/* testutil_model.c - model helpers for the unit tests (separate object so kernel-only
 * tests do not pull in the model API). */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

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

void tu_snapshot_take(tu_snapshot *s, sat_model *model, sat_optimizer *opt, const sat_dataset *ds) {
    int32_t c = 0, h = 0, w = 0, classes = 0;
    TU_CHECK(sat_dataset_shape(ds, &c, &h, &w, &classes));
    s->pixels = (int64_t)c * h * w;
    s->np = sat_model_param_count(model);
    s->ns = sat_model_state_count(model);
    const float *os = sat_optimizer_state(opt, &s->no);
    s->nd = sat_dataset_size(ds);
    s->step = sat_optimizer_step_count(opt);
    /* + 1: a model without state or an empty data set still gets a block. */
    s->params = tu_alloc((size_t)(s->np + 1) * sizeof(float));
    s->state = tu_alloc((size_t)(s->ns + 1) * sizeof(float));
    s->opt_state = tu_alloc((size_t)(s->no + 1) * sizeof(float));
    s->images = tu_alloc((size_t)(s->nd * s->pixels + 1) * sizeof(float));
    s->labels = tu_alloc((size_t)(s->nd + 1) * sizeof(int32_t));
    s->lr_scale = tu_alloc((size_t)(s->np + 1) * sizeof(float));
    s->frozen = tu_alloc((size_t)s->np + 1);
    TU_CHECK(sat_optimizer_get_lr_scale(opt, s->lr_scale));
    TU_CHECK(sat_optimizer_get_frozen(opt, s->frozen));
    s->base_lr = sat_optimizer_base_lr(opt);
    memcpy(s->params, sat_model_params(model), (size_t)s->np * sizeof(float));
    memcpy(s->state, sat_model_state(model), (size_t)s->ns * sizeof(float));
    memcpy(s->opt_state, os, (size_t)s->no * sizeof(float));
    memcpy(s->images, sat_dataset_images(ds), (size_t)(s->nd * s->pixels) * sizeof(float));
    memcpy(s->labels, sat_dataset_labels(ds), (size_t)s->nd * sizeof(int32_t));
    snprintf(s->spec, sizeof s->spec, "%s", sat_model_spec(model));
}

void tu_snapshot_drop(tu_snapshot *s) {
    tu_free(s->params), tu_free(s->state), tu_free(s->opt_state), tu_free(s->images);
    tu_free(s->labels), tu_free(s->lr_scale), tu_free(s->frozen);
}

int tu_snapshot_same(const tu_snapshot *a, const tu_snapshot *b) {
    return a->np == b->np && a->ns == b->ns && a->no == b->no && a->nd == b->nd &&
           a->pixels == b->pixels && a->step == b->step && !strcmp(a->spec, b->spec) &&
           !memcmp(a->params, b->params, (size_t)a->np * sizeof(float)) &&
           !memcmp(a->state, b->state, (size_t)a->ns * sizeof(float)) &&
           !memcmp(a->opt_state, b->opt_state, (size_t)a->no * sizeof(float)) &&
           !memcmp(a->images, b->images, (size_t)(a->nd * a->pixels) * sizeof(float)) &&
           !memcmp(a->labels, b->labels, (size_t)a->nd * sizeof(int32_t)) &&
           !memcmp(a->lr_scale, b->lr_scale, (size_t)a->np * sizeof(float)) &&
           !memcmp(a->frozen, b->frozen, (size_t)a->np) && !memcmp(&a->base_lr, &b->base_lr, sizeof(float));
}
