/* cifar.c - the CIFAR-10 binary format: records of 1 label byte + 3072 pixel bytes
 * (3 x 32 x 32, channel-major), 10000 per file in the official release. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_MAX_FILES 5
#define CIFAR_CHUNK 256 /* records per read */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Opens path and returns its record count; the size must be a non-zero multiple of the
 * record size. */
static int32_t open_cifar(const char *path, FILE **out, int64_t *records) {
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sat__fail_tls(SAT_E_IO, "cannot open %s: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(f);
        return sat__fail_tls(SAT_E_IO, "cannot read %s: %s", path, strerror(e));
    }
    if (size == 0 || size % CIFAR_RECORD != 0) {
        fclose(f);
        return sat__fail_tls(SAT_E_FORMAT,
                             "%s: size %ld is not a non-zero multiple of the %d-byte record "
                             "(1 label byte + 3x32x32 pixels)",
                             base_name(path), size, CIFAR_RECORD);
    }
    *out = f;
    *records = size / CIFAR_RECORD;
    return SAT_OK;
}

/* The official archive unpacks into cifar-10-batches-bin/; accept its parent as well. */
static int32_t resolve_dir(const char *dir, const char *probe, char *buf, size_t size) {
    char path[4096];
    int32_t st = sat__data_path(path, sizeof path, dir, probe);
    if (st) return st;
    FILE *f = fopen(path, "rb");
    if (!f) {
        char sub[4096];
        if (sat__data_path(sub, sizeof sub, dir, "cifar-10-batches-bin") == SAT_OK &&
            sat__data_path(path, sizeof path, sub, probe) == SAT_OK &&
            (f = fopen(path, "rb")) != NULL) {
            fclose(f);
            return sat__data_path(buf, size, dir, "cifar-10-batches-bin");
        }
    } else {
        fclose(f);
    }
    if (strlen(dir) + 1 > size) return sat__fail_tls(SAT_E_INVALID_ARG, "directory path too long");
    memcpy(buf, dir, strlen(dir) + 1);
    return SAT_OK;
}

int32_t sat__cifar10_load(sat_context *ctx, const char *dir_in, int32_t split, const char *what,
                          sat_dataset **out) {
    const char *train[CIFAR_MAX_FILES] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
    const char *test[1] = {"test_batch.bin"};
    const char **names = split == SAT_SPLIT_TRAIN ? train : test;
    int nfiles = split == SAT_SPLIT_TRAIN ? CIFAR_MAX_FILES : 1;
    FILE *files[CIFAR_MAX_FILES] = {NULL};
    int64_t records[CIFAR_MAX_FILES] = {0};
    char paths[CIFAR_MAX_FILES][4096];
    char dir[4096];
    unsigned char *chunk = NULL;
    sat_dataset *ds = NULL;
    int64_t total = 0;
    int32_t st;

    if ((st = resolve_dir(dir_in, names[0], dir, sizeof dir))) return st;
    /* Open and size every file first: a missing or mis-sized file fails before any big
     * allocation, and the data set is allocated once at its exact size. */
    for (int i = 0; i < nfiles; i++) {
        if ((st = sat__data_path(paths[i], sizeof paths[i], dir, names[i]))) goto done;
        if ((st = open_cifar(paths[i], &files[i], &records[i]))) goto done;
        total += records[i];
    }
    if (total > SAT_DATA_MAX_EXAMPLES) {
        st = sat__fail_tls(SAT_E_FORMAT, "%s: %lld records in all, more than the %lld supported",
                           dir, (long long)total, (long long)SAT_DATA_MAX_EXAMPLES);
        goto done;
    }
    chunk = sat__alloc(ctx, (size_t)CIFAR_CHUNK * CIFAR_RECORD);
    if (!chunk) {
        st = sat__fail_tls(SAT_E_NOMEM, "CIFAR-10: out of memory");
        goto done;
    }
    if ((st = sat__dataset_alloc(ctx, total, 3, CIFAR_SIDE, CIFAR_SIDE, CIFAR_CLASSES, &ds)))
        goto done;
    sat__progress progress;
    if ((st = sat__progress_begin(&progress, ctx, what, total, NULL))) goto done;

    int64_t k = 0; /* example index in the data set */
    for (int i = 0; i < nfiles; i++) {
        for (int64_t r = 0; r < records[i]; r += CIFAR_CHUNK) {
            size_t want = (size_t)(records[i] - r < CIFAR_CHUNK ? records[i] - r : CIFAR_CHUNK);
            size_t got = fread(chunk, CIFAR_RECORD, want, files[i]);
            if (got < want) {
                if (ferror(files[i]))
                    st = sat__fail_tls(SAT_E_IO, "cannot read %s: %s", paths[i], strerror(errno));
                else
                    st = sat__fail_tls(SAT_E_FORMAT, "%s: truncated at record %lld",
                                       base_name(paths[i]), (long long)(r + (int64_t)got));
                goto done;
            }
            for (size_t j = 0; j < want; j++, k++) {
                const unsigned char *rec = chunk + j * CIFAR_RECORD;
                if (rec[0] >= CIFAR_CLASSES) {
                    st = sat__fail_tls(SAT_E_FORMAT, "%s: label %u at index %lld is not below %d",
                                       base_name(paths[i]), (unsigned)rec[0],
                                       (long long)(r + (int64_t)j), CIFAR_CLASSES);
                    goto done;
                }
                ds->labels[k] = rec[0];
                float *x = ds->images + k * CIFAR_PIXELS;
                for (int p = 0; p < CIFAR_PIXELS; p++) x[p] = (float)rec[1 + p] / 255.0f;
            }
            if ((st = sat__progress_add(&progress, (int64_t)want))) goto done;
        }
    }
    *out = ds;
    ds = NULL;

done:
    for (int i = 0; i < nfiles; i++)
        if (files[i]) fclose(files[i]);
    sat__dealloc(ctx, chunk);
    sat_dataset_destroy(ds);
    return st;
}
