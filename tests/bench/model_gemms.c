/* model_gemms.c - see model_gemms.h. */
#define _POSIX_C_SOURCE 200809L
#include "model_gemms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct named_shape {
    char name[32];
    int c, h, w;
} named_shape;

static const char *opt_value(char *tok[], int nt, const char *key) {
    size_t kl = strlen(key);
    for (int i = 1; i < nt; i++)
        if (strncmp(tok[i], key, kl) == 0 && tok[i][kl] == '=') return tok[i] + kl + 1;
    return NULL;
}

static void add_gemm(model_gemms *mg, int64_t m, int64_t n, int64_t k, int ta, int tb, int kind,
                     int first) {
    if (mg->count >= MAX_GEMMS) return;
    gemm_shape s = {m, n, k, ta, tb, kind, first};
    mg->g[mg->count++] = s;
}

void spec_gemms(const char *spec, int64_t batch, model_gemms *mg) {
    named_shape names[128];
    int n_names = 0, c = 0, h = 0, w = 0, first = 1;
    char *copy = strdup(spec), *save = NULL;
    mg->count = 0;
    mg->n_layers = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *tok[16], *s2 = NULL;
        int nt = 0;
        for (char *t = strtok_r(line, " \t", &s2); t && nt < 16; t = strtok_r(NULL, " \t", &s2)) tok[nt++] = t;
        if (nt == 0) continue;
        const char *from = opt_value(tok, nt, "from");
        if (from)
            for (int i = 0; i < n_names; i++)
                if (strcmp(names[i].name, from) == 0) c = names[i].c, h = names[i].h, w = names[i].w;
        if (strcmp(tok[0], "input") == 0) {
            c = atoi(tok[1]), h = atoi(tok[2]), w = atoi(tok[3]);
        } else if (strcmp(tok[0], "conv") == 0) {
            const char *v;
            int co = atoi(tok[1]), k = (v = opt_value(tok, nt, "k")) ? atoi(v) : 1;
            int st = (v = opt_value(tok, nt, "s")) ? atoi(v) : 1, p = (v = opt_value(tok, nt, "p")) ? atoi(v) : 0;
            int g = (v = opt_value(tok, nt, "g")) ? atoi(v) : 1;
            int ho = (h + 2 * p - k) / st + 1, wo = (w + 2 * p - k) / st + 1;
            /* A grouped conv (g > 1, direct loops in libsat) is counted as one GEMM of its
             * FLOPs: each output sums over C/G input channels. */
            int64_t kk = (int64_t)(c / g) * k * k, np = batch * ho * wo;
            if (mg->n_layers < MAX_LAYERS) mg->layer[mg->n_layers++] = (layer_geom){0, c, h, w, co, k, st, p, g};
            add_gemm(mg, co, np, kk, 0, 0, 0, first);  /* Y = W col */
            add_gemm(mg, kk, np, co, 1, 0, 1, first);  /* dcol = W^T dY */
            add_gemm(mg, co, kk, np, 0, 1, 2, first);  /* dW = dY col^T */
            first = 0;
            c = co, h = ho, w = wo;
        } else if (strcmp(tok[0], "dense") == 0) {
            int64_t in = (int64_t)c * h * w, out = atoi(tok[1]);
            if (mg->n_layers < MAX_LAYERS) mg->layer[mg->n_layers++] = (layer_geom){1, (int)in, 1, 1, (int)out, 1, 1, 0, 1};
            add_gemm(mg, batch, out, in, 0, 1, 0, first);  /* Y = X W^T */
            add_gemm(mg, batch, in, out, 0, 0, 1, first);  /* dX = dY W */
            add_gemm(mg, out, in, batch, 1, 0, 2, first);  /* dW = dY^T X */
            first = 0;
            c = (int)out, h = w = 1;
        } else if (strcmp(tok[0], "maxpool") == 0 || strcmp(tok[0], "avgpool") == 0) {
            const char *v;
            int k = (v = opt_value(tok, nt, "k")) ? atoi(v) : 2;
            int st = (v = opt_value(tok, nt, "s")) ? atoi(v) : k, p = (v = opt_value(tok, nt, "p")) ? atoi(v) : 0;
            h = (h + 2 * p - k) / st + 1, w = (w + 2 * p - k) / st + 1;
        } else if (strcmp(tok[0], "mul") == 0 && nt > 1) {
            /* a squeeze-excitation gate (C x 1 x 1) broadcast over the other input's plane */
            for (int i = 0; i < n_names; i++)
                if (strcmp(names[i].name, tok[1]) == 0 && names[i].h * names[i].w > h * w)
                    c = names[i].c, h = names[i].h, w = names[i].w;
        } else if (strcmp(tok[0], "gap") == 0) {
            h = w = 1;
        } else if (strcmp(tok[0], "flatten") == 0) {
            c = c * h * w, h = w = 1;
        }
        const char *name = opt_value(tok, nt, "name");
        if (name && n_names < 128) {
            snprintf(names[n_names].name, sizeof names[n_names].name, "%s", name);
            names[n_names].c = c, names[n_names].h = h, names[n_names].w = w;
            n_names++;
        }
    }
    free(copy);
}

double gemm_flops(const gemm_shape *s) { return 2.0 * (double)s->m * (double)s->n * (double)s->k; }

int gemm_in_attack(const gemm_shape *s) { return s->kind != 2; }

int gemm_in_train(const gemm_shape *s) { return !(s->kind == 1 && s->first); }

void model_flops(const model_gemms *mg, double *attack, double *train) {
    *attack = *train = 0.0;
    for (int i = 0; i < mg->count; i++) {
        const gemm_shape *s = &mg->g[i];
        double f = gemm_flops(s);
        if (gemm_in_attack(s)) *attack += f;
        if (gemm_in_train(s)) *train += f;
    }
}
