/* alloc.c - aligned allocation through the context's hooks. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void *sat__alloc(const sat_context *ctx, size_t size) {
    if (size == 0) size = SAT_ALIGN;
    if (ctx && ctx->alloc_fn) return ctx->alloc_fn(ctx->alloc_user, size, SAT_ALIGN);
    size_t rounded = (size + SAT_ALIGN - 1) / SAT_ALIGN * SAT_ALIGN;
    if (rounded < size) return NULL;
    return aligned_alloc(SAT_ALIGN, rounded);
}

void *sat__calloc(const sat_context *ctx, size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    void *p = sat__alloc(ctx, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void sat__dealloc(const sat_context *ctx, void *ptr) {
    if (!ptr) return;
    if (ctx && ctx->dealloc_fn)
        ctx->dealloc_fn(ctx->alloc_user, ptr);
    else
        free(ptr);
}

void *sat__user_alloc(size_t size) { return malloc(size ? size : 1); }

char *sat__user_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = sat__user_alloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void sat_free(void *ptr) { free(ptr); }
