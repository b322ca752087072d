/* dataset.h - the data set handle shared by the readers (idx.c, cifar.c) and the
 * batching code (dataset.c). */
#ifndef SAT_DATA_DATASET_H
#define SAT_DATA_DATASET_H

#include "../core/core.h"

/* Upper bounds a file header may claim; checked before anything is allocated. */
#define SAT_DATA_MAX_EXAMPLES 100000000LL      /* 1e8 */
#define SAT_DATA_MAX_SIDE 4096
#define SAT_DATA_MAX_PIXELS (1LL << 31)        /* values over the whole set (8 GiB of floats) */

struct sat_dataset {
    sat_context *ctx;
    int64_t n;
    int32_t c, h, w, classes;
    float *images;      /* n*c*h*w, NCHW, [0,1] */
    int32_t *labels;    /* n */
    int64_t *order;     /* the current epoch's permutation of 0..n-1 */
    uint32_t aug;       /* SAT_AUG_* of the current epoch */
    int32_t shuffled;   /* 0: order is the identity (no shuffle yet) */
    uint64_t seed;
    int64_t epoch;
    char err[SAT_ERRMSG_SIZE];
};

/* A data set with uninitialised images/labels and the identity order. On failure sets the
 * thread-local message and returns SAT_E_NOMEM (or SAT_E_INVALID_ARG for an impossible
 * size). */
int32_t sat__dataset_alloc(sat_context *ctx, int64_t n, int32_t c, int32_t h, int32_t w,
                           int32_t classes, sat_dataset **out);

/* Readers: on failure *out is untouched, the thread-local message says why. They report
 * progress (one unit per example read) as the public call `what`. */
int32_t sat__idx_load(sat_context *ctx, const char *images_path, const char *labels_path,
                      const char *what, sat_dataset **out);
int32_t sat__cifar10_load(sat_context *ctx, const char *dir, int32_t split, const char *what,
                          sat_dataset **out);

/* "dir/name" into buf (size bytes); SAT_E_INVALID_ARG (thread-local) if it does not fit. */
int32_t sat__data_path(char *buf, size_t size, const char *dir, const char *name);

#endif
