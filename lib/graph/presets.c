/* presets.c - spec texts of the preset models. A preset is only a spec, so what a preset
 * builds can always be printed, edited and stored in a model file. */
#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct buf {
    char *data;
    size_t len, cap;
    int failed;
} buf;

static void put(buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(buf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->failed = 1;
        return;
    }
    b->len += (size_t)n;
}

static void put_normalize(buf *b, int32_t c, const float *mean, const float *std) {
    if (!mean && !std) return;
    put(b, "normalize mean=");
    for (int i = 0; i < c; i++) put(b, "%s%.9g", i ? "," : "", mean ? mean[i] : 0.0f);
    put(b, " std=");
    for (int i = 0; i < c; i++) put(b, "%s%.9g", i ? "," : "", std ? std[i] : 1.0f);
    put(b, "\n");
}

/* One basic block of ResNet (two 3x3 convs with batch norm); a 1x1 projection when the
 * shape changes (option B of He et al.). */
static void resnet_block(buf *b, int *id, int width, int stride, int project) {
    int in = *id, out = ++*id;
    if (project) {
        put(b, "conv %d k=1 s=%d bias=0 from=b%d\n", width, stride, in);
        put(b, "bn name=sc%d\n", out);
        put(b, "conv %d k=3 s=%d p=1 bias=0 from=b%d\n", width, stride, in);
    } else {
        put(b, "conv %d k=3 s=1 p=1 bias=0\n", width);
    }
    put(b, "bn\nact\nconv %d k=3 p=1 bias=0\nbn\n", width);
    if (project)
        put(b, "add sc%d\n", out);
    else
        put(b, "add b%d\n", in);
    put(b, "act name=b%d\n", out);
}

int32_t sat_preset_spec(const char *name, int32_t channels, int32_t height, int32_t width,
                        int32_t num_classes, const float *mean, const float *std, char **spec_out) {
    sat__clear_tls_error();
    if (!name || !spec_out) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_preset_spec: NULL argument");
    *spec_out = NULL;
    if (channels < 1 || channels > 64 || height < 1 || height > 4096 || width < 1 || width > 4096 ||
        num_classes < 2 || num_classes > 100000)
        return sat__fail_tls(SAT_E_INVALID_ARG,
                             "sat_preset_spec: bad shape %dx%dx%d or class count %d", channels, height,
                             width, num_classes);
    /* Refused here rather than by sat_model_create on the text, so the message names the call. */
    for (int32_t i = 0; i < channels; i++)
        if ((mean && !isfinite(mean[i])) || (std && !(isfinite(std[i]) && std[i] > 0)))
            return sat__fail_tls(SAT_E_INVALID_ARG,
                                 "sat_preset_spec: channel %d: mean %g, std %g (the mean must be "
                                 "finite, the std finite and positive)",
                                 i, mean ? (double)mean[i] : 0.0, std ? (double)std[i] : 1.0);
    char data[16384];
    buf b = {data, 0, sizeof data, 0};
    put(&b, "# preset %s\ninput %d %d %d\n", name, channels, height, width);
    put_normalize(&b, channels, mean, std);
    if (strcmp(name, "mlp") == 0) {
        put(&b, "flatten\ndense 256\nact\ndense 256\nact\ndense %d\n", num_classes);
    } else if (strcmp(name, "madry-cnn") == 0) {
        if (height < 4 || width < 4) return sat__fail_tls(SAT_E_INVALID_ARG, "madry-cnn needs at least 4x4 input");
        put(&b, "conv 32 k=5 p=2\nact\nmaxpool k=2\nconv 64 k=5 p=2\nact\nmaxpool k=2\n"
                "flatten\ndense 1024\nact\ndense %d\n", num_classes);
    } else if (strcmp(name, "small-cnn") == 0) {
        if (height < 4 || width < 4) return sat__fail_tls(SAT_E_INVALID_ARG, "small-cnn needs at least 4x4 input");
        put(&b, "conv 16 k=3 s=2 p=1\nact\nconv 32 k=3 s=2 p=1\nact\nflatten\ndense 100\nact\ndense %d\n",
            num_classes);
    } else if (strcmp(name, "resnet20") == 0) {
        if (height < 8 || width < 8) return sat__fail_tls(SAT_E_INVALID_ARG, "resnet20 needs at least 8x8 input");
        int id = 0;
        put(&b, "conv 16 k=3 p=1 bias=0\nbn\nact name=b0\n");
        const int widths[3] = {16, 32, 64};
        for (int stage = 0; stage < 3; stage++)
            for (int blk = 0; blk < 3; blk++) {
                int stride = stage > 0 && blk == 0 ? 2 : 1;
                resnet_block(&b, &id, widths[stage], stride, stride != 1);
            }
        put(&b, "gap\ndense %d\n", num_classes);
    } else {
        return sat__fail_tls(SAT_E_INVALID_ARG,
                             "unknown preset '%s' (known: mlp, madry-cnn, small-cnn, resnet20)", name);
    }
    if (b.failed) return sat__fail_tls(SAT_E_INTERNAL, "sat_preset_spec: spec too long");
    *spec_out = sat__user_strdup(data);
    if (!*spec_out) return sat__fail_tls(SAT_E_NOMEM, "sat_preset_spec: out of memory");
    return SAT_OK;
}
