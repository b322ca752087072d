/* test_null_args.c - every public function survives NULL handles and NULL pointers:
 * it returns an error status (or a neutral value for getters) and never crashes, and a
 * real handle passed with NULL buffers is left usable. */
#include "testutil.h"

#include <math.h>
#include <string.h>

static const char *const SPEC = "input 1 4 4\nconv 2 k=3 p=1\nbn\nact\nflatten\ndense 3\n";

static void test_null_handles(void **st) {
    (void)st;
    int32_t act;
    float *view;
    int64_t count, epoch;
    sat_model *m = NULL;
    sat_context *c = NULL;
    sat_dataset *d = NULL;
    sat_optimizer *o = NULL;
    sat_trainer *t = NULL;
    void *buf = NULL;
    size_t size = 0;
    float x[16] = {0};
    int32_t y[1] = {0};

    assert_true(sat_context_opts_init(NULL, 64) < 0);
    assert_true(sat_context_create(NULL, NULL) < 0);
    assert_true(sat_context_set_num_threads(NULL, 1) < 0);
    assert_non_null(sat_context_last_error(NULL));
    assert_true(sat_activation_from_name(NULL, &act) < 0);
    assert_true(sat_activation_from_name("silu", NULL) < 0);
    assert_null(sat_activation_name(99));
    assert_true(sat_model_opts_init(NULL, 64) < 0);
    assert_true(sat_preset_spec(NULL, 1, 4, 4, 3, NULL, NULL, NULL) < 0);
    assert_true(sat_model_create(NULL, SPEC, NULL, &m) < 0);
    assert_null(m);
    assert_true(sat_model_clone(NULL, &m) < 0);
    assert_true(sat_model_shape(NULL, NULL, NULL, NULL, NULL) < 0);
    assert_int_equal(sat_model_max_batch(NULL), 0);
    assert_null(sat_model_spec(NULL));
    assert_true(sat_model_get_opts(NULL, NULL) < 0);
    assert_true(sat_model_set_backward(NULL, -1, NAN, -1, NAN) < 0);
    assert_true(sat_model_set_activation_checkpointing(NULL, 1) < 0);
    assert_int_equal(sat_model_param_count(NULL), 0);
    assert_null(sat_model_params(NULL));
    assert_null(sat_model_grads(NULL));
    assert_int_equal(sat_model_state_count(NULL), 0);
    assert_null(sat_model_state(NULL));
    assert_true(sat_model_decay_mask(NULL, NULL) < 0);
    assert_true(sat_model_layer_count(NULL) < 0);
    assert_true(sat_model_layer_info(NULL, 0, NULL) < 0);
    assert_true(sat_model_forward(NULL, x, 1, x) < 0);
    assert_true(sat_model_input_gradient(NULL, x, y, 1, NULL, NULL, NULL) < 0);
    assert_true(sat_model_train_backward(NULL, x, y, 1, 0, NULL, NULL) < 0);
    assert_non_null(sat_model_last_error(NULL));
    sat_exec *e = (sat_exec *)&act; /* must come back NULL */
    assert_true(sat_exec_opts_init(NULL, 64) < 0);
    assert_true(sat_exec_create(NULL, NULL, &e) < 0);
    assert_null(e);
    assert_true(sat_exec_forward(NULL, x, 1, SAT_BN_INFERENCE, x) < 0);
    assert_true(sat_exec_backward(NULL, x, x, NULL) < 0);
    assert_non_null(sat_exec_last_error(NULL));
    assert_null(sat_model_exec(NULL));
    assert_int_equal(sat_exec_last_batch(NULL), 0);
    sat_exec_destroy(NULL);
    assert_true(sat_attack_opts_init(NULL, 64) < 0);
    assert_true(sat_attack(NULL, NULL, x, y, NULL, 1, x, NULL) < 0);
    assert_true(sat_pgd_attack(NULL, NULL, x, y, 1, x, NULL) < 0);
    assert_true(sat_optimizer_opts_init(NULL, 64) < 0);
    assert_true(sat_optimizer_create(NULL, NULL, &o) < 0);
    assert_null(o);
    assert_true(sat_optimizer_step(NULL) < 0);
    (void)sat_optimizer_lr(NULL);
    (void)sat_optimizer_step_count(NULL);
    view = sat_optimizer_state(NULL, &count);
    assert_null(view);
    assert_true(sat_optimizer_set_step_count(NULL, 1) < 0);
    assert_non_null(sat_optimizer_last_error(NULL));
    assert_true(sat_trainer_opts_init(NULL, 64) < 0);
    assert_true(sat_trainer_create(NULL, NULL, NULL, &t) < 0);
    assert_null(t);
    assert_true(sat_train_step(NULL, x, y, 1, NULL) < 0);
    assert_non_null(sat_trainer_last_error(NULL));
    assert_true(sat_eval_opts_init(NULL, 64) < 0);
    assert_true(sat_evaluate(NULL, NULL, x, y, 1, NULL) < 0);
    assert_true(sat_autoattack_opts_init(NULL, 64) < 0);
    assert_true(sat_autoattack(NULL, NULL, x, y, 1, NULL, NULL, NULL) < 0);
    sat_callback_model *cb = (sat_callback_model *)&act; /* must come back NULL */
    assert_true(sat_callback_model_opts_init(NULL, 64) < 0);
    assert_true(sat_callback_model_create(NULL, NULL, &cb) < 0);
    assert_null(cb);
    assert_true(sat_callback_model_create(NULL, NULL, NULL) < 0);
    assert_non_null(sat_callback_model_last_error(NULL));
    assert_true(sat_callback_attack(NULL, NULL, x, y, NULL, 1, x, NULL) < 0);
    assert_true(sat_callback_autoattack(NULL, NULL, x, y, 1, NULL, NULL, NULL) < 0);
    sat_callback_model_destroy(NULL);
    assert_true(sat_dataset_load(NULL, SAT_DATA_IDX, NULL, 0, &d) < 0);
    assert_null(d);
    assert_true(sat_dataset_load_idx(NULL, NULL, NULL, &d) < 0);
    assert_true(sat_dataset_from_arrays(NULL, NULL, NULL, 1, 1, 1, 1, 2, &d) < 0);
    assert_true(sat_dataset_size(NULL) < 0);
    assert_true(sat_dataset_shape(NULL, NULL, NULL, NULL, NULL) < 0);
    assert_null(sat_dataset_images(NULL));
    assert_null(sat_dataset_labels(NULL));
    assert_true(sat_dataset_split(NULL, 1, 0, &d) < 0);
    assert_true(sat_dataset_truncate(NULL, 1) < 0);
    assert_true(sat_dataset_shuffle(NULL, 0, 0, 0) < 0);
    assert_true(sat_dataset_batch(NULL, 0, 1, x, y, &count) < 0);
    assert_non_null(sat_dataset_last_error(NULL));
    assert_true(sat_model_meta_init(NULL, 64) < 0);
    assert_true(sat_model_save(NULL, NULL, "/tmp/never-written.sat") < 0);
    assert_true(sat_model_load(NULL, NULL, NULL, &m) < 0);
    assert_null(m);
    assert_true(sat_model_save_buffer(NULL, NULL, &buf, &size) < 0);
    assert_null(buf);
    assert_true(sat_model_load_buffer(NULL, NULL, 0, NULL, &m) < 0);
    assert_true(sat_onnx_export_opts_init(NULL, 64) < 0);
    assert_true(sat_model_save_onnx(NULL, "/tmp/never-written.onnx", NULL) < 0);
    assert_true(sat_model_save_onnx_buffer(NULL, NULL, &buf, &size) < 0);
    assert_null(buf);
    assert_true(sat_checkpoint_save(NULL, NULL, 0, 0, "/tmp/never-written.ckpt") < 0);
    assert_true(sat_checkpoint_load(NULL, NULL, &epoch, &count) < 0);
    sat_context_destroy(c);
    sat_model_destroy(m);
    sat_optimizer_destroy(o);
    sat_trainer_destroy(t);
    sat_dataset_destroy(d);
    sat_free(NULL);
    sat_version(NULL, NULL, NULL);
    assert_non_null(sat_build_info());
    assert_non_null(sat_default_data_dir());
}

/* Real handles with NULL pointers where buffers belong: an error, and the handles work. */
static void test_null_buffers(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, SPEC, SAT_ACT_SILU, 2);
    float x[32], logits[6], before[6];
    int32_t y[2] = {0, 1};
    tu_fill_uniform(x, 32, 0, 1, 1);
    TU_CHECK(sat_model_forward(m, x, 2, before));
    assert_true(sat_model_forward(m, NULL, 2, logits) < 0);
    assert_true(sat_model_train_backward(m, NULL, y, 2, 0, NULL, NULL) < 0);
    assert_true(sat_model_train_backward(m, x, NULL, 2, 0, NULL, NULL) < 0);
    assert_true(sat_model_input_gradient(m, NULL, y, 2, NULL, NULL, NULL) < 0);
    assert_true(sat_pgd_attack(m, NULL, NULL, y, 2, x, NULL) < 0);
    assert_true(sat_pgd_attack(m, NULL, x, NULL, 2, x, NULL) < 0);
    assert_true(sat_pgd_attack(m, NULL, x, y, 2, NULL, NULL) < 0);
    assert_true(sat_evaluate(m, NULL, x, y, 2, NULL) < 0);
    sat_autoattack_result ar;
    memset(&ar, 0, sizeof ar);
    ar.struct_size = sizeof ar;
    assert_true(sat_autoattack(m, NULL, NULL, y, 2, NULL, NULL, &ar) < 0);
    assert_true(sat_autoattack(m, NULL, x, NULL, 2, NULL, NULL, &ar) < 0);
    assert_true(sat_autoattack(m, NULL, x, y, 2, NULL, NULL, NULL) < 0);
    assert_true(sat_model_clone(m, NULL) < 0);
    sat_exec *e = sat_model_exec(m);
    assert_non_null(e);
    assert_true(sat_exec_create(m, NULL, NULL) < 0);
    assert_true(sat_exec_forward(e, NULL, 2, SAT_BN_INFERENCE, logits) < 0);
    TU_CHECK(sat_exec_forward(e, x, 2, SAT_BN_INFERENCE, NULL));
    assert_true(sat_exec_backward(e, NULL, x, NULL) < 0);
    assert_true(sat_exec_backward(e, logits, NULL, NULL) < 0);
    assert_true(sat_model_decay_mask(m, NULL) < 0);
    assert_true(sat_model_layer_info(m, 0, NULL) < 0);
    assert_true(sat_model_save(m, NULL, NULL) < 0);
    assert_true(sat_model_save_buffer(m, NULL, NULL, NULL) < 0);
    assert_true(sat_model_save_onnx(m, NULL, NULL) < 0);
    assert_true(sat_model_save_onnx_buffer(m, NULL, NULL, NULL) < 0);
    assert_true(sat_optimizer_create(m, NULL, NULL) < 0);
    sat_optimizer *opt = NULL;
    TU_CHECK(sat_optimizer_create(m, NULL, &opt));
    tu_own_optimizer(opt);
    assert_true(sat_trainer_create(m, opt, NULL, NULL) < 0);
    sat_trainer *tr = NULL;
    TU_CHECK(sat_trainer_create(m, opt, NULL, &tr));
    tu_own_trainer(tr);
    assert_true(sat_train_step(tr, NULL, y, 2, NULL) < 0);
    assert_true(sat_train_step(tr, x, NULL, 2, NULL) < 0);
    assert_true(sat_checkpoint_save(tr, NULL, 0, 0, NULL) < 0);
    assert_true(sat_checkpoint_load(tr, NULL, NULL, NULL) < 0);
    TU_CHECK(sat_model_forward(m, x, 2, logits));
    assert_memory_equal(before, logits, sizeof logits);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_handles),
        cmocka_unit_test(test_null_buffers),
    };
    return tu_run_group("test_null_args", tests, sizeof tests / sizeof tests[0]);
}
