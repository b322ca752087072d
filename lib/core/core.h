/* core.h - internal definitions shared by every libsat module: the context, error
 * messages, allocation through the context's hooks, and the counter-based RNG. */
#ifndef SAT_CORE_H
#define SAT_CORE_H

#include "sat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define SAT_ERRMSG_SIZE 512
/* Alignment of every buffer the library allocates (a cache line; enough for AVX-512). */
#define SAT_ALIGN 64

struct sat_context {
    int32_t num_threads;
    uint64_t seed;
    sat_log_fn log_fn;
    void *log_user;
    int32_t log_level;
    sat_alloc_fn alloc_fn;
    sat_dealloc_fn dealloc_fn;
    void *alloc_user;
    sat_progress_fn progress_fn; /* sat_context_set_progress; NULL: no reports */
    void *progress_user;
    struct sat_pool *pool; /* worker pool for non-BLIS kernels; NULL when num_threads == 1 */
    int32_t live_children; /* models, datasets, callback models made from it (atomic) */
    char err[SAT_ERRMSG_SIZE];
};

/* ---- parents and children: a handle that others were made from (a context, a model, an
 * optimizer) keeps a count of them, so that destroying it early is refused instead of
 * leaving them dangling. Children may be made on different threads: the count is atomic. */
static inline void sat__child_attach(int32_t *live_children) {
    __atomic_add_fetch(live_children, 1, __ATOMIC_RELAXED);
}
static inline void sat__child_detach(int32_t *live_children) {
    __atomic_sub_fetch(live_children, 1, __ATOMIC_RELEASE);
}
/* SAT_OK when no child lives; else SAT_E_STATE with a message naming `fn` into the handle's
 * buffer `err` and the thread-local one (a void destroy can only leave it there). */
int32_t sat__check_no_children(const int32_t *live_children, char *err, const char *fn,
                               const char *kinds);

/* ---- errors ---- */

/* Formats a message into a handle's buffer (buf may be NULL) and returns `status`. */
int32_t sat__fail(char *buf, int32_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))

#endif
    ;
/* The same into the thread-local buffer read by sat_last_error(). */
int32_t sat__fail_tls(int32_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))

#endif
    ;
void sat__clear_tls_error(void);
/* Copies a handle's message into the thread-local buffer (for create calls that fail
 * after building a temporary handle). */
void sat__copy_to_tls(const char *msg);

/* ---- logging (no-op without a callback) ---- */
void sat__log(const sat_context *ctx, int32_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))

#endif
    ;

/* ---- progress and cancellation of long calls (progress.c) ----
 * One per public call: begin reports done = 0 of total, add and to report more done work.
 * Each returns SAT_E_ABORTED, with a message naming `what` in err (NULL: the thread-local
 * message), when the context's callback asks to stop; the caller then unwinds, restoring
 * what it promised to leave unchanged. A NULL progress (internal callers) reports nothing. */
typedef struct sat__progress {
    sat_progress_fn fn;
    void *user;
    const char *what; /* the public call, a static string */
    int64_t done, total;
    char *err;
} sat__progress;
int32_t sat__progress_begin(sat__progress *p, const sat_context *ctx, const char *what, int64_t total,
                            char *err);
int32_t sat__progress_add(sat__progress *p, int64_t units);
/* Reports done (if it is more than reported so far). */
int32_t sat__progress_to(sat__progress *p, int64_t done);

/* ---- allocation (aligned to SAT_ALIGN, through the context's hooks) ---- */
/* An options struct's seed as used: SAT_SEED_CONTEXT stands for the context's seed. */
static inline uint64_t sat__seed(const sat_context *ctx, uint64_t seed) {
    return seed == SAT_SEED_CONTEXT ? ctx->seed : seed;
}

void *sat__alloc(const sat_context *ctx, size_t size);
void *sat__calloc(const sat_context *ctx, size_t count, size_t size);
void sat__dealloc(const sat_context *ctx, void *ptr);
/* Memory handed to the user, freed with sat_free(): plain malloc. */
void *sat__user_alloc(size_t size);
char *sat__user_strdup(const char *s);

/* ---- counter-based RNG: a pure function of (key, stream, index) ---- */
uint64_t sat__rng_u64(uint64_t key, uint64_t stream, uint64_t index);
/* Uniform in [0,1) with 24 bits. */
float sat__rng_uniform(uint64_t key, uint64_t stream, uint64_t index);
/* Standard normal (Box-Muller on two draws at 2*index, 2*index+1). */
float sat__rng_normal(uint64_t key, uint64_t stream, uint64_t index);

/* Streams: fixed numbers so that every consumer of randomness is independent. */
#define SAT_STREAM_INIT 1u
#define SAT_STREAM_ATTACK 2u
#define SAT_STREAM_SHUFFLE 3u
#define SAT_STREAM_AUGMENT 4u
#define SAT_STREAM_TRAIN 5u
#define SAT_STREAM_SPLIT 6u
#define SAT_STREAM_FAB 7u
#define SAT_STREAM_SQUARE 8u
#define SAT_STREAM_DROPOUT 9u

/* ---- options structs: copies min(caller, own) bytes over defaults, rejects a non-zero
 * unknown tail. Returns SAT_OK or SAT_E_INVALID_ARG with a message in err. */
int32_t sat__opts_copy(void *dst, size_t own_size, const void *src, const char *what, char *err);

/* Fills a caller's options struct of struct_size bytes with `defaults` (own_size bytes):
 * zero tail beyond own_size, struct_size kept as the caller's. */
int32_t sat__opts_init(void *opts, uint32_t struct_size, const void *defaults, size_t own_size,
                       const char *what);

/* ---- small checks ---- */
int sat__all_finite(const float *x, int64_t n);
/* 1 if the n floats at a and the m floats at b share a byte: an output that overlaps an
 * input the call is still reading. */
int sat__overlap(const float *a, int64_t n, const float *b, int64_t m);



/* ---- worker pool for non-BLIS kernels ----
 * Runs fn(arg, begin, end) over [0, n) split into contiguous ranges, one per thread, and
 * returns when all are done. Ranges depend only on n and the thread count; kernels that
 * must be thread-count independent write disjoint outputs per index. */
typedef void (*sat_range_fn)(void *arg, int64_t begin, int64_t end);
void sat__parallel_for(const sat_context *ctx, int64_t n, sat_range_fn fn, void *arg);
/* A pool of `threads` threads (the caller included; NULL for 1) with ctx's allocator. */
int32_t sat__pool_create(const sat_context *ctx, int32_t threads, struct sat_pool **out);
void sat__pool_destroy(const sat_context *ctx, struct sat_pool *pool);
#endif
