/* preset_memory.c - the memory of one adversarial training step on a preset at full size
 * (docs/performance.md: ResNet-50 at 3x224x224, batch 32, PGD-1).
 *
 *   preset_memory [--model resnet50] [--channels 3] [--size 224] [--classes 1000] [--batch 32]
 *                 [--steps 1] [--act relu] [--threads 1] [--steps-timed 2] [--checkpointing 0|1]
 *
 * Reports, as JSON lines: the arena the model plans for a training execution (the model's
 * log line, and the execution's arena and conv workspace once made), the library's other
 * blocks (parameters, gradients, optimizer and trainer buffers) as the context's counting
 * allocator sees them, the allocations made inside each step after the first (must be 0),
 * each step's time and the process's peak resident size (getrusage). */
#define _POSIX_C_SOURCE 200809L

#include <sat.h>

#include "bench_model.h"
#include "graph/graph.h" /* the execution's arena and workspace sizes */
#include "model_gemms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct counter {
    int64_t calls;
    int64_t live, peak; /* bytes */
} counter;

typedef struct block_header {
    size_t size;
    void *raw;
} block_header;

/* Aligned blocks with their size in front, so the counter knows what each free returns. */
static void *count_alloc(void *user, size_t size, size_t alignment) {
    counter *c = user;
    if (alignment < sizeof(block_header)) alignment = sizeof(block_header);
    char *raw = malloc(size + alignment + sizeof(block_header));
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)raw + sizeof(block_header) + alignment - 1) & ~(uintptr_t)(alignment - 1);
    block_header *h = (block_header *)p - 1;
    h->size = size;
    h->raw = raw;
    c->calls++;
    c->live += (int64_t)size;
    if (c->live > c->peak) c->peak = c->live;
    return (void *)p;
}

static void count_free(void *user, void *ptr) {
    counter *c = user;
    block_header *h = (block_header *)ptr - 1;
    c->live -= (int64_t)h->size;
    free(h->raw);
}

static void on_log(void *user, int32_t level, const char *message) {
    (void)user;
    if (level <= SAT_LOG_INFO) fprintf(stderr, "# libsat: %s\n", message);
}

static void check(int32_t st, const char *what, const char *msg) {
    if (st == SAT_OK) return;
    fprintf(stderr, "preset_memory: %s: %s (%s)\n", what, sat_status_string(st), msg);
    exit(1);
}

static double mib(int64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

int main(int argc, char **argv) {
    const char *model_name = "resnet50", *act_name = "relu";
    int channels = 3, size = 224, classes = 1000, batch = 32, steps = 1, threads = 1, timed = 2, checkpointing = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--model")) model_name = v;
        else if (!strcmp(k, "--act")) act_name = v;
        else if (!strcmp(k, "--size")) size = atoi(v);
        else if (!strcmp(k, "--channels")) channels = atoi(v);
        else if (!strcmp(k, "--checkpointing")) checkpointing = atoi(v);
        else if (!strcmp(k, "--classes")) classes = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--steps")) steps = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--steps-timed")) timed = atoi(v);
        else {
            fprintf(stderr, "preset_memory: unknown option %s\n", k);
            return 2;
        }
    }
    if (channels < 1 || size < 1 || classes < 2 || batch < 1 || steps < 1 || threads < 1 || timed < 2) {
        fprintf(stderr, "preset_memory: bad option value (--steps-timed needs at least 2)\n");
        return 2;
    }
    counter cnt = {0, 0, 0};
    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = threads;
    co.alloc_fn = count_alloc;
    co.dealloc_fn = count_free;
    co.alloc_user = &cnt;
    co.log_fn = on_log;
    co.log_level = SAT_LOG_INFO;
    sat_context *ctx = NULL;
    check(sat_context_create(&co, &ctx), "sat_context_create", sat_last_error());

    char *spec = NULL;
    sat_model *model = bench_preset_model(ctx, model_name, channels, size, size, classes, act_name, batch, &spec);
    check(sat_model_set_activation_checkpointing(model, checkpointing), "sat_model_set_activation_checkpointing",
          sat_model_last_error(model));
    const int64_t after_model = cnt.live;

    sat_optimizer *opt = NULL;
    sat_trainer *tr = NULL;
    bench_trainer(model, SAT_TRAIN_PGD, steps, 4.0f / 255.0f, 4.0f / 255.0f, &opt, &tr);
    const int64_t after_trainer = cnt.live;

    const int64_t d = (int64_t)channels * size * size;
    float *x = malloc(sizeof(float) * (size_t)(batch * d));
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)batch);
    bench_fill_batch(x, batch * d);
    for (int i = 0; i < batch; i++) labels[i] = i % classes;

    for (int r = 0; r < timed; r++) {
        const int64_t calls = cnt.calls;
        const double t0 = now_s();
        check(sat_train_step(tr, x, labels, batch, NULL), "sat_train_step", sat_trainer_last_error(tr));
        printf("{\"metric\":\"step_s\",\"step\":%d,\"value\":%.3f,\"allocations\":%lld}\n", r, now_s() - t0,
               (long long)(cnt.calls - calls));
        fflush(stdout);
    }
    const sat_exec *e = model->own_exec;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"model\":\"%s\",\"act\":\"%s\",\"input\":\"%dx%dx%d\",\"activation_checkpointing\":%d,\"recompute\":%d,\"batch\":%d,\"pgd_steps\":%d,\"threads\":%d,"
           "\"params\":%lld,\"planned_arena_mib\":%.1f,\"exec_arena_mib\":%.1f,\"conv_workspace_mib\":%.1f,"
           "\"model_blocks_mib\":%.1f,\"optimizer_trainer_mib\":%.1f,\"library_peak_mib\":%.1f,"
           "\"input_batch_mib\":%.1f,\"peak_rss_mib\":%.1f}\n",
           model_name, act_name, channels, size, size, checkpointing, e->recompute, batch, steps, threads, (long long)sat_model_param_count(model),
           mib(model->planned_floats * (int64_t)sizeof(float)), mib(e->arena_size * (int64_t)sizeof(float)),
           mib(e->ws_size * (int64_t)sizeof(float)), mib(after_model), mib(after_trainer - after_model),
           mib(cnt.peak), mib(batch * d * (int64_t)sizeof(float)), (double)ru.ru_maxrss / 1024.0);
    sat_trainer_destroy(tr);
    sat_optimizer_destroy(opt);
    sat_model_destroy(model);
    sat_context_destroy(ctx);
    sat_free(spec);
    free(x);
    free(labels);
    return 0;
}
