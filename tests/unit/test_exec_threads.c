/* test_exec_threads.c - four threads run one model's weights at once through their own
 * executions (inference and input gradients): the results are those of one thread, bit
 * for bit, and the memory is the weights once plus one execution per thread. The
 * ThreadSanitizer build runs this program too (tests/sanitize). */
#include "testutil.h"

#include "graph/graph.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, ROUNDS = 3, BATCH = 4, CLASSES = 10, IN = 3 * 16 * 16 };

/* Bytes the context's allocator holds now: every block records its size in front of it. */
typedef struct meter {
    pthread_mutex_t mu;
    int64_t bytes, allocs;
} meter;

#define HEADER 64

static void *meter_alloc(void *user, size_t size, size_t alignment) {
    meter *mt = user;
    size_t a = alignment > HEADER ? alignment : HEADER;
    char *raw = aligned_alloc(a, (size + a + a - 1) / a * a);
    if (!raw) return NULL;
    memcpy(raw + a - sizeof(size_t), &size, sizeof size);
    memcpy(raw + a - 2 * sizeof(size_t), &a, sizeof a);
    pthread_mutex_lock(&mt->mu);
    mt->bytes += (int64_t)size;
    mt->allocs++;
    pthread_mutex_unlock(&mt->mu);
    return raw + a;
}

static void meter_free(void *user, void *p) {
    meter *mt = user;
    size_t size, a;
    memcpy(&size, (char *)p - sizeof(size_t), sizeof size);
    memcpy(&a, (char *)p - 2 * sizeof(size_t), sizeof a);
    pthread_mutex_lock(&mt->mu);
    mt->bytes -= (int64_t)size;
    pthread_mutex_unlock(&mt->mu);
    free((char *)p - a);
}

static int64_t meter_bytes(meter *mt) {
    pthread_mutex_lock(&mt->mu);
    int64_t b = mt->bytes;
    pthread_mutex_unlock(&mt->mu);
    return b;
}

static void meter_release(void *p) {
    meter *mt = p;
    pthread_mutex_destroy(&mt->mu);
    free(mt);
}

typedef struct job {
    sat_exec *exec;
    int32_t kind;
    const float *x;         /* THREADS * ROUNDS batches */
    const int32_t *labels;
    int index;
    float *logits, *grads;  /* results per round */
    int32_t status;
} job;

/* Margin dL/dlogits of a batch: the host's own loss (-1 on the label, +1 on the best other). */
static void margin_dlogits(const float *logits, const int32_t *labels, float *dl) {
    memset(dl, 0, sizeof(float) * BATCH * CLASSES);
    for (int i = 0; i < BATCH; i++) {
        const float *z = logits + i * CLASSES;
        int best = labels[i] == 0 ? 1 : 0;
        for (int c = 0; c < CLASSES; c++)
            if (c != labels[i] && z[c] > z[best]) best = c;
        dl[i * CLASSES + labels[i]] = -1.0f;
        dl[i * CLASSES + best] = 1.0f;
    }
}

static void run_job(job *j) {
    float dl[BATCH * CLASSES];
    for (int r = 0; r < ROUNDS && j->status == SAT_OK; r++) {
        const int b = (j->index * ROUNDS + r);
        float *logits = j->logits + (int64_t)r * BATCH * CLASSES;
        j->status = sat_exec_forward(j->exec, j->x + (int64_t)b * BATCH * IN, BATCH, SAT_BN_INFERENCE, logits);
        if (j->status != SAT_OK || j->kind == SAT_EXEC_INFERENCE) continue;
        margin_dlogits(logits, j->labels + b * BATCH, dl);
        j->status = sat_exec_backward(j->exec, dl, j->grads + (int64_t)r * BATCH * IN, NULL);
    }
}

static void *thread_main(void *arg) {
    run_job(arg);
    return NULL;
}

static void run_kind(int32_t kind, int32_t ctx_threads) {
    meter *mt = calloc(1, sizeof *mt);
    assert_non_null(mt);
    pthread_mutex_init(&mt->mu, NULL);
    tu_own(mt, meter_release); /* released after the context, which is registered later */
    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = ctx_threads;
    co.alloc_fn = meter_alloc;
    co.dealloc_fn = meter_free;
    co.alloc_user = mt;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&co, &ctx));
    tu_own_context(ctx);
    char *spec = NULL;
    TU_CHECK(sat_preset_spec("resnet20", 3, 16, 16, CLASSES, NULL, NULL, &spec));
    tu_own_sat_mem(spec);

    const int64_t before_model = meter_bytes(mt);
    sat_model *m = tu_model(ctx, spec, SAT_ACT_SILU, BATCH);
    const int64_t weights = meter_bytes(mt) - before_model;
    assert_true(weights >= (int64_t)sizeof(float) * sat_model_param_count(m));

    const int64_t per_batch = BATCH * IN;
    float *x = tu_alloc(sizeof(float) * THREADS * ROUNDS * per_batch);
    int32_t *labels = tu_alloc(sizeof(int32_t) * THREADS * ROUNDS * BATCH);
    tu_fill_uniform(x, THREADS * ROUNDS * per_batch, 0, 1, 11);
    for (int i = 0; i < THREADS * ROUNDS * BATCH; i++) labels[i] = (i * 7) % CLASSES;

    sat_exec_opts eo;
    sat_exec_opts_init(&eo, sizeof eo);
    eo.kind = kind;
    job jobs[THREADS], serial[THREADS];
    int64_t exec_bytes = 0;
    for (int t = 0; t < THREADS; t++) {
        const int64_t b0 = meter_bytes(mt);
        sat_exec *e = NULL;
        TU_CHECK(sat_exec_create(m, &eo, &e));
        tu_own(e, (tu_destroy_fn)sat_exec_destroy);
        const int64_t b = meter_bytes(mt) - b0;
        if (t == 0) exec_bytes = b;
        assert_int_equal(b, exec_bytes); /* every execution costs the same */
        jobs[t] = (job){e, kind, x, labels, t, tu_alloc(sizeof(float) * ROUNDS * BATCH * CLASSES),
                        tu_alloc(sizeof(float) * ROUNDS * per_batch), SAT_OK};
        serial[t] = jobs[t];
        serial[t].logits = tu_alloc(sizeof(float) * ROUNDS * BATCH * CLASSES);
        serial[t].grads = tu_alloc(sizeof(float) * ROUNDS * per_batch);
    }
    /* Weights once plus one execution per thread; an execution holds no copy of the weights. */
    assert_int_equal(meter_bytes(mt) - before_model, weights + THREADS * exec_bytes);
    /* Beyond its arena and workspace, an execution holds a few words per layer: nothing of
     * the weights. */
    const sat_exec *e0 = jobs[0].exec;
    const int64_t bookkeeping = exec_bytes - (int64_t)sizeof(float) * (e0->arena_size + e0->ws_size);
    assert_true(bookkeeping <= (int64_t)sizeof(sat_exec) + 64 * (int64_t)m->num_nodes);

    /* serial reference, one execution after another on this thread */
    for (int t = 0; t < THREADS; t++) {
        run_job(&serial[t]);
        TU_CHECK(serial[t].status);
    }
    const int64_t allocs = mt->allocs;
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++) assert_int_equal(pthread_create(&tid[t], NULL, thread_main, &jobs[t]), 0);
    for (int t = 0; t < THREADS; t++) pthread_join(tid[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        TU_CHECK(jobs[t].status);
        assert_memory_equal(jobs[t].logits, serial[t].logits, sizeof(float) * ROUNDS * BATCH * CLASSES);
        if (kind != SAT_EXEC_INFERENCE)
            assert_memory_equal(jobs[t].grads, serial[t].grads, sizeof(float) * ROUNDS * per_batch);
    }
    /* running allocated nothing: the memory stayed what was measured */
    assert_int_equal(mt->allocs, allocs);
    /* the model's own call on the same data agrees */
    float *ref = tu_alloc(sizeof(float) * BATCH * CLASSES);
    TU_CHECK(sat_model_forward(m, x + per_batch, BATCH, ref));
    assert_memory_equal(ref, jobs[0].logits + BATCH * CLASSES, sizeof(float) * BATCH * CLASSES);
}

static void test_inference_threads(void **st) {
    (void)st;
    run_kind(SAT_EXEC_INFERENCE, 1);
}

static void test_input_grad_threads(void **st) {
    (void)st;
    run_kind(SAT_EXEC_INPUT_GRAD, 1);
}

/* A context with a worker pool: the four threads submit to one pool at once. */
static void test_input_grad_threads_shared_pool(void **st) {
    (void)st;
    run_kind(SAT_EXEC_INPUT_GRAD, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference_threads),
        cmocka_unit_test(test_input_grad_threads),
        cmocka_unit_test(test_input_grad_threads_shared_pool),
    };
    tu_set_watchdog(120); /* a broken lock hangs rather than fails */
    return tu_run_group("exec_threads", tests, sizeof tests / sizeof tests[0]);
}
