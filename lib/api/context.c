/* context.c - the context handle and version information. */
#include "../core/core.h"

#include <string.h>

#ifndef SAT_BLIS_VERSION
#define SAT_BLIS_VERSION "unknown"
#endif

const char *sat_version_string(void) { return SAT_VERSION_STRING; }

void sat_version(int32_t *major, int32_t *minor, int32_t *patch) {
    if (major) *major = SAT_VERSION_MAJOR;
    if (minor) *minor = SAT_VERSION_MINOR;
    if (patch) *patch = SAT_VERSION_PATCH;
}

const char *sat_build_info(void) {
    return "libsat " SAT_VERSION_STRING " (BLIS " SAT_BLIS_VERSION ", "
#if defined(__clang__)
           "clang " __clang_version__
#elif defined(__GNUC__)
           "gcc " __VERSION__
#else
           "unknown compiler"
#endif
           ")";
}

int32_t sat_context_opts_init(sat_context_opts *opts, uint32_t struct_size) {
    if (!opts) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_context_opts_init: opts is NULL");
    if (struct_size < sizeof(uint32_t))
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_context_opts_init: struct_size %u too small",
                             struct_size);
    sat_context_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.num_threads = 1;
    d.log_level = SAT_LOG_INFO;
    size_t n = struct_size < sizeof d ? struct_size : sizeof d;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, n);
    opts->struct_size = struct_size;
    return SAT_OK;
}

int32_t sat_context_create(const sat_context_opts *opts, sat_context **out) {
    sat__clear_tls_error();
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_context_create: out is NULL");
    *out = NULL;
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    if (opts) {
        char err[SAT_ERRMSG_SIZE];
        int32_t st = sat__opts_copy(&o, sizeof o, opts, "sat_context_opts", err);
        if (st) return sat__fail_tls(st, "%s", err);
    }
    if (o.num_threads < 1 || o.num_threads > 256)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_context_create: num_threads %d not in 1..256",
                             o.num_threads);
    if ((o.alloc_fn == NULL) != (o.dealloc_fn == NULL))
        return sat__fail_tls(SAT_E_INVALID_ARG,
                             "sat_context_create: alloc_fn and dealloc_fn must be set together");
    sat_context tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.alloc_fn = o.alloc_fn;
    tmp.dealloc_fn = o.dealloc_fn;
    tmp.alloc_user = o.alloc_user;
    sat_context *ctx = sat__calloc(&tmp, 1, sizeof *ctx);
    if (!ctx) return sat__fail_tls(SAT_E_NOMEM, "sat_context_create: out of memory");
    *ctx = tmp;
    ctx->num_threads = o.num_threads;
    ctx->seed = o.seed;
    ctx->log_fn = o.log_fn;
    ctx->log_user = o.log_user;
    ctx->log_level = o.log_level;
    int32_t st = sat__pool_create(ctx, ctx->num_threads, &ctx->pool);
    if (st) {
        sat__dealloc(&tmp, ctx);
        return sat__fail_tls(st, "sat_context_create: cannot start the worker pool");
    }
    *out = ctx;
    return SAT_OK;
}

static int32_t context_destroy(sat_context *ctx, const char *fn) {
    if (!ctx) return SAT_OK;
    int32_t st = sat__check_no_children(&ctx->live_children, ctx->err, fn,
                                        "models, data sets, callback models");
    if (st) return st;
    sat__pool_destroy(ctx, ctx->pool);
    sat_context tmp = *ctx;
    sat__dealloc(&tmp, ctx);
    return SAT_OK;
}

void sat_context_destroy(sat_context *ctx) { (void)context_destroy(ctx, "sat_context_destroy"); }

int32_t sat_context_destroy_checked(sat_context *ctx) {
    return context_destroy(ctx, "sat_context_destroy_checked");
}

const char *sat_context_last_error(const sat_context *ctx) { return ctx ? ctx->err : ""; }

int32_t sat_context_set_num_threads(sat_context *ctx, int32_t num_threads) {
    if (!ctx) return SAT_E_INVALID_ARG;
    if (num_threads < 1 || num_threads > 256)
        return sat__fail(ctx->err, SAT_E_INVALID_ARG, "num_threads %d not in 1..256", num_threads);
    /* The new pool first: if it cannot be had, the context keeps the one it has. */
    struct sat_pool *pool = NULL;
    int32_t st = sat__pool_create(ctx, num_threads, &pool);
    if (st)
        return sat__fail(ctx->err, st, "cannot start %d threads; the context keeps its %d", num_threads,
                         ctx->num_threads);
    sat__pool_destroy(ctx, ctx->pool);
    ctx->pool = pool;
    ctx->num_threads = num_threads;
    return SAT_OK;
}

int32_t sat_context_set_progress(sat_context *ctx, sat_progress_fn fn, void *user) {
    if (!ctx) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_context_set_progress: ctx is NULL");
    ctx->progress_fn = fn;
    ctx->progress_user = fn ? user : NULL;
    return SAT_OK;
}
