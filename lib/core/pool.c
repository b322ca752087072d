/* pool.c - the worker pool for non-BLIS kernels. This version runs ranges in the
 * calling thread; the interface is what kernels program against. */
#include "core.h"

void sat__parallel_for(const sat_context *ctx, int64_t n, sat_range_fn fn, void *arg) {
    (void)ctx;
    if (n > 0) fn(arg, 0, n);
}

int32_t sat__pool_create(sat_context *ctx) {
    ctx->pool = NULL;
    return SAT_OK;
}

void sat__pool_destroy(sat_context *ctx) { ctx->pool = NULL; }
