/* geometry.c - the threat model's geometry: projection onto the eps-ball intersected with
 * the pixel box, normalised ascent steps, and reproducible random starts. */
#include "attack/attack.h"

#include <math.h>

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static double l2_dist(const float *x, const float *xa, int64_t size) {
    double s = 0.0;
    for (int64_t i = 0; i < size; i++) {
        const double d = (double)xa[i] - (double)x[i];
        s += d * d;
    }
    return sqrt(s);
}

void sat__attack_project(int32_t norm, float eps, const float *x, float *xa, int64_t size) {
    if (norm == SAT_NORM_LINF) {
        for (int64_t i = 0; i < size; i++) {
            const float lo = fmaxf(x[i] - eps, 0.0f), hi = fminf(x[i] + eps, 1.0f);
            xa[i] = clampf(xa[i], lo, hi);
        }
        return;
    }
    const double r = l2_dist(x, xa, size);
    if (r > (double)eps) {
        /* A hair inside the ball so that float rounding cannot leave it. */
        const double f = (double)eps / r * (1.0 - 1e-7);
        for (int64_t i = 0; i < size; i++)
            xa[i] = (float)((double)x[i] + ((double)xa[i] - (double)x[i]) * f);
    }
    for (int64_t i = 0; i < size; i++) xa[i] = clampf(xa[i], 0.0f, 1.0f);
}

void sat__attack_ascend(int32_t norm, float step, const float *g, float *xa, int64_t size) {
    if (norm == SAT_NORM_LINF) {
        /* sign(0) = 0 and NaN gives no move. */
        for (int64_t i = 0; i < size; i++)
            xa[i] += g[i] > 0.0f ? step : (g[i] < 0.0f ? -step : 0.0f);
        return;
    }
    double s = 0.0;
    for (int64_t i = 0; i < size; i++) s += (double)g[i] * (double)g[i];
    if (!(s > 0.0) || !isfinite(s)) return;
    const double f = (double)step / sqrt(s);
    for (int64_t i = 0; i < size; i++) xa[i] = (float)((double)xa[i] + f * (double)g[i]);
}

/* Example `example` of restart r draws under one key per restart (so restart r draws the
 * same numbers whatever the restart count) from index example * (size+1) on. */
static uint64_t start_key(uint64_t seed, int32_t restart) {
    return sat__rng_u64(seed, SAT_STREAM_ATTACK, ~(uint64_t)restart);
}

void sat__attack_random_start(int32_t norm, float eps, uint64_t seed, int32_t restart,
                              int64_t example, const float *x, float *xa, int64_t size) {
    const uint64_t key = start_key(seed, restart);
    const uint64_t base = (uint64_t)example * (uint64_t)(size + 1);
    if (norm == SAT_NORM_LINF) {
        for (int64_t i = 0; i < size; i++) {
            const float u = sat__rng_uniform(key, SAT_STREAM_ATTACK, base + (uint64_t)i);
            xa[i] = clampf(x[i] + eps * (2.0f * u - 1.0f), 0.0f, 1.0f);
        }
        return;
    }
    double s = 0.0;
    for (int64_t i = 0; i < size; i++) {
        xa[i] = sat__rng_normal(key, SAT_STREAM_ATTACK, base + (uint64_t)i);
        s += (double)xa[i] * (double)xa[i];
    }
    /* The normals use raw draws 2*base .. 2*(base+size)-1; the radius takes the next one.
     * Radius eps * u^(1/size) makes the point uniform in the ball's volume. */
    const double u = sat__rng_uniform(key, SAT_STREAM_ATTACK, 2 * (base + (uint64_t)size));
    const double radius = (double)eps * pow(u, 1.0 / (double)size);
    const double f = s > 0.0 ? radius / sqrt(s) : 0.0;
    for (int64_t i = 0; i < size; i++) xa[i] = clampf((float)((double)x[i] + f * (double)xa[i]), 0.0f, 1.0f);
}

void sat__attack_noise_start(float sigma, uint64_t seed, int32_t restart, int64_t example, const float *x,
                             float *xa, int64_t size) {
    const uint64_t key = start_key(seed, restart);
    const uint64_t base = (uint64_t)example * (uint64_t)(size + 1);
    for (int64_t i = 0; i < size; i++)
        xa[i] = clampf(x[i] + sigma * sat__rng_normal(key, SAT_STREAM_ATTACK, base + (uint64_t)i), 0.0f, 1.0f);
}
