/* kernel_paths.h - the kernel paths this CPU can execute, for the tests and benchmarks.
 *
 * Which kernels multiply depends on the CPU: BLIS picks one of its configurations (skx,
 * haswell, zen3, generic, ...), the library may put its own AVX-512 micro-kernel in, and
 * stride-1 convolutions may run through the direct AVX-512 or AVX2 kernels. A guarantee checked
 * only on the path the test machine happens to pick says nothing about the next machine.
 * Programs that use this link the static BLIS, in which every x86-64 configuration is
 * registered: each configuration's context is taken from BLIS's kernel structure and
 * handed to the library's GEMM (sat__gemm_select). */
#ifndef SAT_KERNEL_PATHS_H
#define SAT_KERNEL_PATHS_H

typedef struct kernel_path {
    char name[96];
    const void *cntx; /* BLIS context; NULL: the native one */
    const char *arch; /* the configuration's name */
    int own_ukr;      /* 1: the library's AVX-512 micro-kernel; -1: the library's own choice */
    int direct;       /* SAT_SIMD_*: the direct convolutions' kernels; SAT_SIMD_BASE: off */
    int simd;         /* SAT_SIMD_*: the widest activation loops (capped by the CPU) */
} kernel_path;

#define KERNEL_PATHS_MAX 24

/* Fills paths[] (KERNEL_PATHS_MAX entries) and returns how many there are, in order:
 *   - every BLIS configuration whose instructions this CPU has, direct convolutions off
 *     (so the im2col + GEMM path carries every convolution), with the activation loops a
 *     CPU of that configuration runs (skx: AVX-512, haswell and zen*: AVX2, others: baseline);
 *   - the library's AVX-512 micro-kernel on BLIS's native context, direct convolutions off;
 *   - what an AVX2 CPU runs: BLIS zen3 (or haswell), the AVX2 direct convolutions, AVX2 loops;
 *   - the library's own choice for this CPU with the AVX-512 direct convolutions on.
 * The last two only where the CPU has the instructions. */
int kernel_paths(kernel_path *paths);
/* Makes every later GEMM and model use the path; 0 if it cannot be selected. */
int kernel_path_apply(const kernel_path *p);
/* Back to the library's own choice. */
void kernel_path_reset(void);
/* The BLIS configuration BLIS itself picks for this CPU. */
const char *kernel_path_native_arch(void);

#endif
