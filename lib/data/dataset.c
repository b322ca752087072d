/* dataset.c - the data set handle: loading entry points, views, split/truncate, and
 * epoch shuffling, batching and augmentation. Every random choice is a pure function of
 * (seed, epoch, position) through the counter RNG, so an epoch's order and augmentations
 * do not depend on the batch size or on what was drawn before. */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CROP_PAD 4

const char *sat_default_data_dir(void) { return "/usr/share/datasets/fashion-mnist"; }

int32_t sat__data_path(char *buf, size_t size, const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    int sep = dl > 0 && dir[dl - 1] != '/';
    if (dl + (size_t)sep + nl + 1 > size)
        return sat__fail_tls(SAT_E_INVALID_ARG, "path too long: %s/%s", dir, name);
    memcpy(buf, dir, dl);
    if (sep) buf[dl] = '/';
    memcpy(buf + dl + (size_t)sep, name, nl + 1);
    return SAT_OK;
}

/* n*c*h*w values, or -1 if it does not fit in memory sizes. */
static int64_t value_count(int64_t n, int32_t c, int32_t h, int32_t w) {
    int64_t per = (int64_t)c * h;
    if (per > INT32_MAX) return -1;
    per *= w;
    if (per > (INT64_MAX / 4) / n) return -1;
    int64_t total = per * n;
    if ((uint64_t)total > SIZE_MAX / sizeof(float)) return -1;
    return total;
}

static void set_identity(int64_t *order, int64_t n) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
}

/* Fisher-Yates driven by the counter RNG: the result depends only on (key, stream, n). */
static void permute(int64_t *p, int64_t n, uint64_t key, uint64_t stream) {
    set_identity(p, n);
    for (int64_t i = n - 1; i > 0; i--) {
        /* Modulo bias is below n / 2^64: negligible for any n that fits in memory. */
        int64_t j = (int64_t)(sat__rng_u64(key, stream, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

/* The epoch order: the shuffle key is derived from (seed, epoch) so that n is unbounded. */
static void epoch_order(sat_dataset *ds) {
    if (!ds->shuffled) {
        set_identity(ds->order, ds->n);
        return;
    }
    uint64_t key = sat__rng_u64(ds->seed, SAT_STREAM_SHUFFLE, (uint64_t)ds->epoch);
    permute(ds->order, ds->n, key, SAT_STREAM_SHUFFLE);
}

int32_t sat__dataset_alloc(sat_context *ctx, int64_t n, int32_t c, int32_t h, int32_t w,
                           int32_t classes, sat_dataset **out) {
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return sat__fail_tls(SAT_E_INVALID_ARG, "data set shape %lld x %d x %d x %d is empty",
                             (long long)n, c, h, w);
    int64_t values = value_count(n, c, h, w);
    if (values < 0 || (uint64_t)n > SIZE_MAX / sizeof(int64_t))
        return sat__fail_tls(SAT_E_INVALID_ARG, "data set of %lld x %d x %d x %d is too large",
                             (long long)n, c, h, w);
    sat_dataset *ds = sat__calloc(ctx, 1, sizeof *ds);
    if (!ds) return sat__fail_tls(SAT_E_NOMEM, "data set: out of memory");
    ds->ctx = ctx;
    sat__child_attach(&ctx->live_children);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->classes = classes;
    ds->images = sat__alloc(ctx, (size_t)values * sizeof(float));
    ds->labels = sat__alloc(ctx, (size_t)n * sizeof(int32_t));
    ds->order = sat__alloc(ctx, (size_t)n * sizeof(int64_t));
    if (!ds->images || !ds->labels || !ds->order) {
        sat_dataset_destroy(ds);
        return sat__fail_tls(SAT_E_NOMEM, "data set of %lld examples (%lld values): out of memory",
                             (long long)n, (long long)values);
    }
    set_identity(ds->order, n);
    *out = ds;
    return SAT_OK;
}

/* ---- creation ---- */

static const char *idx_names[2][2] = {
    {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
};

/* DIR/name if it can be opened, else DIR/name.gz if that can, else an I/O error naming
 * both. */
static int32_t find_idx_file(const char *dir, const char *name, char *buf, size_t size) {
    char gz[4096];
    int32_t st = sat__data_path(buf, size, dir, name);
    if (st) return st;
    FILE *f = fopen(buf, "rb");
    if (f) {
        fclose(f);
        return SAT_OK;
    }
    if (strlen(buf) + 4 > sizeof gz) return sat__fail_tls(SAT_E_INVALID_ARG, "path too long: %s", buf);
    memcpy(gz, buf, strlen(buf));
    memcpy(gz + strlen(buf), ".gz", 4);
    errno = 0;
    f = fopen(gz, "rb");
    if (!f)
        return sat__fail_tls(SAT_E_IO, "cannot open %s or %s: %s", buf, gz,
                             strerror(errno));
    fclose(f);
    if (strlen(gz) + 1 > size) return sat__fail_tls(SAT_E_INVALID_ARG, "path too long: %s", gz);
    memcpy(buf, gz, strlen(gz) + 1);
    return SAT_OK;
}

int32_t sat_dataset_load(sat_context *ctx, int32_t format, const char *dir, int32_t split,
                         sat_dataset **out) {
    sat__clear_tls_error();
    if (out) *out = NULL;
    if (!ctx || !dir || !out)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_dataset_load: %s is NULL",
                             !ctx ? "ctx" : !dir ? "dir" : "out");
    if (split != SAT_SPLIT_TRAIN && split != SAT_SPLIT_TEST)
        return sat__fail_tls(SAT_E_INVALID_ARG,
                             "sat_dataset_load: split %d is neither SAT_SPLIT_TRAIN nor "
                             "SAT_SPLIT_TEST",
                             split);
    if (format == SAT_DATA_CIFAR10) return sat__cifar10_load(ctx, dir, split, "sat_dataset_load", out);
    if (format != SAT_DATA_IDX)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_dataset_load: unknown format %d", format);
    char images[4096], labels[4096];
    int32_t st = find_idx_file(dir, idx_names[split][0], images, sizeof images);
    if (st) return st;
    st = find_idx_file(dir, idx_names[split][1], labels, sizeof labels);
    if (st) return st;
    return sat__idx_load(ctx, images, labels, "sat_dataset_load", out);
}

int32_t sat_dataset_load_idx(sat_context *ctx, const char *images_path, const char *labels_path,
                             sat_dataset **out) {
    sat__clear_tls_error();
    if (out) *out = NULL;
    if (!ctx || !images_path || !labels_path || !out)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_dataset_load_idx: %s is NULL",
                             !ctx ? "ctx" : !images_path ? "images_path"
                                        : !labels_path ? "labels_path" : "out");
    return sat__idx_load(ctx, images_path, labels_path, "sat_dataset_load_idx", out);
}

int32_t sat_dataset_from_arrays(sat_context *ctx, const float *x, const int32_t *labels,
                                int64_t n, int32_t channels, int32_t height, int32_t width,
                                int32_t num_classes, sat_dataset **out) {
    sat__clear_tls_error();
    if (out) *out = NULL;
    if (!ctx || !x || !labels || !out)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_dataset_from_arrays: %s is NULL",
                             !ctx ? "ctx" : !x ? "x" : !labels ? "labels" : "out");
    if (n < 1 || channels < 1 || height < 1 || width < 1 || num_classes < 1)
        return sat__fail_tls(SAT_E_INVALID_ARG,
                             "sat_dataset_from_arrays: n %lld, shape %d x %d x %d and "
                             "num_classes %d must all be positive",
                             (long long)n, channels, height, width, num_classes);
    int64_t values = value_count(n, channels, height, width);
    if (values < 0)
        return sat__fail_tls(SAT_E_INVALID_ARG, "sat_dataset_from_arrays: %lld x %d x %d x %d "
                             "is too large", (long long)n, channels, height, width);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return sat__fail_tls(SAT_E_INVALID_ARG,
                                 "sat_dataset_from_arrays: label %d at index %lld is not in "
                                 "[0, %d)",
                                 labels[i], (long long)i, num_classes);
    if (!sat__all_finite(x, values)) {
        int64_t i = 0;
        while (i < values && isfinite(x[i])) i++;
        return sat__fail_tls(SAT_E_NUMERIC,
                             "sat_dataset_from_arrays: pixel %lld (example %lld) is NaN or Inf",
                             (long long)i, (long long)(i / (values / n)));
    }
    sat_dataset *ds = NULL;
    int32_t st = sat__dataset_alloc(ctx, n, channels, height, width, num_classes, &ds);
    if (st) return st;
    memcpy(ds->images, x, (size_t)values * sizeof(float));
    memcpy(ds->labels, labels, (size_t)n * sizeof(int32_t));
    *out = ds;
    return SAT_OK;
}

void sat_dataset_destroy(sat_dataset *ds) {
    if (!ds) return;
    sat_context *ctx = ds->ctx;
    sat__dealloc(ctx, ds->images);
    sat__dealloc(ctx, ds->labels);
    sat__dealloc(ctx, ds->order);
    sat__dealloc(ctx, ds);
    sat__child_detach(&ctx->live_children);
}

/* ---- views ---- */

const char *sat_dataset_last_error(const sat_dataset *ds) { return ds ? ds->err : ""; }

int64_t sat_dataset_size(const sat_dataset *ds) { return ds ? ds->n : SAT_E_INVALID_ARG; }

int32_t sat_dataset_shape(const sat_dataset *ds, int32_t *channels, int32_t *height,
                          int32_t *width, int32_t *num_classes) {
    if (!ds) return SAT_E_INVALID_ARG;
    if (channels) *channels = ds->c;
    if (height) *height = ds->h;
    if (width) *width = ds->w;
    if (num_classes) *num_classes = ds->classes;
    return SAT_OK;
}

const float *sat_dataset_images(const sat_dataset *ds) { return ds ? ds->images : NULL; }

const int32_t *sat_dataset_labels(const sat_dataset *ds) { return ds ? ds->labels : NULL; }

/* ---- split and truncate ---- */

int32_t sat_dataset_split(sat_dataset *ds, int64_t count, uint64_t seed, sat_dataset **held_out) {
    if (held_out) *held_out = NULL;
    if (!ds) return SAT_E_INVALID_ARG;
    if (!held_out) return sat__fail(ds->err, SAT_E_INVALID_ARG, "sat_dataset_split: held_out is NULL");
    if (count < 1 || count >= ds->n)
        return sat__fail(ds->err, SAT_E_INVALID_ARG,
                         "sat_dataset_split: count %lld not in 1..%lld (both parts must keep "
                         "at least one example)",
                         (long long)count, (long long)(ds->n - 1));
    const sat_context *ctx = ds->ctx;
    int64_t n = ds->n, keep = n - count, per = (int64_t)ds->c * ds->h * ds->w;
    sat_dataset *held = NULL;
    int64_t *perm = sat__alloc(ctx, (size_t)n * sizeof(int64_t));
    unsigned char *is_held = sat__calloc(ctx, (size_t)n, 1);
    float *images = sat__alloc(ctx, (size_t)(keep * per) * sizeof(float));
    int32_t *labels = sat__alloc(ctx, (size_t)keep * sizeof(int32_t));
    int64_t *order = sat__alloc(ctx, (size_t)keep * sizeof(int64_t));
    int32_t st = SAT_OK;
    if (!perm || !is_held || !images || !labels || !order) {
        st = sat__fail(ds->err, SAT_E_NOMEM, "sat_dataset_split: out of memory");
        goto done;
    }
    st = sat__dataset_alloc(ds->ctx, count, ds->c, ds->h, ds->w, ds->classes, &held);
    if (st) {
        sat__fail(ds->err, st, "sat_dataset_split: %s", sat_last_error());
        goto done;
    }
    /* The last `count` positions of a seeded permutation are held out; both parts keep
     * their examples in the original relative order. */
    permute(perm, n, seed, SAT_STREAM_SPLIT);
    for (int64_t i = keep; i < n; i++) is_held[perm[i]] = 1;
    int64_t a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *src = ds->images + i * per;
        if (is_held[i]) {
            memcpy(held->images + b * per, src, (size_t)per * sizeof(float));
            held->labels[b++] = ds->labels[i];
        } else {
            memcpy(images + a * per, src, (size_t)per * sizeof(float));
            labels[a++] = ds->labels[i];
        }
    }
    sat__dealloc(ctx, ds->images);
    sat__dealloc(ctx, ds->labels);
    sat__dealloc(ctx, ds->order);
    ds->images = images;
    ds->labels = labels;
    ds->order = order;
    ds->n = keep;
    images = NULL;
    labels = NULL;
    order = NULL;
    epoch_order(ds);
    *held_out = held;
    held = NULL;

done:
    sat__dealloc(ctx, perm);
    sat__dealloc(ctx, is_held);
    sat__dealloc(ctx, images);
    sat__dealloc(ctx, labels);
    sat__dealloc(ctx, order);
    sat_dataset_destroy(held);
    return st;
}

int32_t sat_dataset_truncate(sat_dataset *ds, int64_t count) {
    if (!ds) return SAT_E_INVALID_ARG;
    if (count < 1 || count > ds->n)
        return sat__fail(ds->err, SAT_E_INVALID_ARG, "sat_dataset_truncate: count %lld not in 1..%lld",
                         (long long)count, (long long)ds->n);
    if (count == ds->n) return SAT_OK;
    /* The buffers keep their size; only the first count examples stay visible. The order
     * is recomputed for the smaller set (what shuffle would give with the same seed). */
    ds->n = count;
    epoch_order(ds);
    return SAT_OK;
}

/* ---- epochs and batches ---- */

int32_t sat_dataset_shuffle(sat_dataset *ds, uint64_t seed, int64_t epoch, uint32_t aug) {
    if (!ds) return SAT_E_INVALID_ARG;
    if (aug & ~(SAT_AUG_CROP | SAT_AUG_FLIP))
        return sat__fail(ds->err, SAT_E_INVALID_ARG,
                         "sat_dataset_shuffle: unknown augmentation flags 0x%x", (unsigned)aug);
    if (epoch < 0)
        return sat__fail(ds->err, SAT_E_INVALID_ARG, "sat_dataset_shuffle: epoch %lld is negative",
                         (long long)epoch);
    ds->seed = seed;
    ds->epoch = epoch;
    ds->aug = aug;
    ds->shuffled = 1;
    epoch_order(ds);
    return SAT_OK;
}

/* One example with crop (offset drawn in [-pad, pad] per axis, zero fill) and/or flip, from
 * one 64-bit draw: the crop and the flip use separate bits so that enabling one does not
 * change the other's choice. */
static void augment(const sat_dataset *ds, const float *src, float *dst, uint64_t r) {
    int32_t c = ds->c, h = ds->h, w = ds->w;
    int32_t sx = 0, sy = 0, flip = 0;
    if (ds->aug & SAT_AUG_CROP) {
        sx = (int32_t)((r & 0xffffu) % (2 * CROP_PAD + 1)) - CROP_PAD;
        sy = (int32_t)(((r >> 16) & 0xffffu) % (2 * CROP_PAD + 1)) - CROP_PAD;
    }
    if (ds->aug & SAT_AUG_FLIP) flip = (int32_t)(r >> 63);
    for (int32_t ch = 0; ch < c; ch++) {
        const float *s = src + (int64_t)ch * h * w;
        float *d = dst + (int64_t)ch * h * w;
        for (int32_t y = 0; y < h; y++) {
            int32_t ys = y + sy;
            float *drow = d + (int64_t)y * w;
            if (ys < 0 || ys >= h) {
                memset(drow, 0, (size_t)w * sizeof(float));
                continue;
            }
            const float *srow = s + (int64_t)ys * w;
            for (int32_t x = 0; x < w; x++) {
                int32_t xs = (flip ? w - 1 - x : x) + sx;
                drow[x] = xs >= 0 && xs < w ? srow[xs] : 0.0f;
            }
        }
    }
}

int32_t sat_dataset_batch(sat_dataset *ds, int64_t index, int64_t batch, float *x,
                          int32_t *labels, int64_t *n_out) {
    if (!ds) return SAT_E_INVALID_ARG;
    if (!x || !labels)
        return sat__fail(ds->err, SAT_E_INVALID_ARG, "sat_dataset_batch: %s is NULL",
                         !x ? "x" : "labels");
    if (batch < 1)
        return sat__fail(ds->err, SAT_E_INVALID_ARG, "sat_dataset_batch: batch %lld < 1",
                         (long long)batch);
    int64_t nb = ds->n / batch + (ds->n % batch != 0);
    if (index < 0 || index >= nb)
        return sat__fail(ds->err, SAT_E_INVALID_ARG,
                         "sat_dataset_batch: index %lld not in 0..%lld (%lld examples in "
                         "batches of %lld)",
                         (long long)index, (long long)(nb - 1), (long long)ds->n, (long long)batch);
    int64_t begin = index * batch;
    int64_t count = ds->n - begin < batch ? ds->n - begin : batch;
    int64_t per = (int64_t)ds->c * ds->h * ds->w;
    uint64_t aug_key = sat__rng_u64(ds->seed, SAT_STREAM_AUGMENT, (uint64_t)ds->epoch);
    for (int64_t k = 0; k < count; k++) {
        int64_t pos = begin + k, ex = ds->order[pos];
        const float *src = ds->images + ex * per;
        if (ds->aug)
            augment(ds, src, x + k * per, sat__rng_u64(aug_key, SAT_STREAM_AUGMENT, (uint64_t)pos));
        else
            memcpy(x + k * per, src, (size_t)per * sizeof(float));
        labels[k] = ds->labels[ex];
    }
    if (n_out) *n_out = count;
    return SAT_OK;
}
