/* conformance.c - runs ONNX's own backend test cases (Debian's libonnx-testdata) through
 * sat_model_load_onnx_buffer and compares the model's output with the expected one.
 *
 *   onnx_conformance DATA_DIR IN_SCOPE_LIST
 *
 * Every case under DATA_DIR/node and DATA_DIR/pytorch-converted is tried and reported on
 * one line: PASS, FAIL (with the largest difference or the error) or OUT (out of scope,
 * with the reason: the importer's own message for an op, attribute or shape it does not
 * support, or the harness's for data libsat cannot take). The list names the cases that
 * must pass; the program fails when one of them does not, is missing, or when a case not
 * on the list passes (so the list, and docs/onnx.md made from it, stay exact).
 *
 * Node tests give the weights of an op as further graph inputs (input_1.pb, ...), where
 * an exporter writes initializers: the harness moves them into the graph's initializers
 * before the import, which leaves the function computed unchanged.
 *
 * Tolerance: |got - want| <= 1e-4 (1 + |want|). The expected outputs come from other
 * implementations (numpy, PyTorch) summing in other orders in float32 or float64; the
 * largest convolution here sums a few hundred products, whose rounding stays near 1e-6
 * relative, so 1e-4 leaves room and still fails any wrong weight, layout or padding
 * (those move outputs by the size of a weight, 1e-2 and more). */
#include "onnx.pb-c.h"
#include "onnx/onnx.h"
#include "sat.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CASES 2048
#define MAX_INPUTS 16
#define TOL 1e-4

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *bigger = realloc(buf, cap);
            if (!bigger) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got);
    fclose(f);
    *size = len;
    return buf;
}

static Onnx__TensorProto *read_tensor(const char *path) {
    size_t size = 0;
    unsigned char *data = read_all(path, &size);
    if (!data) return NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, size, data);
    free(data);
    return t;
}

typedef struct outcome {
    int verdict; /* 0 pass, 1 fail, 2 out of scope */
    char why[768];
} outcome;

static int set(outcome *o, int verdict, const char *fmt, const char *a, const char *b) {
    o->verdict = verdict;
    snprintf(o->why, sizeof o->why, fmt, a, b);
    return verdict;
}

/* The model with the inputs after the first turned into initializers from the data set;
 * packed into *out (malloc'ed). */
static int weights_as_initializers(Onnx__ModelProto *m, const char *set_dir, unsigned char **out, size_t *out_size,
                                   Onnx__TensorProto **extra, size_t *n_extra) {
    Onnx__GraphProto *g = m->graph;
    *n_extra = 0;
    /* input_K.pb is the K-th graph input that is not an initializer. */
    size_t fed = 0;
    for (size_t i = 0; i < g->n_input && *n_extra < MAX_INPUTS; i++) {
        int is_init = 0;
        for (size_t j = 0; j < g->n_initializer && !is_init; j++)
            is_init = g->initializer[j]->name && strcmp(g->initializer[j]->name, g->input[i]->name) == 0;
        if (is_init || fed++ == 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/input_%zu.pb", set_dir, fed - 1);
        Onnx__TensorProto *t = read_tensor(path);
        if (!t) return 0;
        free(t->name);
        t->name = strdup(g->input[i]->name);
        extra[(*n_extra)++] = t;
    }
    Onnx__TensorProto **inits = calloc(g->n_initializer + *n_extra + 1, sizeof *inits);
    memcpy(inits, g->initializer, g->n_initializer * sizeof *inits);
    memcpy(inits + g->n_initializer, extra, *n_extra * sizeof *inits);
    Onnx__TensorProto **old = g->initializer;
    size_t old_n = g->n_initializer;
    g->initializer = inits;
    g->n_initializer += *n_extra;
    *out_size = onnx__model_proto__get_packed_size(m);
    *out = malloc(*out_size ? *out_size : 1);
    onnx__model_proto__pack(m, *out);
    g->initializer = old;
    g->n_initializer = old_n;
    free(inits);
    return 1;
}

static int run_case(sat_context *ctx, const char *dir, outcome *o) {
    char path[4096], set_dir[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(set_dir, sizeof set_dir, "%s/test_data_set_0", dir);
    size_t size = 0;
    unsigned char *data = read_all(path, &size);
    if (!data) return set(o, 1, "cannot read %s%s", path, "");
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    free(data);
    if (!m || !m->graph) return set(o, 1, "the model does not parse%s%s", "", "");
    if (m->graph->n_output != 1) {
        const char *how_many = m->graph->n_output ? "several" : "no";
        onnx__model_proto__free_unpacked(m, NULL);
        return set(o, 2, "the graph has %s outputs; a classifier has one%s", how_many, "");
    }
    Onnx__TensorProto *extra[MAX_INPUTS];
    size_t n_extra = 0;
    unsigned char *packed = NULL;
    size_t packed_size = 0;
    int ok = weights_as_initializers(m, set_dir, &packed, &packed_size, extra, &n_extra);
    for (size_t k = 0; k < n_extra; k++) onnx__tensor_proto__free_unpacked(extra[k], NULL);
    onnx__model_proto__free_unpacked(m, NULL);
    if (!ok) return set(o, 1, "cannot read the inputs of %s%s", set_dir, "");

    sat_model *model = NULL;
    int32_t st = sat_model_load_onnx_buffer(ctx, packed, packed_size, NULL, &model);
    free(packed);
    if (st) return set(o, st == SAT_E_UNSUPPORTED ? 2 : 1, "%s%s", sat_last_error(), "");

    int verdict = 0;
    for (int s = 0; verdict == 0; s++) {
        char in_path[4096], out_path[4096];
        snprintf(in_path, sizeof in_path, "%s/test_data_set_%d/input_0.pb", dir, s);
        snprintf(out_path, sizeof out_path, "%s/test_data_set_%d/output_0.pb", dir, s);
        Onnx__TensorProto *x = read_tensor(in_path), *y = read_tensor(out_path);
        if (!x || !y) {
            if (x) onnx__tensor_proto__free_unpacked(x, NULL);
            if (y) onnx__tensor_proto__free_unpacked(y, NULL);
            if (s == 0) verdict = set(o, 1, "no test data set%s%s", "", "");
            break;
        }
        const int64_t nx = sat__onnx_tensor_count(x), ny = sat__onnx_tensor_count(y);
        int32_t c, h, w, k;
        sat_model_shape(model, &c, &h, &w, &k);
        const int64_t n = x->n_dims ? x->dims[0] : 0;
        if (!sat__onnx_tensor_is_float(x, nx) || !sat__onnx_tensor_is_float(y, ny)) {
            verdict = set(o, 2, "the data are not float32%s%s", "", "");
        } else if (n < 1 || n > sat_model_max_batch(model) || nx != n * c * h * w || ny != n * k) {
            verdict = set(o, 1, "the data's shapes do not match the imported model%s%s", "", "");
        } else {
            float *xs = malloc(sizeof(float) * (size_t)nx), *ys = malloc(sizeof(float) * (size_t)ny);
            for (int64_t j = 0; j < nx; j++) xs[j] = (float)sat__onnx_tensor_at(x, j);
            st = sat_model_forward(model, xs, n, ys);
            double worst = 0;
            for (int64_t j = 0; j < ny && !st; j++) {
                const double want = sat__onnx_tensor_at(y, j);
                const double d = fabs(ys[j] - want) / (1 + fabs(want));
                if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
            }
            char num[64];
            snprintf(num, sizeof num, "%.3g", worst);
            if (st) verdict = set(o, 1, "forward failed: %s%s", sat_model_last_error(model), "");
            else if (worst > TOL) verdict = set(o, 1, "largest difference %s (data set %s)", num, in_path);
            else set(o, 0, "largest difference %s%s", num, "");
            free(xs);
            free(ys);
        }
        onnx__tensor_proto__free_unpacked(x, NULL);
        onnx__tensor_proto__free_unpacked(y, NULL);
    }
    sat_model_destroy(model);
    return verdict;
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DATA_DIR IN_SCOPE_LIST\n", argv[0]);
        return 2;
    }
    static char *listed[MAX_CASES];
    static int seen[MAX_CASES];
    int n_listed = 0;
    FILE *lf = fopen(argv[2], "r");
    if (!lf) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 2;
    }
    char line[512];
    while (fgets(line, sizeof line, lf) && n_listed < MAX_CASES) {
        line[strcspn(line, "\r\n#")] = '\0';
        char *p = line;
        while (*p == ' ') p++;
        if (*p) listed[n_listed++] = strdup(p);
    }
    fclose(lf);

    sat_context *ctx = NULL;
    if (sat_context_create(NULL, &ctx) != SAT_OK) return 2;
    int counts[3] = {0, 0, 0}, bad = 0;
    static const char *const suites[] = {"node", "pytorch-converted"};
    static const char *const words[] = {"PASS", "FAIL", "OUT "};
    for (int s = 0; s < 2; s++) {
        char root[4096];
        snprintf(root, sizeof root, "%s/%s", argv[1], suites[s]);
        DIR *d = opendir(root);
        if (!d) {
            fprintf(stderr, "cannot open %s\n", root);
            return 2;
        }
        static char *names[MAX_CASES];
        int n = 0;
        for (struct dirent *e; (e = readdir(d)) && n < MAX_CASES;)
            if (strncmp(e->d_name, "test_", 5) == 0) names[n++] = strdup(e->d_name);
        closedir(d);
        qsort(names, (size_t)n, sizeof names[0], by_string);
        for (int i = 0; i < n; i++) {
            char id[600], dir[4700];
            snprintf(id, sizeof id, "%s/%s", suites[s], names[i]);
            snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
            outcome o;
            run_case(ctx, dir, &o);
            int on_list = 0;
            for (int l = 0; l < n_listed; l++)
                if (strcmp(listed[l], id) == 0) on_list = 1, seen[l] = 1;
            counts[o.verdict]++;
            const char *note = "";
            if (on_list && o.verdict != 0) note = "  <- listed as in scope", bad++;
            if (!on_list && o.verdict == 0) note = "  <- passes but is not listed: add it", bad++;
            if (!on_list && o.verdict == 1) note = "  <- fails", bad++;
            printf("%s %s: %s%s\n", words[o.verdict], id, o.why, note);
            free(names[i]);
        }
    }
    for (int l = 0; l < n_listed; l++)
        if (!seen[l]) printf("MISSING %s: listed but not in the test data\n", listed[l]), bad++;
    printf("\n%d passed, %d failed, %d out of scope; %d listed; %d problems\n", counts[0], counts[1], counts[2],
           n_listed, bad);
    sat_context_destroy(ctx);
    return bad ? 1 : 0;
}
