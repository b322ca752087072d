/* sat_bench.c - step times, attack throughput, GFLOP/s against BLIS and peak memory of
 * libsat on the models of the performance issue (madry-cnn on 1x28x28, resnet20 on
 * 3x32x32; "all" is those two) and on the presets of the robustness benchmarks and the
 * paper (preact-resnet18 on 3x32x32; efficientnet-b0 and resnet50 on 3x224x224).
 *
 *   sat_bench [--model madry-cnn|resnet20|preact-resnet18|efficientnet-b0|resnet50|all]
 *             [--act relu|silu|all] [--batch 128]
 *             [--reps 5] [--threads 1,2] [--single [--no-ref]] [--checkpointing]
 *
 * Without --single the program runs every (model, activation, threads) configuration in a
 * child process of its own (so each peak resident size is that configuration's alone),
 * prints one JSON line per measurement as the children report them, then a table.
 * With --single it measures one configuration (the first of each list) in this process;
 * --no-ref skips the GEMM reference timings (for profiling the library alone), --metrics
 * LIST times only some of the steps below (train, pgd1, pgdk, attack; the large models'
 * steps take minutes). --checkpointing runs the model with activation checkpointing
 * (sat_model_opts.activation_checkpointing; reported as the metric activation_checkpointing).
 *
 * Measurements (medians over --reps timed calls after one warm-up call):
 *   train_ms      sat_train_step, SAT_TRAIN_STANDARD (forward + backward + SGD update)
 *   pgd1_ms       sat_train_step, SAT_TRAIN_PGD with 1 attack step
 *   pgdk_ms       sat_train_step, SAT_TRAIN_PGD with 10 (madry-cnn, preact-resnet18) / 7
 *                 (resnet20) / 1 (efficientnet-b0, resnet50: the paper's attack) steps
 *   attack_img_s  images per second of sat_pgd_attack, PGD-10
 *   *_gflops      achieved GFLOP/s counting the conv/dense GEMMs only (2 M N K each):
 *                 attack iteration = forward + data gradients; train = forward + data
 *                 gradients (not for the first layer) + weight gradients
 *   blis_*        the same GEMM shapes timed with bli_sgemm directly: the time the step's
 *                 GEMMs alone take, i.e. the limit, and the GFLOP/s that gives
 *   blis_1024_gflops  bli_sgemm on 1024^3, the machine's reference
 *   satgemm_*     the same shapes and 1024^3 through libsat's GEMM entry point (BLIS with
 *                 the micro-kernel libsat selects for this CPU; see lib/kernels/gemm.c)
 *   peak_rss_mb   getrusage ru_maxrss after the libsat measurements (before the BLIS ones)
 *   fma512_peak_gflops, fma256_peak_gflops  the machine's measured FMA peak on this many
 *                 threads (fma_peak.c; 0 without the instructions)
 *   pgdk_peak_pct pgdk_gflops against the peak of the widest vectors the step uses
 *   kernel_paths  (an object) the CPU, BLIS's configuration, the GEMM path, whether the
 *                 direct convolutions and which activation loops run, and every layer's
 *                 kernels per pass
 * SAT_KERNEL_PATH / SAT_DIRECT_CONV run it on another CPU's kernel path (tests/bench/
 * kernel_path_from_env.c), e.g. SAT_KERNEL_PATH=blis-zen3 SAT_DIRECT_CONV=0: AVX2 only.
 * Attack settings: Linf, eps 8/255, step 2/255, random start; SGD lr 0.01 momentum 0.9,
 * weight decay 5e-4 (not on biases and batch norm). */
#define _POSIX_C_SOURCE 200809L

#include <sat.h>
#ifdef SAT_BENCH_INTERNAL
#include "kernels/kernels.h" /* sat__gemm: the library's GEMM entry point */
#endif

#include "kernels/blis_include.h"
#include "bench_model.h"
#include "fma_peak.h"
#include "model_gemms.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST 8
#define EPS (8.0f / 255.0f)
#define STEP (2.0f / 255.0f)

typedef struct opts {
    const char *models[MAX_LIST];
    int n_models;
    const char *acts[MAX_LIST];
    int n_acts;
    int threads[MAX_LIST];
    int n_threads;
    int batch, reps, single, no_ref, checkpointing;
    const char *metrics; /* --metrics: which step timings (NULL: all) */
} opts;

static void die(const char *what, int32_t st, const char *msg) {
    fprintf(stderr, "sat_bench: %s failed: %s (%s)\n", what, sat_status_string(st), msg ? msg : "");
    exit(1);
}

static double time_sgemm(const gemm_shape *s, float *a, float *b, float *c, int threads, int reps) {
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(threads, &rntm);
    float one = 1.0f, zero = 0.0f;
    /* row-major A is m x k (k x m stored when ta), B is k x n (n x k stored when tb) */
    inc_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    inc_t rsa = s->ta ? 1 : lda, csa = s->ta ? lda : 1, rsb = s->tb ? 1 : ldb, csb = s->tb ? ldb : 1;
    double t[64];
    if (reps > 64) reps = 64;
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, s->m, s->n, s->k, &one, a, rsa, csa, b, rsb,
                     csb, &zero, c, s->n, 1, NULL, &rntm);
        if (r >= 0) t[r] = now_s() - t0;
    }
    return median(t, reps);
}

#ifdef SAT_BENCH_INTERNAL
static double time_satgemm(const sat_context *ctx, const gemm_shape *s, float *a, float *b, float *c,
                           int reps) {
    const int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    double t[64];
    if (reps > 64) reps = 64;
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        sat__gemm(ctx, s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        if (r >= 0) t[r] = now_s() - t0;
    }
    return median(t, reps);
}
#endif

/* ---- output ---- */

static void emit(const char *model, const char *act, int threads, int batch, const char *metric,
                 double value) {
    printf("{\"impl\":\"libsat\",\"model\":\"%s\",\"act\":\"%s\",\"threads\":%d,\"batch\":%d,"
           "\"metric\":\"%s\",\"value\":%.6g}\n",
           model, act, threads, batch, metric, value);
    fflush(stdout);
}

/* The CPU as /proc/cpuinfo names it, with its family and model numbers. */
static void cpu_name(char *out, size_t cap) {
    char line[256], name[128] = "unknown", family[16] = "?", model[16] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1 + strspn(colon + 1, " \t");
        v[strcspn(v, "\n")] = 0;
        if (!strncmp(line, "model name", 10)) snprintf(name, sizeof name, "%s", v);
        else if (!strncmp(line, "cpu family", 10)) snprintf(family, sizeof family, "%s", v);
        else if (!strncmp(line, "model\t", 6)) snprintf(model, sizeof model, "%s", v);
        else if (!strncmp(line, "flags", 5)) break; /* the first CPU's entries are enough */
    }
    if (f) fclose(f);
    snprintf(out, cap, "%s (family %s, model %s)", name, family, model);
}

#ifdef SAT_BENCH_INTERNAL
/* Which kernels each conv and dense layer runs on, per pass: the library's rule
 * (sat__conv_direct_fits) applied to the spec's geometry. */
static void layer_paths(const layer_geom *l, char *out, size_t cap) {
    if (l->dense) {
        snprintf(out, cap, "dense %d->%d: gemm", l->c_in, l->c_out);
        return;
    }
    if (l->groups > 1) {
        snprintf(out, cap, "conv %d->%d k%d s%d g%d %dx%d: grouped loops", l->c_in, l->c_out, l->k, l->stride,
                 l->groups, l->h_in, l->w_in);
        return;
    }
    sat_conv_geom g = {l->c_in, l->h_in, l->w_in, l->c_out, l->k, l->stride, l->pad, 0, 0,
                       sat__conv_direct_available()};
    sat__conv_geom_init(&g);
    const char *gemm = l->k == 1 && l->stride == 1 && l->pad == 0 ? "gemm" : "im2col+gemm";
    snprintf(out, cap, "conv %d->%d k%d s%d %dx%d: forward %s, input gradient %s, weight gradient %s", l->c_in,
             l->c_out, l->k, l->stride, l->h_in, l->w_in, sat__conv_direct_fits(&g, SAT_CONV_DIRECT_FORWARD) ? "direct" : gemm,
             sat__conv_direct_fits(&g, SAT_CONV_DIRECT_DATA) ? "direct" : gemm,
             sat__conv_direct_fits(&g, SAT_CONV_DIRECT_WEIGHTS) ? "direct" : gemm);
}

/* Whether the step runs any AVX-512 code: then the machine's peak is the 512-bit one. */
static int path_uses_avx512(void) {
    const char *gemm = sat__gemm_path();
    return sat__conv_direct_available() == SAT_SIMD_AVX512 || sat__simd_level() == SAT_SIMD_AVX512 ||
           strstr(gemm, "avx512") || strstr(gemm, "skx");
}
#endif

/* One JSON line naming the CPU, the BLIS configuration and the kernels of every layer. */
static void emit_paths(const char *model, const char *act, int threads, int batch, const model_gemms *mg) {
    char cpu[192];
    cpu_name(cpu, sizeof cpu);
    bli_init();
    printf("{\"impl\":\"libsat\",\"model\":\"%s\",\"act\":\"%s\",\"threads\":%d,\"batch\":%d,"
           "\"metric\":\"kernel_paths\",\"value\":{\"cpu\":\"%s\",\"blis_arch\":\"%s\"",
           model, act, threads, batch, cpu, bli_arch_string(bli_arch_query_id()));
#ifdef SAT_BENCH_INTERNAL
    const int direct = sat__conv_direct_available();
    printf(",\"gemm\":\"%s\",\"direct_conv\":\"%s\",\"activation_loops\":\"%s\",\"layers\":[", sat__gemm_path(),
           direct ? sat__simd_name(direct) : "off", sat__simd_name(sat__simd_level()));
    for (int i = 0; i < mg->n_layers; i++) {
        char desc[256];
        layer_paths(&mg->layer[i], desc, sizeof desc);
        printf("%s\"%s\"", i ? "," : "", desc);
    }
    printf("]");
#else
    (void)mg;
    printf(",\"gemm\":\"stock BLIS (library built without the internal view)\"");
#endif
    printf("}}\n");
    fflush(stdout);
}

/* ---- one configuration ---- */

/* Each model's input and the attack steps of its PGD-k training step: Madry's PGD-10 and the
 * CIFAR ResNets' PGD-7 / PGD-10 (Rice et al.), and the paper's PGD-1 on the ImageNet
 * networks. 0: not a model of the benchmark. */
static int input_shape(const char *model, int *c, int *h, int *w, int *pgd_steps) {
    static const struct {
        const char *name;
        int c, h, w, steps;
    } models[] = {
        {"madry-cnn", 1, 28, 28, 10},      {"resnet20", 3, 32, 32, 7},
        {"preact-resnet18", 3, 32, 32, 10}, {"efficientnet-b0", 3, 224, 224, 1},
        {"resnet50", 3, 224, 224, 1},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (strcmp(model, models[i].name) == 0) {
            *c = models[i].c, *h = models[i].h, *w = models[i].w, *pgd_steps = models[i].steps;
            return 1;
        }
    return 0;
}

static double time_train(sat_model *model, int32_t method, int steps, const float *x,
                         const int32_t *labels, int batch, int reps) {
    sat_optimizer *opt = NULL;
    sat_trainer *tr = NULL;
    bench_trainer(model, method, steps, EPS, STEP, &opt, &tr);
    double t[64];
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        int32_t st = sat_train_step(tr, x, labels, batch, NULL);
        if (st) die("sat_train_step", st, sat_trainer_last_error(tr));
        if (r >= 0) t[r] = now_s() - t0;
    }
    sat_trainer_destroy(tr);
    sat_optimizer_destroy(opt);
    return median(t, reps);
}

static double time_attack(sat_model *model, const float *x, const int32_t *labels, float *x_adv,
                          int batch, int reps) {
    sat_attack_opts ao;
    sat_attack_opts_init(&ao, sizeof ao);
    ao.eps = EPS;
    ao.step_size = STEP;
    ao.steps = 10;
    ao.random_start = 1;
    double t[64];
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        int32_t st = sat_pgd_attack(model, &ao, x, labels, batch, x_adv, NULL);
        if (st) die("sat_pgd_attack", st, sat_model_last_error(model));
        if (r >= 0) t[r] = now_s() - t0;
    }
    return median(t, reps);
}

/* Whether `name` is in the comma-separated list (NULL: every measurement). */
static int wanted(const char *list, const char *name) {
    if (!list) return 1;
    const size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

static void run_single(const char *model_name, const char *act_name, int threads, int batch, int reps,
                       int no_ref, const char *metrics, int checkpointing) {
    int c, h, w, k_steps;
    input_shape(model_name, &c, &h, &w, &k_steps);

    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = threads;
    sat_context *ctx = NULL;
    int32_t st = sat_context_create(&co, &ctx);
    if (st) die("sat_context_create", st, sat_last_error());
    char *spec = NULL;
    sat_model *model = bench_preset_model(ctx, model_name, c, h, w, 10, act_name, batch, &spec);
    st = sat_model_set_activation_checkpointing(model, checkpointing);
    if (st) die("sat_model_set_activation_checkpointing", st, sat_model_last_error(model));

    const int64_t d = (int64_t)c * h * w;
    float *x = malloc(sizeof(float) * (size_t)(batch * d));
    float *x_adv = malloc(sizeof(float) * (size_t)(batch * d));
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)batch);
    bench_fill_batch(x, batch * d);
    for (int i = 0; i < batch; i++) labels[i] = i % 10;

    model_gemms mg;
    spec_gemms(spec, batch, &mg);
    double f_attack, f_train;
    model_flops(&mg, &f_attack, &f_train);
    emit_paths(model_name, act_name, threads, batch, &mg);
    /* The peak of the widest vectors the step's kernels use (both are reported). */
    const double fma512 = fma_peak_gflops(512, threads, 0.3), fma256 = fma_peak_gflops(256, threads, 0.3);
    emit(model_name, act_name, threads, batch, "activation_checkpointing", checkpointing);
    emit(model_name, act_name, threads, batch, "fma512_peak_gflops", fma512);
    emit(model_name, act_name, threads, batch, "fma256_peak_gflops", fma256);
#ifdef SAT_BENCH_INTERNAL
    const double peak = path_uses_avx512() ? fma512 : fma256;
#else
    const double peak = fma512 > fma256 ? fma512 : fma256;
#endif

    if (wanted(metrics, "train")) {
        const double t_train = time_train(model, SAT_TRAIN_STANDARD, 0, x, labels, batch, reps);
        emit(model_name, act_name, threads, batch, "train_ms", 1e3 * t_train);
        emit(model_name, act_name, threads, batch, "train_gflops", f_train / t_train * 1e-9);
    }
    if (wanted(metrics, "pgd1")) {
        const double t_pgd1 = time_train(model, SAT_TRAIN_PGD, 1, x, labels, batch, reps);
        emit(model_name, act_name, threads, batch, "pgd1_ms", 1e3 * t_pgd1);
        emit(model_name, act_name, threads, batch, "pgd1_gflops", (f_attack + f_train) / t_pgd1 * 1e-9);
    }
    if (wanted(metrics, "pgdk")) {
        const double t_pgdk = time_train(model, SAT_TRAIN_PGD, k_steps, x, labels, batch, reps);
        emit(model_name, act_name, threads, batch, "pgdk_steps", k_steps);
        emit(model_name, act_name, threads, batch, "pgdk_ms", 1e3 * t_pgdk);
        emit(model_name, act_name, threads, batch, "pgdk_gflops",
             (k_steps * f_attack + f_train) / t_pgdk * 1e-9);
        if (peak > 0.0)
            emit(model_name, act_name, threads, batch, "pgdk_peak_pct",
                 100.0 * (k_steps * f_attack + f_train) / t_pgdk * 1e-9 / peak);
    }
    if (wanted(metrics, "attack")) {
        const double t_att = time_attack(model, x, labels, x_adv, batch, reps);
        emit(model_name, act_name, threads, batch, "attack_img_s", batch / t_att);
        emit(model_name, act_name, threads, batch, "attack_gflops", 10.0 * f_attack / t_att * 1e-9);
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    emit(model_name, act_name, threads, batch, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);

    sat_model_destroy(model);
    sat_free(spec);
    free(x);
    free(x_adv);
    free(labels);
    if (no_ref) {
        sat_context_destroy(ctx);
        return;
    }

    /* BLIS on the model's own GEMM shapes. */
    size_t amax = 1, bmax = 1, cmax = 1;
    for (int i = 0; i < mg.count; i++) {
        const gemm_shape *g = &mg.g[i];
        if ((size_t)(g->m * g->k) > amax) amax = (size_t)(g->m * g->k);
        if ((size_t)(g->k * g->n) > bmax) bmax = (size_t)(g->k * g->n);
        if ((size_t)(g->m * g->n) > cmax) cmax = (size_t)(g->m * g->n);
    }
    if (amax < 1024 * 1024) amax = 1024 * 1024;
    if (bmax < 1024 * 1024) bmax = 1024 * 1024;
    if (cmax < 1024 * 1024) cmax = 1024 * 1024;
    float *a = malloc(amax * sizeof(float)), *b = malloc(bmax * sizeof(float)), *cc = malloc(cmax * sizeof(float));
    for (size_t i = 0; i < amax; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < bmax; i++) b[i] = (float)(i % 5) * 0.1f;
    memset(cc, 0, cmax * sizeof(float));
    double bt_attack = 0.0, bt_train = 0.0;
    for (int i = 0; i < mg.count; i++) {
        const gemm_shape *g = &mg.g[i];
        double t = time_sgemm(g, a, b, cc, threads, reps < 3 ? 3 : reps);
        if (gemm_in_attack(g)) bt_attack += t;
        if (gemm_in_train(g)) bt_train += t;
    }
    emit(model_name, act_name, threads, batch, "blis_train_ms", 1e3 * bt_train);
    emit(model_name, act_name, threads, batch, "blis_train_gflops", f_train / bt_train * 1e-9);
    emit(model_name, act_name, threads, batch, "blis_attack_iter_ms", 1e3 * bt_attack);
    emit(model_name, act_name, threads, batch, "blis_attack_gflops", f_attack / bt_attack * 1e-9);
    emit(model_name, act_name, threads, batch, "blis_pgdk_ms", 1e3 * (k_steps * bt_attack + bt_train));
    gemm_shape sq = {1024, 1024, 1024, 0, 0, 0, 0};
    double tsq = time_sgemm(&sq, a, b, cc, threads, reps < 3 ? 3 : reps);
    emit(model_name, act_name, threads, batch, "blis_1024_gflops", gemm_flops(&sq) / tsq * 1e-9);
#ifdef SAT_BENCH_INTERNAL
    double st_attack = 0.0, st_train = 0.0;
    for (int i = 0; i < mg.count; i++) {
        const gemm_shape *g = &mg.g[i];
        double t = time_satgemm(ctx, g, a, b, cc, reps < 3 ? 3 : reps);
        if (gemm_in_attack(g)) st_attack += t;
        if (gemm_in_train(g)) st_train += t;
    }
    emit(model_name, act_name, threads, batch, "satgemm_train_gflops", f_train / st_train * 1e-9);
    emit(model_name, act_name, threads, batch, "satgemm_attack_gflops", f_attack / st_attack * 1e-9);
    emit(model_name, act_name, threads, batch, "satgemm_pgdk_ms", 1e3 * (k_steps * st_attack + st_train));
    tsq = time_satgemm(ctx, &sq, a, b, cc, reps < 3 ? 3 : reps);
    emit(model_name, act_name, threads, batch, "satgemm_1024_gflops", gemm_flops(&sq) / tsq * 1e-9);
#endif
    sat_context_destroy(ctx);
    free(a);
    free(b);
    free(cc);
}

/* ---- driver: each configuration in its own process ---- */

typedef struct result {
    char model[32], act[16], metric[32];
    int threads;
    double value;
} result;

static result results[4096];
static int n_results;

static const char *json_str(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < cap) out[i++] = *p++;
    out[i] = 0;
    return out;
}

static int json_num(const char *line, const char *key, double *v) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    *v = strtod(p + strlen(pat), NULL);
    return 1;
}

static double lookup(const char *model, const char *act, int threads, const char *metric) {
    for (int i = 0; i < n_results; i++)
        if (!strcmp(results[i].model, model) && !strcmp(results[i].act, act) && results[i].threads == threads &&
            !strcmp(results[i].metric, metric))
            return results[i].value;
    return NAN;
}

static int run_child(const char *model, const char *act, int threads, int batch, int reps, int checkpointing) {
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        char bs[32], rs[32], ts[32];
        snprintf(bs, sizeof bs, "%d", batch);
        snprintf(rs, sizeof rs, "%d", reps);
        snprintf(ts, sizeof ts, "%d", threads);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        char *argv[] = {"sat_bench", "--single", "--model", (char *)model, "--act", (char *)act,
                        "--threads", ts, "--batch", bs, "--reps", rs, checkpointing ? "--checkpointing" : NULL, NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *in = fdopen(fd[0], "r");
    char line[1024];
    while (in && fgets(line, sizeof line, in)) {
        fputs(line, stdout);
        fflush(stdout);
        if (n_results >= (int)(sizeof results / sizeof results[0])) continue;
        result *r = &results[n_results];
        double th = 0;
        if (json_str(line, "model", r->model, sizeof r->model) && json_str(line, "act", r->act, sizeof r->act) &&
            json_str(line, "metric", r->metric, sizeof r->metric) && json_num(line, "threads", &th) &&
            json_num(line, "value", &r->value)) {
            r->threads = (int)th;
            n_results++;
        }
    }
    if (in) fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void print_table(const opts *o) {
    printf("\nlibsat, batch %d, medians of %d calls (ms per step)\n", o->batch, o->reps);
    printf("%-9s %-4s %3s | %7s %7s %8s %8s | %9s | %6s %6s %6s %4s | %6s %6s | %5s\n", "model", "act", "thr",
           "train", "pgd1", "pgdk", "gemm-k", "atk img/s", "GF/s", "BLIS", "satG", "eff", "B1024", "S1024", "RSS");
    for (int mi = 0; mi < o->n_models; mi++)
        for (int ai = 0; ai < o->n_acts; ai++)
            for (int ti = 0; ti < o->n_threads; ti++) {
                const char *m = o->models[mi], *a = o->acts[ai];
                int t = o->threads[ti];
                const double pk = lookup(m, a, t, "pgdk_ms"), gk = lookup(m, a, t, "pgdk_gflops");
                const double flops = gk * pk, sk = lookup(m, a, t, "satgemm_pgdk_ms");
                printf("%-9s %-4s %3d | %7.1f %7.1f %8.1f %8.1f | %9.0f | %6.1f %6.1f %6.1f %3.0f%% | %6.1f %6.1f | %5.0f\n",
                       m, a, t, lookup(m, a, t, "train_ms"), lookup(m, a, t, "pgd1_ms"), pk, sk,
                       lookup(m, a, t, "attack_img_s"), gk, flops / lookup(m, a, t, "blis_pgdk_ms"), flops / sk,
                       100.0 * sk / pk, lookup(m, a, t, "blis_1024_gflops"), lookup(m, a, t, "satgemm_1024_gflops"),
                       lookup(m, a, t, "peak_rss_mb"));
            }
    printf("pgdk: PGD-10 (madry-cnn, preact-resnet18) / PGD-7 (resnet20) / PGD-1 (ImageNet) training step; gemm-k: that step's conv/dense GEMMs\n"
           "alone through libsat's GEMM (batched im2col shapes); GF/s: the step's GEMM FLOPs over its time;\n"
           "BLIS / satG: GF/s of those GEMMs in stock bli_sgemm / libsat's GEMM; eff: gemm-k / pgdk;\n"
           "B1024 / S1024: 1024^3 in stock BLIS / libsat's GEMM; RSS: peak resident MB.\n");
}

static int split_list(char *s, const char **out) {
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t && n < MAX_LIST; t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

static void usage(void) {
    fprintf(stderr, "usage: sat_bench [--model madry-cnn|resnet20|preact-resnet18|efficientnet-b0|resnet50|all]\n"
                    "                 [--act relu|silu|all] [--batch N]\n"
                    "                 [--reps N] [--threads 1,2] [--single [--no-ref] [--metrics train,pgd1,pgdk,attack]]\n"
                    "                 [--checkpointing]\n");
    exit(2);
}

int main(int argc, char **argv) {
    opts o;
    memset(&o, 0, sizeof o);
    o.batch = 128;
    o.reps = 5;
    static char all_models[] = "madry-cnn,resnet20", all_acts[] = "relu,silu", all_threads[] = "1,2";
    char *models = all_models, *acts = all_acts, *threads = all_threads;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--single")) o.single = 1;
        else if (!strcmp(a, "--no-ref")) o.no_ref = 1;
        else if (!strcmp(a, "--checkpointing")) o.checkpointing = 1;
        else if (!strcmp(a, "--metrics") && has) o.metrics = argv[++i];
        else if (!strcmp(a, "--model") && has) models = strcmp(argv[i + 1], "all") ? argv[i + 1] : all_models, i++;
        else if (!strcmp(a, "--act") && has) acts = strcmp(argv[i + 1], "all") ? argv[i + 1] : all_acts, i++;
        else if (!strcmp(a, "--threads") && has) threads = argv[++i];
        else if (!strcmp(a, "--batch") && has) o.batch = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && has) o.reps = atoi(argv[++i]);
        else usage();
    }
    o.n_models = split_list(models, o.models);
    o.n_acts = split_list(acts, o.acts);
    const char *tl[MAX_LIST];
    o.n_threads = split_list(threads, tl);
    for (int i = 0; i < o.n_threads; i++) o.threads[i] = atoi(tl[i]);
    if (o.batch < 1 || o.reps < 1 || o.reps > 64 || !o.n_models || !o.n_acts || !o.n_threads) usage();
    int c, h, w, k;
    for (int i = 0; i < o.n_models; i++)
        if (!input_shape(o.models[i], &c, &h, &w, &k)) usage();
    for (int i = 0; i < o.n_threads; i++)
        if (o.threads[i] < 1 || o.threads[i] > 256) usage();

    if (o.single) {
        run_single(o.models[0], o.acts[0], o.threads[0], o.batch, o.reps, o.no_ref, o.metrics, o.checkpointing);
        return 0;
    }
    int failed = 0;
    for (int mi = 0; mi < o.n_models; mi++)
        for (int ai = 0; ai < o.n_acts; ai++)
            for (int ti = 0; ti < o.n_threads; ti++)
                if (run_child(o.models[mi], o.acts[ai], o.threads[ti], o.batch, o.reps, o.checkpointing) != 0) {
                    fprintf(stderr, "sat_bench: configuration %s/%s/%d threads failed\n", o.models[mi],
                            o.acts[ai], o.threads[ti]);
                    failed = 1;
                }
    print_table(&o);
    return failed;
}
