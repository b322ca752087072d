/* kernel_paths.c - see kernel_paths.h. */
#define _POSIX_C_SOURCE 200809L
#include "kernel_paths.h"

#include "kernels/blis_include.h"
#include "kernels/kernels.h"

#include <stdio.h>

/* Whether this CPU has the instructions a BLIS configuration's kernels use. BLIS's own
 * bli_cpuid_is_* checks also demand a vendor and family; only the instructions matter
 * here. __builtin_cpu_supports takes literal names, hence the switch. */
static int cpu_runs(arch_t id) {
    __builtin_cpu_init();
    switch (id) {
    case BLIS_ARCH_SKX:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    case BLIS_ARCH_KNL:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512pf") &&
               __builtin_cpu_supports("avx512er");
    case BLIS_ARCH_HASWELL:
    case BLIS_ARCH_ZEN:
    case BLIS_ARCH_ZEN2:
    case BLIS_ARCH_ZEN3:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case BLIS_ARCH_SANDYBRIDGE:
        return __builtin_cpu_supports("avx");
    case BLIS_ARCH_PENRYN:
        return __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
    case BLIS_ARCH_BULLDOZER:
    case BLIS_ARCH_PILEDRIVER:
    case BLIS_ARCH_STEAMROLLER:
    case BLIS_ARCH_EXCAVATOR:
        return __builtin_cpu_supports("fma4") && __builtin_cpu_supports("avx");
    case BLIS_ARCH_GENERIC:
        return 1;
    default:
        return 0;
    }
}

/* The widest activation loops a CPU that picks this configuration would run. */
static int simd_of(arch_t id) {
    switch (id) {
    case BLIS_ARCH_SKX:
    case BLIS_ARCH_KNL:
        return SAT_SIMD_AVX512;
    case BLIS_ARCH_HASWELL:
    case BLIS_ARCH_ZEN:
    case BLIS_ARCH_ZEN2:
    case BLIS_ARCH_ZEN3:
        return SAT_SIMD_AVX2;
    default:
        return SAT_SIMD_BASE;
    }
}

int kernel_paths(kernel_path *p) {
    bli_init();
    int n = 0;
    int avx2_arch = -1; /* the configuration an AVX2 CPU's BLIS picks: zen3 on AMD, haswell on Intel */
    for (arch_t id = 0; id < BLIS_NUM_ARCHS && n < KERNEL_PATHS_MAX - 3; id++) {
        cntx_t **c = bli_gks_lookup_id(id);
        if (!c || !c[BLIS_NAT] || !cpu_runs(id)) continue;
        if (id == BLIS_ARCH_ZEN3 || (id == BLIS_ARCH_HASWELL && avx2_arch < 0)) avx2_arch = n;
        p[n] = (kernel_path){"", c[BLIS_NAT], bli_arch_string(id), 0, SAT_SIMD_BASE, simd_of(id)};
        snprintf(p[n].name, sizeof p[n].name, "blis-%s, im2col, %s loops", p[n].arch, sat__simd_name(p[n].simd));
        n++;
    }
    if (sat__gemm_select(NULL, NULL, 1)) {
        p[n] = (kernel_path){"", NULL, NULL, 1, SAT_SIMD_BASE, SAT_SIMD_AVX512};
        snprintf(p[n].name, sizeof p[n].name, "%s, im2col, avx512 loops", sat__gemm_path());
        n++;
    }
    kernel_path_reset();
    /* What an AVX2 CPU runs: its BLIS configuration's GEMM and the 256-bit direct kernels. */
    if (sat__conv_direct_available() >= SAT_SIMD_AVX2 && avx2_arch >= 0) {
        p[n] = p[avx2_arch];
        p[n].direct = SAT_SIMD_AVX2;
        snprintf(p[n].name, sizeof p[n].name, "blis-%s, direct conv avx2, avx2 loops", p[n].arch);
        n++;
    }
    if (sat__conv_direct_available() == SAT_SIMD_AVX512) {
        p[n] = (kernel_path){"", NULL, NULL, -1, SAT_SIMD_AVX512, SAT_SIMD_AVX512};
        snprintf(p[n].name, sizeof p[n].name, "%s, direct conv avx512, %s loops", sat__gemm_path(),
                 sat__simd_name(sat__simd_cpu_level()));
        n++;
    }
    return n;
}

int kernel_path_apply(const kernel_path *p) {
    sat__conv_direct_select(p->direct);
    sat__simd_select(p->simd);
    if (p->own_ukr >= 0) return sat__gemm_select(p->cntx, p->arch, p->own_ukr);
    sat__gemm_select_default();
    return 1;
}

void kernel_path_reset(void) {
    sat__gemm_select_default();
    sat__conv_direct_select(SAT_SIMD_AVX512);
    sat__simd_select(SAT_SIMD_AVX512);
}

const char *kernel_path_native_arch(void) {
    bli_init();
    return bli_arch_string(bli_arch_query_id());
}
