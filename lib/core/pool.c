/* pool.c - the worker pool: GEMM blocks, im2col, batch norm, activations, ...
 *
 * num_threads - 1 persistent workers plus the calling thread. A call splits [0, n) into
 * num_threads contiguous ranges that depend only on n and the thread count, so a kernel
 * that writes disjoint outputs per index gives the same bits for any thread count.
 *
 * Several threads may submit at once (executions of one model on different threads share
 * their context's pool): one call holds the pool, and a call that finds it held runs its
 * whole range on its own thread instead of waiting. That is the one-thread split, so the
 * bits are the same either way. */
#include "core.h"

#include <pthread.h>

typedef struct worker_arg {
    struct sat_pool *pool;
    int32_t index;
} worker_arg;

struct sat_pool {
    int32_t threads; /* including the caller */
    pthread_t *workers;
    worker_arg *args; /* one per worker, owned by the pool */
    pthread_mutex_t submit; /* held by the call the workers are serving */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation;
    int32_t pending;
    int32_t stop;
    sat_range_fn fn;
    void *arg;
    int64_t n;
};

static void run_range(struct sat_pool *p, int32_t index, sat_range_fn fn, void *arg, int64_t n) {
    int64_t chunk = (n + p->threads - 1) / p->threads;
    int64_t begin = index * chunk, end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) fn(arg, begin, end);
}

static void *worker_main(void *raw) {
    const worker_arg wa = *(const worker_arg *)raw;
    struct sat_pool *p = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        sat_range_fn fn = p->fn;
        void *arg = p->arg;
        int64_t n = p->n;
        pthread_mutex_unlock(&p->mu);
        run_range(p, wa.index, fn, arg, n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

void sat__parallel_for(const sat_context *ctx, int64_t n, sat_range_fn fn, void *arg) {
    struct sat_pool *p = ctx ? ctx->pool : NULL;
    if (n <= 0) return;
    if (!p || n == 1 || pthread_mutex_trylock(&p->submit) != 0) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->pending = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_range(p, 0, fn, arg, n);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->submit);
}

static void stop_workers(struct sat_pool *p, int32_t started) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int32_t i = 0; i < started; i++) pthread_join(p->workers[i], NULL);
}

static void pool_free(const sat_context *ctx, struct sat_pool *p) {
    pthread_mutex_destroy(&p->submit);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    sat__dealloc(ctx, p->args);
    sat__dealloc(ctx, p->workers);
    sat__dealloc(ctx, p);
}

int32_t sat__pool_create(const sat_context *ctx, int32_t threads, struct sat_pool **out) {
    *out = NULL;
    if (threads <= 1) return SAT_OK;
    struct sat_pool *p = sat__calloc(ctx, 1, sizeof *p);
    if (!p) return SAT_E_NOMEM;
    p->threads = threads;
    p->workers = sat__calloc(ctx, (size_t)threads, sizeof(pthread_t));
    p->args = sat__calloc(ctx, (size_t)threads, sizeof(worker_arg));
    pthread_mutex_init(&p->submit, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (!p->workers || !p->args) {
        pool_free(ctx, p);
        return SAT_E_NOMEM;
    }
    for (int32_t i = 0; i < threads - 1; i++) {
        p->args[i] = (worker_arg){p, i + 1};
        if (pthread_create(&p->workers[i], NULL, worker_main, &p->args[i]) != 0) {
            stop_workers(p, i);
            pool_free(ctx, p);
            return SAT_E_INTERNAL;
        }
    }
    *out = p;
    return SAT_OK;
}

void sat__pool_destroy(const sat_context *ctx, struct sat_pool *p) {
    if (!p) return;
    stop_workers(p, p->threads - 1);
    pool_free(ctx, p);
}
