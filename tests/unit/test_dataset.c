/* test_dataset.c - IDX and CIFAR-10 readers (good and damaged files), from_arrays,
 * shuffling, batching, augmentation, split and truncate, and the real Fashion-MNIST. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- a context whose allocator counts, to catch leaks and oversized allocations ---- */

typedef struct {
    int64_t live;
    int64_t base; /* allocations expected to be live after a failed call */
    size_t largest;
} counter;

static void *count_alloc(void *user, size_t size, size_t alignment) {
    counter *c = user;
    size_t rounded = (size + alignment - 1) / alignment * alignment;
    void *p = aligned_alloc(alignment, rounded);
    if (p) {
        c->live++;
        if (size > c->largest) c->largest = size;
    }
    return p;
}

static void count_free(void *user, void *ptr) {
    counter *c = user;
    c->live--;
    free(ptr);
}

static sat_context *counting_context(counter *c) {
    memset(c, 0, sizeof *c);
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.alloc_fn = count_alloc;
    o.dealloc_fn = count_free;
    o.alloc_user = c;
    sat_context *ctx = NULL;
    TU_CHECK(sat_context_create(&o, &ctx));
    tu_own_context(ctx); /* c must outlive it: callers tu_alloc their counter */
    c->live = 0; /* count only what the data set code allocates from here on */
    return ctx;
}

/* ---- a temporary directory holding the files a test writes ---- */

typedef struct {
    char dir[256];
    char files[16][64];
    int nfiles;
} tmpdir;

static int setup_tmp(void **state) {
    tmpdir *t = calloc(1, sizeof *t);
    if (!t) return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/sat_dataset_XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown_tmp(void **state) {
    tmpdir *t = *state;
    char path[512];
    for (int i = 0; i < t->nfiles; i++) {
        snprintf(path, sizeof path, "%s/%s", t->dir, t->files[i]);
        remove(path);
    }
    rmdir(t->dir);
    free(t);
    return 0;
}

static void tmp_path(const tmpdir *t, const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", t->dir, name);
}

static void remember(tmpdir *t, const char *name) {
    for (int i = 0; i < t->nfiles; i++)
        if (strcmp(t->files[i], name) == 0) return;
    assert_true(t->nfiles < 16);
    snprintf(t->files[t->nfiles++], sizeof t->files[0], "%s", name);
}

/* Writes bytes to DIR/name, gzip-compressed when the name ends in ".gz". */
static void write_file(tmpdir *t, const char *name, const unsigned char *data, size_t size) {
    char path[512];
    tmp_path(t, name, path, sizeof path);
    remember(t, name);
    size_t nl = strlen(name);
    if (nl > 3 && strcmp(name + nl - 3, ".gz") == 0) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (size) assert_int_equal(gzwrite(f, data, (unsigned)size), (int)size);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        if (size) assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
    }
}

static void remove_file(const tmpdir *t, const char *name) {
    char path[512];
    tmp_path(t, name, path, sizeof path);
    remove(path);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static unsigned char pixel_value(int64_t i) { return (unsigned char)((i * 37 + 11) & 255); }

/* An IDX image file of n images of rows x cols (pixel i = pixel_value(i)); `keep` bytes of
 * it are written (SIZE_MAX: all). */
static void write_idx_images(tmpdir *t, const char *name, uint32_t magic, uint32_t n,
                             uint32_t rows, uint32_t cols, size_t keep) {
    size_t pixels = (size_t)n * rows * cols, size = 16 + pixels;
    if (keep < size) size = keep; /* huge claimed sizes are only ever written cut short */
    unsigned char *buf = tu_alloc(size < 16 ? 16 : size);
    assert_non_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t i = 0; i + 16 < size; i++) buf[16 + i] = pixel_value((int64_t)i);
    write_file(t, name, buf, size);
    tu_free(buf);
}

/* An IDX label file of n labels, label i = i % 10 (or `bad` at index bad_at). */
static void write_idx_labels(tmpdir *t, const char *name, uint32_t magic, uint32_t n,
                             size_t keep, int bad_at, unsigned char bad) {
    size_t size = 8 + n;
    unsigned char *buf = tu_alloc(size);
    assert_non_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    for (uint32_t i = 0; i < n; i++) buf[8 + i] = (unsigned char)(i % 10);
    if (bad_at >= 0) buf[8 + bad_at] = bad;
    write_file(t, name, buf, keep < size ? keep : size);
    tu_free(buf);
}

static void check_idx_contents(const sat_dataset *ds, int64_t n, int32_t rows, int32_t cols) {
    int32_t c, h, w, k;
    assert_int_equal(sat_dataset_size(ds), n);
    TU_CHECK(sat_dataset_shape(ds, &c, &h, &w, &k));
    assert_int_equal(c, 1);
    assert_int_equal(h, rows);
    assert_int_equal(w, cols);
    assert_int_equal(k, 10);
    const float *x = sat_dataset_images(ds);
    const int32_t *y = sat_dataset_labels(ds);
    for (int64_t i = 0; i < n * rows * cols; i++)
        if (x[i] != (float)pixel_value(i) / 255.0f)
            fail_msg("pixel %lld: %g, expected %g", (long long)i, (double)x[i],
                     (double)pixel_value(i) / 255.0);
    for (int64_t i = 0; i < n; i++) assert_int_equal(y[i], i % 10);
}

/* Expects `call` to fail with `code`, leave *out NULL, name `needle` in the message and
 * free everything it allocated. */
#define EXPECT_FAIL(call, out, code, needle, cnt)                                               \
    do {                                                                                        \
        (out) = (sat_dataset *)(uintptr_t)1;                                                    \
        int32_t st_ = (call);                                                                   \
        if (st_ == SAT_OK) tu_own_dataset(out);                                                 \
        if (st_ != (code))                                                                      \
            fail_msg("%s -> %d (%s), expected %d: %s", #call, st_, sat_status_string(st_),     \
                     (code), sat_last_error());                                                 \
        assert_null(out);                                                                       \
        if (!strstr(sat_last_error(), (needle)))                                                \
            fail_msg("message '%s' does not contain '%s'", sat_last_error(), (needle));         \
        assert_int_equal((cnt)->live, (cnt)->base);                                              \
    } while (0)

/* ---- IDX ---- */

static void test_idx_plain_and_gzip(void **state) {
    tmpdir *t = *state;
    counter *cnt = tu_alloc(sizeof *cnt);
    sat_context *ctx = counting_context(cnt);
    /* train split plain, test split gzip */
    write_idx_images(t, "train-images-idx3-ubyte", 0x803, 7, 5, 3, SIZE_MAX);
    write_idx_labels(t, "train-labels-idx1-ubyte", 0x801, 7, SIZE_MAX, -1, 0);
    write_idx_images(t, "t10k-images-idx3-ubyte.gz", 0x803, 12, 4, 6, SIZE_MAX);
    write_idx_labels(t, "t10k-labels-idx1-ubyte.gz", 0x801, 12, SIZE_MAX, -1, 0);

    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds));
    tu_own_dataset(ds);
    check_idx_contents(ds, 7, 5, 3);
    tu_release(ds);

    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TEST, &ds));
    tu_own_dataset(ds);
    check_idx_contents(ds, 12, 4, 6);
    tu_release(ds);

    /* explicit paths; a trailing slash on the directory is fine */
    char ip[512], lp[512], dir_slash[300];
    tmp_path(t, "t10k-images-idx3-ubyte.gz", ip, sizeof ip);
    tmp_path(t, "t10k-labels-idx1-ubyte.gz", lp, sizeof lp);
    TU_CHECK(sat_dataset_load_idx(ctx, ip, lp, &ds));
    tu_own_dataset(ds);
    check_idx_contents(ds, 12, 4, 6);
    tu_release(ds);
    snprintf(dir_slash, sizeof dir_slash, "%s/", t->dir);
    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_IDX, dir_slash, SAT_SPLIT_TEST, &ds));
    sat_dataset_destroy(ds);

    assert_int_equal(cnt->live, 0);
}

static void test_idx_damaged(void **state) {
    tmpdir *t = *state;
    counter *cnt = tu_alloc(sizeof *cnt);
    sat_context *ctx = counting_context(cnt);
    sat_dataset *ds;
    const char *img = "train-images-idx3-ubyte.gz", *lab = "train-labels-idx1-ubyte.gz";

    /* missing files: the directory is empty */
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds, SAT_E_IO,
                "train-images-idx3-ubyte", cnt);
    write_idx_images(t, img, 0x803, 20, 6, 6, SIZE_MAX);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds, SAT_E_IO,
                "train-labels-idx1-ubyte", cnt);
    assert_non_null(strstr(sat_last_error(), "No such file"));
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, "/nonexistent-dir-for-sat", SAT_SPLIT_TEST,
                                 &ds), ds, SAT_E_IO, "t10k-images-idx3-ubyte", cnt);

    /* a good pair loads */
    write_idx_labels(t, lab, 0x801, 20, SIZE_MAX, -1, 0);
    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds));
    sat_dataset_destroy(ds);

    /* bad magic in either file (swapped files give that too) */
    write_idx_images(t, img, 0x801, 20, 6, 6, SIZE_MAX);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, img, cnt);
    assert_non_null(strstr(sat_last_error(), "magic"));
    write_idx_images(t, img, 0x803, 20, 6, 6, SIZE_MAX);
    write_idx_labels(t, lab, 0x803, 20, SIZE_MAX, -1, 0);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, lab, cnt);

    /* truncated labels, truncated images, truncated header, empty file */
    write_idx_labels(t, lab, 0x801, 20, 8 + 13, -1, 0);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, lab, cnt);
    assert_non_null(strstr(sat_last_error(), "truncated"));
    write_idx_labels(t, lab, 0x801, 20, SIZE_MAX, -1, 0);
    write_idx_images(t, img, 0x803, 20, 6, 6, 16 + 20 * 36 - 1);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, img, cnt);
    assert_non_null(strstr(sat_last_error(), "truncated"));
    write_idx_images(t, img, 0x803, 20, 6, 6, 10);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, img, cnt);
    write_idx_images(t, img, 0x803, 20, 6, 6, 0);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, img, cnt);

    /* count mismatch */
    write_idx_images(t, img, 0x803, 19, 6, 6, SIZE_MAX);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, lab, cnt);
    assert_non_null(strstr(sat_last_error(), "19"));

    /* a label out of range */
    write_idx_images(t, img, 0x803, 20, 6, 6, SIZE_MAX);
    write_idx_labels(t, lab, 0x801, 20, SIZE_MAX, 5, 11);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, "train-labels-idx1-ubyte.gz: label 11 at index 5 is not below 10",
                cnt);

    /* zero and huge claimed dimensions: rejected from the header alone */
    write_idx_labels(t, lab, 0x801, 20, SIZE_MAX, -1, 0);
    const uint32_t dims[][3] = {{0, 6, 6},         {20, 0, 6},         {20, 6, 5000},
                                {200000000, 1, 1}, {100000000, 28, 28}, {0xffffffffu, 4096, 4096}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        cnt->largest = 0;
        write_idx_images(t, img, 0x803, dims[i][0], dims[i][1], dims[i][2], 16);
        EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                    SAT_E_FORMAT, img, cnt);
        assert_true(cnt->largest < ((size_t)1 << 20));
    }
    /* plausible but false dimensions (2e6 images of 32x32 in a 16-byte file): memory grows
     * only with the data actually present */
    write_idx_images(t, img, 0x803, 2000000, 32, 32, 16 + 1000);
    write_idx_labels(t, lab, 0x801, 2000000, SIZE_MAX, -1, 0);
    cnt->largest = 0;
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, img, cnt);
    assert_non_null(strstr(sat_last_error(), "truncated"));
    assert_true(cnt->largest <= ((size_t)8 << 20));

    /* a gzip stream cut in the middle */
    write_idx_images(t, "train-images-idx3-ubyte", 0x803, 20, 6, 6, SIZE_MAX);
    char plain[512], gz[512];
    tmp_path(t, "train-images-idx3-ubyte", plain, sizeof plain);
    write_idx_images(t, img, 0x803, 200, 16, 16, SIZE_MAX);
    remove_file(t, "train-images-idx3-ubyte");
    write_idx_labels(t, lab, 0x801, 200, SIZE_MAX, -1, 0);
    tmp_path(t, img, gz, sizeof gz);
    FILE *f = fopen(gz, "rb");
    assert_non_null(f);
    unsigned char buf[1 << 16];
    size_t size = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(size > 200);
    write_file(t, img, buf, size / 2);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_FORMAT, img, cnt);

    /* bad arguments */
    EXPECT_FAIL(sat_dataset_load(NULL, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_INVALID_ARG, "ctx", cnt);
    EXPECT_FAIL(sat_dataset_load(ctx, 7, t->dir, SAT_SPLIT_TRAIN, &ds), ds, SAT_E_INVALID_ARG,
                "format", cnt);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, 2, &ds), ds, SAT_E_INVALID_ARG,
                "split", cnt);
    assert_int_equal(sat_dataset_load(ctx, SAT_DATA_IDX, t->dir, SAT_SPLIT_TRAIN, NULL),
                     SAT_E_INVALID_ARG);
}

/* ---- CIFAR-10 ---- */

static unsigned char cifar_pixel(int64_t example, int64_t p) {
    return (unsigned char)((example * 131 + p * 7 + 3) & 255);
}

static void write_cifar(tmpdir *t, const char *name, int64_t first, int64_t records,
                        size_t extra_bytes, int bad_label_at) {
    size_t size = (size_t)records * 3073 + extra_bytes;
    unsigned char *buf = tu_alloc(size);
    assert_non_null(buf);
    for (int64_t r = 0; r < records; r++) {
        unsigned char *rec = buf + r * 3073;
        rec[0] = (unsigned char)((first + r) % 10);
        if (r == bad_label_at) rec[0] = 10;
        for (int p = 0; p < 3072; p++) rec[1 + p] = cifar_pixel(first + r, p);
    }
    write_file(t, name, buf, size);
    tu_free(buf);
}

static void test_cifar(void **state) {
    tmpdir *t = *state;
    counter *cnt = tu_alloc(sizeof *cnt);
    sat_context *ctx = counting_context(cnt);
    const int64_t per_file[5] = {2, 3, 1, 1, 4};
    char name[32];
    int64_t total = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        write_cifar(t, name, total, per_file[i], 0, -1);
        total += per_file[i];
    }
    write_cifar(t, "test_batch.bin", 100, 3, 0, -1);

    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_CIFAR10, t->dir, SAT_SPLIT_TRAIN, &ds));
    tu_own_dataset(ds);
    int32_t c, h, w, k;
    TU_CHECK(sat_dataset_shape(ds, &c, &h, &w, &k));
    assert_int_equal(sat_dataset_size(ds), total);
    assert_int_equal(c, 3);
    assert_int_equal(h, 32);
    assert_int_equal(w, 32);
    assert_int_equal(k, 10);
    for (int64_t e = 0; e < total; e++) {
        assert_int_equal(sat_dataset_labels(ds)[e], e % 10);
        for (int p = 0; p < 3072; p++)
            assert_true(sat_dataset_images(ds)[e * 3072 + p] == (float)cifar_pixel(e, p) / 255.0f);
    }
    tu_release(ds);
    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_CIFAR10, t->dir, SAT_SPLIT_TEST, &ds));
    tu_own_dataset(ds);
    assert_int_equal(sat_dataset_size(ds), 3);
    assert_int_equal(sat_dataset_labels(ds)[2], 102 % 10);
    assert_true(sat_dataset_images(ds)[2 * 3072 + 5] == (float)cifar_pixel(102, 5) / 255.0f);
    tu_release(ds);

    /* size not a multiple of the record, empty file, bad label, missing file */
    write_cifar(t, "test_batch.bin", 0, 3, 100, -1);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_CIFAR10, t->dir, SAT_SPLIT_TEST, &ds), ds,
                SAT_E_FORMAT, "test_batch.bin", cnt);
    write_cifar(t, "test_batch.bin", 0, 0, 0, -1);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_CIFAR10, t->dir, SAT_SPLIT_TEST, &ds), ds,
                SAT_E_FORMAT, "test_batch.bin", cnt);
    write_cifar(t, "test_batch.bin", 0, 3, 0, 1);
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_CIFAR10, t->dir, SAT_SPLIT_TEST, &ds), ds,
                SAT_E_FORMAT, "test_batch.bin: label 10 at index 1 is not below 10", cnt);
    remove_file(t, "data_batch_4.bin");
    EXPECT_FAIL(sat_dataset_load(ctx, SAT_DATA_CIFAR10, t->dir, SAT_SPLIT_TRAIN, &ds), ds,
                SAT_E_IO, "data_batch_4.bin", cnt);
}

/* ---- from_arrays ---- */

/* n examples of 1 x h x w; pixel values encode (example, position) so copies can be
 * traced back; label i % classes. */
static sat_dataset *make_ds(sat_context *ctx, int64_t n, int32_t h, int32_t w, int32_t classes) {
    int64_t per = (int64_t)h * w;
    float *x = tu_alloc((size_t)(n * per) * sizeof(float));
    int32_t *y = tu_alloc((size_t)n * sizeof(int32_t));
    assert_non_null(x);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % classes);
        for (int64_t p = 0; p < per; p++) x[i * per + p] = (float)(i * 1000 + p + 1) / 1e6f;
    }
    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_from_arrays(ctx, x, y, n, 1, h, w, classes, &ds));
    tu_own_dataset(ds);
    tu_free(x);
    tu_free(y);
    return ds;
}

/* The example a copied image came from (its first pixel, without augmentation). */
static int64_t example_of(const float *img) {
    return (int64_t)((double)img[0] * 1e6 - 1.0 + 0.5) / 1000;
}

static void test_from_arrays(void **state) {
    (void)state;
    counter *cnt = tu_alloc(sizeof *cnt);
    sat_context *ctx = counting_context(cnt);
    float x[2 * 3 * 2 * 2];
    int32_t y[2] = {0, 4};
    for (int i = 0; i < 24; i++) x[i] = (float)i / 24.0f;
    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_from_arrays(ctx, x, y, 2, 3, 2, 2, 5, &ds));
    tu_own_dataset(ds);
    x[0] = 0.5f; /* the data set holds a copy */
    assert_true(sat_dataset_images(ds)[0] == 0.0f);
    assert_true(sat_dataset_images(ds)[23] == 23.0f / 24.0f);
    assert_int_equal(sat_dataset_labels(ds)[1], 4);
    int32_t c, k;
    TU_CHECK(sat_dataset_shape(ds, &c, NULL, NULL, &k));
    assert_int_equal(c, 3);
    assert_int_equal(k, 5);
    tu_release(ds);

    EXPECT_FAIL(sat_dataset_from_arrays(ctx, NULL, y, 2, 3, 2, 2, 5, &ds), ds, SAT_E_INVALID_ARG,
                "x", cnt);
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, NULL, 2, 3, 2, 2, 5, &ds), ds, SAT_E_INVALID_ARG,
                "labels", cnt);
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 0, 3, 2, 2, 5, &ds), ds, SAT_E_INVALID_ARG,
                "n", cnt);
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 2, 3, 0, 2, 5, &ds), ds, SAT_E_INVALID_ARG,
                "shape", cnt);
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 2, 3, 2, -2, 5, &ds), ds, SAT_E_INVALID_ARG,
                "shape", cnt);
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 2, 3, 2, 2, 4, &ds), ds, SAT_E_INVALID_ARG,
                "label 4 at index 1", cnt);
    y[0] = -1;
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 2, 3, 2, 2, 5, &ds), ds, SAT_E_INVALID_ARG,
                "label -1", cnt);
    y[0] = 0;
    x[13] = NAN;
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 2, 3, 2, 2, 5, &ds), ds, SAT_E_NUMERIC,
                "pixel 13", cnt);
    x[13] = INFINITY;
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 2, 3, 2, 2, 5, &ds), ds, SAT_E_NUMERIC,
                "pixel 13", cnt);
    EXPECT_FAIL(sat_dataset_from_arrays(ctx, x, y, 1, 65536, 65536, 65536, 5, &ds), ds,
                SAT_E_INVALID_ARG, "too large", cnt);

    /* NULL handles */
    sat_dataset_destroy(NULL);
    assert_string_equal(sat_dataset_last_error(NULL), "");
    assert_true(sat_dataset_size(NULL) < 0);
    assert_int_equal(sat_dataset_shape(NULL, &c, NULL, NULL, NULL), SAT_E_INVALID_ARG);
    assert_null(sat_dataset_images(NULL));
    assert_null(sat_dataset_labels(NULL));
    assert_string_equal(sat_default_data_dir(), "/usr/share/datasets/fashion-mnist");
}

/* ---- shuffle and batch ---- */

/* The source examples (make_ds numbering) of one epoch, read back through batches of
 * `batch`. */
static void epoch_examples(sat_dataset *ds, int64_t batch, int64_t *seen) {
    int32_t h, w, classes;
    TU_CHECK(sat_dataset_shape(ds, NULL, &h, &w, &classes));
    int64_t n = sat_dataset_size(ds), per = (int64_t)h * w, pos = 0;
    float *x = tu_alloc((size_t)(batch * per) * sizeof(float));
    int32_t *y = tu_alloc((size_t)batch * sizeof(int32_t));
    int64_t nb = (n + batch - 1) / batch;
    for (int64_t b = 0; b < nb; b++) {
        int64_t got = -1;
        TU_CHECK(sat_dataset_batch(ds, b, batch, x, y, &got));
        assert_int_equal(got, b == nb - 1 ? n - b * batch : batch);
        for (int64_t k = 0; k < got; k++) {
            int64_t e = example_of(x + k * per);
            assert_int_equal(y[k], e % classes); /* make_ds's labelling */
            seen[pos++] = e;
        }
    }
    assert_int_equal(pos, n);
    tu_free(x);
    tu_free(y);
}

static void assert_permutation(const int64_t *p, int64_t n) {
    char *hit = tu_alloc((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        assert_in_range(p[i], 0, n - 1);
        assert_int_equal(hit[p[i]], 0);
        hit[p[i]] = 1;
    }
    tu_free(hit);
}

static void test_shuffle_and_batch(void **state) {
    (void)state;
    counter *cnt = tu_alloc(sizeof *cnt);
    sat_context *ctx = counting_context(cnt);
    const int64_t n = 103;
    sat_dataset *ds = make_ds(ctx, n, 3, 4, 7);
    int64_t a[103], b[103], c[103];

    /* before any shuffle: the identity */
    epoch_examples(ds, 10, a);
    for (int64_t i = 0; i < n; i++) assert_int_equal(a[i], i);

    TU_CHECK(sat_dataset_shuffle(ds, 42, 0, SAT_AUG_NONE));
    epoch_examples(ds, 10, a);
    assert_permutation(a, n);
    int same = 1;
    for (int64_t i = 0; i < n; i++) same &= a[i] == i;
    assert_false(same);
    /* the same (seed, epoch) gives the same order, whatever the batch size or history */
    TU_CHECK(sat_dataset_shuffle(ds, 42, 1, SAT_AUG_NONE));
    epoch_examples(ds, 1, b);
    assert_permutation(b, n);
    assert_memory_not_equal(a, b, sizeof a);
    TU_CHECK(sat_dataset_shuffle(ds, 42, 0, SAT_AUG_NONE));
    epoch_examples(ds, 200, c);
    assert_memory_equal(a, c, sizeof a);
    sat_dataset *ds2 = make_ds(ctx, n, 3, 4, 7);
    TU_CHECK(sat_dataset_shuffle(ds2, 42, 0, SAT_AUG_NONE));
    epoch_examples(ds2, 7, c);
    assert_memory_equal(a, c, sizeof a);
    TU_CHECK(sat_dataset_shuffle(ds2, 43, 0, SAT_AUG_NONE));
    epoch_examples(ds2, 7, c);
    assert_memory_not_equal(a, c, sizeof a);
    tu_release(ds2);

    /* argument errors leave the outputs alone */
    float x[12 * 10];
    int32_t y[10];
    int64_t got = 77;
    memset(x, 0, sizeof x);
    assert_int_equal(sat_dataset_batch(ds, 11, 10, x, y, &got), SAT_E_INVALID_ARG);
    assert_non_null(strstr(sat_dataset_last_error(ds), "index 11"));
    assert_int_equal(sat_dataset_batch(ds, -1, 10, x, y, &got), SAT_E_INVALID_ARG);
    assert_int_equal(sat_dataset_batch(ds, 0, 0, x, y, &got), SAT_E_INVALID_ARG);
    assert_int_equal(sat_dataset_batch(ds, 0, 10, NULL, y, &got), SAT_E_INVALID_ARG);
    assert_int_equal(got, 77);
    assert_true(x[0] == 0.0f);
    TU_CHECK(sat_dataset_batch(ds, 10, 10, x, y, &got));
    assert_int_equal(got, 3);
    TU_CHECK(sat_dataset_batch(ds, 0, 10, x, y, NULL));
    assert_int_equal(sat_dataset_shuffle(ds, 1, 0, 8u), SAT_E_INVALID_ARG);
    assert_int_equal(sat_dataset_shuffle(ds, 1, -1, 0), SAT_E_INVALID_ARG);
    assert_int_equal(sat_dataset_shuffle(NULL, 1, 0, 0), SAT_E_INVALID_ARG);
    tu_release(ds);
    assert_int_equal(cnt->live, 0);
}

/* All batches of one epoch concatenated. */
static float *epoch_images(sat_dataset *ds, int64_t batch) {
    int32_t c, h, w;
    TU_CHECK(sat_dataset_shape(ds, &c, &h, &w, NULL));
    int64_t n = sat_dataset_size(ds), per = (int64_t)c * h * w;
    float *all = tu_alloc((size_t)(n * per) * sizeof(float));
    int32_t *y = tu_alloc((size_t)batch * sizeof(int32_t));
    for (int64_t b = 0; b * batch < n; b++) {
        int64_t got;
        TU_CHECK(sat_dataset_batch(ds, b, batch, all + b * batch * per, y, &got));
    }
    tu_free(y);
    return all;
}

static void test_augmentation(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    const int64_t n = 64;
    const int32_t h = 6, w = 5;
    const int64_t per = h * w;
    sat_dataset *ds = make_ds(ctx, n, h, w, 10);
    const float *orig = sat_dataset_images(ds);

    /* flip only: each image is itself or its mirror; both happen */
    TU_CHECK(sat_dataset_shuffle(ds, 9, 3, SAT_AUG_FLIP));
    float *out = epoch_images(ds, 8);
    int64_t order[64];
    epoch_examples(ds, 8, order);
    (void)order;
    int flipped = 0, kept = 0;
    for (int64_t k = 0; k < n; k++) {
        const float *o = out + k * per;
        int64_t e = -1;
        /* find the source by the unique value set */
        for (int64_t cand = 0; cand < n && e < 0; cand++) {
            const float *s = orig + cand * per;
            int is_same = 1, is_mirror = 1;
            for (int32_t y = 0; y < h; y++)
                for (int32_t x = 0; x < w; x++) {
                    is_same &= o[y * w + x] == s[y * w + x];
                    is_mirror &= o[y * w + x] == s[y * w + (w - 1 - x)];
                }
            if (is_same || is_mirror) {
                e = cand;
                kept += is_same;
                flipped += is_mirror;
            }
        }
        if (e < 0) fail_msg("batch position %lld is neither an example nor its mirror", (long long)k);
    }
    assert_true(flipped > 10 && kept > 10);
    /* reproducible and independent of the batch size */
    float *out2 = epoch_images(ds, 5);
    assert_memory_equal(out, out2, (size_t)(n * per) * sizeof(float));
    tu_free(out2);
    tu_free(out);

    /* crop: the same shape, each image a shift of its source by at most 4 with zero fill */
    TU_CHECK(sat_dataset_shuffle(ds, 9, 4, SAT_AUG_CROP));
    out = epoch_images(ds, 64);
    TU_CHECK(sat_dataset_shuffle(ds, 9, 4, SAT_AUG_NONE));
    int64_t src[64];
    epoch_examples(ds, 64, src);
    int shifted = 0;
    for (int64_t k = 0; k < n; k++) {
        const float *o = out + k * per, *s = orig + src[k] * per;
        int found = 0;
        for (int dy = -4; dy <= 4 && !found; dy++)
            for (int dx = -4; dx <= 4 && !found; dx++) {
                int ok = 1;
                for (int32_t y = 0; y < h && ok; y++)
                    for (int32_t x = 0; x < w && ok; x++) {
                        int32_t ys = y + dy, xs = x + dx;
                        float want = ys >= 0 && ys < h && xs >= 0 && xs < w ? s[ys * w + xs] : 0.0f;
                        ok = o[y * w + x] == want;
                    }
                if (ok) {
                    found = 1;
                    shifted += dx != 0 || dy != 0;
                }
            }
        if (!found) fail_msg("position %lld is not a padded crop of example %lld", (long long)k,
                             (long long)src[k]);
    }
    assert_true(shifted > n / 2);
    tu_free(out);

    /* both together keep values in [0,1] and the labels of the unaugmented order */
    TU_CHECK(sat_dataset_shuffle(ds, 1, 0, SAT_AUG_CROP | SAT_AUG_FLIP));
    float x[64 * 30];
    int32_t y[64];
    int64_t got;
    TU_CHECK(sat_dataset_batch(ds, 0, 64, x, y, &got));
    assert_int_equal(got, 64);
    for (int64_t i = 0; i < 64 * 30; i++) assert_true(x[i] >= 0.0f && x[i] <= 1.0f);
}

/* A known 1x2x3 image under a flip becomes its mirror. */
static void test_flip_known_image(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    const float img[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    const float mirror[6] = {0.3f, 0.2f, 0.1f, 0.6f, 0.5f, 0.4f};
    const int32_t lab = 0;
    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_from_arrays(ctx, img, &lab, 1, 1, 2, 3, 1, &ds));
    tu_own_dataset(ds);
    int flips = 0, keeps = 0;
    for (int64_t epoch = 0; epoch < 40; epoch++) {
        float x[6];
        int32_t y;
        TU_CHECK(sat_dataset_shuffle(ds, 5, epoch, SAT_AUG_FLIP));
        TU_CHECK(sat_dataset_batch(ds, 0, 4, x, &y, NULL));
        if (memcmp(x, mirror, sizeof x) == 0)
            flips++;
        else if (memcmp(x, img, sizeof x) == 0)
            keeps++;
        else
            fail_msg("epoch %lld: neither the image nor its mirror", (long long)epoch);
    }
    assert_true(flips > 5 && keeps > 5);
}

/* ---- split and truncate ---- */

static void test_split_truncate(void **state) {
    (void)state;
    counter *cnt = tu_alloc(sizeof *cnt);
    sat_context *ctx = counting_context(cnt);
    const int64_t n = 50;
    sat_dataset *ds = make_ds(ctx, n, 2, 2, 10), *held = NULL;
    cnt->base = cnt->live;
    EXPECT_FAIL(sat_dataset_split(ds, 0, 1, &held), held, SAT_E_INVALID_ARG, "", cnt);
    assert_non_null(strstr(sat_dataset_last_error(ds), "count 0"));
    EXPECT_FAIL(sat_dataset_split(ds, n, 1, &held), held, SAT_E_INVALID_ARG, "", cnt);
    assert_int_equal(sat_dataset_size(ds), n);

    TU_CHECK(sat_dataset_split(ds, 12, 77, &held));
    tu_own_dataset(held);
    assert_int_equal(sat_dataset_size(ds), 38);
    assert_int_equal(sat_dataset_size(held), 12);
    int32_t k;
    TU_CHECK(sat_dataset_shape(held, NULL, NULL, NULL, &k));
    assert_int_equal(k, 10);
    char where[50] = {0};
    int64_t prev = -1;
    for (int64_t i = 0; i < 38; i++) {
        int64_t e = example_of(sat_dataset_images(ds) + i * 4);
        assert_true(e > prev); /* the original relative order is kept */
        prev = e;
        assert_int_equal(sat_dataset_labels(ds)[i], e % 10);
        where[e] += 1;
    }
    int contiguous = 1;
    prev = -1;
    for (int64_t i = 0; i < 12; i++) {
        int64_t e = example_of(sat_dataset_images(held) + i * 4);
        if (prev >= 0 && e != prev + 1) contiguous = 0;
        prev = e;
        assert_int_equal(sat_dataset_labels(held)[i], e % 10);
        where[e] += 2;
    }
    for (int i = 0; i < 50; i++) assert_true(where[i] == 1 || where[i] == 2);
    assert_false(contiguous); /* chosen at random, not the tail */

    /* the same seed picks the same examples */
    sat_dataset *ds2 = make_ds(ctx, n, 2, 2, 10), *held2 = NULL;
    TU_CHECK(sat_dataset_split(ds2, 12, 77, &held2));
    tu_own_dataset(held2);
    assert_memory_equal(sat_dataset_images(held), sat_dataset_images(held2), 12 * 4 * sizeof(float));
    tu_release(held2);
    tu_release(ds2);

    /* the remaining set still shuffles and batches over its own examples */
    TU_CHECK(sat_dataset_shuffle(ds, 3, 0, SAT_AUG_NONE));
    int64_t seen[38];
    epoch_examples(ds, 5, seen);
    for (int64_t i = 0; i < 38; i++) assert_int_equal(where[seen[i]], 1);

    /* truncate keeps the first count examples */
    assert_int_equal(sat_dataset_truncate(ds, 0), SAT_E_INVALID_ARG);
    assert_int_equal(sat_dataset_truncate(ds, 39), SAT_E_INVALID_ARG);
    int64_t first[10];
    for (int64_t i = 0; i < 10; i++) first[i] = example_of(sat_dataset_images(ds) + i * 4);
    TU_CHECK(sat_dataset_truncate(ds, 10));
    assert_int_equal(sat_dataset_size(ds), 10);
    epoch_examples(ds, 3, seen);
    for (int64_t i = 0; i < 10; i++)
        for (int64_t j = 0; j < i; j++) assert_true(seen[i] != seen[j]);
    for (int64_t i = 0; i < 10; i++) assert_int_equal(example_of(sat_dataset_images(ds) + i * 4), first[i]);
    int64_t bad = 0;
    for (int64_t i = 0; i < 10; i++) {
        int hit = 0;
        for (int64_t j = 0; j < 10; j++) hit |= seen[i] == first[j];
        bad += !hit;
    }
    assert_int_equal(bad, 0);
    TU_CHECK(sat_dataset_truncate(ds, 10));

    tu_release(held);
    tu_release(ds);
    assert_int_equal(cnt->live, 0);
}

/* ---- the real Fashion-MNIST (Debian dataset-fashion-mnist) ---- */

static void test_fashion_mnist(void **state) {
    (void)state;
    const char *dir = sat_default_data_dir();
    char probe[512];
    snprintf(probe, sizeof probe, "%s/t10k-images-idx3-ubyte.gz", dir);
    if (access(probe, R_OK) != 0)
        fail_msg("%s not found: install the Debian package dataset-fashion-mnist", probe);
    sat_context *ctx = tu_context(1, 0);
    sat_dataset *ds = NULL;
    TU_CHECK(sat_dataset_load(ctx, SAT_DATA_IDX, dir, SAT_SPLIT_TEST, &ds));
    tu_own_dataset(ds);
    int32_t c, h, w, k;
    TU_CHECK(sat_dataset_shape(ds, &c, &h, &w, &k));
    assert_int_equal(sat_dataset_size(ds), 10000);
    assert_int_equal(c, 1);
    assert_int_equal(h, 28);
    assert_int_equal(w, 28);
    assert_int_equal(k, 10);
    int64_t per_class[10] = {0};
    for (int64_t i = 0; i < 10000; i++) {
        int32_t y = sat_dataset_labels(ds)[i];
        assert_in_range(y, 0, 9);
        per_class[y]++;
    }
    for (int i = 0; i < 10; i++) assert_int_equal(per_class[i], 1000);
    const float *x = sat_dataset_images(ds);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < 10000 * 784; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    assert_true(lo == 0.0f && hi == 1.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_plain_and_gzip, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_damaged, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_cifar, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_from_arrays),
        cmocka_unit_test(test_shuffle_and_batch),
        cmocka_unit_test(test_augmentation),
        cmocka_unit_test(test_flip_known_image),
        cmocka_unit_test(test_split_truncate),
        cmocka_unit_test(test_fashion_mnist),
    };
    return tu_run_group("test_dataset", tests, sizeof tests / sizeof tests[0]);
}
