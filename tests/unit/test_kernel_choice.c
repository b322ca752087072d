/* test_kernel_choice.c - the kernels the library picks by itself follow what the CPU
 * reports, so a CPU (or an emulator) that reports no AVX-512 runs no AVX-512 code.
 *
 * This is the switch to the portable paths that valgrind relies on: valgrind 3.19 cannot
 * execute AVX-512 and reports none through its emulated CPUID, so BLIS picks a
 * configuration without it (haswell on an AVX2 machine) and the library leaves its own
 * AVX-512 micro-kernel and AVX-512 direct convolutions out (the AVX2 ones run). tests/long-run.sh runs this program
 * under valgrind first and refuses to go on unless it prints "AVX-512 reported: no" and a
 * path without AVX-512 (docs/testing.md, "Valgrind"). */
#include "testutil.h"
#include "kernel_paths.h"

#include "kernels/kernels.h"

#include <stdio.h>
#include <string.h>

static char logged[1024];

static void keep_message(void *user, int32_t level, const char *message) {
    (void)user;
    if (level == SAT_LOG_INFO && strstr(message, "GEMMs on")) snprintf(logged, sizeof logged, "%s", message);
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

/* The BLIS configurations whose kernels use AVX-512. */
static int arch_uses_avx512(const char *arch) { return strcmp(arch, "skx") == 0 || strcmp(arch, "knl") == 0; }

static void test_choice_follows_cpu(void **state) {
    (void)state;
    kernel_path_reset(); /* the library's own choice, as a host gets it */
    const char *path = sat__gemm_path();
    const char *arch = kernel_path_native_arch();
    const int direct = sat__conv_direct_available();
    const char *direct_name = direct ? sat__simd_name(direct) : "off";
    const char *loops = sat__simd_name(sat__simd_level());
    printf("kernel choice: gemm %s, BLIS configuration %s, direct convolutions %s, activation loops %s, "
           "AVX-512 reported: %s\n",
           path, arch, direct_name, loops, cpu_has_avx512() ? "yes" : "no");
    if (!cpu_has_avx512()) {
        if (strstr(path, "avx512") || arch_uses_avx512(arch) || direct == SAT_SIMD_AVX512 ||
            sat__simd_level() == SAT_SIMD_AVX512)
            fail_msg("no AVX-512 reported, yet the library runs %s on BLIS %s with direct convolutions %s and "
                     "%s activation loops",
                     path, arch, direct_name, loops);
        /* The test's own list of paths holds none either. */
        kernel_path paths[KERNEL_PATHS_MAX];
        int n = kernel_paths(paths);
        for (int i = 0; i < n; i++)
            if (strstr(paths[i].name, "avx512") || strstr(paths[i].name, "skx") ||
                paths[i].direct == SAT_SIMD_AVX512 || paths[i].simd == SAT_SIMD_AVX512)
                fail_msg("no AVX-512 reported, yet the kernel path \"%s\" is listed", paths[i].name);
        kernel_path_reset();
    }
}

/* What a model says it runs on (its SAT_LOG_INFO line) is the choice checked above. */
static void test_model_reports_choice(void **state) {
    (void)state;
    kernel_path_reset();
    sat_context_opts o;
    TU_CHECK(sat_context_opts_init(&o, sizeof o));
    o.num_threads = 1;
    o.log_fn = keep_message;
    o.log_level = SAT_LOG_INFO;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    tu_own_context(ctx);
    logged[0] = '\0';
    tu_model(ctx, "input 1 4 4\nconv 2 k=3 p=1\nact\nflatten\ndense 3\n", SAT_ACT_SILU, 2);
    char expect[256];
    const int direct = sat__conv_direct_available();
    snprintf(expect, sizeof expect, "GEMMs on %s; direct convolutions %s", sat__gemm_path(),
             direct ? sat__simd_name(direct) : "off");
    if (!strstr(logged, expect)) fail_msg("the model logged \"%s\", expected \"%s\"", logged, expect);
    snprintf(expect, sizeof expect, "activation loops %s", sat__simd_name(sat__simd_level()));
    if (!strstr(logged, expect)) fail_msg("the model logged \"%s\", expected \"%s\"", logged, expect);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice_follows_cpu),
        cmocka_unit_test(test_model_reports_choice),
    };
    return tu_run_group("test_kernel_choice", tests, sizeof tests / sizeof tests[0]);
}
