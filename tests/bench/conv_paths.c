/* conv_paths.c - every distinct convolution layer of madry-cnn and resnet20, timed per pass
 * (forward, input gradient, weight gradient) on the kernels a CPU of each kind runs, one
 * thread, batch 128 by default:
 *
 *   - AVX2 CPUs: im2col + BLIS zen3 (haswell where zen3 is missing) against the 256-bit
 *     direct kernels;
 *   - AVX-512 CPUs: im2col + the library's own GEMM choice against the 512-bit direct
 *     kernels;
 *
 * each where this CPU has the instructions. A pass the direct kernels do not take (a
 * strided layer, a weight gradient on AVX2, ...) is timed on im2col alone. One line per
 * layer, pass and kernel: median milliseconds of --reps calls after a warm-up, GFLOP/s, and
 * which kernel the library picks for that pass (sat__conv_direct_fits). The variants of a
 * shape are interleaved, so that a busy machine hits them alike.
 *
 *   conv_paths [--batch 128] [--reps 5] */
#define _POSIX_C_SOURCE 200809L

#include <sat.h>

#include "bench_model.h"
#include "kernel_paths.h"
#include "kernels/kernels.h"
#include "model_gemms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FORWARD, DATA, WEIGHTS, PASSES };
static const char *const pass_names[PASSES] = {"forward", "input gradient", "weight gradient"};

typedef struct variant {
    const char *name;
    const kernel_path *path; /* applied before each call */
    int direct;              /* SAT_SIMD_* of the direct kernels; 0: im2col */
} variant;

/* n floats in [0, 1) (the timings do not depend on the values). */
static float *filled(int64_t n) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) {
        fprintf(stderr, "conv_paths: out of memory\n");
        exit(1);
    }
    bench_fill_batch(v, n);
    return v;
}

static double run_pass(int pass, const sat_conv_geom *g, int64_t n, const float *x, const float *w, const float *dy,
                       float *out, float *dw, float *ws) {
    const double t0 = now_s();
    if (pass == FORWARD)
        sat__conv_forward(NULL, g, x, w, NULL, out, n, ws, 1, 1);
    else if (pass == DATA)
        sat__conv_backward_data(NULL, g, dy, w, out, n, ws, 1);
    else
        sat__conv_backward_weights(NULL, g, x, dy, dw, NULL, n, ws, 1);
    return now_s() - t0;
}

/* Whether the direct kernels take this pass at that level. */
static int direct_takes(sat_conv_geom g, int level, int pass) {
    g.direct = level;
    return sat__conv_direct_fits(&g, pass == FORWARD ? SAT_CONV_DIRECT_FORWARD
                                     : pass == DATA  ? SAT_CONV_DIRECT_DATA
                                                     : SAT_CONV_DIRECT_WEIGHTS);
}

static void time_layer(const char *model, const layer_geom *l, int64_t n, int reps, const variant *v, int nv) {
    sat_conv_geom g = {l->c_in, l->h_in, l->w_in, l->c_out, l->k, l->stride, l->pad, 0, 0, 0};
    if (!sat__conv_geom_init(&g)) return;
    const int64_t nx = n * g.c_in * g.h_in * g.w_in, ny = n * g.c_out * g.h_out * g.w_out;
    const int64_t nw = (int64_t)g.c_out * g.c_in * g.k * g.k;
    int64_t nws = 1;
    for (int i = 0; i < nv; i++) {
        g.direct = v[i].direct;
        const int64_t s = sat__conv_workspace(&g, n, 1, 1);
        if (s > nws) nws = s;
    }
    float *x = filled(nx), *w = filled(nw), *dy = filled(ny), *dw = filled(nw), *ws = filled(nws);
    float *out = filled(nx > ny ? nx : ny);
    const double flops = 2.0 * (double)n * g.h_out * g.w_out * g.c_out * (double)(g.c_in * g.k * g.k);
    for (int pass = 0; pass < PASSES; pass++) {
        double *t = calloc((size_t)(nv * reps), sizeof *t);
        int take[8];
        for (int i = 0; i < nv; i++) take[i] = v[i].direct == 0 || direct_takes(g, v[i].direct, pass);
        for (int r = -1; r < reps; r++)
            for (int i = 0; i < nv; i++) {
                if (!take[i]) continue;
                kernel_path_apply(v[i].path);
                g.direct = v[i].direct;
                const double s = run_pass(pass, &g, n, x, w, dy, out, dw, ws);
                if (r >= 0) t[i * reps + r] = s;
            }
        for (int i = 0; i < nv; i++) {
            if (!take[i]) continue;
            const double ms = 1e3 * median(t + i * reps, reps);
            printf("%-9s conv %3d->%3d k%d s%d %2dx%-2d  %-15s  %-28s %8.2f ms %6.1f GFLOP/s\n", model, l->c_in,
                   l->c_out, l->k, l->stride, l->h_in, l->w_in, pass_names[pass], v[i].name, ms,
                   flops / (ms * 1e6));
        }
        /* What the library picks on each CPU kind for this pass. */
        for (int i = 0; i < nv; i++)
            if (v[i].direct)
                printf("%-9s   picks on %s CPUs: %s\n", "", sat__simd_name(v[i].direct),
                       direct_takes(g, v[i].direct, pass) ? "direct" : "im2col");
        free(t);
    }
    free(x), free(w), free(dy), free(dw), free(ws), free(out);
}

int main(int argc, char **argv) {
    int64_t batch = 128;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: conv_paths [--batch 128] [--reps 5]\n");
            return 2;
        }
    }
    if (batch < 1 || reps < 1) return 2;
    /* The variants this CPU can run, from the tests' list of kernel paths. */
    kernel_path paths[KERNEL_PATHS_MAX];
    const int np = kernel_paths(paths);
    variant v[4];
    int nv = 0;
    static kernel_path im2col; /* the AVX2 path with the direct kernels off */
    for (int i = 0; i < np && nv == 0; i++)
        if (paths[i].direct == SAT_SIMD_AVX2) {
            im2col = paths[i];
            im2col.direct = SAT_SIMD_BASE;
            static char name[2][64];
            snprintf(name[0], sizeof name[0], "blis-%s im2col", paths[i].arch);
            snprintf(name[1], sizeof name[1], "blis-%s direct avx2", paths[i].arch);
            v[nv++] = (variant){name[0], &im2col, 0};
            v[nv++] = (variant){name[1], &paths[i], SAT_SIMD_AVX2};
        }
    kernel_path own = {"", NULL, NULL, -1, SAT_SIMD_AVX512, SAT_SIMD_AVX512};
    kernel_path_reset();
    static char own_name[2][64];
    snprintf(own_name[0], sizeof own_name[0], "%.40s im2col", sat__gemm_path());
    snprintf(own_name[1], sizeof own_name[1], "%.40s direct avx512", sat__gemm_path());
    if (sat__conv_direct_available() == SAT_SIMD_AVX512) {
        v[nv++] = (variant){own_name[0], &own, 0};
        v[nv++] = (variant){own_name[1], &own, SAT_SIMD_AVX512};
    }
    if (!nv) {
        printf("no direct convolution kernels on this CPU: nothing to compare\n");
        return 0;
    }
    printf("conv_paths: batch %lld, 1 thread, median of %d calls; BLIS picks %s here\n", (long long)batch, reps,
           kernel_path_native_arch());
    static const struct {
        const char *name;
        int c, hw;
    } models[] = {{"madry-cnn", 1, 28}, {"resnet20", 3, 32}};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char *spec = NULL;
        if (sat_preset_spec(models[m].name, models[m].c, models[m].hw, models[m].hw, 10, NULL, NULL, &spec) != SAT_OK)
            return 1;
        static model_gemms mg;
        spec_gemms(spec, batch, &mg);
        sat_free(spec);
        for (int i = 0; i < mg.n_layers; i++) {
            const layer_geom *l = &mg.layer[i];
            int seen = 0;
            for (int j = 0; j < i; j++) seen |= !memcmp(&mg.layer[j], l, sizeof *l);
            if (l->dense || l->groups > 1 || seen) continue;
            time_layer(models[m].name, l, batch, reps, v, nv);
        }
    }
    kernel_path_reset();
    return 0;
}
