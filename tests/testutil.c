/* testutil.c - helpers shared by the unit tests. */
#include "testutil.h"

#include <math.h>

sat_context *tu_context(int32_t threads, uint64_t seed) {
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = threads;
    o.seed = seed;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    return ctx;
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

double tu_rel_err(double a, double b) {
    double den = fabs(a) + fabs(b);
    if (den < 1e-3) den = 1e-3;
    return fabs(a - b) / den;
}
