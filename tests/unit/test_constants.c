/* test_constants.c - values callers compile into their programs never change: status
 * codes, activation, attack, norm, loss, training-method, optimizer, schedule, data-set,
 * split, augmentation, flag, AutoAttack, layer and tensor constants are part of the ABI
 * (docs/abi.md). The ABI check sees types and symbols but not macro values; this test pins
 * them. */
#include "testutil.h"

static void test_pinned_values(void **st) {
    (void)st;
    assert_int_equal(SAT_OK, 0);
    assert_int_equal(SAT_E_INVALID_ARG, -1);
    assert_int_equal(SAT_E_NOMEM, -2);
    assert_int_equal(SAT_E_SHAPE, -3);
    assert_int_equal(SAT_E_STATE, -4);
    assert_int_equal(SAT_E_IO, -5);
    assert_int_equal(SAT_E_FORMAT, -6);
    assert_int_equal(SAT_E_VERSION, -7);
    assert_int_equal(SAT_E_UNSUPPORTED, -8);
    assert_int_equal(SAT_E_NUMERIC, -9);
    assert_int_equal(SAT_E_ABORTED, -10);
    assert_int_equal(SAT_E_INTERNAL, -11);

    assert_int_equal(SAT_ACT_SAME, -1);
    assert_int_equal(SAT_ACT_RELU, 0);
    assert_int_equal(SAT_ACT_SOFTPLUS, 1);
    assert_int_equal(SAT_ACT_PSOFTPLUS, 2);
    assert_int_equal(SAT_ACT_SILU, 3);
    assert_int_equal(SAT_ACT_GELU, 4);
    assert_int_equal(SAT_ACT_GELU_TANH, 5);
    assert_int_equal(SAT_ACT_ELU, 6);
    assert_int_equal(SAT_ACT_CELU, 7);
    assert_int_equal(SAT_ACT_SMOOTHRELU, 8);

    assert_int_equal(SAT_LOG_ERROR, 0);
    assert_int_equal(SAT_LOG_DEBUG, 3);
    assert_int_equal(SAT_BN_INFERENCE, 0);
    assert_int_equal(SAT_BN_BATCH, 1);
    assert_int_equal(SAT_BN_TRAIN, 2);
    assert_int_equal(SAT_EXEC_INFERENCE, 0);
    assert_int_equal(SAT_EXEC_INPUT_GRAD, 1);
    assert_int_equal(SAT_EXEC_TRAIN, 2);

    assert_int_equal(SAT_ATTACK_FGSM, 0);
    assert_int_equal(SAT_ATTACK_PGD, 1);
    assert_int_equal(SAT_ATTACK_APGD_CE, 2);
    assert_int_equal(SAT_ATTACK_APGD_DLR, 3);
    assert_int_equal(SAT_ATTACK_FAB, 4);
    assert_int_equal(SAT_ATTACK_SQUARE, 5);
    assert_int_equal(SAT_NORM_LINF, 0);
    assert_int_equal(SAT_NORM_L2, 1);
    assert_int_equal(SAT_LOSS_CE, 0);
    assert_int_equal(SAT_LOSS_MARGIN, 1);

    assert_int_equal(SAT_OPT_SGD, 0);
    assert_int_equal(SAT_OPT_ADAM, 1);
    assert_int_equal(SAT_OPT_ADAMW, 2);
    assert_int_equal(SAT_SCHED_CONSTANT, 0);
    assert_int_equal(SAT_SCHED_STEP, 1);
    assert_int_equal(SAT_SCHED_COSINE, 2);
    assert_int_equal(SAT_SCHED_ONECYCLE, 3);
    assert_int_equal(SAT_MAX_MILESTONES, 8);

    assert_int_equal(SAT_TRAIN_STANDARD, 0);
    assert_int_equal(SAT_TRAIN_PGD, 1);
    assert_int_equal(SAT_TRAIN_FAST, 2);
    assert_int_equal(SAT_TRAIN_FREE, 3);
    assert_int_equal(SAT_TRAIN_TRADES, 4);

    assert_int_equal(SAT_EVAL_MAX_STEPS, 16);
    assert_int_equal(SAT_FLAG_ZERO_GRAD, 1);
    assert_int_equal(SAT_FLAG_NONFINITE_GRAD, 2);
    assert_int_equal(SAT_FLAG_NOT_CONVERGED, 4);
    assert_int_equal(SAT_FLAG_ONE_STEP_STRONGER, 8);
    assert_int_equal(SAT_FLAG_SQUARE_STRONGER, 16);

    assert_int_equal(SAT_AA_STANDARD, 0);
    assert_int_equal(SAT_AA_PLUS, 1);
    assert_int_equal(SAT_AA_RAND, 2);
    assert_int_equal(SAT_AA_ATTACK_APGD_CE, 0);
    assert_int_equal(SAT_AA_ATTACK_APGD_T, 1);
    assert_int_equal(SAT_AA_ATTACK_FAB_T, 2);
    assert_int_equal(SAT_AA_ATTACK_SQUARE, 3);
    assert_int_equal(SAT_AA_ATTACK_APGD_DLR, 4);
    assert_int_equal(SAT_AA_ATTACK_FAB, 5);
    assert_int_equal(SAT_AA_MAX_ATTACKS, 8);
    assert_int_equal(SAT_AA_ROBUST, -1);
    assert_int_equal(SAT_AA_MISCLASSIFIED, -2);

    assert_int_equal(SAT_DATA_IDX, 0);
    assert_int_equal(SAT_DATA_CIFAR10, 1);
    assert_int_equal(SAT_SPLIT_TRAIN, 0);
    assert_int_equal(SAT_SPLIT_TEST, 1);
    assert_int_equal(SAT_AUG_NONE, 0);
    assert_int_equal(SAT_AUG_CROP, 1);
    assert_int_equal(SAT_AUG_FLIP, 2);
    assert_int_equal(SAT_LAYER_INPUT, 0);
    assert_int_equal(SAT_LAYER_NORMALIZE, 1);
    assert_int_equal(SAT_LAYER_DENSE, 2);
    assert_int_equal(SAT_LAYER_CONV, 3);
    assert_int_equal(SAT_LAYER_BN, 4);
    assert_int_equal(SAT_LAYER_ACT, 5);
    assert_int_equal(SAT_LAYER_MAXPOOL, 6);
    assert_int_equal(SAT_LAYER_AVGPOOL, 7);
    assert_int_equal(SAT_LAYER_GAP, 8);
    assert_int_equal(SAT_LAYER_ADD, 9);
    assert_int_equal(SAT_LAYER_FLATTEN, 10);
    assert_int_equal(SAT_LAYER_SIGMOID, 11);
    assert_int_equal(SAT_LAYER_MUL, 12);
    assert_int_equal(SAT_LAYER_DROPOUT, 13);
    assert_int_equal(SAT_LAYER_COUNT, 14);
    assert_int_equal(SAT_TENSOR_WEIGHT, 0);
    assert_int_equal(SAT_TENSOR_BIAS, 1);
    assert_int_equal(SAT_TENSOR_BN_SCALE, 2);
    assert_int_equal(SAT_TENSOR_BN_SHIFT, 3);
    assert_int_equal(SAT_TENSOR_ACT_ALPHA, 4);
    assert_int_equal(SAT_TENSOR_RUNNING_MEAN, 5);
    assert_int_equal(SAT_TENSOR_RUNNING_VAR, 6);
    assert_int_equal(SAT_LAYER_MAX_TENSORS, 4);
    assert_int_equal(SAT_LAYER_NAME_MAX, 32);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pinned_values)};
    return tu_run_group("test_constants", tests, sizeof tests / sizeof tests[0]);
}
