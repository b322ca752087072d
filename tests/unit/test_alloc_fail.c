/* test_alloc_fail.c - out of memory at every allocation of every public call that allocates.
 *
 * The context's allocator hooks refuse the k-th allocation of a call, for k = 1, 2, ...
 * until the call makes fewer than k allocations and succeeds. Each refused run must return
 * SAT_E_NOMEM with a message, hold no more blocks afterwards than before (the hook counts
 * live blocks, so a leak fails here and not only under LeakSanitizer), and leave the
 * handles it was given bit for bit as they were and usable (a training step runs after
 * every refused call). The program prints the allocations swept per call and the number
 * of distinct allocation sites (call stacks three return addresses deep) they hit. */
#include "testutil.h"
#include "testutil_onnx.h"

#include <execinfo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const SPEC = "input 1 6 6\nconv 3 k=3 p=1\nbn\nact\nflatten\ndense 4\n";
enum { N = 6, TRAIN_N = 4, PIX = 36, CLASSES = 4, MAX_SITES = 4096 };

/* ---- the allocator: refuses allocation number fail_at of the armed call ---- */

typedef struct site {
    void *frames[3];
} site;

typedef struct fault_alloc {
    int64_t count;   /* allocations since armed */
    int64_t fail_at; /* 0: refuse nothing */
    int64_t live;    /* blocks held */
    int refused;     /* the armed allocation came and was refused */
    int armed;
    site sites[MAX_SITES]; /* distinct call stacks of refused allocations */
    int num_sites;
} fault_alloc;

static void record_site(fault_alloc *f) {
    void *bt[6] = {0};
    int depth = backtrace(bt, 6);
    site s = {{0}};
    /* bt[0] is this function, bt[1] the hook, bt[2] the library's allocation helper */
    for (int i = 0; i < 3 && 3 + i < depth; i++) s.frames[i] = bt[3 + i];
    for (int i = 0; i < f->num_sites; i++)
        if (!memcmp(&f->sites[i], &s, sizeof s)) return;
    if (f->num_sites < MAX_SITES) f->sites[f->num_sites++] = s;
}

static void *fa_alloc(void *user, size_t size, size_t align) {
    fault_alloc *f = user;
    if (f->armed && ++f->count == f->fail_at) {
        f->refused = 1;
        record_site(f);
        return NULL;
    }
    void *p = aligned_alloc(align, (size + align - 1) / align * align);
    if (p) f->live++;
    return p;
}

static void fa_free(void *user, void *p) {
    ((fault_alloc *)user)->live--;
    free(p);
}

/* ---- the handles every call is given ---- */

typedef struct fixture {
    fault_alloc *fa;
    sat_context *ctx;
    sat_model *model;
    sat_optimizer *opt;
    sat_trainer *trainer;
    sat_dataset *ds;
    sat_callback_model *cb;
    float *x, *x_adv, *x_dup;
    int32_t labels[N], targets[N], outcome[N];
    char dir[64], model_path[96], ckpt_path[96], images[96], labels_path[96], cifar_path[96];
    char opt_ckpt_path[96], onnx_path[96];
    void *model_buf;
    size_t model_buf_size;
    sat_model *made;     /* a fresh model prepared for calls on a model's first use */
    sat_trainer *made_trainer;
} fixture;

static fixture F;

/* Bytes of every handle the calls are given, to compare before and after. */
static void take(tu_snapshot *s) { tu_snapshot_take(s, F.model, F.opt, F.ds); }

static void assert_unchanged(const tu_snapshot *a, const char *call, int64_t k) {
    tu_snapshot b;
    take(&b);
    if (!tu_snapshot_same(a, &b))
        fail_msg("%s: allocation %lld refused, yet a handle it was given changed", call,
                 (long long)k);
    tu_snapshot_drop(&b);
}

/* ---- the calls ---- */

typedef struct call {
    const char *name;
    void (*prepare)(void);      /* run with the allocator disarmed, before each attempt */
    int32_t (*run)(void);       /* the call; what it makes is destroyed by cleanup */
    const char *(*message)(void);
    void (*cleanup)(void);      /* after a successful run */
} call;

static sat_context *made_ctx;
static sat_model *made_model;
static sat_optimizer *made_opt;
static sat_trainer *made_tr;
static sat_dataset *made_ds, *held_ds;
static sat_exec *made_exec;
static sat_callback_model *made_cb;
static void *made_buf;
static int32_t trainer_method;
static int32_t attack_method;

static const char *tls_msg(void) { return sat_last_error(); }
static const char *ctx_msg(void) { return sat_context_last_error(F.ctx); }
static const char *model_msg(void) { return sat_model_last_error(F.model); }
static const char *made_msg(void) { return sat_model_last_error(F.made); }
static const char *ds_msg(void) { return sat_dataset_last_error(F.ds); }
static const char *trainer_msg(void) { return sat_trainer_last_error(F.trainer); }
static const char *made_trainer_msg(void) { return sat_trainer_last_error(F.made_trainer); }
static const char *cb_msg(void) { return sat_callback_model_last_error(F.cb); }
static const char *opt_msg(void) { return sat_optimizer_last_error(F.opt); }

static void cleanup_made(void) {
    sat_trainer_destroy(made_tr);
    sat_optimizer_destroy(made_opt);
    sat_exec_destroy(made_exec);
    sat_model_destroy(made_model);
    sat_callback_model_destroy(made_cb);
    sat_dataset_destroy(held_ds);
    sat_dataset_destroy(made_ds);
    sat_context_destroy(made_ctx);
    sat_free(made_buf);
    made_tr = NULL, made_opt = NULL, made_exec = NULL, made_model = NULL, made_cb = NULL;
    held_ds = NULL, made_ds = NULL, made_ctx = NULL, made_buf = NULL;
}

static void drop_fresh(void) {
    sat_trainer_destroy(F.made_trainer);
    sat_model_destroy(F.made);
    F.made_trainer = NULL, F.made = NULL;
}
static void prepare_fresh_model(void) {
    drop_fresh();
    TU_CHECK(sat_model_clone(F.model, &F.made));
}
static void prepare_fresh_trainer(void) {
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.method = trainer_method;
    o.steps = 2;
    drop_fresh();
    TU_CHECK(sat_trainer_create(F.model, F.opt, &o, &F.made_trainer));
}

static int32_t run_context_create(void) {
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = 3;
    o.alloc_fn = fa_alloc;
    o.dealloc_fn = fa_free;
    o.alloc_user = F.fa;
    return sat_context_create(&o, &made_ctx);
}
static int32_t run_set_threads(void) { return sat_context_set_num_threads(F.ctx, 4); }
static void undo_set_threads(void) { TU_CHECK(sat_context_set_num_threads(F.ctx, 2)); }
static int32_t run_model_create(void) { return sat_model_create(F.ctx, SPEC, NULL, &made_model); }
static int32_t run_model_create_resnet(void) {
    char *spec = NULL;
    int32_t st = sat_preset_spec("resnet20", 1, 8, 8, CLASSES, NULL, NULL, &spec);
    if (st) return st;
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.max_batch = 4;
    st = sat_model_create(F.ctx, spec, &o, &made_model);
    sat_free(spec);
    return st;
}
static int32_t run_clone(void) { return sat_model_clone(F.model, &made_model); }
static int32_t run_first_forward(void) {
    float logits[N * CLASSES];
    return sat_model_forward(F.made, F.x, N, logits);
}
static int32_t run_first_input_gradient(void) {
    return sat_model_input_gradient(F.made, F.x, F.labels, TRAIN_N, NULL, F.x_adv, NULL);
}
static int32_t run_model_exec(void) {
    return sat_model_exec(F.made) ? SAT_OK : SAT_E_NOMEM;
}
static int32_t run_exec_create(void) { return sat_exec_create(F.model, NULL, &made_exec); }
static int32_t run_exec_create_inference(void) {
    sat_exec_opts o;
    sat_exec_opts_init(&o, sizeof o);
    o.kind = SAT_EXEC_INFERENCE;
    return sat_exec_create(F.model, &o, &made_exec);
}
static int32_t run_save_buffer(void) {
    size_t size = 0;
    return sat_model_save_buffer(F.model, NULL, &made_buf, &size);
}
static int32_t run_load_buffer(void) {
    return sat_model_load_buffer(F.ctx, F.model_buf, F.model_buf_size, NULL, &made_model);
}
static int32_t run_save(void) { return sat_model_save(F.model, NULL, F.model_path); }
static int32_t run_save_onnx_buffer(void) {
    size_t size = 0;
    return sat_model_save_onnx_buffer(F.model, NULL, &made_buf, &size);
}
static int32_t run_save_onnx(void) { return sat_model_save_onnx(F.model, F.onnx_path, NULL); }
static int32_t run_load(void) { return sat_model_load(F.ctx, F.model_path, NULL, &made_model); }
static int32_t run_from_arrays(void) {
    return sat_dataset_from_arrays(F.ctx, F.x, F.labels, N, 1, 6, 6, CLASSES, &made_ds);
}
static int32_t run_load_idx(void) {
    return sat_dataset_load_idx(F.ctx, F.images, F.labels_path, &made_ds);
}
static int32_t run_dataset_load(void) {
    return sat_dataset_load(F.ctx, SAT_DATA_IDX, F.dir, SAT_SPLIT_TEST, &made_ds);
}
static int32_t run_cifar_load(void) {
    return sat_dataset_load(F.ctx, SAT_DATA_CIFAR10, F.dir, SAT_SPLIT_TEST, &made_ds);
}
/* A model whose execution was made for 2 threads, on a context that now has 4: its next
 * pass enlarges the per-thread workspace. */
static void prepare_more_threads(void) {
    TU_CHECK(sat_context_set_num_threads(F.ctx, 2));
    prepare_fresh_model();
    float logits[N * CLASSES];
    TU_CHECK(sat_model_forward(F.made, F.x, N, logits));
    TU_CHECK(sat_context_set_num_threads(F.ctx, 4));
}
static int32_t run_forward_more_threads(void) {
    float logits[N * CLASSES];
    return sat_model_forward(F.made, F.x, N, logits);
}
static void back_to_two_threads(void) { TU_CHECK(sat_context_set_num_threads(F.ctx, 2)); }
static int32_t run_split(void) { return sat_dataset_split(F.ds, 2, 7, &held_ds); }
static void undo_split(void) {
    /* the split moved two examples out of F.ds: rebuild it as it was */
    sat_dataset_destroy(F.ds);
    F.ds = NULL;
    TU_CHECK(sat_dataset_from_arrays(F.ctx, F.x, F.labels, N, 1, 6, 6, CLASSES, &F.ds));
    cleanup_made();
}
static int32_t run_shuffle(void) { return sat_dataset_shuffle(F.ds, 3, 1, SAT_AUG_CROP | SAT_AUG_FLIP); }
static void undo_shuffle(void) { undo_split(); }
static int32_t run_optimizer_create(void) {
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.kind = SAT_OPT_ADAM;
    return sat_optimizer_create(F.model, &o, &made_opt);
}
/* An optimizer no host has tuned holds no learning-rate scales or freeze mask: the first
 * call that needs one allocates it, and a checkpoint with them allocates them on loading. */
static void prepare_untuned_opt(void) {
    cleanup_made();
    TU_CHECK(sat_optimizer_create(F.model, NULL, &made_opt));
}
static const char *made_opt_msg(void) { return sat_optimizer_last_error(made_opt); }
static int32_t run_first_lr_scale(void) { return sat_optimizer_set_lr_scale(made_opt, 0, 5, 0.5f); }
static int32_t run_first_freeze(void) {
    static uint8_t mask[4096]; /* zero but one */
    assert_true(sat_model_param_count(F.model) <= (int64_t)sizeof mask);
    mask[3] = 1;
    return sat_optimizer_set_frozen(made_opt, mask);
}
static int32_t run_load_scales_untuned(void) { return sat_optimizer_checkpoint_load(made_opt, F.opt_ckpt_path, NULL); }
static int32_t run_trainer_create(void) {
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.method = trainer_method;
    return sat_trainer_create(F.model, F.opt, &o, &made_tr);
}
static int32_t run_first_train_step(void) {
    return sat_train_step(F.made_trainer, F.x, F.labels, TRAIN_N, NULL);
}
static int32_t run_first_train_compute(void) {
    return sat_train_compute(F.made_trainer, F.x, F.labels, TRAIN_N, NULL);
}
static int32_t run_attack(void) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.method = attack_method;
    o.steps = 3;
    o.targeted = attack_method == SAT_ATTACK_APGD_DLR;
    if (attack_method == SAT_ATTACK_SQUARE) o.steps = 20;
    float loss[16], acc[16];
    sat_attack_trace tr = {sizeof tr, 16, 0, 0, loss, acc};
    return sat_attack(F.model, &o, F.x, F.labels, o.targeted ? F.targets : NULL, N, F.x_adv, &tr);
}
static int32_t run_evaluate(void) {
    sat_eval_opts o;
    sat_eval_opts_init(&o, sizeof o);
    o.apgd = 1;
    o.apgd_steps = 3;
    o.apgd_targets = 2;
    o.batch = 4;
    sat_eval_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    return sat_evaluate(F.model, &o, F.x, F.labels, N, &r);
}
static int32_t run_autoattack(void) {
    sat_autoattack_opts o;
    sat_autoattack_opts_init(&o, sizeof o);
    o.eps = 0.02f;
    sat_autoattack_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    return sat_autoattack(F.model, &o, F.x, F.labels, N, F.x_adv, F.outcome, &r);
}

/* The callback model is the fixture's model, run through its public calls. */
static int32_t cb_logits(void *user, const float *x, int64_t n, float *logits) {
    (void)user;
    return sat_model_forward(F.model, x, n, logits);
}
static int32_t cb_input_grad(void *user, const float *x, int64_t n, const float *dlogits, float *dx) {
    (void)user;
    sat_exec *e = sat_model_exec(F.model);
    int32_t st = e ? sat_exec_forward(e, x, n, SAT_BN_INFERENCE, NULL) : SAT_E_NOMEM;
    return st ? st : sat_exec_backward(e, dlogits, dx, NULL);
}
static sat_callback_model_opts cb_opts(void) {
    sat_callback_model_opts o;
    sat_callback_model_opts_init(&o, sizeof o);
    o.channels = 1, o.height = 6, o.width = 6, o.num_classes = CLASSES, o.max_batch = 4;
    o.logits_fn = cb_logits;
    o.input_grad_fn = cb_input_grad;
    return o;
}
static int32_t run_callback_create(void) {
    sat_callback_model_opts o = cb_opts();
    return sat_callback_model_create(F.ctx, &o, &made_cb);
}
static int32_t run_callback_attack(void) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.method = SAT_ATTACK_SQUARE;
    o.steps = 20;
    return sat_callback_attack(F.cb, &o, F.x, F.labels, NULL, N, F.x_adv, NULL);
}
static int32_t run_callback_apgd(void) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.method = SAT_ATTACK_APGD_CE;
    o.steps = 3;
    return sat_callback_attack(F.cb, &o, F.x, F.labels, NULL, N, F.x_adv, NULL);
}
static int32_t run_callback_autoattack(void) {
    sat_autoattack_opts o;
    sat_autoattack_opts_init(&o, sizeof o);
    o.eps = 0.02f;
    sat_autoattack_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    return sat_callback_autoattack(F.cb, &o, F.x, F.labels, N, F.x_adv, F.outcome, &r);
}
static int32_t run_optimizer_checkpoint_save(void) {
    return sat_optimizer_checkpoint_save(F.opt, NULL, F.opt_ckpt_path);
}
static int32_t run_optimizer_checkpoint_load(void) {
    return sat_optimizer_checkpoint_load(F.opt, F.opt_ckpt_path, NULL);
}
static int32_t run_checkpoint_save(void) {
    return sat_checkpoint_save(F.trainer, NULL, 2, 3, F.ckpt_path);
}
static int32_t run_checkpoint_load(void) {
    int64_t e, b;
    return sat_checkpoint_load(F.trainer, F.ckpt_path, &e, &b);
}

/* ---- the sweep ---- */

/* Every message the calls may report in says something else than "out of memory" before
 * each attempt, so the message checked afterwards is the attempt's own. */
static void poison_messages(void) {
    sat_model *none = NULL;
    float logits[CLASSES];
    assert_int_equal(sat_model_create(NULL, SPEC, NULL, &none), SAT_E_INVALID_ARG);
    assert_int_equal(sat_context_set_num_threads(F.ctx, 0), SAT_E_INVALID_ARG);
    assert_true(sat_model_forward(F.model, F.x, -1, logits) < 0);
    if (F.made) assert_true(sat_model_forward(F.made, F.x, -1, logits) < 0);
    assert_true(sat_train_step(F.trainer, F.x, F.labels, -1, NULL) < 0);
    if (F.made_trainer) assert_true(sat_train_step(F.made_trainer, F.x, F.labels, -1, NULL) < 0);
    assert_true(sat_dataset_truncate(F.ds, -1) < 0);
    assert_true(sat_optimizer_set_step_count(F.opt, -1) < 0);
    assert_true(sat_callback_attack(F.cb, NULL, F.x, F.labels, NULL, -1, F.x_adv, NULL) < 0);
}

static int64_t total_allocs;
static int calls_swept;

/* Runs c with allocation k refused for k = 1, 2, ... until it succeeds; returns the
 * number of allocations the call makes. */
static int64_t sweep(const call *c) {
    for (int64_t k = 1;; k++) {
        if (k > 10000) fail_msg("%s: still allocating after 10000 refusals", c->name);
        if (c->prepare) c->prepare();
        tu_snapshot before;
        take(&before);
        int64_t live = F.fa->live;
        F.fa->count = 0, F.fa->fail_at = k, F.fa->refused = 0, F.fa->armed = 1;
        poison_messages();
        int32_t st = c->run();
        F.fa->armed = 0;
        if (!F.fa->refused) {
            if (st != SAT_OK)
                fail_msg("%s: failed with nothing refused (%d): %s", c->name, st, c->message());
            if (c->cleanup) c->cleanup();
            tu_snapshot_drop(&before);
            assert_true(k - 1 == F.fa->count);
            printf("alloc sweep: %-44s %3lld allocations, each refused once\n", c->name,
                   (long long)(k - 1));
            total_allocs += k - 1;
            calls_swept++;
            return k - 1;
        }
        if (st != SAT_E_NOMEM)
            fail_msg("%s: allocation %lld refused -> %d (%s), not SAT_E_NOMEM: %s", c->name,
                     (long long)k, st, sat_status_string(st), c->message());
        const char *msg = c->message();
        if (!msg || !strstr(msg, "out of memory"))
            fail_msg("%s: allocation %lld refused, message \"%s\"", c->name, (long long)k,
                     msg ? msg : "(null)");
        /* every block the call took came back */
        if (F.fa->live != live)
            fail_msg("%s: allocation %lld refused: %lld blocks leaked", c->name, (long long)k,
                     (long long)(F.fa->live - live));
        assert_unchanged(&before, c->name, k);
        tu_snapshot_drop(&before);
        /* still usable: a step of training, a batch of the data set, and the fresh model or
         * trainer a first-use call was given */
        TU_CHECK(sat_train_step(F.trainer, F.x, F.labels, TRAIN_N, NULL));
        float logits[N * CLASSES];
        if (F.made) TU_CHECK(sat_model_forward(F.made, F.x, N, logits));
        if (F.made_trainer) TU_CHECK(sat_train_step(F.made_trainer, F.x, F.labels, TRAIN_N, NULL));
        int64_t got = 0;
        int32_t y[2];
        TU_CHECK(sat_dataset_batch(F.ds, 0, 2, F.x_dup, y, &got));
        assert_int_equal(got, 2);
    }
}

/* ---- ONNX import: a small CNN (Conv, BatchNormalization, Relu, Flatten, Gemm) ---- */
static void write_file(const char *path, const void *data, size_t size);
static uint8_t *onnx_buf;
static size_t onnx_size;
static char onnx_path[64];

static void prepare_onnx(void) {
    if (onnx_buf) return;
    const int64_t in[4] = {0, 1, 6, 6}, wd[4] = {3, 1, 3, 3}, cd[1] = {3}, fd[2] = {CLASSES, 108};
    float w[CLASSES * 108] = {0}, ones[3] = {1, 1, 1};
    tu_onnx *g = tu_onnx_new("x", 4, in);
    tu_onnx_init(g, "w", 4, wd, w, 1);
    tu_onnx_init(g, "gamma", 1, cd, ones, 0);
    tu_onnx_init(g, "beta", 1, cd, w, 0);
    tu_onnx_init(g, "mean", 1, cd, w, 0);
    tu_onnx_init(g, "var", 1, cd, ones, 0);
    tu_onnx_init(g, "fc", 2, fd, w, 1);
    const int64_t pads[4] = {1, 1, 1, 1};
    tu_onnx_attr_ints(tu_onnx_node(g, "Conv", "conv", "x,w", "c"), "pads", 4, pads);
    tu_onnx_node(g, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "b");
    tu_onnx_node(g, "Relu", "relu", "b", "r");
    tu_onnx_node(g, "Flatten", "flat", "r", "f");
    tu_onnx_attr_int(tu_onnx_node(g, "Gemm", "gemm", "f,fc", "y"), "transB", 1);
    tu_onnx_output(g, "y");
    onnx_buf = tu_onnx_pack(g, &onnx_size);
    snprintf(onnx_path, sizeof onnx_path, "%s/model.onnx", F.dir);
    write_file(onnx_path, onnx_buf, onnx_size);
}
static int32_t run_load_onnx_buffer(void) {
    return sat_model_load_onnx_buffer(F.ctx, onnx_buf, onnx_size, NULL, &made_model);
}
static int32_t run_load_onnx(void) { return sat_model_load_onnx(F.ctx, onnx_path, NULL, &made_model); }

static const call CALLS[] = {
    {"sat_context_create (3 threads)", NULL, run_context_create, tls_msg, cleanup_made},
    {"sat_context_set_num_threads (2 -> 4)", NULL, run_set_threads, ctx_msg, undo_set_threads},
    {"sat_model_create", NULL, run_model_create, tls_msg, cleanup_made},
    {"sat_model_create (resnet20)", NULL, run_model_create_resnet, tls_msg, cleanup_made},
    {"sat_model_clone", NULL, run_clone, tls_msg, cleanup_made},
    {"sat_model_forward (first use)", prepare_fresh_model, run_first_forward, made_msg, NULL},
    {"sat_model_input_gradient (first use)", prepare_fresh_model, run_first_input_gradient,
     made_msg, NULL},
    {"sat_model_exec (first use)", prepare_fresh_model, run_model_exec, made_msg, NULL},
    {"sat_exec_create (train)", NULL, run_exec_create, tls_msg, cleanup_made},
    {"sat_exec_create (inference)", NULL, run_exec_create_inference, tls_msg, cleanup_made},
    {"sat_model_save_buffer", NULL, run_save_buffer, model_msg, cleanup_made},
    {"sat_model_load_buffer", NULL, run_load_buffer, tls_msg, cleanup_made},
    {"sat_model_save", NULL, run_save, model_msg, NULL},
    {"sat_model_load", NULL, run_load, tls_msg, cleanup_made},
    {"sat_model_save_onnx_buffer", NULL, run_save_onnx_buffer, model_msg, cleanup_made},
    {"sat_model_save_onnx", NULL, run_save_onnx, model_msg, NULL},
    {"sat_dataset_from_arrays", NULL, run_from_arrays, tls_msg, cleanup_made},
    {"sat_dataset_load_idx", NULL, run_load_idx, tls_msg, cleanup_made},
    {"sat_dataset_load (IDX)", NULL, run_dataset_load, tls_msg, cleanup_made},
    {"sat_dataset_load (CIFAR-10)", NULL, run_cifar_load, tls_msg, cleanup_made},
    {"sat_model_forward (threads 2 -> 4)", prepare_more_threads, run_forward_more_threads, made_msg,
     back_to_two_threads},
    {"sat_dataset_split", NULL, run_split, ds_msg, undo_split},
    {"sat_dataset_shuffle", NULL, run_shuffle, ds_msg, undo_shuffle},
    {"sat_optimizer_create (Adam)", NULL, run_optimizer_create, tls_msg, cleanup_made},
    {"sat_callback_model_create", NULL, run_callback_create, tls_msg, cleanup_made},
    {"sat_callback_attack (Square)", NULL, run_callback_attack, cb_msg, NULL},
    {"sat_callback_attack (APGD-CE)", NULL, run_callback_apgd, cb_msg, NULL},
    {"sat_callback_autoattack (standard)", NULL, run_callback_autoattack, cb_msg, NULL},
    {"sat_evaluate (PGD, FGSM, APGD)", NULL, run_evaluate, model_msg, NULL},
    {"sat_autoattack (standard)", NULL, run_autoattack, model_msg, NULL},
    {"sat_checkpoint_save", NULL, run_checkpoint_save, trainer_msg, NULL},
    {"sat_checkpoint_load", NULL, run_checkpoint_load, trainer_msg, NULL},
    {"sat_optimizer_checkpoint_save", NULL, run_optimizer_checkpoint_save, opt_msg, NULL},
    {"sat_optimizer_checkpoint_load", NULL, run_optimizer_checkpoint_load, opt_msg, NULL},
    {"sat_optimizer_set_lr_scale (the first scale)", prepare_untuned_opt, run_first_lr_scale, made_opt_msg, cleanup_made},
    {"sat_optimizer_set_frozen (the first freeze)", prepare_untuned_opt, run_first_freeze, made_opt_msg, cleanup_made},
    {"sat_optimizer_checkpoint_load (scales into an untuned optimizer)", prepare_untuned_opt, run_load_scales_untuned,
     made_opt_msg, cleanup_made},
    {"sat_model_load_onnx_buffer", prepare_onnx, run_load_onnx_buffer, tls_msg, cleanup_made},
    {"sat_model_load_onnx", prepare_onnx, run_load_onnx, tls_msg, cleanup_made},
};

static const char *const TRAIN_NAMES[] = {"standard", "PGD", "Fast", "Free", "TRADES"};
static const char *const ATTACK_NAMES[] = {"FGSM", "PGD", "APGD-CE", "APGD-DLR", "FAB", "Square"};

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

#define SETUP_CHECK(cond)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "setup: %s failed: %s\n", #cond, sat_last_error());            \
            return -1;                                                                     \
        }                                                                                  \
    } while (0)

static int setup(void **st) {
    (void)st;
    memset(&F, 0, sizeof F);
    F.fa = calloc(1, sizeof *F.fa);
    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.num_threads = 2;
    co.alloc_fn = fa_alloc;
    co.dealloc_fn = fa_free;
    co.alloc_user = F.fa;
    SETUP_CHECK(F.fa && sat_context_create(&co, &F.ctx) == SAT_OK);
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.max_batch = 4; /* smaller than N: the batched calls run in chunks */
    F.x = calloc(N * PIX, sizeof(float));
    F.x_adv = calloc(N * PIX, sizeof(float));
    F.x_dup = calloc(N * PIX, sizeof(float));
    SETUP_CHECK(F.x && F.x_adv && F.x_dup);
    tu_fill_uniform(F.x, N * PIX, 0, 1, 11);
    for (int i = 0; i < N; i++) F.labels[i] = i % CLASSES, F.targets[i] = (i + 1) % CLASSES;
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.steps = 2;
    SETUP_CHECK(sat_model_create(F.ctx, SPEC, &mo, &F.model) == SAT_OK);
    SETUP_CHECK(sat_optimizer_create(F.model, NULL, &F.opt) == SAT_OK);
    SETUP_CHECK(sat_trainer_create(F.model, F.opt, &to, &F.trainer) == SAT_OK);
    SETUP_CHECK(sat_dataset_from_arrays(F.ctx, F.x, F.labels, N, 1, 6, 6, CLASSES, &F.ds) == SAT_OK);
    sat_callback_model_opts cbo = cb_opts();
    SETUP_CHECK(sat_callback_model_create(F.ctx, &cbo, &F.cb) == SAT_OK);
    /* a few steps so the optimizer state and statistics are not all zero */
    for (int i = 0; i < 3; i++)
        SETUP_CHECK(sat_train_step(F.trainer, F.x, F.labels, TRAIN_N, NULL) == SAT_OK);
    snprintf(F.dir, sizeof F.dir, "/tmp/sat-allocfail-XXXXXX");
    SETUP_CHECK(mkdtemp(F.dir) != NULL);
    snprintf(F.model_path, sizeof F.model_path, "%s/model.sat", F.dir);
    snprintf(F.ckpt_path, sizeof F.ckpt_path, "%s/run.satc", F.dir);
    snprintf(F.opt_ckpt_path, sizeof F.opt_ckpt_path, "%s/opt.satc", F.dir);
    snprintf(F.onnx_path, sizeof F.onnx_path, "%s/model.onnx", F.dir);
    snprintf(F.images, sizeof F.images, "%s/t10k-images-idx3-ubyte", F.dir);
    snprintf(F.labels_path, sizeof F.labels_path, "%s/t10k-labels-idx1-ubyte", F.dir);
    SETUP_CHECK(sat_model_save(F.model, NULL, F.model_path) == SAT_OK);
    SETUP_CHECK(sat_checkpoint_save(F.trainer, NULL, 1, 0, F.ckpt_path) == SAT_OK);
    /* per-parameter settings the checkpoints carry, so a restore has something to restore */
    SETUP_CHECK(sat_optimizer_set_lr_scale(F.opt, 0, 5, 0.5f) == SAT_OK);
    SETUP_CHECK(sat_optimizer_checkpoint_save(F.opt, NULL, F.opt_ckpt_path) == SAT_OK);
    SETUP_CHECK(sat_model_save_buffer(F.model, NULL, &F.model_buf, &F.model_buf_size) == SAT_OK);
    unsigned char img[16 + N * PIX], lab[8 + N];
    put_be32(img, 0x803), put_be32(img + 4, N), put_be32(img + 8, 6), put_be32(img + 12, 6);
    put_be32(lab, 0x801), put_be32(lab + 4, N);
    for (int i = 0; i < N * PIX; i++) img[16 + i] = (unsigned char)(i * 7);
    for (int i = 0; i < N; i++) lab[8 + i] = (unsigned char)F.labels[i];
    write_file(F.images, img, sizeof img);
    write_file(F.labels_path, lab, sizeof lab);
    /* CIFAR-10's test file of N records (label byte, then 3x32x32 pixels) */
    enum { RECORD = 1 + 3 * 32 * 32 };
    unsigned char *cifar = calloc(N, RECORD);
    SETUP_CHECK(cifar != NULL);
    for (int i = 0; i < N * RECORD; i++) cifar[i] = (unsigned char)(i * 13);
    for (int i = 0; i < N; i++) cifar[i * RECORD] = (unsigned char)(i % 10);
    snprintf(F.cifar_path, sizeof F.cifar_path, "%s/test_batch.bin", F.dir);
    write_file(F.cifar_path, cifar, (size_t)N * RECORD);
    free(cifar);
    void *warm[4];
    backtrace(warm, 4); /* loads what backtrace needs before any count is taken */
    return 0;
}

static int teardown(void **st) {
    (void)st;
    drop_fresh();
    cleanup_made();
    sat_callback_model_destroy(F.cb);
    sat_dataset_destroy(F.ds);
    sat_trainer_destroy(F.trainer);
    sat_optimizer_destroy(F.opt);
    sat_model_destroy(F.model);
    sat_context_destroy(F.ctx);
    int64_t live = F.fa ? F.fa->live : 0;
    sat_free(F.model_buf);
    unlink(F.model_path), unlink(F.ckpt_path), unlink(F.images), unlink(F.labels_path), unlink(F.cifar_path);
    unlink(F.opt_ckpt_path), unlink(F.onnx_path);
    if (onnx_buf) unlink(onnx_path);
    onnx_buf = NULL;
    rmdir(F.dir);
    free(F.x), free(F.x_adv), free(F.x_dup), free(F.fa);
    return live == 0 ? 0 : -1; /* every block the library took through the hooks came back */
}

static void test_every_call(void **st) {
    (void)st;
    for (size_t i = 0; i < sizeof CALLS / sizeof *CALLS; i++) sweep(&CALLS[i]);
    char name[64];
    for (trainer_method = SAT_TRAIN_STANDARD; trainer_method <= SAT_TRAIN_TRADES; trainer_method++) {
        snprintf(name, sizeof name, "sat_trainer_create (%s)", TRAIN_NAMES[trainer_method]);
        call c = {name, NULL, run_trainer_create, tls_msg, cleanup_made};
        sweep(&c);
        snprintf(name, sizeof name, "sat_train_step (%s, first step)", TRAIN_NAMES[trainer_method]);
        call s = {name, prepare_fresh_trainer, run_first_train_step, made_trainer_msg, NULL};
        sweep(&s);
        if (trainer_method == SAT_TRAIN_FREE) continue; /* the split step refuses Free-AT */
        snprintf(name, sizeof name, "sat_train_compute (%s, first step)", TRAIN_NAMES[trainer_method]);
        call g = {name, prepare_fresh_trainer, run_first_train_compute, made_trainer_msg, NULL};
        sweep(&g);
    }
    for (attack_method = SAT_ATTACK_FGSM; attack_method <= SAT_ATTACK_SQUARE; attack_method++) {
        snprintf(name, sizeof name, "sat_attack (%s)", ATTACK_NAMES[attack_method]);
        call c = {name, NULL, run_attack, model_msg, NULL};
        sweep(&c);
    }
    drop_fresh();
    printf("alloc sweep: %d calls, %lld allocations refused one at a time, %d distinct "
           "allocation sites\n", calls_swept, (long long)total_allocs, F.fa->num_sites);
    assert_true(F.fa->num_sites > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_call, setup, teardown),
    };
    return tu_run_group("alloc_fail", tests, sizeof tests / sizeof *tests);
}
