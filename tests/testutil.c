/* testutil.c - helpers shared by the unit tests. */
#include "testutil.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The registry: what the running test owns, oldest first. */
typedef struct tu_owned {
    void *handle;
    tu_destroy_fn destroy;
} tu_owned;
static tu_owned *owned;
static size_t owned_count, owned_cap;

void *tu_own(void *handle, tu_destroy_fn destroy) {
    if (!handle) return NULL;
    if (owned_count == owned_cap) {
        size_t cap = owned_cap ? 2 * owned_cap : 64;
        tu_owned *grown = realloc(owned, cap * sizeof *grown);
        if (!grown) {
            destroy(handle);
            fail_msg("tu_own: out of memory");
        }
        owned = grown;
        owned_cap = cap;
    }
    owned[owned_count++] = (tu_owned){handle, destroy};
    return handle;
}

void tu_release(void *handle) {
    if (!handle) return;
    for (size_t i = owned_count; i-- > 0;) {
        if (owned[i].handle != handle) continue;
        tu_owned o = owned[i];
        for (size_t j = i + 1; j < owned_count; j++) owned[j - 1] = owned[j];
        owned_count--;
        o.destroy(o.handle);
        return;
    }
    fail_msg("tu_release: %p is not registered", handle);
}

void tu_release_all(void) {
    /* One at a time, so that a destroy function that fails the test leaves the rest
     * registered for the next call. */
    while (owned_count > 0) {
        tu_owned o = owned[--owned_count];
        o.destroy(o.handle);
    }
    free(owned);
    owned = NULL;
    owned_cap = 0;
}

void *tu_alloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) fail_msg("tu_alloc: no memory for %zu bytes", bytes);
    return tu_own(p, free);
}

void tu_free(void *p) { tu_release(p); }

unsigned char *tu_read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("tu_read_file: cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *d = n >= 0 ? tu_alloc((size_t)n + 1) : NULL;
    size_t got = d ? fread(d, 1, (size_t)n, fp) : 0;
    fclose(fp);
    if (!d || got != (size_t)n) fail_msg("tu_read_file: cannot read %s", path);
    *size = (size_t)n;
    return d;
}

static void destroy_context(void *h) { sat_context_destroy(h); }
sat_context *tu_own_context(sat_context *ctx) { return tu_own(ctx, destroy_context); }
static void destroy_sat_mem(void *h) { sat_free(h); }
void *tu_own_sat_mem(void *p) { return tu_own(p, destroy_sat_mem); }

sat_context *tu_context(int32_t threads, uint64_t seed) {
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = threads;
    o.seed = seed;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    return tu_own_context(ctx);
}

/* tu_run_group gives every test this fixture as its initial state: the test's own
 * setup, teardown and initial state. The setup puts the test's state back; the teardown
 * finds the fixture through `current` (tests run one at a time). */
typedef struct tu_fixture {
    CMFixtureFunction setup, teardown;
    void *state;
    const char *name;
} tu_fixture;
static const tu_fixture *current;

static unsigned watchdog_seconds;

/* A deadlocked test would otherwise sit until ctest's timeout: say which test hung and
 * end the program (only async-signal-safe calls here). */
static void watchdog_fired(int sig) {
    (void)sig;
    static const char head[] = "\nwatchdog: test '";
    static const char tail[] = "' did not finish in time (deadlock?)\n";
    const char *name = current && current->name ? current->name : "?";
    if (write(STDERR_FILENO, head, sizeof head - 1) < 0 ||
        write(STDERR_FILENO, name, strlen(name)) < 0 ||
        write(STDERR_FILENO, tail, sizeof tail - 1) < 0) {
        /* nothing more to say */
    }
    _exit(1);
}

void tu_set_watchdog(unsigned seconds) {
    /* Under valgrind a test runs 20-50 times slower: tests/long-run.sh sets the factor. */
    const char *scale = getenv("SAT_TEST_WATCHDOG_SCALE");
    if (seconds && scale && atoi(scale) > 1) seconds *= (unsigned)atoi(scale);
    watchdog_seconds = seconds;
    signal(SIGALRM, seconds ? watchdog_fired : SIG_DFL);
}

static int tu_setup(void **state) {
    current = *state;
    if (watchdog_seconds) alarm(watchdog_seconds);
    tu_release_all(); /* what a failed setup of the previous test left */
    *state = current->state;
    return current->setup ? current->setup(state) : 0;
}

static int tu_teardown(void **state) {
    if (watchdog_seconds) alarm(0);
    tu_release_all();
    return current->teardown ? current->teardown(state) : 0;
}

int tu_run_group(const char *name, const struct CMUnitTest *tests, size_t count) {
    struct CMUnitTest *wrapped = calloc(count ? count : 1, sizeof *wrapped);
    tu_fixture *fixtures = calloc(count ? count : 1, sizeof *fixtures);
    if (!wrapped || !fixtures) {
        free(wrapped);
        free(fixtures);
        fprintf(stderr, "tu_run_group %s: out of memory\n", name);
        return count ? (int)count : 1;
    }
    for (size_t i = 0; i < count; i++) {
        fixtures[i] = (tu_fixture){tests[i].setup_func, tests[i].teardown_func,
                                   tests[i].initial_state, tests[i].name};
        wrapped[i] = tests[i];
        wrapped[i].setup_func = tu_setup;
        wrapped[i].teardown_func = tu_teardown;
        wrapped[i].initial_state = &fixtures[i];
    }
    const int failed = _cmocka_run_group_tests(name, wrapped, count, NULL, NULL);
    tu_release_all();
    current = NULL;
    free(wrapped);
    free(fixtures);
    return failed;
}

void tu_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

float tu_max_abs_diff(const float *a, const float *b, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

float tu_max_abs(const float *v, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(v[i]) <= m)) m = fabsf(v[i]);
    return m;
}

double tu_rel_err(double a, double b) {
    double den = fabs(a) + fabs(b);
    if (den < 1e-3) den = 1e-3;
    return fabs(a - b) / den;
}
