/* presets.c - spec texts of the preset models. A preset is only a spec, so what a preset
 * builds can always be printed, edited and stored in a model file.
 *
 * Every activation of a preset is a plain `act` line, so the model's one activation option
 * (sat_model_opts.activation) switches all of them; left at SAT_ACT_DEFAULT it takes the
 * `act=` of the preset's input line, the original network's activation. */
#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The spec text, grown as needed (a WRN-34-10 or an EfficientNet is several kilobytes). */
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
    for (;;) {
        if (b->failed) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        /* Too short: double it (at least to fit) and print again. Memory the caller frees
         * with sat_free, so it is the library's user memory. */
        size_t cap = 2 * b->cap > b->len + (size_t)n + 1 ? 2 * b->cap : b->len + (size_t)n + 1;
        char *bigger = sat__user_alloc(cap);
        if (!bigger) {
            b->failed = 1;
            return;
        }
        memcpy(bigger, b->data, b->len + 1);
        sat_free(b->data);
        b->data = bigger;
        b->cap = cap;
    }
}

static void put_normalize(buf *b, int32_t c, const float *mean, const float *std) {
    if (!mean && !std) return;
    put(b, "normalize mean=");
    for (int i = 0; i < c; i++) put(b, "%s%.9g", i ? "," : "", mean ? mean[i] : 0.0f);
    put(b, " std=");
    for (int i = 0; i < c; i++) put(b, "%s%.9g", i ? "," : "", std ? std[i] : 1.0f);
    put(b, "\n");
}

/* The residual of a block that reads b<in> and writes b<out>: the labelled shortcut when
 * the shape changes, else the block's input. */
static void put_residual(buf *b, int in, int out, int project) {
    if (project)
        put(b, "add sc%d name=b%d\n", out, out);
    else
        put(b, "add b%d name=b%d\n", in, out);
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

/* One pre-activation block (He et al. 2016; PreAct ResNet-18 of Rice et al., the wide blocks
 * of Zagoruyko & Komodakis as in the Madry and TRADES code): bn, act, then two 3x3 convs
 * with bn and act between them. A shape change takes the shortcut through a 1x1 conv of the
 * activated input; otherwise the shortcut is the block's input itself. */
static void preact_block(buf *b, int *id, int width, int stride, int project) {
    int in = *id, out = ++*id;
    put(b, "bn\nact name=p%d\n", out);
    if (project) {
        put(b, "conv %d k=1 s=%d bias=0 name=sc%d\n", width, stride, out);
        put(b, "conv %d k=3 s=%d p=1 bias=0 from=p%d\n", width, stride, out);
    } else {
        put(b, "conv %d k=3 p=1 bias=0\n", width);
    }
    put(b, "bn\nact\nconv %d k=3 p=1 bias=0\n", width);
    put_residual(b, in, out, project);
}

/* Stages of pre-activation blocks after a 3x3 stem of `stem` channels, then bn, act, global
 * average pooling and the classifier. */
static void preact_net(buf *b, int stem, const int *widths, int stages, int blocks, int classes) {
    int id = 0, channels = stem;
    put(b, "conv %d k=3 p=1 bias=0 name=b0\n", stem);
    for (int s = 0; s < stages; s++)
        for (int k = 0; k < blocks; k++) {
            int stride = s > 0 && k == 0 ? 2 : 1;
            preact_block(b, &id, widths[s], stride, stride != 1 || channels != widths[s]);
            channels = widths[s];
        }
    put(b, "bn\nact\ngap\ndense %d\n", classes);
}

/* One bottleneck block of torchvision's ResNet-50 / ResNeXt-50: 1x1 to `mid`, 3x3 (stride,
 * `groups` channel groups) , 1x1 to `width`, batch norm after each; a 1x1 conv with bn as the
 * shortcut when the shape changes. */
static void bottleneck_block(buf *b, int *id, int mid, int width, int stride, int groups, int project) {
    int in = *id, out = ++*id;
    if (project) {
        put(b, "conv %d k=1 s=%d bias=0\n", width, stride);
        put(b, "bn name=sc%d\n", out);
        put(b, "conv %d k=1 bias=0 from=b%d\n", mid, in);
    } else {
        put(b, "conv %d k=1 bias=0\n", mid);
    }
    put(b, "bn\nact\nconv %d k=3 s=%d p=1 g=%d bias=0\nbn\nact\n", mid, stride, groups);
    put(b, "conv %d k=1 bias=0\nbn\n", width);
    put(b, "add %s%d\nact name=b%d\n", project ? "sc" : "b", project ? out : in, out);
}

/* ResNet-50 (groups 1, base width 64) or ResNeXt-50 32x4d (groups 32, 4 channels per group):
 * 7x7 stride-2 stem, padded 3x3 stride-2 max pooling, 3-4-6-3 bottleneck blocks. */
static void bottleneck_net(buf *b, int groups, int group_width, int classes) {
    int id = 0, channels = 64;
    put(b, "conv 64 k=7 s=2 p=3 bias=0\nbn\nact\nmaxpool k=3 s=2 p=1 name=b0\n");
    const int blocks[4] = {3, 4, 6, 3};
    for (int s = 0; s < 4; s++) {
        const int planes = 64 << s, mid = planes * group_width / 64 * groups, width = 4 * planes;
        for (int k = 0; k < blocks[s]; k++) {
            int stride = s > 0 && k == 0 ? 2 : 1;
            bottleneck_block(b, &id, mid, width, stride, groups, stride != 1 || channels != width);
            channels = width;
        }
    }
    put(b, "gap\ndense %d\n", classes);
}

/* One MBConv block of EfficientNet (torchvision's): a 1x1 expansion (when expand > 1),
 * a depthwise kxk conv, squeeze-excitation (gap, 1x1 conv to in/4 channels, act, 1x1 conv,
 * sigmoid, times the depthwise output), a 1x1 projection with batch norm and no activation,
 * and the residual when the shape is unchanged, its branch dropped per example with
 * probability `drop` in training (stochastic depth). */
static void mbconv_block(buf *b, int *id, int in_ch, int out_ch, int expand, int k, int stride, double drop) {
    int in = *id, out = ++*id;
    const int mid = in_ch * expand, squeeze = in_ch / 4 > 1 ? in_ch / 4 : 1;
    if (expand != 1) put(b, "conv %d k=1 bias=0\nbn\nact\n", mid);
    put(b, "conv %d k=%d s=%d p=%d g=%d bias=0\nbn\nact name=e%d\n", mid, k, stride, (k - 1) / 2, mid, out);
    put(b, "gap\nconv %d k=1\nact\nconv %d k=1\nsigmoid\nmul e%d\n", squeeze, mid, out);
    put(b, "conv %d k=1 bias=0\n", out_ch);
    if (stride == 1 && in_ch == out_ch) {
        put(b, "bn\n");
        if (drop > 0) put(b, "dropout p=%.6g per=example\n", drop);
        put(b, "add b%d name=b%d\n", in, out);
    } else {
        put(b, "bn name=b%d\n", out);
    }
}

/* EfficientNet-B0 (Tan & Le 2019; torchvision's layout): stem 3x3 stride 2 to 32 channels,
 * seven stages of MBConv blocks (stochastic depth rising linearly to 0.2 over the 16 blocks,
 * 0.2 i / 16 for block i), a 1x1 head to 1280 channels, global average pooling, dropout 0.2
 * and the classifier. */
static void efficientnet_b0(buf *b, int classes) {
    static const int stages[7][5] = {
        /* expand, k, stride, out, blocks */
        {1, 3, 1, 16, 1}, {6, 3, 2, 24, 2}, {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
        {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1},
    };
    int id = 0, channels = 32;
    put(b, "conv 32 k=3 s=2 p=1 bias=0\nbn\nact name=b0\n");
    for (int s = 0; s < 7; s++)
        for (int k = 0; k < stages[s][4]; k++) {
            mbconv_block(b, &id, channels, stages[s][3], stages[s][0], stages[s][1], k == 0 ? stages[s][2] : 1,
                         0.2 * id / 16);
            channels = stages[s][3];
        }
    put(b, "conv 1280 k=1 bias=0\nbn\nact\ngap\ndropout p=0.2\ndense %d\n", classes);
}

/* "wrn-D-K": depth D = 6 n + 4 (n blocks per stage), widen factor K. 1 if the name is one. */
static int parse_wrn(const char *name, int32_t *depth, int32_t *widen) {
    char d[16], k[16];
    if (strncmp(name, "wrn-", 4) != 0) return 0;
    const char *dash = strchr(name + 4, '-');
    if (!dash || dash - (name + 4) >= (ptrdiff_t)sizeof d || strlen(dash + 1) >= sizeof k) return 0;
    memcpy(d, name + 4, (size_t)(dash - (name + 4)));
    d[dash - (name + 4)] = '\0';
    strcpy(k, dash + 1);
    return sat__parse_int(d, 1, 1000, depth) && sat__parse_int(k, 1, 1000, widen);
}

#define KNOWN_PRESETS                                                                          \
    "mlp, madry-cnn, small-cnn, resnet20, preact-resnet18, wrn-D-K (e.g. wrn-28-10), resnet50, " \
    "resnext50-32x4d, efficientnet-b0"

/* The layers after the input and normalisation, or a failure with a message. */
static int32_t put_layers(buf *b, const char *name, int32_t height, int32_t width, int32_t classes) {
    const int32_t side = height < width ? height : width;
    int32_t depth, widen;
    if (strcmp(name, "mlp") == 0) {
        put(b, "flatten\ndense 256\nact\ndense 256\nact\ndense %d\n", classes);
    } else if (strcmp(name, "madry-cnn") == 0) {
        if (side < 4) return sat__fail_tls(SAT_E_INVALID_ARG, "madry-cnn needs at least 4x4 input");
        put(b, "conv 32 k=5 p=2\nact\nmaxpool k=2\nconv 64 k=5 p=2\nact\nmaxpool k=2\n"
               "flatten\ndense 1024\nact\ndense %d\n", classes);
    } else if (strcmp(name, "small-cnn") == 0) {
        if (side < 4) return sat__fail_tls(SAT_E_INVALID_ARG, "small-cnn needs at least 4x4 input");
        put(b, "conv 16 k=3 s=2 p=1\nact\nconv 32 k=3 s=2 p=1\nact\nflatten\ndense 100\nact\ndense %d\n",
            classes);
    } else if (strcmp(name, "resnet20") == 0) {
        if (side < 8) return sat__fail_tls(SAT_E_INVALID_ARG, "resnet20 needs at least 8x8 input");
        int id = 0;
        put(b, "conv 16 k=3 p=1 bias=0\nbn\nact name=b0\n");
        const int widths[3] = {16, 32, 64};
        for (int stage = 0; stage < 3; stage++)
            for (int blk = 0; blk < 3; blk++) {
                int stride = stage > 0 && blk == 0 ? 2 : 1;
                resnet_block(b, &id, widths[stage], stride, stride != 1);
            }
        put(b, "gap\ndense %d\n", classes);
    } else if (strcmp(name, "preact-resnet18") == 0) {
        if (side < 8) return sat__fail_tls(SAT_E_INVALID_ARG, "preact-resnet18 needs at least 8x8 input");
        const int widths[4] = {64, 128, 256, 512};
        preact_net(b, 64, widths, 4, 2, classes);
    } else if (parse_wrn(name, &depth, &widen)) {
        if (depth < 10 || (depth - 4) % 6 || widen > 64)
            return sat__fail_tls(SAT_E_INVALID_ARG,
                                 "preset '%s': a wide ResNet needs depth 6n+4 >= 10 and a widen factor "
                                 "of 1 to 64 (e.g. wrn-28-10)", name);
        if (side < 4) return sat__fail_tls(SAT_E_INVALID_ARG, "%s needs at least 4x4 input", name);
        const int widths[3] = {16 * widen, 32 * widen, 64 * widen};
        preact_net(b, 16, widths, 3, (depth - 4) / 6, classes);
    } else if (strcmp(name, "resnet50") == 0 || strcmp(name, "resnext50-32x4d") == 0) {
        if (side < 32) return sat__fail_tls(SAT_E_INVALID_ARG, "%s needs at least 32x32 input", name);
        const int resnext = strcmp(name, "resnext50-32x4d") == 0;
        bottleneck_net(b, resnext ? 32 : 1, resnext ? 4 : 64, classes);
    } else if (strcmp(name, "efficientnet-b0") == 0) {
        if (side < 32) return sat__fail_tls(SAT_E_INVALID_ARG, "efficientnet-b0 needs at least 32x32 input");
        efficientnet_b0(b, classes);
    } else {
        return sat__fail_tls(SAT_E_INVALID_ARG, "unknown preset '%s' (known: " KNOWN_PRESETS ")", name);
    }
    return SAT_OK;
}

/* The activation a preset's original paper uses, written as its input line's `act=` (the
 * spec's default, taken when sat_model_opts.activation is SAT_ACT_DEFAULT): ReLU for the
 * ResNets, SiLU for EfficientNet. libsat's own small presets name none, so they take SiLU
 * there as they always have. */
static const char *preset_act(const char *name) {
    int32_t depth, widen;
    if (strcmp(name, "preact-resnet18") == 0 || parse_wrn(name, &depth, &widen) ||
        strcmp(name, "resnet50") == 0 || strcmp(name, "resnext50-32x4d") == 0)
        return " act=relu";
    if (strcmp(name, "efficientnet-b0") == 0) return " act=silu";
    return "";
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
    buf b = {sat__user_alloc(1024), 0, 1024, 0};
    if (!b.data) return sat__fail_tls(SAT_E_NOMEM, "sat_preset_spec: out of memory");
    b.data[0] = '\0';
    put(&b, "# preset %s\ninput %d %d %d%s\n", name, channels, height, width, preset_act(name));
    put_normalize(&b, channels, mean, std);
    int32_t st = put_layers(&b, name, height, width, num_classes);
    if (st == SAT_OK && b.failed) st = sat__fail_tls(SAT_E_NOMEM, "sat_preset_spec: out of memory");
    if (st) {
        sat_free(b.data);
        return st;
    }
    *spec_out = b.data;
    return SAT_OK;
}
