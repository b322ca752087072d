/* fma_peak.h - the machine's measured peak: how many single-precision FLOPs per second
 * independent FMAs reach on `threads` threads, with 512-bit or 256-bit vectors. The whole
 * steps of sat_bench are reported against it, not only against BLIS. */
#ifndef SAT_BENCH_FMA_PEAK_H
#define SAT_BENCH_FMA_PEAK_H

/* GFLOP/s (an FMA counts 2 per lane) of `threads` threads each running FMAs for about
 * `seconds`; the best of three. 0 when the CPU lacks the instructions. bits: 512 or 256. */
double fma_peak_gflops(int bits, int threads, double seconds);

#endif
