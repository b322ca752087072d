/* bench_model.c - see bench_model.h. */
#include "bench_model.h"

#include <stdio.h>
#include <stdlib.h>

void bench_fill_batch(float *x, int64_t n) {
    uint64_t s = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((s >> 40) & 0xffffff) / 16777216.0f;
    }
}

static void check(int32_t st, const char *what, const char *msg) {
    if (st == SAT_OK) return;
    fprintf(stderr, "benchmark: %s failed: %s (%s)\n", what, sat_status_string(st), msg ? msg : "");
    exit(1);
}

sat_model *bench_preset_model(sat_context *ctx, const char *name, int c, int h, int w, int classes,
                              const char *act_name, int max_batch, char **spec) {
    check(sat_preset_spec(name, c, h, w, classes, NULL, NULL, spec), "sat_preset_spec", sat_last_error());
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    check(sat_activation_from_name(act_name, &mo.activation), "sat_activation_from_name", act_name);
    mo.max_batch = max_batch;
    mo.seed = 1;
    sat_model *model = NULL;
    check(sat_model_create(ctx, *spec, &mo, &model), "sat_model_create", sat_last_error());
    return model;
}

void bench_trainer(sat_model *model, int32_t method, int steps, float eps, float step, sat_optimizer **opt,
                   sat_trainer **tr) {
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.lr = 0.01f;
    oo.momentum = 0.9f;
    oo.weight_decay = 5e-4f;
    check(sat_optimizer_create(model, &oo, opt), "sat_optimizer_create", sat_model_last_error(model));
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = method;
    to.eps = eps;
    to.step_size = step;
    to.steps = steps > 0 ? steps : 1;
    to.random_start = 1;
    check(sat_trainer_create(model, *opt, &to, tr), "sat_trainer_create", sat_optimizer_last_error(*opt));
}
