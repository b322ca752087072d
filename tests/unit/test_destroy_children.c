/* test_destroy_children.c - a parent (context, model, optimizer) is not destroyed while a
 * handle made from it lives: the *_destroy_checked functions return SAT_E_STATE, the void
 * *_destroy functions refuse with a message in sat_last_error(), and the parent stays
 * usable; once the children are gone it is destroyed. Children made and destroyed on
 * several threads at once keep the count right. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define SPEC "input 1 2 2\nflatten\ndense 3\n"

static sat_model *new_model(sat_context *ctx) {
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, SPEC, NULL, &m));
    return m;
}

/* The context can still make and run a model. */
static void assert_context_usable(sat_context *ctx) {
    sat_model *m = new_model(ctx);
    float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, logits[3];
    TU_CHECK(sat_model_forward(m, x, 1, logits));
    TU_CHECK(sat_model_destroy_checked(m));
}

static void test_context_with_live_children(void **st) {
    (void)st;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(NULL, &ctx));
    tu_own_context(ctx);
    sat_model *m = new_model(ctx);
    float x[4] = {0};
    int32_t y[1] = {0};
    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_from_arrays(ctx, x, y, 1, 1, 2, 2, 3, &ds));

    assert_int_equal(sat_context_destroy_checked(ctx), SAT_E_STATE);
    assert_non_null(strstr(sat_context_last_error(ctx), "2 handles"));
    assert_non_null(strstr(sat_last_error(), "sat_context_destroy_checked"));
    assert_context_usable(ctx);

    sat_context_destroy(ctx); /* the old entry point refuses too */
    assert_non_null(strstr(sat_last_error(), "sat_context_destroy:"));
    assert_context_usable(ctx);

    TU_CHECK(sat_model_destroy_checked(m));
    assert_int_equal(sat_context_destroy_checked(ctx), SAT_E_STATE);
    assert_non_null(strstr(sat_context_last_error(ctx), "1 handle is"));
    sat_dataset_destroy(ds);
    tu_release(ctx); /* now destroyed: registered, so the release checks it happens once */
    TU_CHECK(sat_context_destroy_checked(NULL));
}

static int32_t no_logits(void *user, const float *x, int64_t n, float *logits) {
    (void)user, (void)x, (void)n, (void)logits;
    return 1;
}

static void test_context_destroy_after_children_gone(void **st) {
    (void)st;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(NULL, &ctx));
    sat_model *m = new_model(ctx);
    sat_callback_model_opts co;
    sat_callback_model_opts_init(&co, sizeof co);
    co.channels = co.height = co.width = 1;
    co.num_classes = 2;
    co.logits_fn = no_logits; /* never called */
    sat_callback_model *cb = NULL;
    TU_CHECK(sat_callback_model_create(ctx, &co, &cb));
    sat_model_destroy(m);
    assert_int_equal(sat_context_destroy_checked(ctx), SAT_E_STATE); /* the callback model */
    sat_callback_model_destroy(cb);
    TU_CHECK(sat_context_destroy_checked(ctx));
}

static void test_model_and_optimizer_with_live_children(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_RELU, 4);
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(m, NULL, &opt));
    tu_own_optimizer(opt);
    sat_trainer *tr = NULL;
    TU_CHECK(sat_trainer_create(m, opt, NULL, &tr));
    tu_own_trainer(tr);

    assert_int_equal(sat_model_destroy_checked(m), SAT_E_STATE);
    assert_non_null(strstr(sat_model_last_error(m), "2 handles"));
    assert_int_equal(sat_optimizer_destroy_checked(opt), SAT_E_STATE);
    assert_non_null(strstr(sat_optimizer_last_error(opt), "trainers"));
    sat_model_destroy(m);
    assert_non_null(strstr(sat_last_error(), "sat_model_destroy:"));
    sat_optimizer_destroy(opt);
    assert_non_null(strstr(sat_last_error(), "sat_optimizer_destroy:"));
    assert_int_equal(sat_context_destroy_checked(ctx), SAT_E_STATE);

    /* All still usable: a training step runs. */
    float x[8] = {0.1f, 0.9f, 0.5f, 0.3f, 0.7f, 0.2f, 0.4f, 0.6f};
    int32_t y[2] = {0, 2};
    TU_CHECK(sat_train_step(tr, x, y, 2, NULL));

    tu_release(tr);
    assert_int_equal(sat_model_destroy_checked(m), SAT_E_STATE); /* the optimizer */
    assert_non_null(strstr(sat_model_last_error(m), "1 handle is"));
    tu_release(opt); /* destroyed: optimizer has no trainer left */
    TU_CHECK(sat_optimizer_destroy_checked(NULL));
    TU_CHECK(sat_model_destroy_checked(NULL));
    tu_release(m);
    tu_release(ctx);
}

#define THREADS 4
#define PER_THREAD 25

typedef struct worker {
    sat_context *ctx;
    sat_model *models[PER_THREAD];
    int32_t status;
} worker;

static void *make_and_drop(void *arg) {
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        w->status = sat_model_create(w->ctx, SPEC, NULL, &w->models[i]);
        if (w->status) return NULL;
    }
    /* Every other one is dropped here; the rest outlive the thread. */
    for (int i = 0; i < PER_THREAD; i += 2) {
        sat_model_destroy(w->models[i]);
        w->models[i] = NULL;
    }
    return NULL;
}

static void test_children_made_on_many_threads(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    pthread_t th[THREADS];
    static worker w[THREADS];
    memset(w, 0, sizeof w);
    for (int t = 0; t < THREADS; t++) {
        w[t].ctx = ctx;
        assert_int_equal(pthread_create(&th[t], NULL, make_and_drop, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < THREADS; t++) {
        TU_CHECK(w[t].status);
        for (int i = 0; i < PER_THREAD; i++) tu_own_model(w[t].models[i]); /* NULL: not registered */
    }
    assert_int_equal(sat_context_destroy_checked(ctx), SAT_E_STATE);
    char want[32];
    snprintf(want, sizeof want, "%d handles", THREADS * (PER_THREAD / 2));
    assert_non_null(strstr(sat_context_last_error(ctx), want));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_with_live_children),
        cmocka_unit_test(test_context_destroy_after_children_gone),
        cmocka_unit_test(test_model_and_optimizer_with_live_children),
        cmocka_unit_test(test_children_made_on_many_threads),
    };
    return tu_run_group("test_destroy_children", tests, sizeof tests / sizeof tests[0]);
}
