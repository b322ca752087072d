/* test_hostile_args.c - every public call that takes data gets hostile numbers and
 * arguments: NaN and Inf pixels, pixels outside [0,1], labels out of range, n = 0,
 * negative n, n > INT32_MAX, an output buffer that is the input or overlaps it, and eps
 * outside its range. A table gives what each call must return for each case; a call that
 * fails must change nothing (the model's parameters and statistics, the optimizer's state,
 * the data set and the output buffer are compared byte for byte). The program prints the
 * table it checked (docs/testing.md, "Hostile arguments"). NULL handles and buffers are
 * test_null_args.c's. */
#include "testutil.h"
#include "testutil_onnx.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const SPEC = "input 1 6 6\nconv 3 k=3 p=1\nbn\nact\nflatten\ndense 4\n";
enum { N = 4, PIX = 36, CLASSES = 4, BUF = 2 * N * PIX };

typedef struct inputs {
    float *x;       /* N examples */
    int32_t *y, *t; /* labels, targets */
    int64_t n;
    float *out;     /* the call's output buffer (N examples' worth and more) */
    int eps_set;    /* 0: the call's own eps */
    float eps;
} inputs;

typedef struct handles {
    sat_context *ctx;
    sat_model *model, *other;
    sat_optimizer *opt;
    sat_trainer *trainer;
    sat_exec *exec;
    sat_dataset *ds;
    sat_callback_model *cb;
} handles;

static handles H;

/* ---- the cases ---- */

typedef struct hostile_case {
    const char *name;
    void (*apply)(inputs *in);
} hostile_case;

static void c_nan(inputs *in) { in->x[PIX + 5] = NAN; }
static void c_inf(inputs *in) { in->x[PIX + 5] = INFINITY; }
static void c_below(inputs *in) { in->x[PIX + 5] = -0.25f; }
static void c_above(inputs *in) { in->x[PIX + 5] = 1.25f; }
static void c_label_high(inputs *in) { in->y[1] = CLASSES; }
static void c_label_neg(inputs *in) { in->y[1] = -1; }
static void c_n_zero(inputs *in) { in->n = 0; }
static void c_n_neg(inputs *in) { in->n = -1; }
static void c_n_huge(inputs *in) { in->n = (int64_t)INT32_MAX + 1; }
static void c_n_overflow(inputs *in) { in->n = INT64_MAX / 8; }
static void c_alias(inputs *in) { in->out = in->x; }
static void c_overlap(inputs *in) { in->out = in->x + 1; }
static void c_eps_neg(inputs *in) { in->eps_set = 1, in->eps = -0.1f; }
static void c_eps_nan(inputs *in) { in->eps_set = 1, in->eps = NAN; }
static void c_eps_big(inputs *in) { in->eps_set = 1, in->eps = 100.0f; }

static const hostile_case CASES[] = {
    {"NaN pixel", c_nan},        {"Inf pixel", c_inf},         {"pixel -0.25", c_below},
    {"pixel 1.25", c_above},     {"label = classes", c_label_high}, {"label -1", c_label_neg},
    {"n = 0", c_n_zero},         {"n = -1", c_n_neg},          {"n = 2^31", c_n_huge},
    {"n = 2^60", c_n_overflow},
    {"out == x", c_alias},       {"out = x + 1", c_overlap},   {"eps -0.1", c_eps_neg},
    {"eps NaN", c_eps_nan},      {"eps 100", c_eps_big},
};
enum { NUM_CASES = sizeof CASES / sizeof *CASES };

/* ---- the calls ---- */

static float eps_or(const inputs *in, float dflt) { return in->eps_set ? in->eps : dflt; }

static int32_t k_forward(inputs *in) { return sat_model_forward(H.model, in->x, in->n, in->out); }
static int32_t k_input_gradient(inputs *in) {
    return sat_model_input_gradient(H.model, in->x, in->y, in->n, NULL, in->out, NULL);
}
static int32_t k_train_backward(inputs *in) {
    float loss;
    return sat_model_train_backward(H.model, in->x, in->y, in->n, 0.0f, &loss, NULL);
}
static int32_t k_exec_forward(inputs *in) {
    return sat_exec_forward(H.exec, in->x, in->n, SAT_BN_INFERENCE, in->out);
}
static int32_t attack(inputs *in, int32_t method) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.method = method;
    o.steps = method == SAT_ATTACK_SQUARE ? 10 : 2;
    o.targeted = method == SAT_ATTACK_APGD_DLR;
    o.eps = eps_or(in, o.eps);
    return sat_attack(H.model, &o, in->x, in->y, o.targeted ? in->t : NULL, in->n, in->out, NULL);
}
static int32_t k_fgsm(inputs *in) { return attack(in, SAT_ATTACK_FGSM); }
static int32_t k_pgd(inputs *in) { return attack(in, SAT_ATTACK_PGD); }
static int32_t k_apgd_ce(inputs *in) { return attack(in, SAT_ATTACK_APGD_CE); }
static int32_t k_apgd_dlr(inputs *in) { return attack(in, SAT_ATTACK_APGD_DLR); }
static int32_t k_fab(inputs *in) { return attack(in, SAT_ATTACK_FAB); }
static int32_t k_square(inputs *in) { return attack(in, SAT_ATTACK_SQUARE); }
static int32_t k_pgd_l2(inputs *in) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.norm = SAT_NORM_L2;
    o.steps = 2;
    o.eps = eps_or(in, 0.5f);
    return sat_pgd_attack(H.model, &o, in->x, in->y, in->n, in->out, NULL);
}
static int32_t k_callback_attack(inputs *in) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.method = SAT_ATTACK_SQUARE;
    o.steps = 10;
    o.eps = eps_or(in, o.eps);
    return sat_callback_attack(H.cb, &o, in->x, in->y, NULL, in->n, in->out, NULL);
}
static int32_t k_train_step(inputs *in) { return sat_train_step(H.trainer, in->x, in->y, in->n, NULL); }
static int32_t k_train_compute(inputs *in) { return sat_train_compute(H.trainer, in->x, in->y, in->n, NULL); }
static int32_t k_evaluate(inputs *in) {
    sat_eval_opts o;
    sat_eval_opts_init(&o, sizeof o);
    o.num_steps = 1;
    o.steps[0] = 2;
    o.eps = eps_or(in, o.eps);
    sat_eval_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    return sat_evaluate(H.model, &o, in->x, in->y, in->n, &r);
}
static int32_t k_autoattack(inputs *in) {
    sat_autoattack_opts o;
    sat_autoattack_opts_init(&o, sizeof o);
    o.eps = eps_or(in, 0.01f);
    sat_autoattack_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    int32_t outcome[N];
    return sat_autoattack(H.model, &o, in->x, in->y, in->n, in->out, outcome, &r);
}
static int32_t k_callback_autoattack(inputs *in) {
    sat_autoattack_opts o;
    sat_autoattack_opts_init(&o, sizeof o);
    o.eps = eps_or(in, 0.01f);
    sat_autoattack_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    int32_t outcome[N];
    return sat_callback_autoattack(H.cb, &o, in->x, in->y, in->n, in->out, outcome, &r);
}
static int32_t k_from_arrays(inputs *in) {
    sat_dataset *ds = NULL;
    int32_t st = sat_dataset_from_arrays(H.ctx, in->x, in->y, in->n, 1, 6, 6, CLASSES, &ds);
    sat_dataset_destroy(ds);
    return st;
}
static int32_t k_trainer_create(inputs *in) {
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.eps = eps_or(in, o.eps);
    sat_trainer *t = NULL;
    int32_t st = sat_trainer_create(H.model, H.opt, &o, &t);
    sat_trainer_destroy(t);
    return st;
}
static int32_t k_dataset_batch(inputs *in) {
    int32_t y[2 * N];
    int64_t got = 0;
    return sat_dataset_batch(H.ds, 0, in->n, in->out, y, &got);
}
static int32_t k_dataset_split(inputs *in) {
    sat_dataset *held = NULL;
    int32_t st = sat_dataset_split(H.ds, in->n, 1, &held);
    sat_dataset_destroy(held);
    return st;
}
static int32_t k_dataset_truncate(inputs *in) { return sat_dataset_truncate(H.ds, in->n); }

/* What each call returns for each case, in the order of CASES:
 *   O SAT_OK, I SAT_E_INVALID_ARG, S SAT_E_SHAPE, N SAT_E_NUMERIC, - not applicable.
 * A call that succeeds on a case (O) has that case as part of its contract: documented in
 * sat.h and docs/testing.md. */
typedef struct row {
    const char *name;
    int32_t (*run)(inputs *in);
    const char *expect; /* NUM_CASES characters */
} row;

/* n = 2^31 is a valid n for the calls that work in chunks (the caller's buffers then hold
 * that many examples, and they are read): '-' there. n = 2^60 examples cannot be
 * addressed: every call refuses it before reading. */
/*                                 NaN, Inf, -.25, 1.25, y=C, y=-1, n=0, n=-1, 2^31, 2^60,
 *                                 out==x, out=x+1, eps -0.1, eps NaN, eps 100 */
static const row ROWS[] = {
    {"sat_model_forward", k_forward, "NNOO--SS-SII---"},
    {"sat_model_input_gradient", k_input_gradient, "NNOOIISSSSII---"},
    {"sat_model_train_backward", k_train_backward, "NNOOIISSSS-----"},
    {"sat_exec_forward", k_exec_forward, "NNOO--SSSSII---"},
    {"sat_attack FGSM", k_fgsm, "NNIIIISS-SOIIII"},
    {"sat_attack PGD", k_pgd, "NNIIIISS-SOIIII"},
    {"sat_attack APGD-CE", k_apgd_ce, "NNIIIISS-SOIIII"},
    {"sat_attack APGD-DLR", k_apgd_dlr, "NNIIIISS-SOIIII"},
    {"sat_attack FAB", k_fab, "NNIIIISS-SOIIII"},
    {"sat_attack Square", k_square, "NNIIIISS-SOIIII"},
    {"sat_pgd_attack L2", k_pgd_l2, "NNIIIISS-SOIIII"},
    {"sat_callback_attack Square", k_callback_attack, "NNIIIISS-SOIIII"},
    {"sat_train_step", k_train_step, "NNOOIISSSS-----"},
    {"sat_train_compute", k_train_compute, "NNOOIISSSS-----"},
    {"sat_evaluate", k_evaluate, "NNIIIISS-S--III"},
    {"sat_autoattack", k_autoattack, "NNIIIISS-SIIIII"},
    {"sat_callback_autoattack", k_callback_autoattack, "NNIIIISS-SIIIII"},
    {"sat_dataset_from_arrays", k_from_arrays, "NNOOIIII-I-----"},
    {"sat_trainer_create", k_trainer_create, "------------III"},
    {"sat_dataset_batch", k_dataset_batch, "------IIOO-----"},
    {"sat_dataset_split", k_dataset_split, "------IIII-----"},
    {"sat_dataset_truncate", k_dataset_truncate, "------IIII-----"},
};

static int32_t code_of(char c) {
    switch (c) {
    case 'O': return SAT_OK;
    case 'I': return SAT_E_INVALID_ARG;
    case 'S': return SAT_E_SHAPE;
    case 'N': return SAT_E_NUMERIC;
    default: return 1;
    }
}

static char letter_of(int32_t st) {
    switch (st) {
    case SAT_OK: return 'O';
    case SAT_E_INVALID_ARG: return 'I';
    case SAT_E_SHAPE: return 'S';
    case SAT_E_NUMERIC: return 'N';
    default: return '?';
    }
}

/* ---- what must not change ---- */

static void take(tu_snapshot *s) { tu_snapshot_take(s, H.model, H.opt, H.ds); }

/* ---- setup ---- */

static int32_t cb_logits(void *user, const float *x, int64_t n, float *logits) {
    return sat_model_forward(user, x, n, logits);
}
static int32_t cb_input_grad(void *user, const float *x, int64_t n, const float *dlogits, float *dx) {
    sat_exec *e = sat_model_exec(user);
    int32_t st = e ? sat_exec_forward(e, x, n, SAT_BN_INFERENCE, NULL) : SAT_E_NOMEM;
    return st ? st : sat_exec_backward(e, dlogits, dx, NULL);
}

static void make_handles(void) {
    memset(&H, 0, sizeof H);
    H.ctx = tu_context(2, 3);
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.max_batch = N;
    TU_CHECK(sat_model_create(H.ctx, SPEC, &mo, &H.model));
    tu_own_model(H.model);
    TU_CHECK(sat_model_create(H.ctx, SPEC, &mo, &H.other));
    tu_own_model(H.other);
    TU_CHECK(sat_optimizer_create(H.model, NULL, &H.opt));
    tu_own_optimizer(H.opt);
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.steps = 2;
    TU_CHECK(sat_trainer_create(H.model, H.opt, &to, &H.trainer));
    tu_own_trainer(H.trainer);
    TU_CHECK(sat_exec_create(H.model, NULL, &H.exec));
    tu_own(H.exec, (tu_destroy_fn)sat_exec_destroy);
    sat_callback_model_opts co;
    sat_callback_model_opts_init(&co, sizeof co);
    co.channels = 1, co.height = 6, co.width = 6, co.num_classes = CLASSES, co.max_batch = N;
    co.logits_fn = cb_logits;
    co.input_grad_fn = cb_input_grad;
    co.user = H.other;
    TU_CHECK(sat_callback_model_create(H.ctx, &co, &H.cb));
    tu_own_callback_model(H.cb);
}

static void good_inputs(inputs *in, float *x, int32_t *y, int32_t *t, float *out) {
    tu_fill_uniform(x, N * PIX, 0, 1, 5);
    for (int i = 0; i < N; i++) y[i] = i % CLASSES, t[i] = (i + 1) % CLASSES;
    for (int i = 0; i < BUF; i++) out[i] = 12345.0f; /* a sentinel no call writes */
    *in = (inputs){x, y, t, N, out, 0, 0.0f};
}

static void test_table(void **st) {
    (void)st;
    make_handles();
    float *x = tu_alloc(BUF * sizeof(float)), *out = tu_alloc(BUF * sizeof(float));
    float *x_before = tu_alloc(BUF * sizeof(float)), *out_before = tu_alloc(BUF * sizeof(float));
    int32_t y[N], t[N];
    {
        inputs in;
        good_inputs(&in, x, y, t, out);
        TU_CHECK(sat_dataset_from_arrays(H.ctx, x, y, N, 1, 6, 6, CLASSES, &H.ds));
        tu_own_dataset(H.ds);
        TU_CHECK(sat_train_step(H.trainer, x, y, N, NULL)); /* state and moments not zero */
    }
    int mismatches = 0;
    printf("hostile: %-28s", "call");
    for (int c = 0; c < NUM_CASES; c++) printf(" | %s", CASES[c].name);
    printf("\n");
    for (size_t r = 0; r < sizeof ROWS / sizeof *ROWS; r++) {
        const row *rw = &ROWS[r];
        assert_int_equal(strlen(rw->expect), NUM_CASES);
        char got[NUM_CASES + 1] = {0};
        for (int c = 0; c < NUM_CASES; c++) {
            got[c] = '-';
            if (rw->expect[c] == '-') continue;
            inputs in;
            good_inputs(&in, x, y, t, out);
            CASES[c].apply(&in);
            tu_snapshot before, after;
            take(&before);
            memcpy(x_before, x, BUF * sizeof(float));
            memcpy(out_before, out, BUF * sizeof(float));
            int32_t status = rw->run(&in);
            take(&after);
            got[c] = letter_of(status);
            if (status != code_of(rw->expect[c])) {
                printf("MISMATCH %s, %s: %d (%s), expected %c: %s\n", rw->name, CASES[c].name,
                       status, sat_status_string(status), rw->expect[c], sat_model_last_error(H.model));
                mismatches++;
            }
            if (status != SAT_OK) {
                /* nothing changed: the handles, the output buffer, the input */
                if (!tu_snapshot_same(&before, &after) || memcmp(out, out_before, BUF * sizeof(float)) ||
                    memcmp(x, x_before, BUF * sizeof(float))) {
                    printf("CHANGED %s, %s: failed with %d but wrote\n", rw->name, CASES[c].name, status);
                    mismatches++;
                }
            }
            tu_snapshot_drop(&before);
            tu_snapshot_drop(&after);
        }
        printf("hostile: %-28s %s\n", rw->name, got);
    }
    assert_int_equal(mismatches, 0);
}

/* ---- the other calls: hostile sizes, counts and numbers, one line each ---- */

static int32_t s_threads_0(void) { return sat_context_set_num_threads(H.ctx, 0); }
static int32_t s_threads_257(void) { return sat_context_set_num_threads(H.ctx, 257); }
static int32_t s_context_threads_neg(void) {
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = -1;
    sat_context *c = NULL;
    int32_t st = sat_context_create(&o, &c);
    sat_context_destroy(c);
    return st;
}
static int32_t model_with(int32_t max_batch, float act_param) {
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.max_batch = max_batch;
    o.act_param = act_param;
    sat_model *m = NULL;
    int32_t st = sat_model_create(H.ctx, SPEC, &o, &m);
    sat_model_destroy(m);
    return st;
}
static int32_t s_max_batch_0(void) { return model_with(0, NAN); }
static int32_t s_max_batch_neg(void) { return model_with(-1, NAN); }
static int32_t s_max_batch_huge(void) { return model_with(INT32_MAX, NAN); }
static int32_t s_act_param_inf(void) { return model_with(4, INFINITY); }
static int32_t s_act_param_neg(void) { return model_with(4, -1.0f); }
static int32_t exec_with(int64_t max_batch) {
    sat_exec_opts o;
    sat_exec_opts_init(&o, sizeof o);
    o.max_batch = max_batch;
    sat_exec *e = NULL;
    int32_t st = sat_exec_create(H.model, &o, &e);
    sat_exec_destroy(e);
    return st;
}
static int32_t s_exec_batch_neg(void) { return exec_with(-1); }
static int32_t s_exec_batch_huge(void) { return exec_with((int64_t)INT32_MAX + 1); }
static int32_t s_backward_nan(void) { return sat_model_set_backward(H.model, SAT_ACT_SOFTPLUS, NAN, -1, NAN) == SAT_OK ? sat_model_set_backward(H.model, -1, NAN, -1, NAN) : -99; }
static int32_t s_backward_inf(void) { return sat_model_set_backward(H.model, SAT_ACT_SOFTPLUS, INFINITY, -1, NAN); }
static int32_t s_backward_kind(void) { return sat_model_set_backward(H.model, 999, NAN, -1, NAN); }
static int32_t s_checkpointing_value(void) { return sat_model_set_activation_checkpointing(H.model, -1); }
static int32_t s_step_count_neg(void) { return sat_optimizer_set_step_count(H.opt, -1); }
static int32_t s_shuffle_aug(void) { return sat_dataset_shuffle(H.ds, 1, 0, 1u << 7); }
static int32_t s_shuffle_epoch(void) { return sat_dataset_shuffle(H.ds, 1, -1, SAT_AUG_NONE); }
static int32_t s_batch_index(void) {
    float x[N * PIX];
    int32_t y[N];
    int64_t got;
    return sat_dataset_batch(H.ds, 99, 2, x, y, &got);
}
/* One example of h x w pixels and `classes` classes from arrays; the dataset, if made, freed. */
static int32_t from_arrays(int32_t h, int32_t w, int32_t classes) {
    float x[PIX] = {0};
    int32_t y[1] = {0};
    sat_dataset *d = NULL;
    int32_t st = sat_dataset_from_arrays(H.ctx, x, y, 1, 1, h, w, classes, &d);
    sat_dataset_destroy(d);
    return st;
}
static int32_t s_from_arrays_dims(void) { return from_arrays(0, 6, CLASSES); }
static int32_t s_from_arrays_classes(void) { return from_arrays(6, 6, 1); }
static int32_t s_from_arrays_no_class(void) { return from_arrays(6, 6, 0); }
static int32_t s_preset_dims(void) {
    char *spec = NULL;
    int32_t st = sat_preset_spec("mlp", 1, -6, 6, CLASSES, NULL, NULL, &spec);
    sat_free(spec);
    return st;
}
static int32_t s_preset_std_zero(void) {
    char *spec = NULL;
    const float mean[1] = {0.5f}, sd[1] = {0.0f};
    int32_t st = sat_preset_spec("mlp", 1, 6, 6, CLASSES, mean, sd, &spec);
    sat_free(spec);
    return st;
}
/* ONNX export options: an opset this library does not write, and values no opset has */
static int32_t save_onnx_with(int32_t opset, int32_t batch_dim) {
    sat_onnx_export_opts o;
    sat_onnx_export_opts_init(&o, sizeof o);
    o.opset = opset;
    o.batch_dim = batch_dim;
    void *buf = NULL;
    size_t size = 0;
    int32_t st = sat_model_save_onnx_buffer(H.model, &o, &buf, &size);
    sat_free(buf);
    return st;
}
static int32_t s_onnx_opset_old(void) { return save_onnx_with(12, 0); }
static int32_t s_onnx_opset_zero(void) { return save_onnx_with(0, 0); }
static int32_t s_onnx_opset_max(void) { return save_onnx_with(INT32_MAX, 0); }
static int32_t s_onnx_batch_neg(void) { return save_onnx_with(13, -1); }
static int32_t s_onnx_batch_max(void) { return save_onnx_with(13, INT32_MAX); }
static int32_t s_callback_classes(void) {
    sat_callback_model_opts o;
    sat_callback_model_opts_init(&o, sizeof o);
    o.channels = 1, o.height = 6, o.width = 6, o.num_classes = 1, o.logits_fn = cb_logits;
    sat_callback_model *c = NULL;
    int32_t st = sat_callback_model_create(H.ctx, &o, &c);
    sat_callback_model_destroy(c);
    return st;
}
static int32_t s_exec_backward_nan(void) {
    float logits[N * CLASSES], d[N * CLASSES], dx[N * PIX];
    float x[N * PIX];
    tu_fill_uniform(x, N * PIX, 0, 1, 8);
    int32_t st = sat_exec_forward(H.exec, x, N, SAT_BN_INFERENCE, logits);
    if (st) return st;
    for (int i = 0; i < N * CLASSES; i++) d[i] = 0.1f;
    d[3] = NAN;
    return sat_exec_backward(H.exec, d, dx, NULL);
}
static int32_t s_label_smoothing(void) {
    float x[N * PIX], loss;
    int32_t y[N] = {0, 1, 2, 3};
    tu_fill_uniform(x, N * PIX, 0, 1, 8);
    return sat_model_train_backward(H.model, x, y, N, 1.5f, &loss, NULL);
}
static int32_t s_attack_steps_neg(void) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.steps = -3;
    float x[N * PIX], xa[N * PIX];
    int32_t y[N] = {0, 1, 2, 3};
    tu_fill_uniform(x, N * PIX, 0, 1, 8);
    return sat_attack(H.model, &o, x, y, NULL, N, xa, NULL);
}
static int32_t s_attack_step_nan(void) {
    sat_attack_opts o;
    sat_attack_opts_init(&o, sizeof o);
    o.step_size = NAN;
    float x[N * PIX], xa[N * PIX];
    int32_t y[N] = {0, 1, 2, 3};
    tu_fill_uniform(x, N * PIX, 0, 1, 8);
    return sat_attack(H.model, &o, x, y, NULL, N, xa, NULL);
}
static int32_t s_optimizer_lr_nan(void) {
    sat_optimizer_opts o;
    sat_optimizer_opts_init(&o, sizeof o);
    o.lr = NAN;
    sat_optimizer *op = NULL;
    int32_t st = sat_optimizer_create(H.model, &o, &op);
    sat_optimizer_destroy(op);
    return st;
}
static int32_t s_trainer_smoothing(void) {
    sat_trainer_opts o;
    sat_trainer_opts_init(&o, sizeof o);
    o.label_smoothing = -0.5f;
    sat_trainer *t = NULL;
    int32_t st = sat_trainer_create(H.model, H.opt, &o, &t);
    sat_trainer_destroy(t);
    return st;
}

static int32_t s_lr_nan(void) { return sat_optimizer_set_lr(H.opt, NAN); }
static int32_t s_lr_zero(void) { return sat_optimizer_set_lr(H.opt, 0.0f); }
static int32_t s_lr_inf(void) { return sat_optimizer_set_lr(H.opt, INFINITY); }
static int32_t s_scale_offset_neg(void) { return sat_optimizer_set_lr_scale(H.opt, -1, 2, 0.5f); }
static int32_t s_scale_past_end(void) {
    return sat_optimizer_set_lr_scale(H.opt, sat_model_param_count(H.model) - 1, 2, 0.5f);
}
static int32_t s_scale_overflow(void) { return sat_optimizer_set_lr_scale(H.opt, 1, INT64_MAX, 0.5f); }
static int32_t s_scale_count_neg(void) { return sat_optimizer_set_lr_scale(H.opt, 0, -1, 0.5f); }
static int32_t s_scale_nan(void) { return sat_optimizer_set_lr_scale(H.opt, 0, 2, NAN); }
static int32_t s_scale_neg(void) { return sat_optimizer_set_lr_scale(H.opt, 0, 2, -1.0f); }
static int32_t s_frozen_two(void) {
    int64_t np = sat_model_param_count(H.model);
    uint8_t *mask = tu_alloc((size_t)np);
    mask[0] = 1;
    mask[np - 1] = 2;
    int32_t st = sat_optimizer_set_frozen(H.opt, mask);
    tu_free(mask);
    return st;
}
static int32_t s_progress_ok(void) {
    /* NULL is the documented "no progress reports": allowed */
    return sat_context_set_progress(H.ctx, NULL, NULL);
}

/* ---- ONNX import: sizes and options ---- */
static int32_t onnx_with(const sat_onnx_import_opts *o, size_t size_override) {
    const int64_t dims[2] = {0, 4};
    tu_onnx *g = tu_onnx_new("x", 2, dims);
    tu_onnx_node(g, "Relu", "r", "x", "y");
    tu_onnx_output(g, "y");
    size_t size = 0;
    uint8_t *buf = tu_onnx_pack(g, &size);
    sat_model *m = NULL;
    int32_t st = sat_model_load_onnx_buffer(H.ctx, buf, size_override ? size_override : size, o, &m);
    sat_model_destroy(m);
    return st;
}
static int32_t onnx_opts_with(int32_t max_batch, int32_t to, float param) {
    sat_onnx_import_opts o;
    sat_onnx_import_opts_init(&o, sizeof o);
    o.max_batch = max_batch;
    o.replace_act_from = SAT_ACT_RELU;
    o.replace_act_to = to;
    o.replace_act_param = param;
    return onnx_with(&o, 0);
}
static int32_t s_onnx_ok(void) { return onnx_opts_with(4, SAT_ACT_SILU, NAN); }
static int32_t s_onnx_batch_0(void) { return onnx_opts_with(0, SAT_ACT_SILU, NAN); }
static int32_t s_onnx_batch_huge(void) { return onnx_opts_with(INT32_MAX, SAT_ACT_SILU, NAN); }
static int32_t s_onnx_act_neg(void) { return onnx_opts_with(4, -5, NAN); }
static int32_t s_onnx_param_inf(void) { return onnx_opts_with(4, SAT_ACT_SILU, INFINITY); }
static int32_t s_onnx_param_neg(void) { return onnx_opts_with(4, SAT_ACT_SILU, -1.0f); }
static int32_t s_onnx_size_huge(void) { return onnx_with(NULL, (size_t)1 << 40); }
static int32_t s_onnx_size_1(void) { return onnx_with(NULL, 1); }

typedef struct scalar_row {
    const char *name;
    int32_t (*run)(void);
    int32_t expect;
} scalar_row;

static const scalar_row SCALARS[] = {
    {"sat_context_set_num_threads(0)", s_threads_0, SAT_E_INVALID_ARG},
    {"sat_context_set_num_threads(257)", s_threads_257, SAT_E_INVALID_ARG},
    {"sat_context_create, num_threads -1", s_context_threads_neg, SAT_E_INVALID_ARG},
    {"sat_model_create, max_batch 0", s_max_batch_0, SAT_E_INVALID_ARG},
    {"sat_model_create, max_batch -1", s_max_batch_neg, SAT_E_INVALID_ARG},
    {"sat_model_create, max_batch 2^31-1", s_max_batch_huge, SAT_E_INVALID_ARG},
    {"sat_model_create, act_param Inf", s_act_param_inf, SAT_E_INVALID_ARG},
    {"sat_model_create, act_param -1", s_act_param_neg, SAT_E_INVALID_ARG},
    {"sat_exec_create, max_batch -1", s_exec_batch_neg, SAT_E_INVALID_ARG},
    {"sat_exec_create, max_batch 2^31", s_exec_batch_huge, SAT_E_INVALID_ARG},
    {"sat_model_set_backward, param NaN (default), then back", s_backward_nan, SAT_OK},
    {"sat_model_set_backward, param Inf", s_backward_inf, SAT_E_INVALID_ARG},
    {"sat_model_set_backward, kind 999", s_backward_kind, SAT_E_INVALID_ARG},
    {"sat_model_set_activation_checkpointing, -1", s_checkpointing_value, SAT_E_INVALID_ARG},
    {"sat_model_train_backward, label_smoothing 1.5", s_label_smoothing, SAT_E_INVALID_ARG},
    {"sat_exec_backward, NaN in dlogits", s_exec_backward_nan, SAT_E_NUMERIC},
    {"sat_attack, steps -3", s_attack_steps_neg, SAT_E_INVALID_ARG},
    {"sat_attack, step_size NaN", s_attack_step_nan, SAT_E_INVALID_ARG},
    {"sat_optimizer_create, lr NaN", s_optimizer_lr_nan, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_step_count(-1)", s_step_count_neg, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr(NaN)", s_lr_nan, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr(0)", s_lr_zero, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr(Inf)", s_lr_inf, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr_scale, offset -1", s_scale_offset_neg, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr_scale, range past the end", s_scale_past_end, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr_scale, offset 1 count 2^63-1", s_scale_overflow, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr_scale, count -1", s_scale_count_neg, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr_scale, scale NaN", s_scale_nan, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_lr_scale, scale -1", s_scale_neg, SAT_E_INVALID_ARG},
    {"sat_optimizer_set_frozen, a mask value of 2", s_frozen_two, SAT_E_INVALID_ARG},
    {"sat_context_set_progress(NULL) (allowed)", s_progress_ok, SAT_OK},
    {"sat_trainer_create, label_smoothing -0.5", s_trainer_smoothing, SAT_E_INVALID_ARG},
    {"sat_dataset_shuffle, unknown aug bit", s_shuffle_aug, SAT_E_INVALID_ARG},
    {"sat_dataset_shuffle, epoch -1", s_shuffle_epoch, SAT_E_INVALID_ARG},
    {"sat_dataset_batch, index past the end", s_batch_index, SAT_E_INVALID_ARG},
    {"sat_dataset_from_arrays, height 0", s_from_arrays_dims, SAT_E_INVALID_ARG},
    {"sat_dataset_from_arrays, 1 class (allowed)", s_from_arrays_classes, SAT_OK},
    {"sat_dataset_from_arrays, 0 classes", s_from_arrays_no_class, SAT_E_INVALID_ARG},
    {"sat_preset_spec, height -6", s_preset_dims, SAT_E_INVALID_ARG},
    {"sat_preset_spec, std 0", s_preset_std_zero, SAT_E_INVALID_ARG},
    {"sat_callback_model_create, 1 class", s_callback_classes, SAT_E_INVALID_ARG},
    {"sat_model_save_onnx_buffer, opset 12", s_onnx_opset_old, SAT_E_UNSUPPORTED},
    {"sat_model_save_onnx_buffer, opset 0", s_onnx_opset_zero, SAT_E_INVALID_ARG},
    {"sat_model_save_onnx_buffer, opset INT32_MAX", s_onnx_opset_max, SAT_E_UNSUPPORTED},
    {"sat_model_save_onnx_buffer, batch_dim -1", s_onnx_batch_neg, SAT_E_INVALID_ARG},
    {"sat_model_save_onnx_buffer, batch_dim INT32_MAX (allowed)", s_onnx_batch_max, SAT_OK},
    {"sat_model_load_onnx_buffer, ReLU -> SiLU (allowed)", s_onnx_ok, SAT_OK},
    {"sat_model_load_onnx_buffer, max_batch 0", s_onnx_batch_0, SAT_E_INVALID_ARG},
    {"sat_model_load_onnx_buffer, max_batch 2^31-1", s_onnx_batch_huge, SAT_E_INVALID_ARG},
    {"sat_model_load_onnx_buffer, replace_act_to -5", s_onnx_act_neg, SAT_E_INVALID_ARG},
    {"sat_model_load_onnx_buffer, replace_act_param Inf", s_onnx_param_inf, SAT_E_INVALID_ARG},
    {"sat_model_load_onnx_buffer, replace_act_param -1", s_onnx_param_neg, SAT_E_INVALID_ARG},
    {"sat_model_load_onnx_buffer, size 2^40", s_onnx_size_huge, SAT_E_FORMAT},
    {"sat_model_load_onnx_buffer, size 1 (cut)", s_onnx_size_1, SAT_E_FORMAT},
};

static void test_scalars(void **st) {
    (void)st;
    make_handles();
    float x[N * PIX];
    int32_t y[N] = {0, 1, 2, 3};
    tu_fill_uniform(x, N * PIX, 0, 1, 5);
    TU_CHECK(sat_dataset_from_arrays(H.ctx, x, y, N, 1, 6, 6, CLASSES, &H.ds));
    tu_own_dataset(H.ds);
    TU_CHECK(sat_train_step(H.trainer, x, y, N, NULL));
    int mismatches = 0;
    for (size_t i = 0; i < sizeof SCALARS / sizeof *SCALARS; i++) {
        tu_snapshot before, after;
        take(&before);
        int32_t status = SCALARS[i].run();
        take(&after);
        printf("hostile: %-56s %d (%s)\n", SCALARS[i].name, status, sat_status_string(status));
        if (status != SCALARS[i].expect) {
            printf("MISMATCH %s: %d, expected %d\n", SCALARS[i].name, status, SCALARS[i].expect);
            mismatches++;
        }
        if (!tu_snapshot_same(&before, &after)) {
            printf("CHANGED %s\n", SCALARS[i].name);
            mismatches++;
        }
        tu_snapshot_drop(&before);
        tu_snapshot_drop(&after);
    }
    /* the handles still work after all of it */
    TU_CHECK(sat_train_step(H.trainer, x, y, N, NULL));
    assert_int_equal(mismatches, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_scalars),
    };
    return tu_run_group("hostile_args", tests, sizeof tests / sizeof *tests);
}
