/* fuzz_harness.c - the fuzz targets (see fuzz_harness.h).
 *
 * The targets share one context per process whose allocator hooks refuse any single
 * allocation above 32 MiB and more than 256 MiB live in all. A hostile input that asks
 * for a huge model then exercises the library's out-of-memory paths (which must fail
 * cleanly) instead of exhausting the fuzzing machine. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_harness.h"

#include "sat.h"
#include "graph/graph.h" /* cost estimate of a parsed model before running it */
#include "train/train.h" /* the handles' state a failed checkpoint load must leave alone */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define ALLOC_MAX_ONE ((size_t)32 << 20)
#define ALLOC_MAX_LIVE ((size_t)256 << 20)
#define ALLOC_HEADER 64 /* keeps the caller's block aligned to 64 and stores its size */
/* Per-example work (multiply-adds, roughly) above which a model is built but not run. */
#define RUN_MAX_COST 2000000.0

void sat_fuzz_violation(const char *what, int32_t status, const char *message) {
    fprintf(stderr, "libsat contract violation in %s: status %d (%s), message \"%s\"\n", what,
            (int)status, sat_status_string(status), message ? message : "(null)");
    fflush(stderr);
    abort();
}

/* The status contract of sat.h for a call that has no handle yet (message in TLS) or one
 * whose message is given. */
static void check_status(const char *what, int32_t st, const char *message) {
    if (st == SAT_OK) return;
    if (st > 0 || st < SAT_E_INTERNAL) sat_fuzz_violation(what, st, message);
    if (st == SAT_E_INTERNAL) sat_fuzz_violation(what, st, message); /* a libsat bug by definition */
    if (!message || !*message) sat_fuzz_violation(what, st, message);
}

/* ---- capped allocator ---- */

static size_t live_bytes;

static void *capped_alloc(void *user, size_t size, size_t alignment) {
    (void)user;
    if (alignment > ALLOC_HEADER || size > ALLOC_MAX_ONE || live_bytes + size > ALLOC_MAX_LIVE)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, ALLOC_HEADER, size + ALLOC_HEADER) != 0) return NULL;
    memcpy(p, &size, sizeof size);
    live_bytes += size;
    return (unsigned char *)p + ALLOC_HEADER;
}

static void capped_free(void *user, void *ptr) {
    (void)user;
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - ALLOC_HEADER;
    size_t size;
    memcpy(&size, p, sizeof size);
    live_bytes -= size;
    free(p);
}

static sat_context *fuzz_context(void) {
    static sat_context *ctx;
    if (!ctx) {
        sat_context_opts o;
        sat_context_opts_init(&o, sizeof o);
        o.num_threads = 1;
        o.seed = 1;
        o.alloc_fn = capped_alloc;
        o.dealloc_fn = capped_free;
        if (sat_context_create(&o, &ctx) != SAT_OK) {
            fprintf(stderr, "fuzz: cannot create a context: %s\n", sat_last_error());
            abort();
        }
    }
    return ctx;
}

/* ---- temporary directory for the file-based targets ---- */

static char tmp_dir[256];

static void remove_tmp_dir(void) {
    static const char *const names[] = {"images", "labels", "test_batch.bin", "ckpt.satc", "pristine0.satc",
                                        "pristine1.satc", "pristine2.satc", "pristine3.satc"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

static const char *fuzz_dir(void) {
    if (!tmp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/satfuzz.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_tmp_dir);
    }
    return tmp_dir;
}

static void write_file(const char *path, const uint8_t *data, size_t size, int gz) {
    if (gz) {
        unlink(path);
        gzFile f = gzopen(path, "wb1");
        if (!f) abort();
        if (size && gzwrite(f, data, (unsigned)size) != (int)size) abort();
        gzclose(f);
        return;
    }
    /* A new file, not a truncated one: ext4 flushes a file truncated and rewritten to disk
     * at close (auto_da_alloc), which made each run wait for the disk. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

/* ---- running a model that built ---- */

static double model_cost(const sat_model *m) {
    double cost = 0;
    for (int i = 0; i < m->num_nodes; i++) {
        const sat_node *nd = &m->nodes[i];
        double c = (double)nd->size;
        if (nd->op == SAT_OP_CONV) c += (double)nd->n_w * nd->h * nd->w;
        if (nd->op == SAT_OP_DENSE) c += (double)nd->n_w;
        if (nd->op == SAT_OP_MAXPOOL || nd->op == SAT_OP_AVGPOOL) c += (double)nd->size * nd->k * nd->k;
        cost += c;
    }
    return cost;
}

/* One forward, input gradient and train backward on a batch of 2, checking statuses. */
static void exercise(sat_model *m) {
    int32_t c, h, w, classes;
    if (sat_model_shape(m, &c, &h, &w, &classes) != SAT_OK) sat_fuzz_violation("sat_model_shape", -1, "");
    int64_t in = (int64_t)c * h * w, n = sat_model_max_batch(m) < 2 ? 1 : 2;
    if (model_cost(m) > RUN_MAX_COST || in > (1 << 20) || classes > (1 << 16)) return;
    float *x = malloc(sizeof(float) * (size_t)(n * in));
    float *g = malloc(sizeof(float) * (size_t)(n * in));
    float *logits = malloc(sizeof(float) * (size_t)(n * classes));
    int32_t labels[2] = {0, classes - 1};
    float losses[2], loss;
    int64_t correct;
    if (!x || !g || !logits) abort();
    for (int64_t i = 0; i < n * in; i++) x[i] = (float)((i * 7919) % 256) / 255.0f;
    int32_t st = sat_model_forward(m, x, n, logits);
    check_status("sat_model_forward", st, sat_model_last_error(m));
    st = sat_model_input_gradient(m, x, labels, n, losses, g, NULL);
    check_status("sat_model_input_gradient", st, sat_model_last_error(m));
    st = sat_model_train_backward(m, x, labels, n, 0.1f, &loss, &correct);
    check_status("sat_model_train_backward", st, sat_model_last_error(m));
    free(x);
    free(g);
    free(logits);
}

/* ---- (a) model and checkpoint files ---- */

void sat_fuzz_fix_frame(uint8_t *data, size_t size) {
    if (size < 20) return;
    uint64_t total = size;
    for (int i = 0; i < 8; i++) data[8 + i] = (uint8_t)(total >> (8 * i));
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) data[size - 4 + i] = (uint8_t)(crc >> (8 * i));
}

static void load_once(const uint8_t *data, size_t size) {
    static const uint8_t empty[1];
    sat_context *ctx = fuzz_context();
    sat_model *m = NULL;
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    int32_t st = sat_model_load_buffer(ctx, size ? data : empty, size, &meta, &m);
    check_status("sat_model_load_buffer", st, sat_last_error());
    if (st == SAT_OK) {
        if (!m) sat_fuzz_violation("sat_model_load_buffer: SAT_OK without a model", st, "");
        /* A model that loads must also save and run. */
        void *buf = NULL;
        size_t len = 0;
        st = sat_model_save_buffer(m, &meta, &buf, &len);
        check_status("sat_model_save_buffer", st, sat_model_last_error(m));
        sat_free(buf);
        exercise(m);
        sat_model_destroy(m);
    } else if (m) {
        sat_fuzz_violation("sat_model_load_buffer: failed but set *out", st, sat_last_error());
    }
}

int sat_fuzz_model_load(const uint8_t *data, size_t size) {
    if (size > SAT_FUZZ_MAX_INPUT) size = SAT_FUZZ_MAX_INPUT;
    load_once(data, size);
    if (size >= 20) {
        uint8_t *fixed = malloc(size);
        if (!fixed) abort();
        memcpy(fixed, data, size);
        sat_fuzz_fix_frame(fixed, size);
        load_once(fixed, size);
        free(fixed);
    }
    return 0;
}

/* ---- (b) model spec text ---- */

int sat_fuzz_model_spec(const uint8_t *data, size_t size) {
    if (size > SAT_FUZZ_MAX_SPEC) size = SAT_FUZZ_MAX_SPEC;
    char *spec = malloc(size + 1);
    if (!spec) abort();
    memcpy(spec, data, size);
    spec[size] = '\0';
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.max_batch = 2;
    o.activation = (int32_t)(size % SAT_ACT_COUNT);
    sat_model *m = NULL;
    int32_t st = sat_model_create(fuzz_context(), spec, &o, &m);
    check_status("sat_model_create", st, sat_last_error());
    if (st == SAT_OK) {
        if (!m) sat_fuzz_violation("sat_model_create: SAT_OK without a model", st, "");
        exercise(m);
        sat_model_destroy(m);
    } else if (m) {
        sat_fuzz_violation("sat_model_create: failed but set *out", st, sat_last_error());
    }
    free(spec);
    return 0;
}

/* ---- (c) IDX and CIFAR-10 readers ---- */

static void use_dataset(sat_dataset *ds) {
    int64_t n = sat_dataset_size(ds);
    int32_t c, h, w, classes;
    if (n < 1 || sat_dataset_shape(ds, &c, &h, &w, &classes) != SAT_OK)
        sat_fuzz_violation("sat_dataset_shape", -1, sat_dataset_last_error(ds));
    int64_t in = (int64_t)c * h * w;
    if (in > (1 << 20)) return;
    float *x = malloc(sizeof(float) * (size_t)(2 * in));
    int32_t labels[2];
    int64_t got = 0;
    if (!x) abort();
    int32_t st = sat_dataset_shuffle(ds, 7, 1, SAT_AUG_CROP | SAT_AUG_FLIP);
    check_status("sat_dataset_shuffle", st, sat_dataset_last_error(ds));
    st = sat_dataset_batch(ds, 0, 2, x, labels, &got);
    check_status("sat_dataset_batch", st, sat_dataset_last_error(ds));
    for (int64_t i = 0; st == SAT_OK && i < got; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            sat_fuzz_violation("sat_dataset_batch: label out of range", st, "");
    free(x);
}

int sat_fuzz_dataset(const uint8_t *data, size_t size) {
    if (size > SAT_FUZZ_MAX_INPUT) size = SAT_FUZZ_MAX_INPUT;
    if (size < 3) return 0;
    unsigned mode = data[0];
    size_t rest = size - 3;
    size_t split = ((size_t)data[1] | (size_t)data[2] << 8) % (rest + 1);
    const uint8_t *body = data + 3;
    const char *dir = fuzz_dir();
    char ipath[512], lpath[512];
    sat_dataset *ds = NULL;
    int32_t st;
    if (mode & 4) {
        snprintf(ipath, sizeof ipath, "%s/test_batch.bin", dir);
        write_file(ipath, body, rest, 0);
        st = sat_dataset_load(fuzz_context(), SAT_DATA_CIFAR10, dir, SAT_SPLIT_TEST, &ds);
        check_status("sat_dataset_load (CIFAR-10)", st, sat_last_error());
    } else {
        snprintf(ipath, sizeof ipath, "%s/images", dir);
        snprintf(lpath, sizeof lpath, "%s/labels", dir);
        write_file(ipath, body, split, mode & 1);
        write_file(lpath, body + split, rest - split, mode & 2);
        st = sat_dataset_load_idx(fuzz_context(), ipath, lpath, &ds);
        check_status("sat_dataset_load_idx", st, sat_last_error());
    }
    if (st == SAT_OK) {
        if (!ds) sat_fuzz_violation("dataset load: SAT_OK without a data set", st, "");
        use_dataset(ds);
        sat_dataset_destroy(ds);
    } else if (ds) {
        sat_fuzz_violation("dataset load: failed but set *out", st, sat_last_error());
    }
    return 0;
}

/* ---- (d) trainer and optimizer checkpoints ---- */

/* The spec the corpus checkpoints were saved with (make_corpus.c): a checkpoint whose
 * sections are mutated is matched against real handles and, if it passes, copied into them. */
#define CKPT_SPEC "input 1 4 4\nconv 2 k=3 p=1\nbn\nact\nflatten\ndense 3\n"
#define CKPT_TRAINERS 4 /* {SGD, Adam} x {Free-AT, PGD}: index = 2 * adam + pgd */

typedef struct ckpt_handles {
    sat_trainer *tr;
    char pristine[512]; /* a checkpoint of the handles as made, to undo a load that worked */
} ckpt_handles;

static ckpt_handles *ckpt_handles_get(void) {
    static ckpt_handles h[CKPT_TRAINERS];
    if (h[0].tr) return h;
    sat_context *ctx = fuzz_context();
    for (int i = 0; i < CKPT_TRAINERS; i++) {
        sat_model_opts mo;
        sat_model_opts_init(&mo, sizeof mo);
        mo.max_batch = 2;
        sat_optimizer_opts oo;
        sat_optimizer_opts_init(&oo, sizeof oo);
        oo.kind = i / 2 ? SAT_OPT_ADAM : SAT_OPT_SGD;
        sat_trainer_opts to;
        sat_trainer_opts_init(&to, sizeof to);
        to.method = i % 2 ? SAT_TRAIN_PGD : SAT_TRAIN_FREE;
        sat_model *m = NULL;
        sat_optimizer *opt = NULL;
        snprintf(h[i].pristine, sizeof h[i].pristine, "%s/pristine%d.satc", fuzz_dir(), i);
        if (sat_model_create(ctx, CKPT_SPEC, &mo, &m) != SAT_OK || sat_optimizer_create(m, &oo, &opt) != SAT_OK ||
            sat_trainer_create(m, opt, &to, &h[i].tr) != SAT_OK ||
            sat_checkpoint_save(h[i].tr, NULL, 0, 0, h[i].pristine) != SAT_OK) {
            fprintf(stderr, "fuzz: cannot build the checkpoint handles: %s\n", sat_last_error());
            abort();
        }
    }
    return h;
}

/* Everything a checkpoint load may write, as bytes: a failed load must leave it as it was. */
typedef struct snapshot {
    unsigned char *data;
    size_t len;
} snapshot;

static void snap_add(snapshot *s, const void *p, size_t n) {
    unsigned char *d = realloc(s->data, s->len + n + 1);
    if (!d) abort();
    if (n) memcpy(d + s->len, p, n);
    s->data = d;
    s->len += n;
}

static snapshot snap_take(const sat_trainer *t) {
    const sat_model *m = t->model;
    const sat_optimizer *o = t->opt;
    snapshot s = {NULL, 0};
    snap_add(&s, m->params, sizeof(float) * (size_t)m->num_params);
    snap_add(&s, m->state, sizeof(float) * (size_t)m->num_state);
    snap_add(&s, o->state, sizeof(float) * (size_t)o->state_count);
    snap_add(&s, &o->step, sizeof o->step);
    snap_add(&s, &o->opts.lr, sizeof o->opts.lr);
    /* the scales and the mask as the API reads them: a block allocated all 1 (all 0) by a
     * load that then failed means what no block means */
    float *scales = malloc(sizeof(float) * (size_t)(m->num_params + 1));
    uint8_t *frozen = malloc((size_t)m->num_params + 1);
    if (!scales || !frozen || sat_optimizer_get_lr_scale(o, scales) != SAT_OK ||
        sat_optimizer_get_frozen(o, frozen) != SAT_OK)
        abort();
    snap_add(&s, scales, sizeof(float) * (size_t)m->num_params);
    snap_add(&s, frozen, (size_t)m->num_params);
    free(scales);
    free(frozen);
    snap_add(&s, &t->seed, sizeof t->seed);
    snap_add(&s, &t->rng_counter, sizeof t->rng_counter);
    snap_add(&s, &t->delta_n, sizeof t->delta_n);
    if (t->delta) snap_add(&s, t->delta, sizeof(float) * (size_t)(t->delta_n * m->in_size));
    return s;
}

static void check_unchanged(const char *what, const sat_trainer *t, const snapshot *before) {
    snapshot after = snap_take(t);
    if (after.len != before->len || memcmp(after.data, before->data, before->len) != 0)
        sat_fuzz_violation(what, SAT_OK, "a failed load changed the handles");
    free(after.data);
}

/* After a load that worked: the handles must train, then they go back to how they were made. */
static void train_and_reset(const ckpt_handles *h) {
    float x[2 * 16];
    for (int i = 0; i < 32; i++) x[i] = (float)i / 32.0f;
    const int32_t labels[2] = {0, 2};
    int32_t st = sat_train_step(h->tr, x, labels, 2, NULL);
    check_status("sat_train_step after a checkpoint load", st, sat_trainer_last_error(h->tr));
    st = sat_checkpoint_load(h->tr, h->pristine, NULL, NULL);
    if (st != SAT_OK) sat_fuzz_violation("sat_checkpoint_load of the pristine checkpoint", st, sat_trainer_last_error(h->tr));
}

static void checkpoint_loads(const char *path) {
    ckpt_handles *h = ckpt_handles_get();
    for (int i = 0; i < CKPT_TRAINERS; i++) {
        sat_trainer *t = h[i].tr;
        snapshot before = snap_take(t);
        int64_t epoch = -1, batch = -1;
        int32_t st = sat_checkpoint_load(t, path, &epoch, &batch);
        check_status("sat_checkpoint_load", st, sat_trainer_last_error(t));
        if (st != SAT_OK) {
            check_unchanged("sat_checkpoint_load", t, &before);
        } else {
            if (epoch < 0 || batch < 0) sat_fuzz_violation("sat_checkpoint_load: negative loop position", st, "");
            train_and_reset(&h[i]);
        }
        /* The PGD trainers' optimizers, one of each kind, also take model-and-optimizer checkpoints. */
        if (i % 2) {
            sat_model_meta meta;
            sat_model_meta_init(&meta, sizeof meta);
            st = sat_optimizer_checkpoint_load(t->opt, path, &meta);
            check_status("sat_optimizer_checkpoint_load", st, sat_optimizer_last_error(t->opt));
            if (st != SAT_OK)
                check_unchanged("sat_optimizer_checkpoint_load", t, &before);
            else
                train_and_reset(&h[i]);
        }
        free(before.data);
    }
}

int sat_fuzz_checkpoint(const uint8_t *data, size_t size) {
    if (size > SAT_FUZZ_MAX_INPUT) size = SAT_FUZZ_MAX_INPUT;
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt.satc", fuzz_dir());
    write_file(path, data, size, 0);
    checkpoint_loads(path);
    if (size >= 20) {
        uint8_t *fixed = malloc(size);
        if (!fixed) abort();
        memcpy(fixed, data, size);
        sat_fuzz_fix_frame(fixed, size);
        write_file(path, fixed, size, 0);
        checkpoint_loads(path);
        free(fixed);
    }
    return 0;
}

/* ---- (e) ONNX import ---- */

int sat_fuzz_onnx(const uint8_t *data, size_t size) {
    if (size > SAT_FUZZ_MAX_INPUT) size = SAT_FUZZ_MAX_INPUT;
    sat_onnx_import_opts o;
    sat_onnx_import_opts_init(&o, sizeof o);
    o.max_batch = 2;
    /* Half the runs swap ReLU for another kind, so the swap's paths are fuzzed too. */
    if (size % 2) o.replace_act_from = SAT_ACT_RELU, o.replace_act_to = (int32_t)(size / 2 % SAT_ACT_COUNT);
    sat_model *m = NULL;
    int32_t st = sat_model_load_onnx_buffer(fuzz_context(), data, size, &o, &m);
    check_status("sat_model_load_onnx_buffer", st, sat_last_error());
    if (st == SAT_OK) {
        if (!m) sat_fuzz_violation("sat_model_load_onnx_buffer: SAT_OK without a model", st, "");
        exercise(m);
        sat_model_destroy(m);
    } else if (m) {
        sat_fuzz_violation("sat_model_load_onnx_buffer: failed but set *out", st, sat_last_error());
    }
    return 0;
}

sat_fuzz_target sat_fuzz_find_target(const char *name) {
    if (strcmp(name, "model_load") == 0) return sat_fuzz_model_load;
    if (strcmp(name, "model_spec") == 0) return sat_fuzz_model_spec;
    if (strcmp(name, "dataset") == 0) return sat_fuzz_dataset;
    if (strcmp(name, "checkpoint") == 0) return sat_fuzz_checkpoint;
    if (strcmp(name, "onnx") == 0) return sat_fuzz_onnx;
    return NULL;
}
