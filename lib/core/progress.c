/* progress.c - the progress and cancel callback of long calls. A call counts its work in
 * units of its own (examples x iterations, examples read) and reports after each bounded
 * piece of it; the host's callback answers whether to go on. Reporting lives here so that
 * every long call reports and stops the same way. */
#include "core.h"

static int32_t report(sat__progress *p) {
    if (!p->fn || p->fn(p->user, p->what, p->done, p->total) == 0) return SAT_OK;
    if (p->err)
        return sat__fail(p->err, SAT_E_ABORTED, "%s: cancelled by the progress callback at %lld of %lld",
                         p->what, (long long)p->done, (long long)p->total);
    return sat__fail_tls(SAT_E_ABORTED, "%s: cancelled by the progress callback at %lld of %lld", p->what,
                         (long long)p->done, (long long)p->total);
}

int32_t sat__progress_begin(sat__progress *p, const sat_context *ctx, const char *what, int64_t total,
                            char *err) {
    p->fn = ctx ? ctx->progress_fn : NULL;
    p->user = ctx ? ctx->progress_user : NULL;
    p->what = what;
    p->done = 0;
    p->total = total > 0 ? total : 0;
    p->err = err;
    return report(p);
}

int32_t sat__progress_add(sat__progress *p, int64_t units) {
    if (!p || units <= 0) return SAT_OK;
    /* Never past total, so that a miscount cannot make done run backwards later. */
    p->done = units > p->total - p->done ? p->total : p->done + units;
    return report(p);
}

int32_t sat__progress_to(sat__progress *p, int64_t done) {
    if (!p || done <= p->done) return SAT_OK;
    return sat__progress_add(p, done - p->done);
}
