/* fma_peak.c - see fma_peak.h. Each thread keeps 16 (512-bit) or 12 (256-bit) independent
 * accumulator chains, enough to cover an FMA latency of 4 cycles on two pipes, and runs
 * blocks of 100 FMAs per chain until its time is up. */
#define _POSIX_C_SOURCE 200809L
#include "fma_peak.h"
#include "model_gemms.h" /* now_s */

#include <pthread.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FMA_PROBE 1
#endif

#define BLOCK 100

typedef struct probe {
    int bits;
    double seconds, flops, elapsed;
    float sink;
} probe;

#ifdef FMA_PROBE
__attribute__((target("avx512f"))) static double run512(double seconds, float *sink) {
    __m512 a[16];
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i);
    double blocks = 0.0;
    const double end = now_s() + seconds;
    do {
        for (int r = 0; r < BLOCK; r++)
            for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
        blocks += 1.0;
    } while (now_s() < end);
    __m512 s = a[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, a[i]);
    *sink = _mm512_reduce_add_ps(s);
    return blocks * BLOCK * 16 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double run256(double seconds, float *sink) {
    __m256 a[12];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double blocks = 0.0;
    const double end = now_s() + seconds;
    do {
        for (int r = 0; r < BLOCK; r++)
            for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
        blocks += 1.0;
    } while (now_s() < end);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    *sink = v[0] + v[7];
    return blocks * BLOCK * 12 * 8 * 2;
}
#endif

static void *probe_thread(void *arg) {
    probe *p = arg;
    const double t0 = now_s();
#ifdef FMA_PROBE
    p->flops = p->bits == 512 ? run512(p->seconds, &p->sink) : run256(p->seconds, &p->sink);
#endif
    p->elapsed = now_s() - t0;
    return NULL;
}

static int cpu_has(int bits) {
#ifdef FMA_PROBE
    __builtin_cpu_init();
    if (bits == 512) return __builtin_cpu_supports("avx512f");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)bits;
    return 0;
#endif
}

double fma_peak_gflops(int bits, int threads, double seconds) {
    if (!cpu_has(bits) || threads < 1 || threads > 64) return 0.0;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        probe p[64];
        pthread_t tid[64];
        for (int t = 0; t < threads; t++) {
            p[t] = (probe){bits, seconds, 0.0, 0.0, 0.0f};
            if (t > 0 && pthread_create(&tid[t], NULL, probe_thread, &p[t]) != 0) return 0.0;
        }
        probe_thread(&p[0]);
        for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
        double rate = 0.0; /* threads run side by side: the sum of their rates */
        for (int t = 0; t < threads; t++) rate += p[t].flops / p[t].elapsed;
        if (rate > best) best = rate;
    }
    return best * 1e-9;
}
