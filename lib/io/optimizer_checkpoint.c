/* optimizer_checkpoint.c - a checkpoint of a model and its optimizer, for hosts that run
 * their own loop (their own loss, sat_model_train_backward + sat_optimizer_step) and have
 * no trainer. The file is a "SATC" checkpoint with the model sections, OPTM and OCTL, and
 * without the trainer's TRNR and LOOP: the two kinds of checkpoint are told apart by those
 * sections, and each load function refuses the other kind with a message naming the right
 * one (loading a trainer checkpoint here would silently drop its RNG position).
 * sat_model_load reads either kind, as it does any checkpoint. */
#include "io/io.h"
#include "train/train.h"

#include <string.h>

int32_t sat_optimizer_checkpoint_save(const sat_optimizer *opt, const sat_model_meta *meta, const char *path) {
    const char *fn = "sat_optimizer_checkpoint_save";
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: opt is NULL", fn);
    char *err = ((sat_optimizer *)opt)->err;
    if (!path || !*path) return sat__fail(err, SAT_E_INVALID_ARG, "%s: path is NULL or empty", fn);
    sat_model_meta mt;
    int32_t st = sat__meta_import(meta, &mt, err);
    if (st) return st;

    sat__wbuf b;
    memset(&b, 0, sizeof b);
    sat__wb_header(&b, "SATC");
    sat__wb_model_sections(&b, opt->model, &mt);
    sat__wb_optimizer_sections(&b, opt);
    sat__wb_finish(&b);
    if (b.failed) {
        sat__wb_free(&b);
        return sat__fail(err, SAT_E_NOMEM, "%s: out of memory for the file image", fn);
    }
    if ((uint64_t)b.len > SAT__MAX_FILE_SIZE) {
        size_t len = b.len;
        sat__wb_free(&b);
        return sat__fail(err, SAT_E_UNSUPPORTED, "%s: the checkpoint needs %zu bytes, over the 4 GiB limit", fn,
                         len);
    }
    st = sat__write_file_atomic(path, b.data, b.len, err);
    sat__wb_free(&b);
    return st;
}

static int32_t decode(const sat__image *img, const char *what, sat__model_image *mi, sat__optimizer_image *oi,
                      char *err) {
    if (sat__image_find(img, SAT__TAG_TRNR) || sat__image_find(img, SAT__TAG_LOOP))
        return sat__fail(err, SAT_E_FORMAT, "%s: a trainer checkpoint (written by sat_checkpoint_save): load it "
                         "with sat_checkpoint_load, which also restores the trainer's random-number position",
                         what);
    int32_t st = sat__model_image_decode(img, what, mi, err);
    if (!st) st = sat__optimizer_image_decode(img, what, oi, err);
    return st;
}

int32_t sat_optimizer_checkpoint_load(sat_optimizer *opt, const char *path, sat_model_meta *meta) {
    const char *fn = "sat_optimizer_checkpoint_load";
    if (!opt) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: opt is NULL", fn);
    if (!path || !*path) return sat__fail(opt->err, SAT_E_INVALID_ARG, "%s: path is NULL or empty", fn);
    if (meta && meta->struct_size < sizeof(uint32_t))
        return sat__fail(opt->err, SAT_E_INVALID_ARG,
                         "%s: meta->struct_size %u is too small (initialise it with sat_model_meta_init)", fn,
                         meta->struct_size);
    sat_model *m = opt->model;
    const sat_context *ctx = m->ctx;
    char err[SAT_ERRMSG_SIZE];
    unsigned char *data = NULL;
    size_t size = 0;
    sat__image img;
    sat__model_image mi;
    sat__optimizer_image oi;
    int32_t st = sat__read_file(ctx, path, &data, &size, err);
    if (!st) st = sat__image_parse(data, size, SAT__KIND_CHECKPOINT, path, &img, err);
    if (!st) st = decode(&img, path, &mi, &oi, err);
    if (!st) st = sat__model_image_match(&mi, m, path, err);
    if (!st) st = sat__optimizer_image_match(&oi, opt, path, err);
    if (!st) st = sat__optimizer_image_reserve(&oi, opt, path, err);
    if (st) {
        sat__dealloc(ctx, data);
        return sat__fail(opt->err, st, "%s", err);
    }
    /* Everything is checked: from here on nothing can fail. */
    sat__rd_floats(m->params, mi.params, m->num_params);
    sat__rd_floats(m->state, mi.state, m->num_state);
    sat__optimizer_image_apply(&oi, opt);
    sat__model_forget_forward(m);
    if (meta) sat__meta_export(&mi.meta, meta);
    sat__dealloc(ctx, data);
    return SAT_OK;
}
