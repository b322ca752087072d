/* model_gemms.h - the GEMMs a model's convolution and dense layers issue, from its spec
 * text, and the timing helpers the benchmarks share. */
#ifndef SAT_BENCH_MODEL_GEMMS_H
#define SAT_BENCH_MODEL_GEMMS_H

#include <stdint.h>

#define MAX_GEMMS 256

typedef struct gemm_shape {
    int64_t m, n, k;
    int ta, tb;     /* row-major transposes as libsat issues them */
    int kind;       /* 0 forward, 1 data gradient, 2 weight gradient */
    int first;      /* belongs to the first parametrised layer */
} gemm_shape;

#define MAX_LAYERS 128

/* A conv or dense layer as the spec declares it (dense: c_in inputs, c_out outputs). */
typedef struct layer_geom {
    int dense;
    int c_in, h_in, w_in, c_out, k, stride, pad, groups;
} layer_geom;

typedef struct model_gemms {
    gemm_shape g[MAX_GEMMS];
    int count;
    layer_geom layer[MAX_LAYERS];
    int n_layers;
} model_gemms;

/* Walks the spec (layer shapes, names, from=) and lists the three GEMMs of every conv and
 * dense layer for a batch: convolution as one batched im2col GEMM over batch*P columns. */
void spec_gemms(const char *spec, int64_t batch, model_gemms *mg);
double gemm_flops(const gemm_shape *s);
/* FLOPs of one attack iteration (forward + all data gradients) and of one train pass
 * (forward + data gradients except the first layer's + weight gradients). */
void model_flops(const model_gemms *mg, double *attack, double *train);
/* Whether a GEMM belongs to an attack iteration or to a train pass (as model_flops counts). */
int gemm_in_attack(const gemm_shape *s);
int gemm_in_train(const gemm_shape *s);

/* Monotonic seconds; median of v[0..n) (reorders v). */
double now_s(void);
double median(double *v, int n);

#endif
