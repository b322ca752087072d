/* kernel_path_from_env.c - linked into a copy of a program (sat-cli-paths) to run it on
 * another kernel path: the arithmetic another CPU would do, on this one. Before main, it
 * selects the GEMM path whose name starts with $SAT_KERNEL_PATH (e.g. "blis-zen3", as
 * tests/kernel_paths.h names them), with the activation loops and direct convolutions a CPU
 * of that kind runs (blis-zen3: AVX2 loops, AVX2 direct convolutions). $SAT_DIRECT_CONV=0
 * turns the direct convolutions off; =avx512 runs the AVX-512 ones and loops instead, as a
 * Zen 4 does on BLIS zen3. For measurements only:
 * the library itself reads no environment variables. */
#define _POSIX_C_SOURCE 200809L
#include "kernel_paths.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void kernel_path_from_env(void) {
    const char *want = getenv("SAT_KERNEL_PATH"), *direct = getenv("SAT_DIRECT_CONV");
    if (!want) return;
    kernel_path paths[KERNEL_PATHS_MAX];
    const int n = kernel_paths(paths);
    const size_t len = strlen(want);
    for (int i = 0; i < n; i++) {
        if (paths[i].direct || strncmp(paths[i].name, want, len) != 0 || paths[i].name[len] != ',') continue;
        if (!kernel_path_apply(&paths[i])) break;
        /* The direct kernels as wide as the path's activation loops: what its CPU kind runs. */
        int level = paths[i].simd;
        if (direct && !strcmp(direct, "avx512"))
            level = SAT_SIMD_AVX512;
        else if (direct && atoi(direct) == 0)
            level = SAT_SIMD_BASE;
        sat__conv_direct_select(level);
        if (level == SAT_SIMD_AVX512) sat__simd_select(SAT_SIMD_AVX512);
        const int running = sat__conv_direct_available();
        fprintf(stderr, "kernel path: %s, direct convolutions %s, activation loops %s\n", sat__gemm_path(),
                running ? sat__simd_name(running) : "off", sat__simd_name(sat__simd_level()));
        return;
    }
    fprintf(stderr, "SAT_KERNEL_PATH=%s is not a GEMM path this CPU can run; it can run:\n", want);
    for (int i = 0; i < n; i++)
        if (!paths[i].direct) fprintf(stderr, "  %.*s\n", (int)strcspn(paths[i].name, ","), paths[i].name);
    exit(2);
}
