/* reference.c - prints what libsat computes for a fixed preset, seed and input, so the
 * Python tests can check that the ctypes package passes the same data and gets the same
 * numbers as a C host. Floats are printed with %a (exact).
 *
 * usage: sat-py-reference PRESET C H W CLASSES ACTIVATION SEED N
 * input:  x[i] = ((i * 7919) % 1000) / 999.0f, labels[j] = (3 j) % CLASSES
 * output: sections "logits", "losses", "input_grad", "train_loss", "grads", one value a line */
#include <sat.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, const char *msg) {
    fprintf(stderr, "%s: %s\n", what, msg);
    return 1;
}

static void print(const char *name, const float *v, int64_t count) {
    printf("%s %lld\n", name, (long long)count);
    for (int64_t i = 0; i < count; i++) printf("%a\n", (double)v[i]);
}

int main(int argc, char **argv) {
    if (argc != 9) return fail("usage", "sat-py-reference PRESET C H W CLASSES ACTIVATION SEED N");
    int32_t c = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]), k = atoi(argv[5]);
    int64_t n = atoll(argv[8]);
    sat_context *ctx = NULL;
    if (sat_context_create(NULL, &ctx) != SAT_OK) return fail("context", sat_last_error());
    char *spec = NULL;
    if (sat_preset_spec(argv[1], c, h, w, k, NULL, NULL, &spec) != SAT_OK)
        return fail("preset", sat_last_error());
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    if (sat_activation_from_name(argv[6], &o.activation) != SAT_OK)
        return fail("activation", sat_last_error());
    o.seed = strtoull(argv[7], NULL, 10);
    sat_model *m = NULL;
    if (sat_model_create(ctx, spec, &o, &m) != SAT_OK) return fail("model", sat_last_error());
    sat_free(spec);

    int64_t size = n * c * h * w;
    float *x = malloc((size_t)size * sizeof *x), *g = malloc((size_t)size * sizeof *g);
    float *logits = malloc((size_t)(n * k) * sizeof *logits), *losses = malloc((size_t)n * sizeof *losses);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!x || !g || !logits || !losses || !y) return fail("malloc", "out of memory");
    for (int64_t i = 0; i < size; i++) x[i] = (float)((i * 7919) % 1000) / 999.0f;
    for (int64_t j = 0; j < n; j++) y[j] = (int32_t)((3 * j) % k);

    if (sat_model_forward(m, x, n, logits) != SAT_OK) return fail("forward", sat_model_last_error(m));
    print("logits", logits, n * k);
    if (sat_model_input_gradient(m, x, y, n, losses, g, NULL) != SAT_OK)
        return fail("input_gradient", sat_model_last_error(m));
    print("losses", losses, n);
    print("input_grad", g, size);
    float loss = 0;
    if (sat_model_train_backward(m, x, y, n, 0.0f, &loss, NULL) != SAT_OK)
        return fail("train_backward", sat_model_last_error(m));
    print("train_loss", &loss, 1);
    print("grads", sat_model_grads(m), sat_model_param_count(m));

    free(x); free(g); free(logits); free(losses); free(y);
    sat_model_destroy(m);
    sat_context_destroy(ctx);
    return 0;
}
