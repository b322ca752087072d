/* bench_model.h - what the benchmark programs share around a model: the synthetic batch
 * and the trainer they time (compiled into each program, which links libsat its own way). */
#ifndef SAT_BENCH_MODEL_H
#define SAT_BENCH_MODEL_H

#include <sat.h>

/* x[0..n) uniform in [0,1) from a fixed xorshift sequence: every program and run times the
 * same pixels. */
void bench_fill_batch(float *x, int64_t n);

/* A preset for input c x h x w with `classes` outputs, activation `act_name`, planned for
 * batches up to max_batch, seed 1; its spec text in *spec (sat_free). Exits with a message
 * on failure. */
sat_model *bench_preset_model(sat_context *ctx, const char *name, int c, int h, int w, int classes,
                              const char *act_name, int max_batch, char **spec);

/* The optimizer and trainer the benchmarks time: SGD lr 0.01, momentum 0.9, weight decay
 * 5e-4 (not on biases and batch norm); `method` SAT_TRAIN_*, Linf PGD of `steps` steps
 * (at least 1) of size `step` within eps, random start. Exits with a message on failure. */
void bench_trainer(sat_model *model, int32_t method, int steps, float eps, float step, sat_optimizer **opt,
                   sat_trainer **tr);

#endif
