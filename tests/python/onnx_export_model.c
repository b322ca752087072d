/* onnx_export_model.c - exports one model as ONNX with what libsat computes for it, so that
 * onnx_export_check.py can check the file with ONNX's checker and recompute the logits
 * without libsat (the graph rebuilt in PyTorch).
 *
 * usage: sat-onnx-export-model SPEC_FILE ACTIVATION N OUT_PREFIX
 *   SPEC_FILE holds a model spec, or "preset:NAME:C:H:W:CLASSES" names a preset.
 * The parameters are moved off their initial values (biases and batch-norm shifts are 0
 * at first) and the running statistics set to values in [0.5, 1.5], so that every tensor
 * of the file matters; SmoothReLU's alpha is kept (it must stay > 0).
 * writes: OUT_PREFIX.onnx, OUT_PREFIX.input (N x C x H x W float32 in [0, 1]) and
 *         OUT_PREFIX.logits (N x classes float32, libsat's), both little-endian raw. */
#include <sat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const char *msg) {
    fprintf(stderr, "%s: %s\n", what, msg);
    return 1;
}

/* A fixed pseudo-random sequence in [0, 1). */
static float uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*s >> 40) / (float)(1u << 24);
}

/* The spec text, freed with free. */
static char *spec_of(const char *arg) {
    char name[64];
    int c, h, w, k;
    char *spec = NULL;
    if (sscanf(arg, "preset:%63[^:]:%d:%d:%d:%d", name, &c, &h, &w, &k) == 5) {
        char *preset = NULL;
        if (sat_preset_spec(name, c, h, w, k, NULL, NULL, &preset) != SAT_OK) return NULL;
        spec = malloc(strlen(preset) + 1);
        if (spec) strcpy(spec, preset);
        sat_free(preset);
        return spec;
    }
    FILE *f = fopen(arg, "rb");
    if (!f) return NULL;
    spec = calloc(1, 1 << 16);
    if (spec && fread(spec, 1, (1 << 16) - 1, f) == 0) {
        free(spec);
        spec = NULL;
    }
    fclose(f);
    return spec;
}

static int write_floats(const char *prefix, const char *ext, const float *v, int64_t count) {
    char path[512];
    snprintf(path, sizeof path, "%s.%s", prefix, ext);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t done = fwrite(v, sizeof *v, (size_t)count, f);
    return fclose(f) == 0 && done == (size_t)count;
}

/* Every parameter but SmoothReLU's alpha moves by up to 0.1, so that zero biases and unit
 * batch-norm scales are told apart from their neighbours. */
static void perturb(sat_model *m, uint64_t *s) {
    float *p = sat_model_params(m), *st = sat_model_state(m);
    for (int32_t i = 0; i < sat_model_layer_count(m); i++) {
        sat_layer_info li;
        memset(&li, 0, sizeof li);
        li.struct_size = sizeof li;
        sat_model_layer_info(m, i, &li);
        for (int32_t t = 0; t < li.num_params; t++)
            if (li.params[t].role != SAT_TENSOR_ACT_ALPHA)
                for (int64_t j = 0; j < li.params[t].count; j++) p[li.params[t].offset + j] += 0.2f * uniform(s) - 0.1f;
    }
    for (int64_t j = 0; j < sat_model_state_count(m); j++) st[j] = 0.5f + uniform(s);
}

int main(int argc, char **argv) {
    if (argc != 5) return fail("usage", "sat-onnx-export-model SPEC_FILE ACTIVATION N OUT_PREFIX");
    const int64_t n = atoll(argv[3]);
    sat_context *ctx = NULL;
    if (sat_context_create(NULL, &ctx) != SAT_OK) return fail("context", sat_last_error());
    char *spec = spec_of(argv[1]);
    if (!spec) return fail(argv[1], "cannot read the spec");
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    if (sat_activation_from_name(argv[2], &o.activation) != SAT_OK) return fail("activation", argv[2]);
    sat_model *m = NULL;
    if (sat_model_create(ctx, spec, &o, &m) != SAT_OK) return fail("model", sat_last_error());
    uint64_t s = 12345;
    perturb(m, &s);
    int32_t c, h, w, k;
    sat_model_shape(m, &c, &h, &w, &k);
    const int64_t size = n * c * h * w;
    float *x = malloc((size_t)size * sizeof *x), *logits = malloc((size_t)(n * k) * sizeof *logits);
    if (!x || !logits) return fail("malloc", "out of memory");
    for (int64_t i = 0; i < size; i++) x[i] = uniform(&s);
    if (sat_model_forward(m, x, n, logits) != SAT_OK) return fail("forward", sat_model_last_error(m));
    char path[512];
    snprintf(path, sizeof path, "%s.onnx", argv[4]);
    if (sat_model_save_onnx(m, path, NULL) != SAT_OK) return fail("export", sat_model_last_error(m));
    if (!write_floats(argv[4], "input", x, size) || !write_floats(argv[4], "logits", logits, n * k))
        return fail(argv[4], "cannot write");
    free(x);
    free(logits);
    free(spec);
    sat_model_destroy(m);
    sat_context_destroy(ctx);
    return 0;
}
