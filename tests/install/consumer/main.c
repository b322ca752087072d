/* A program outside the libsat tree: it sees only the installed sat.h and library.
 * Creates a context and a tiny model, runs a forward pass, checks that the library it
 * loaded is the version its header describes. Prints OK and exits 0 on success. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sat.h>

static int fail(const char *what, int32_t status, const char *detail)
{
    fprintf(stderr, "consumer: %s failed: %s (%d): %s\n", what, sat_status_string(status),
            (int)status, detail ? detail : "");
    return 1;
}

int main(void)
{
    if (strcmp(sat_version_string(), SAT_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: header says %s, library says %s\n", SAT_VERSION_STRING,
                sat_version_string());
        return 1;
    }
    int32_t major = -1, minor = -1, patch = -1;
    sat_version(&major, &minor, &patch);
    if (major != SAT_VERSION_MAJOR || minor != SAT_VERSION_MINOR || patch != SAT_VERSION_PATCH) {
        fprintf(stderr, "consumer: sat_version gives %d.%d.%d\n", (int)major, (int)minor,
                (int)patch);
        return 1;
    }

    sat_context *ctx = NULL;
    int32_t st = sat_context_create(NULL, &ctx);
    if (st != SAT_OK) return fail("sat_context_create", st, sat_last_error());

    sat_model *model = NULL;
    st = sat_model_create(ctx, "input 1 4 4\nflatten\ndense 3\n", NULL, &model);
    if (st != SAT_OK) {
        sat_context_destroy(ctx);
        return fail("sat_model_create", st, sat_last_error());
    }

    float x[2 * 16];
    for (int i = 0; i < 2 * 16; i++) x[i] = (float)(i % 16) / 15.0f;
    float logits[2 * 3];
    for (int i = 0; i < 6; i++) logits[i] = NAN;
    st = sat_model_forward(model, x, 2, logits);
    if (st != SAT_OK) {
        int rc = fail("sat_model_forward", st, sat_model_last_error(model));
        sat_model_destroy(model);
        sat_context_destroy(ctx);
        return rc;
    }
    for (int i = 0; i < 6; i++) {
        if (!isfinite(logits[i])) {
            fprintf(stderr, "consumer: logit %d is not finite\n", i);
            return 1;
        }
    }
    /* Both examples are the same image: the same logits. */
    for (int j = 0; j < 3; j++) {
        if (logits[j] != logits[3 + j]) {
            fprintf(stderr, "consumer: same input, different logits\n");
            return 1;
        }
    }
    sat_model_destroy(model);
    sat_context_destroy(ctx);
    sat_model_destroy(NULL);
    sat_context_destroy(NULL);
    printf("libsat %s (%s): OK\n", sat_version_string(), sat_build_info());
    return 0;
}
