/* replay.c - runs a fuzz target without libFuzzer, so that CI (gcc or clang, any build
 * type) keeps checking what the fuzzers found:
 *
 *   sat_fuzz_replay TARGET CORPUS_DIR [MUTATIONS_PER_FILE [SEED [SECONDS]]]
 *
 * Every file of CORPUS_DIR is run as it is, then MUTATIONS_PER_FILE (default 1000)
 * deterministic mutations of it (a seeded splitmix64 stream: bit flips, interesting
 * integers, inserted/erased/duplicated ranges, truncation, splicing with another corpus
 * file). The harness checks each call's status and message and aborts on a violation; a
 * crash or sanitizer report also ends the run. The input being run when that happens is
 * written to ./replay-crash-TARGET (a signal handler), ready to be added to the corpus.
 * SECONDS (default 0: none) bounds the run: mutations stop, with a note, when it is used up.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct input {
    char *name;
    uint8_t *data;
    size_t size;
} input;

static uint64_t rng_state;

static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(next_u64() % n) : 0; }

/* ---- what is running, for the crash handler ---- */

static const uint8_t *cur_data;
static size_t cur_size;
static char crash_path[256];
static char cur_label[512];

static void on_crash(int sig) {
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < cur_size) {
            ssize_t w = write(fd, cur_data + off, cur_size - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        close(fd);
    }
    static const char msg[] = "\nreplay: crashed on ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, cur_label, strlen(cur_label));
    static const char msg2[] = "; input written to ";
    (void)!write(2, msg2, sizeof msg2 - 1);
    (void)!write(2, crash_path, strlen(crash_path));
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ASan and UBSan report through this hook before they end the process. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
static void on_sanitizer_death(void) { on_crash(SIGABRT); }

static void run(sat_fuzz_target target, const uint8_t *data, size_t size) {
    cur_data = data;
    cur_size = size;
    target(data, size);
}

/* ---- corpus ---- */

static int by_name(const void *a, const void *b) {
    return strcmp(((const input *)a)->name, ((const input *)b)->name);
}

static input *load_corpus(const char *dir, size_t *count) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        exit(2);
    }
    input *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = realloc(v, cap * sizeof *v);
            if (!v) abort();
        }
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        v[n].name = strdup(e->d_name);
        v[n].size = sz > 0 ? (size_t)sz : 0;
        v[n].data = malloc(v[n].size + 1);
        if (!v[n].name || !v[n].data || fread(v[n].data, 1, v[n].size, f) != v[n].size) abort();
        fclose(f);
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof *v, by_name); /* readdir order is not deterministic */
    *count = n;
    return v;
}

/* ---- mutations ---- */

static const uint64_t interesting[] = {0,          1,          2,          3,          4,
                                       7,          8,          16,         64,         127,
                                       128,        255,        256,        1024,       4096,
                                       65535,      65536,      0x7fffffff, 0x80000000, 0xffffffff,
                                       0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
                                       0xffffffffffffffffull};

/* One mutated copy of `src` into buf (capacity cap); returns its size. */
static size_t mutate(const input *src, const input *all, size_t count, uint8_t *buf, size_t cap) {
    size_t n = src->size < cap ? src->size : cap;
    memcpy(buf, src->data, n);
    int rounds = 1 + (int)below(4);
    for (int r = 0; r < rounds; r++) {
        switch (below(9)) {
        case 0: /* flip a bit */
            if (n) buf[below(n)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* a random byte */
            if (n) buf[below(n)] = (uint8_t)next_u64();
            break;
        case 2: /* an interesting little-endian integer of 1, 2, 4 or 8 bytes */
        case 3: {
            size_t w = (size_t)1 << below(4);
            if (n < w) break;
            size_t at = below(n - w + 1);
            uint64_t v = interesting[below(sizeof interesting / sizeof interesting[0])];
            if (below(4) == 0) v += below(3) - 1;
            for (size_t i = 0; i < w; i++) buf[at + i] = (uint8_t)(v >> (8 * i));
            break;
        }
        case 4: { /* erase a range */
            if (!n) break;
            size_t at = below(n), len = 1 + below(n - at < 64 ? n - at : 64);
            memmove(buf + at, buf + at + len, n - at - len);
            n -= len;
            break;
        }
        case 5: { /* insert random bytes */
            size_t len = 1 + below(16);
            if (n + len > cap) break;
            size_t at = below(n + 1);
            memmove(buf + at + len, buf + at, n - at);
            for (size_t i = 0; i < len; i++) buf[at + i] = (uint8_t)next_u64();
            n += len;
            break;
        }
        case 6: { /* duplicate a range */
            if (!n) break;
            size_t at = below(n), len = 1 + below(n - at < 128 ? n - at : 128);
            if (n + len > cap) break;
            size_t to = below(n + 1);
            uint8_t tmp[128];
            memcpy(tmp, buf + at, len);
            memmove(buf + to + len, buf + to, n - to);
            memcpy(buf + to, tmp, len);
            n += len;
            break;
        }
        case 7: /* truncate */
            n = below(n + 1);
            break;
        case 8: { /* splice: the tail of another corpus file */
            const input *o = &all[below(count)];
            if (!o->size) break;
            size_t at = below(n + 1), from = below(o->size);
            size_t len = o->size - from;
            if (at + len > cap) len = cap - at;
            memcpy(buf + at, o->data + from, len);
            n = at + len;
            break;
        }
        }
    }
    return n;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: %s TARGET CORPUS_DIR [MUTATIONS_PER_FILE [SEED [SECONDS]]]\n", argv[0]);
        return 2;
    }
    sat_fuzz_target target = sat_fuzz_find_target(argv[1]);
    if (!target) {
        fprintf(stderr, "replay: unknown target '%s' (model_load, model_spec, dataset)\n", argv[1]);
        return 2;
    }
    long mutations = argc > 3 ? strtol(argv[3], NULL, 10) : 1000;
    uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    double budget = argc > 5 ? strtod(argv[5], NULL) : 0;

    snprintf(crash_path, sizeof crash_path, "replay-crash-%s", argv[1]);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGABRT, on_crash);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_sanitizer_death);

    size_t count = 0;
    input *corpus = load_corpus(argv[2], &count);
    if (count == 0) {
        fprintf(stderr, "replay: %s holds no input\n", argv[2]);
        return 2;
    }
    size_t cap = SAT_FUZZ_MAX_INPUT + 256;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();

    double start = now();
    long runs = 0;
    int out_of_time = 0;
    for (size_t i = 0; i < count; i++) {
        snprintf(cur_label, sizeof cur_label, "%s (as committed)", corpus[i].name);
        run(target, corpus[i].data, corpus[i].size);
        runs++;
    }
    for (size_t i = 0; i < count && !out_of_time; i++) {
        /* Each file's mutations are a function of (seed, file name) only. */
        rng_state = seed;
        for (const char *c = corpus[i].name; *c; c++) rng_state = rng_state * 131 + (uint8_t)*c;
        for (long k = 0; k < mutations; k++) {
            if (budget > 0 && (k & 63) == 0 && now() - start > budget) {
                out_of_time = 1;
                break;
            }
            size_t n = mutate(&corpus[i], corpus, count, buf, cap);
            snprintf(cur_label, sizeof cur_label, "%s, mutation %ld (seed %llu)", corpus[i].name, k,
                     (unsigned long long)seed);
            run(target, buf, n);
            runs++;
        }
    }
    printf("replay %s: %zu corpus files, %ld runs in %.1f s, no crash, every status and message as "
           "documented%s\n",
           argv[1], count, runs, now() - start,
           out_of_time ? " (stopped early: time budget used up)" : "");
    for (size_t i = 0; i < count; i++) {
        free(corpus[i].name);
        free(corpus[i].data);
    }
    free(corpus);
    free(buf);
    return 0;
}
