/* error.c - per-handle and thread-local error messages, status strings, logging. */
#include "core.h"

#include <stdio.h>
#include <string.h>

#if defined(_MSC_VER)
#define SAT_THREAD_LOCAL __declspec(thread)
#else
#define SAT_THREAD_LOCAL _Thread_local
#endif

static SAT_THREAD_LOCAL char tls_error[SAT_ERRMSG_SIZE];

int32_t sat__fail(char *buf, int32_t status, const char *fmt, ...) {
    if (buf) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, SAT_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return status;
}

int32_t sat__fail_tls(int32_t status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    return status;
}

void sat__clear_tls_error(void) { tls_error[0] = '\0'; }

void sat__copy_to_tls(const char *msg) {
    snprintf(tls_error, sizeof tls_error, "%s", msg ? msg : "");
}

const char *sat_last_error(void) { return tls_error; }

int32_t sat__check_no_children(const int32_t *live_children, char *err, const char *fn,
                               const char *kinds) {
    const int32_t n = __atomic_load_n(live_children, __ATOMIC_ACQUIRE);
    if (n == 0) return SAT_OK;
    sat__fail_tls(SAT_E_STATE, "%s: %d handle%s made from it (%s) still alive; destroy %s first. "
                  "Nothing was destroyed: the handle stays usable", fn, (int)n, n == 1 ? " is" : "s are",
                  kinds, n == 1 ? "it" : "them");
    return sat__fail(err, SAT_E_STATE, "%s", sat_last_error());
}

const char *sat_status_string(int32_t status) {
    switch (status) {
    case SAT_OK: return "ok";
    case SAT_E_INVALID_ARG: return "invalid argument";
    case SAT_E_NOMEM: return "out of memory";
    case SAT_E_SHAPE: return "shape mismatch";
    case SAT_E_STATE: return "wrong state";
    case SAT_E_IO: return "input/output error";
    case SAT_E_FORMAT: return "bad format";
    case SAT_E_VERSION: return "unsupported version";
    case SAT_E_UNSUPPORTED: return "unsupported";
    case SAT_E_NUMERIC: return "numeric error (NaN or Inf)";
    case SAT_E_ABORTED: return "aborted";
    case SAT_E_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

void sat__log(const sat_context *ctx, int32_t level, const char *fmt, ...) {
    if (!ctx || !ctx->log_fn || level > ctx->log_level) return;
    char msg[SAT_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_user, level, msg);
}

int32_t sat__opts_copy(void *dst, size_t own_size, const void *src, const char *what, char *err) {
    uint32_t caller_size;
    memcpy(&caller_size, src, sizeof caller_size);
    if (caller_size < sizeof(uint32_t))
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: struct_size %u is too small (initialise it with its _init function)",
                         what, caller_size);
    if (caller_size > own_size) {
        const unsigned char *tail = (const unsigned char *)src + own_size;
        for (size_t i = 0; i < caller_size - own_size; i++)
            if (tail[i] != 0)
                return sat__fail(err, SAT_E_INVALID_ARG,
                                 "%s: struct_size %u is larger than this library's %zu and the "
                                 "extra fields are set (newer header than library?)",
                                 what, caller_size, own_size);
    }
    size_t n = caller_size < own_size ? caller_size : own_size;
    memcpy((unsigned char *)dst + sizeof(uint32_t), (const unsigned char *)src + sizeof(uint32_t),
           n - sizeof(uint32_t));
    memcpy(dst, &(uint32_t){(uint32_t)own_size}, sizeof(uint32_t));
    return SAT_OK;
}

int sat__all_finite(const float *x, int64_t n) {
    /* Bitwise test: an exponent of all ones means NaN or Inf. */
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7f800000u) == 0x7f800000u) return 0;
    }
    return 1;
}

int32_t sat__opts_init(void *opts, uint32_t struct_size, const void *defaults, size_t own_size,
                       const char *what) {
    if (!opts) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: opts is NULL", what);
    if (struct_size < sizeof(uint32_t))
        return sat__fail_tls(SAT_E_INVALID_ARG, "%s: struct_size %u is too small", what, struct_size);
    size_t n = struct_size < own_size ? struct_size : own_size;
    memset(opts, 0, struct_size);
    memcpy(opts, defaults, n);
    memcpy(opts, &struct_size, sizeof struct_size);
    return SAT_OK;
}
