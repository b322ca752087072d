/* checkpoint.c - a model file plus what a training run needs to continue bit-exactly:
 * the optimizer's state block, step count and runtime settings (optimizer_image.c), the
 * trainer's RNG key and counter (and the Free-AT perturbation), and the host's loop
 * position. A model-and-optimizer checkpoint (optimizer_checkpoint.c) lacks the last two
 * sections and is refused here with a message naming its own load function.
 *
 * Loading restores into existing handles. The whole file is read and checked against the
 * handles (spec text, counts, optimizer kind, perturbation size) before the first value is
 * copied, so a failed load changes nothing. */
#include "io/io.h"
#include "train/train.h"

#include <string.h>

#define TRNR_FIXED 32u /* seed, counter, delta_n, count */

int32_t sat_checkpoint_save(const sat_trainer *trainer, const sat_model_meta *meta, int64_t epoch,
                            int64_t batch_index, const char *path) {
    if (!trainer) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_checkpoint_save: trainer is NULL");
    char *err = ((sat_trainer *)trainer)->err;
    if (!path || !*path)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_checkpoint_save: path is NULL or empty");
    if (epoch < 0 || batch_index < 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_checkpoint_save: epoch and batch_index must be >= 0");
    sat_model_meta mt;
    int32_t st = sat__meta_import(meta, &mt, err);
    if (st) return st;
    const sat_model *m = trainer->model;
    const sat_optimizer *opt = trainer->opt;

    sat__wbuf b;
    memset(&b, 0, sizeof b);
    sat__wb_header(&b, "SATC");
    sat__wb_model_sections(&b, m, &mt);

    sat__wb_optimizer_sections(&b, opt);

    int64_t delta_count = trainer->delta ? trainer->delta_n * m->in_size : 0;
    size_t mark = sat__wb_section_begin(&b, SAT__TAG_TRNR);
    sat__wb_u64(&b, trainer->seed);
    sat__wb_u64(&b, (uint64_t)trainer->rng_counter);
    sat__wb_u64(&b, (uint64_t)(trainer->delta ? trainer->delta_n : 0));
    sat__wb_u64(&b, (uint64_t)delta_count);
    sat__wb_floats(&b, trainer->delta, delta_count);
    sat__wb_section_end(&b, mark);

    mark = sat__wb_section_begin(&b, SAT__TAG_LOOP);
    sat__wb_u64(&b, (uint64_t)epoch);
    sat__wb_u64(&b, (uint64_t)batch_index);
    sat__wb_section_end(&b, mark);
    sat__wb_finish(&b);

    if (b.failed) {
        sat__wb_free(&b);
        return sat__fail(err, SAT_E_NOMEM, "sat_checkpoint_save: out of memory for the file image");
    }
    if ((uint64_t)b.len > SAT__MAX_FILE_SIZE) {
        size_t len = b.len;
        sat__wb_free(&b);
        return sat__fail(err, SAT_E_UNSUPPORTED,
                         "sat_checkpoint_save: the checkpoint needs %zu bytes, over the 4 GiB limit", len);
    }
    st = sat__write_file_atomic(path, b.data, b.len, err);
    sat__wb_free(&b);
    return st;
}

/* Everything a checkpoint holds beyond the model, pointing into the file's bytes. */
typedef struct ckpt_image {
    sat__model_image model;
    sat__optimizer_image opt;
    uint64_t seed;
    int64_t rng_counter, delta_n, delta_count;
    const unsigned char *delta;
    int64_t epoch, batch_index;
} ckpt_image;

static int32_t ckpt_decode(const sat__image *img, const char *what, ckpt_image *ci, char *err) {
    int32_t st = sat__model_image_decode(img, what, &ci->model, err);
    if (st) return st;
    st = sat__optimizer_image_decode(img, what, &ci->opt, err);
    if (st) return st;
    const sat__section *trnr = sat__image_find(img, SAT__TAG_TRNR);
    const sat__section *loop = sat__image_find(img, SAT__TAG_LOOP);
    if (!trnr && !loop)
        return sat__fail(err, SAT_E_FORMAT, "%s: a model-and-optimizer checkpoint without trainer state "
                         "(written by sat_optimizer_checkpoint_save): load it with sat_optimizer_checkpoint_load",
                         what);
    if (!trnr || !loop)
        return sat__fail(err, SAT_E_FORMAT, "%s: the %s section is missing", what,
                         !trnr ? "trainer" : "loop position");

    st = sat__tail_block(trnr, TRNR_FIXED, "trainer", what, &ci->delta_count, &ci->delta, err);
    if (st) return st;
    ci->seed = sat__rd_u64(trnr->data);
    ci->rng_counter = (int64_t)sat__rd_u64(trnr->data + 8);
    ci->delta_n = (int64_t)sat__rd_u64(trnr->data + 16);
    if (ci->rng_counter < 0 || ci->delta_n < 0)
        return sat__fail(err, SAT_E_FORMAT, "%s: negative trainer RNG counter or batch size", what);

    if (loop->len != SAT__LOOP_SIZE)
        return sat__fail(err, SAT_E_FORMAT, "%s: loop section is %llu bytes, expected %u", what,
                         (unsigned long long)loop->len, SAT__LOOP_SIZE);
    ci->epoch = (int64_t)sat__rd_u64(loop->data);
    ci->batch_index = (int64_t)sat__rd_u64(loop->data + 8);
    if (ci->epoch < 0 || ci->batch_index < 0)
        return sat__fail(err, SAT_E_FORMAT, "%s: negative loop position", what);
    return SAT_OK;
}

/* Does the checkpoint fit these handles? */
static int32_t ckpt_match(const sat_trainer *t, const ckpt_image *ci, const char *what, char *err) {
    const sat_model *m = t->model;
    const sat_optimizer *opt = t->opt;
    int32_t st = sat__model_image_match(&ci->model, m, what, err);
    if (st) return st;
    st = sat__optimizer_image_match(&ci->opt, opt, what, err);
    if (st) return st;
    if (ci->delta_n > 0) {
        if (!t->delta)
            return sat__fail(err, SAT_E_INVALID_ARG,
                             "%s: the checkpoint holds a Free-AT perturbation; this trainer is not Free-AT", what);
        if (ci->delta_n > m->max_batch || ci->delta_count != ci->delta_n * m->in_size)
            return sat__fail(err, SAT_E_INVALID_ARG,
                             "%s: the Free-AT perturbation (%lld examples, %lld values) does not fit the model",
                             what, (long long)ci->delta_n, (long long)ci->delta_count);
    } else if (ci->delta_count != 0) {
        return sat__fail(err, SAT_E_FORMAT, "%s: perturbation values without a batch size", what);
    }
    return SAT_OK;
}

int32_t sat_checkpoint_load(sat_trainer *trainer, const char *path, int64_t *epoch, int64_t *batch_index) {
    if (!trainer) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_checkpoint_load: trainer is NULL");
    if (!path || !*path)
        return sat__fail(trainer->err, SAT_E_INVALID_ARG, "sat_checkpoint_load: path is NULL or empty");
    sat_model *m = trainer->model;
    sat_optimizer *opt = trainer->opt;
    sat_context *ctx = m->ctx;
    char err[SAT_ERRMSG_SIZE];
    unsigned char *data = NULL;
    size_t size = 0;
    int32_t st = sat__read_file(ctx, path, &data, &size, err);
    sat__image img;
    ckpt_image ci;
    if (!st) st = sat__image_parse(data, size, SAT__KIND_CHECKPOINT, path, &img, err);
    if (!st) st = ckpt_decode(&img, path, &ci, err);
    if (!st) st = ckpt_match(trainer, &ci, path, err);
    if (!st) st = sat__optimizer_image_reserve(&ci.opt, opt, path, err);
    if (st) {
        sat__dealloc(ctx, data);
        return sat__fail(trainer->err, st, "%s", err);
    }
    /* Everything is checked: from here on nothing can fail. */
    sat__rd_floats(m->params, ci.model.params, m->num_params);
    sat__rd_floats(m->state, ci.model.state, m->num_state);
    sat__optimizer_image_apply(&ci.opt, opt);
    trainer->seed = ci.seed;
    trainer->opts.seed = ci.seed;
    trainer->rng_counter = ci.rng_counter;
    if (trainer->delta) {
        sat__rd_floats(trainer->delta, ci.delta, ci.delta_count);
        trainer->delta_n = ci.delta_n;
    }
    sat__model_forget_forward(m);
    if (epoch) *epoch = ci.epoch;
    if (batch_index) *batch_index = ci.batch_index;
    sat__dealloc(ctx, data);
    return SAT_OK;
}
