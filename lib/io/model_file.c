/* model_file.c - the public calls that save and load models, to files and to memory. */
#include "io/io.h"

#include <string.h>

/* The whole file image of a model; status and message into err. */
static int32_t model_image(const sat_model *m, const sat_model_meta *meta, const char *fn,
                           sat__wbuf *b, char *err) {
    sat_model_meta mt;
    int32_t st = sat__meta_import(meta, &mt, err);
    if (st) return st;
    memset(b, 0, sizeof *b);
    sat__wb_header(b, "SATM");
    sat__wb_model_sections(b, m, &mt);
    sat__wb_finish(b);
    if (b->failed) {
        sat__wb_free(b);
        return sat__fail(err, SAT_E_NOMEM, "%s: out of memory for the file image", fn);
    }
    if ((uint64_t)b->len > SAT__MAX_FILE_SIZE) {
        size_t len = b->len;
        sat__wb_free(b);
        return sat__fail(err, SAT_E_UNSUPPORTED, "%s: the model needs %zu bytes, over the 4 GiB limit",
                         fn, len);
    }
    return SAT_OK;
}

int32_t sat_model_save(const sat_model *model, const sat_model_meta *meta, const char *path) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_save: model is NULL");
    /* The message buffer is the one thing a failed call may change on the handle. */
    char *err = ((sat_model *)model)->err;
    if (!path || !*path)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_save: path is NULL or empty");
    sat__wbuf b;
    int32_t st = model_image(model, meta, "sat_model_save", &b, err);
    if (st) return st;
    st = sat__write_file_atomic(path, b.data, b.len, err);
    sat__wb_free(&b);
    return st;
}

int32_t sat_model_save_buffer(const sat_model *model, const sat_model_meta *meta, void **buf_out,
                              size_t *size_out) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_save_buffer: model is NULL");
    char *err = ((sat_model *)model)->err;
    if (!buf_out || !size_out)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_save_buffer: buf_out and size_out must not be NULL");
    sat__wbuf b;
    int32_t st = model_image(model, meta, "sat_model_save_buffer", &b, err);
    if (st) return st;
    /* The writer allocates with malloc, which is what sat_free releases. */
    *buf_out = b.data;
    *size_out = b.len;
    return SAT_OK;
}

static int32_t load_image(sat_context *ctx, const void *data, size_t size, const char *what,
                          sat_model_meta *meta, sat_model **out) {
    char err[SAT_ERRMSG_SIZE];
    sat__image img;
    sat__model_image mi;
    int32_t st = sat__image_parse(data, size, SAT__KIND_MODEL | SAT__KIND_CHECKPOINT, what, &img, err);
    if (!st) st = sat__model_image_decode(&img, what, &mi, err);
    sat_model *m = NULL;
    if (!st) st = sat__model_from_image(ctx, &mi, what, &m, err);
    if (st) return sat__fail_tls(st, "%s", err);
    if (meta) sat__meta_export(&mi.meta, meta);
    *out = m;
    return SAT_OK;
}

static int32_t check_load_args(const char *fn, sat_context *ctx, const void *src,
                               sat_model_meta *meta, sat_model **out) {
    if (!out) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx || !src) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: ctx and the source must not be NULL", fn);
    if (meta && meta->struct_size < sizeof(uint32_t))
        return sat__fail_tls(SAT_E_INVALID_ARG,
                             "%s: meta->struct_size %u is too small (initialise it with "
                             "sat_model_meta_init)", fn, meta->struct_size);
    return SAT_OK;
}

int32_t sat_model_load(sat_context *ctx, const char *path, sat_model_meta *meta, sat_model **out) {
    sat__clear_tls_error();
    int32_t st = check_load_args("sat_model_load", ctx, path, meta, out);
    if (st) return st;
    if (!*path) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_load: path is empty");
    char err[SAT_ERRMSG_SIZE];
    unsigned char *data = NULL;
    size_t size = 0;
    st = sat__read_file(ctx, path, &data, &size, err);
    if (st) return sat__fail_tls(st, "%s", err);
    st = load_image(ctx, data, size, path, meta, out);
    sat__dealloc(ctx, data);
    return st;
}

int32_t sat_model_load_buffer(sat_context *ctx, const void *buf, size_t size, sat_model_meta *meta,
                              sat_model **out) {
    sat__clear_tls_error();
    int32_t st = check_load_args("sat_model_load_buffer", ctx, buf, meta, out);
    if (st) return st;
    if ((uint64_t)size > SAT__MAX_FILE_SIZE)
        return sat__fail_tls(SAT_E_FORMAT, "model buffer: %zu bytes is over the 4 GiB limit", size);
    return load_image(ctx, buf, size, "model buffer", meta, out);
}
