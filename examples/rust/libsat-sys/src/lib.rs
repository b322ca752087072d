//! Raw declarations of libsat's public header `sat.h`: every function, constant and
//! struct, with the structs laid out exactly as in C (`tests/layout.rs` compares each
//! struct's size and field offsets with a C program compiled against the installed
//! header). The build script finds libsat through pkg-config and links it.
//!
//! Everything here is `unsafe` to call and follows the C rules of `sat.h`; the `libsat`
//! crate is the safe layer.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_void};

pub const SAT_VERSION_MAJOR: i32 = 0;
pub const SAT_VERSION_MINOR: i32 = 1;
pub const SAT_VERSION_PATCH: i32 = 0;
pub const SAT_VERSION_STRING: &str = "0.1.0";

pub const SAT_OK: i32 = 0;
pub const SAT_E_INVALID_ARG: i32 = -1;
pub const SAT_E_NOMEM: i32 = -2;
pub const SAT_E_SHAPE: i32 = -3;
pub const SAT_E_STATE: i32 = -4;
pub const SAT_E_IO: i32 = -5;
pub const SAT_E_FORMAT: i32 = -6;
pub const SAT_E_VERSION: i32 = -7;
pub const SAT_E_UNSUPPORTED: i32 = -8;
pub const SAT_E_NUMERIC: i32 = -9;
pub const SAT_E_ABORTED: i32 = -10;
pub const SAT_E_INTERNAL: i32 = -11;

/// Seed fields set to this take the context's seed.
pub const SAT_SEED_CONTEXT: u64 = u64::MAX;

pub const SAT_LOG_ERROR: i32 = 0;
pub const SAT_LOG_WARN: i32 = 1;
pub const SAT_LOG_INFO: i32 = 2;
pub const SAT_LOG_DEBUG: i32 = 3;

pub const SAT_ACT_SAME: i32 = -1;
/// `sat_model_opts.activation`'s default: the spec's own (a preset's original), else SiLU.
pub const SAT_ACT_DEFAULT: i32 = -2;
pub const SAT_ACT_RELU: i32 = 0;
pub const SAT_ACT_SOFTPLUS: i32 = 1;
pub const SAT_ACT_PSOFTPLUS: i32 = 2;
pub const SAT_ACT_SILU: i32 = 3;
pub const SAT_ACT_GELU: i32 = 4;
pub const SAT_ACT_GELU_TANH: i32 = 5;
pub const SAT_ACT_ELU: i32 = 6;
pub const SAT_ACT_CELU: i32 = 7;
pub const SAT_ACT_SMOOTHRELU: i32 = 8;
pub const SAT_ACT_COUNT: i32 = 9;

pub const SAT_BN_INFERENCE: i32 = 0;
pub const SAT_BN_BATCH: i32 = 1;
pub const SAT_BN_TRAIN: i32 = 2;

pub const SAT_EXEC_INFERENCE: i32 = 0;
pub const SAT_EXEC_INPUT_GRAD: i32 = 1;
pub const SAT_EXEC_TRAIN: i32 = 2;

pub const SAT_ATTACK_FGSM: i32 = 0;
pub const SAT_ATTACK_PGD: i32 = 1;
pub const SAT_ATTACK_APGD_CE: i32 = 2;
pub const SAT_ATTACK_APGD_DLR: i32 = 3;
pub const SAT_ATTACK_FAB: i32 = 4;
pub const SAT_ATTACK_SQUARE: i32 = 5;
pub const SAT_NORM_LINF: i32 = 0;
pub const SAT_NORM_L2: i32 = 1;
pub const SAT_LOSS_CE: i32 = 0;
pub const SAT_LOSS_MARGIN: i32 = 1;

pub const SAT_OPT_SGD: i32 = 0;
pub const SAT_OPT_ADAM: i32 = 1;
pub const SAT_OPT_ADAMW: i32 = 2;
pub const SAT_SCHED_CONSTANT: i32 = 0;
pub const SAT_SCHED_STEP: i32 = 1;
pub const SAT_SCHED_COSINE: i32 = 2;
pub const SAT_SCHED_ONECYCLE: i32 = 3;
pub const SAT_MAX_MILESTONES: usize = 8;

pub const SAT_TRAIN_STANDARD: i32 = 0;
pub const SAT_TRAIN_PGD: i32 = 1;
pub const SAT_TRAIN_FAST: i32 = 2;
pub const SAT_TRAIN_FREE: i32 = 3;
pub const SAT_TRAIN_TRADES: i32 = 4;

pub const SAT_EVAL_MAX_STEPS: usize = 16;
pub const SAT_FLAG_ZERO_GRAD: u32 = 1;
pub const SAT_FLAG_NONFINITE_GRAD: u32 = 2;
pub const SAT_FLAG_NOT_CONVERGED: u32 = 4;
pub const SAT_FLAG_ONE_STEP_STRONGER: u32 = 8;
pub const SAT_FLAG_SQUARE_STRONGER: u32 = 16;

pub const SAT_AA_STANDARD: i32 = 0;
pub const SAT_AA_PLUS: i32 = 1;
pub const SAT_AA_RAND: i32 = 2;
pub const SAT_AA_ATTACK_APGD_CE: i32 = 0;
pub const SAT_AA_ATTACK_APGD_T: i32 = 1;
pub const SAT_AA_ATTACK_FAB_T: i32 = 2;
pub const SAT_AA_ATTACK_SQUARE: i32 = 3;
pub const SAT_AA_ATTACK_APGD_DLR: i32 = 4;
pub const SAT_AA_ATTACK_FAB: i32 = 5;
pub const SAT_AA_MAX_ATTACKS: usize = 8;
pub const SAT_AA_ROBUST: i32 = -1;
pub const SAT_AA_MISCLASSIFIED: i32 = -2;

pub const SAT_LAYER_INPUT: i32 = 0;
pub const SAT_LAYER_NORMALIZE: i32 = 1;
pub const SAT_LAYER_DENSE: i32 = 2;
pub const SAT_LAYER_CONV: i32 = 3;
pub const SAT_LAYER_BN: i32 = 4;
pub const SAT_LAYER_ACT: i32 = 5;
pub const SAT_LAYER_MAXPOOL: i32 = 6;
pub const SAT_LAYER_AVGPOOL: i32 = 7;
pub const SAT_LAYER_GAP: i32 = 8;
pub const SAT_LAYER_ADD: i32 = 9;
pub const SAT_LAYER_FLATTEN: i32 = 10;
pub const SAT_LAYER_SIGMOID: i32 = 11;
pub const SAT_LAYER_MUL: i32 = 12;
pub const SAT_LAYER_DROPOUT: i32 = 13;
pub const SAT_LAYER_COUNT: i32 = 14;
pub const SAT_TENSOR_WEIGHT: i32 = 0;
pub const SAT_TENSOR_BIAS: i32 = 1;
pub const SAT_TENSOR_BN_SCALE: i32 = 2;
pub const SAT_TENSOR_BN_SHIFT: i32 = 3;
pub const SAT_TENSOR_ACT_ALPHA: i32 = 4;
pub const SAT_TENSOR_RUNNING_MEAN: i32 = 5;
pub const SAT_TENSOR_RUNNING_VAR: i32 = 6;
pub const SAT_LAYER_MAX_TENSORS: usize = 4;
pub const SAT_LAYER_NAME_MAX: usize = 32;

pub const SAT_DATA_IDX: i32 = 0;
pub const SAT_DATA_CIFAR10: i32 = 1;
pub const SAT_SPLIT_TRAIN: i32 = 0;
pub const SAT_SPLIT_TEST: i32 = 1;
pub const SAT_AUG_NONE: u32 = 0;
pub const SAT_AUG_CROP: u32 = 1;
pub const SAT_AUG_FLIP: u32 = 2;

#[repr(C)]
pub struct sat_context {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct sat_model {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct sat_exec {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct sat_optimizer {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct sat_trainer {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct sat_dataset {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct sat_callback_model {
    _opaque: [u8; 0],
}

pub type sat_log_fn = Option<unsafe extern "C" fn(*mut c_void, i32, *const c_char)>;
pub type sat_alloc_fn = Option<unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void>;
pub type sat_dealloc_fn = Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>;
pub type sat_logits_fn =
    Option<unsafe extern "C" fn(*mut c_void, *const f32, i64, *mut f32) -> i32>;
pub type sat_input_grad_fn =
    Option<unsafe extern "C" fn(*mut c_void, *const f32, i64, *const f32, *mut f32) -> i32>;
/// Progress callback: (user, what, done, total); non-zero cancels the running call.
pub type sat_progress_fn = Option<unsafe extern "C" fn(*mut c_void, *const c_char, i64, i64) -> i32>;
/// Batch-norm reduction of a data-parallel trainer: (user, sums, count); replaces the sums by
/// their sums over all ranks; non-zero fails the trainer's call.
pub type sat_bn_reduce_fn = Option<unsafe extern "C" fn(*mut c_void, *mut f64, i64) -> i32>;
/// Gradient-ready callback of a data-parallel trainer: (user, offset, count); that range of
/// the gradient block is final for this sat_train_compute; non-zero fails the call.
pub type sat_grad_ready_fn = Option<unsafe extern "C" fn(*mut c_void, i64, i64) -> i32>;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_context_opts {
    pub struct_size: u32,
    pub num_threads: i32,
    pub seed: u64,
    pub log_fn: sat_log_fn,
    pub log_user: *mut c_void,
    pub log_level: i32,
    pub reserved0: i32,
    pub alloc_fn: sat_alloc_fn,
    pub dealloc_fn: sat_dealloc_fn,
    pub alloc_user: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_model_opts {
    pub struct_size: u32,
    pub activation: i32,
    pub act_param: f32,
    pub max_batch: i32,
    pub attack_backward_act: i32,
    pub attack_backward_param: f32,
    pub train_backward_act: i32,
    pub train_backward_param: f32,
    pub attack_bn_mode: i32,
    pub seed: u64,
    pub activation_checkpointing: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_exec_opts {
    pub struct_size: u32,
    pub kind: i32,
    pub max_batch: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_attack_opts {
    pub struct_size: u32,
    pub method: i32,
    pub norm: i32,
    pub loss: i32,
    pub eps: f32,
    pub step_size: f32,
    pub steps: i32,
    pub restarts: i32,
    pub random_start: i32,
    pub targeted: i32,
    pub bn_mode: i32,
    pub seed: u64,
}

#[repr(C)]
#[derive(Debug)]
pub struct sat_attack_trace {
    pub struct_size: u32,
    pub capacity: i32,
    pub count: i32,
    pub reserved0: i32,
    pub loss: *mut f32,
    pub accuracy: *mut f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_optimizer_opts {
    pub struct_size: u32,
    pub kind: i32,
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: i32,
    pub weight_decay: f32,
    pub decay_biases: i32,
    pub beta1: f32,
    pub beta2: f32,
    pub adam_eps: f32,
    pub schedule: i32,
    pub reserved1: i32,
    pub total_steps: i64,
    pub warmup_steps: i64,
    pub peak_frac: f32,
    pub gamma: f32,
    pub num_milestones: i32,
    pub reserved0: i32,
    pub milestones: [i64; SAT_MAX_MILESTONES],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_trainer_opts {
    pub struct_size: u32,
    pub method: i32,
    pub norm: i32,
    pub eps: f32,
    pub step_size: f32,
    pub steps: i32,
    pub random_start: i32,
    pub clean_fraction: f32,
    pub attack_bn_mode: i32,
    pub label_smoothing: f32,
    pub free_replays: i32,
    pub trades_beta: f32,
    pub seed: u64,
    pub rank: i32,
    pub rank_count: i32,
    pub bn_reduce: sat_bn_reduce_fn,
    pub bn_reduce_user: *mut c_void,
    pub grad_ready: sat_grad_ready_fn,
    pub grad_ready_user: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sat_step_stats {
    pub struct_size: u32,
    pub reserved0: i32,
    pub loss: f32,
    pub adv_accuracy: f32,
    pub clean_accuracy: f32,
    pub lr: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_eval_opts {
    pub struct_size: u32,
    pub norm: i32,
    pub eps: f32,
    pub step_size: f32,
    pub num_steps: i32,
    pub steps: [i32; SAT_EVAL_MAX_STEPS],
    pub restarts: i32,
    pub apgd: i32,
    pub apgd_steps: i32,
    pub apgd_targets: i32,
    pub batch: i32,
    pub seed: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sat_eval_result {
    pub struct_size: u32,
    pub num_steps: i32,
    pub n: i64,
    pub clean_accuracy: f32,
    pub robust_accuracy: [f32; SAT_EVAL_MAX_STEPS],
    pub fgsm_accuracy: f32,
    pub apgd_accuracy: f32,
    pub flags: u32,
    pub reserved0: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_callback_model_opts {
    pub struct_size: u32,
    pub channels: i32,
    pub height: i32,
    pub width: i32,
    pub num_classes: i32,
    pub max_batch: i32,
    pub reserved0: i32,
    pub logits_fn: sat_logits_fn,
    pub input_grad_fn: sat_input_grad_fn,
    pub user: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_autoattack_opts {
    pub struct_size: u32,
    pub version: i32,
    pub norm: i32,
    pub eps: f32,
    pub seed: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sat_autoattack_result {
    pub struct_size: u32,
    pub num_attacks: i32,
    pub n: i64,
    pub clean_accuracy: f32,
    pub robust_accuracy: f32,
    pub attacks: [i32; SAT_AA_MAX_ATTACKS],
    pub accuracy_after: [f32; SAT_AA_MAX_ATTACKS],
    pub flags: u32,
    pub reserved0: i32,
    pub square_only: i64,
}

/// One tensor of a layer: a range of the parameter or state block, row-major in `shape`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sat_tensor_info {
    pub role: i32,
    pub ndim: i32,
    pub offset: i64,
    pub count: i64,
    pub shape: [i32; 4],
}

/// One layer of a model, filled by `sat_model_layer_info` (the caller sets struct_size).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_layer_info {
    pub struct_size: u32,
    pub op: i32,
    pub op_name: [c_char; SAT_LAYER_NAME_MAX],
    pub name: [c_char; SAT_LAYER_NAME_MAX],
    pub line: i32,
    pub input0: i32,
    pub input1: i32,
    pub channels: i32,
    pub height: i32,
    pub width: i32,
    pub units: i32,
    pub kernel: i32,
    pub stride: i32,
    pub padding: i32,
    pub has_bias: i32,
    pub activation: i32,
    pub act_param: f32,
    pub num_params: i32,
    pub num_state: i32,
    pub reserved0: i32,
    pub params: [sat_tensor_info; SAT_LAYER_MAX_TENSORS],
    pub state: [sat_tensor_info; SAT_LAYER_MAX_TENSORS],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_model_meta {
    pub struct_size: u32,
    pub norm: i32,
    pub eps: f32,
    pub method: i32,
    pub steps: i32,
    pub epochs: i32,
    pub clean_accuracy: f32,
    pub robust_accuracy: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_onnx_import_opts {
    pub struct_size: u32,
    pub replace_act_from: i32,
    pub replace_act_to: i32,
    pub replace_act_param: f32,
    pub max_batch: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sat_onnx_export_opts {
    pub struct_size: u32,
    pub opset: i32,
    pub batch_dim: i32,
}

extern "C" {
    pub fn sat_version_string() -> *const c_char;
    pub fn sat_version(major: *mut i32, minor: *mut i32, patch: *mut i32);
    pub fn sat_build_info() -> *const c_char;
    pub fn sat_status_string(status: i32) -> *const c_char;
    pub fn sat_last_error() -> *const c_char;
    pub fn sat_free(ptr: *mut c_void);

    pub fn sat_context_opts_init(opts: *mut sat_context_opts, size: u32) -> i32;
    pub fn sat_context_create(opts: *const sat_context_opts, out: *mut *mut sat_context) -> i32;
    pub fn sat_context_destroy(ctx: *mut sat_context);
    pub fn sat_context_last_error(ctx: *const sat_context) -> *const c_char;
    pub fn sat_context_set_num_threads(ctx: *mut sat_context, num_threads: i32) -> i32;

    // progress and cancellation
    pub fn sat_context_set_progress(ctx: *mut sat_context, f: sat_progress_fn, user: *mut c_void) -> i32;

    pub fn sat_activation_name(act: i32) -> *const c_char;
    pub fn sat_activation_from_name(name: *const c_char, act: *mut i32) -> i32;
    pub fn sat_activation_default_param(act: i32) -> f32;

    pub fn sat_model_opts_init(opts: *mut sat_model_opts, size: u32) -> i32;
    pub fn sat_preset_spec(name: *const c_char, channels: i32, height: i32, width: i32,
                           num_classes: i32, mean: *const f32, std: *const f32,
                           spec_out: *mut *mut c_char) -> i32;
    pub fn sat_model_create(ctx: *mut sat_context, spec: *const c_char,
                            opts: *const sat_model_opts, out: *mut *mut sat_model) -> i32;
    pub fn sat_model_destroy(model: *mut sat_model);
    pub fn sat_model_last_error(model: *const sat_model) -> *const c_char;
    pub fn sat_model_clone(model: *const sat_model, out: *mut *mut sat_model) -> i32;
    pub fn sat_model_shape(model: *const sat_model, channels: *mut i32, height: *mut i32,
                           width: *mut i32, num_classes: *mut i32) -> i32;
    pub fn sat_model_max_batch(model: *const sat_model) -> i64;
    pub fn sat_model_spec(model: *const sat_model) -> *const c_char;
    pub fn sat_model_get_opts(model: *const sat_model, opts: *mut sat_model_opts) -> i32;
    pub fn sat_model_set_backward(model: *mut sat_model, attack_backward_act: i32,
                                  attack_backward_param: f32, train_backward_act: i32,
                                  train_backward_param: f32) -> i32;
    pub fn sat_model_set_activation_checkpointing(model: *mut sat_model, on: i32) -> i32;
    pub fn sat_model_param_count(model: *const sat_model) -> i64;
    pub fn sat_model_params(model: *mut sat_model) -> *mut f32;
    pub fn sat_model_grads(model: *mut sat_model) -> *mut f32;
    pub fn sat_model_state_count(model: *const sat_model) -> i64;
    pub fn sat_model_state(model: *mut sat_model) -> *mut f32;
    pub fn sat_model_decay_mask(model: *const sat_model, mask: *mut u8) -> i32;
    pub fn sat_model_forward(model: *mut sat_model, x: *const f32, n: i64,
                             logits: *mut f32) -> i32;
    pub fn sat_model_input_gradient(model: *mut sat_model, x: *const f32, labels: *const i32,
                                    n: i64, losses: *mut f32, grad: *mut f32,
                                    logits: *mut f32) -> i32;
    pub fn sat_model_train_backward(model: *mut sat_model, x: *const f32, labels: *const i32,
                                    n: i64, label_smoothing: f32, loss: *mut f32,
                                    correct: *mut i64) -> i32;

    pub fn sat_exec_opts_init(opts: *mut sat_exec_opts, size: u32) -> i32;
    pub fn sat_exec_create(model: *mut sat_model, opts: *const sat_exec_opts,
                           out: *mut *mut sat_exec) -> i32;
    pub fn sat_exec_destroy(exec: *mut sat_exec);
    pub fn sat_exec_last_error(exec: *const sat_exec) -> *const c_char;
    pub fn sat_exec_forward(exec: *mut sat_exec, x: *const f32, n: i64, bn_mode: i32,
                            logits: *mut f32) -> i32;
    pub fn sat_exec_backward(exec: *mut sat_exec, dlogits: *const f32, dx: *mut f32,
                             param_grads: *mut f32) -> i32;
    pub fn sat_exec_last_batch(exec: *const sat_exec) -> i64;
    pub fn sat_model_exec(model: *mut sat_model) -> *mut sat_exec;

    pub fn sat_model_layer_count(model: *const sat_model) -> i32;
    pub fn sat_model_layer_info(model: *const sat_model, index: i32,
                                info: *mut sat_layer_info) -> i32;

    pub fn sat_attack_opts_init(opts: *mut sat_attack_opts, size: u32) -> i32;
    pub fn sat_attack(model: *mut sat_model, opts: *const sat_attack_opts, x: *const f32,
                      labels: *const i32, targets: *const i32, n: i64, x_adv: *mut f32,
                      trace: *mut sat_attack_trace) -> i32;
    pub fn sat_pgd_attack(model: *mut sat_model, opts: *const sat_attack_opts, x: *const f32,
                          labels: *const i32, n: i64, x_adv: *mut f32,
                          trace: *mut sat_attack_trace) -> i32;

    pub fn sat_callback_model_opts_init(opts: *mut sat_callback_model_opts, size: u32) -> i32;
    pub fn sat_callback_model_create(ctx: *mut sat_context, opts: *const sat_callback_model_opts,
                                     out: *mut *mut sat_callback_model) -> i32;
    pub fn sat_callback_model_destroy(model: *mut sat_callback_model);
    pub fn sat_callback_model_last_error(model: *const sat_callback_model) -> *const c_char;
    pub fn sat_callback_attack(model: *mut sat_callback_model, opts: *const sat_attack_opts,
                               x: *const f32, labels: *const i32, targets: *const i32, n: i64,
                               x_adv: *mut f32, trace: *mut sat_attack_trace) -> i32;

    pub fn sat_optimizer_opts_init(opts: *mut sat_optimizer_opts, size: u32) -> i32;
    pub fn sat_optimizer_create(model: *mut sat_model, opts: *const sat_optimizer_opts,
                                out: *mut *mut sat_optimizer) -> i32;
    pub fn sat_optimizer_destroy(opt: *mut sat_optimizer);
    pub fn sat_optimizer_last_error(opt: *const sat_optimizer) -> *const c_char;
    pub fn sat_optimizer_step(opt: *mut sat_optimizer) -> i32;
    pub fn sat_optimizer_lr(opt: *const sat_optimizer) -> f32;
    pub fn sat_optimizer_step_count(opt: *const sat_optimizer) -> i64;
    pub fn sat_optimizer_state(opt: *mut sat_optimizer, count: *mut i64) -> *mut f32;
    pub fn sat_optimizer_set_step_count(opt: *mut sat_optimizer, step: i64) -> i32;

    pub fn sat_trainer_opts_init(opts: *mut sat_trainer_opts, size: u32) -> i32;
    pub fn sat_trainer_create(model: *mut sat_model, opt: *mut sat_optimizer,
                              opts: *const sat_trainer_opts,
                              out: *mut *mut sat_trainer) -> i32;
    pub fn sat_trainer_destroy(trainer: *mut sat_trainer);
    pub fn sat_trainer_last_error(trainer: *const sat_trainer) -> *const c_char;
    pub fn sat_train_step(trainer: *mut sat_trainer, x: *const f32, labels: *const i32, n: i64,
                          stats: *mut sat_step_stats) -> i32;
    pub fn sat_train_compute(trainer: *mut sat_trainer, x: *const f32, labels: *const i32, n: i64,
                             stats: *mut sat_step_stats) -> i32;
    pub fn sat_train_apply(trainer: *mut sat_trainer) -> i32;

    pub fn sat_eval_opts_init(opts: *mut sat_eval_opts, size: u32) -> i32;
    pub fn sat_evaluate(model: *mut sat_model, opts: *const sat_eval_opts, x: *const f32,
                        labels: *const i32, n: i64, result: *mut sat_eval_result) -> i32;
    pub fn sat_autoattack_opts_init(opts: *mut sat_autoattack_opts, size: u32) -> i32;
    pub fn sat_autoattack(model: *mut sat_model, opts: *const sat_autoattack_opts, x: *const f32,
                          labels: *const i32, n: i64, x_adv: *mut f32, outcome: *mut i32,
                          result: *mut sat_autoattack_result) -> i32;
    pub fn sat_callback_autoattack(model: *mut sat_callback_model,
                                   opts: *const sat_autoattack_opts, x: *const f32,
                                   labels: *const i32, n: i64, x_adv: *mut f32,
                                   outcome: *mut i32, result: *mut sat_autoattack_result) -> i32;

    pub fn sat_default_data_dir() -> *const c_char;
    pub fn sat_dataset_load(ctx: *mut sat_context, format: i32, dir: *const c_char, split: i32,
                            out: *mut *mut sat_dataset) -> i32;
    pub fn sat_dataset_load_idx(ctx: *mut sat_context, images_path: *const c_char,
                                labels_path: *const c_char, out: *mut *mut sat_dataset) -> i32;
    pub fn sat_dataset_from_arrays(ctx: *mut sat_context, x: *const f32, labels: *const i32,
                                   n: i64, channels: i32, height: i32, width: i32,
                                   num_classes: i32, out: *mut *mut sat_dataset) -> i32;
    pub fn sat_dataset_destroy(ds: *mut sat_dataset);
    pub fn sat_dataset_last_error(ds: *const sat_dataset) -> *const c_char;
    pub fn sat_dataset_size(ds: *const sat_dataset) -> i64;
    pub fn sat_dataset_shape(ds: *const sat_dataset, channels: *mut i32, height: *mut i32,
                             width: *mut i32, num_classes: *mut i32) -> i32;
    pub fn sat_dataset_images(ds: *const sat_dataset) -> *const f32;
    pub fn sat_dataset_labels(ds: *const sat_dataset) -> *const i32;
    pub fn sat_dataset_split(ds: *mut sat_dataset, count: i64, seed: u64,
                             held_out: *mut *mut sat_dataset) -> i32;
    pub fn sat_dataset_truncate(ds: *mut sat_dataset, count: i64) -> i32;
    pub fn sat_dataset_shuffle(ds: *mut sat_dataset, seed: u64, epoch: i64, aug: u32) -> i32;
    pub fn sat_dataset_batch(ds: *mut sat_dataset, index: i64, batch: i64, x: *mut f32,
                             labels: *mut i32, n_out: *mut i64) -> i32;

    pub fn sat_model_meta_init(meta: *mut sat_model_meta, size: u32) -> i32;
    pub fn sat_model_save(model: *const sat_model, meta: *const sat_model_meta,
                          path: *const c_char) -> i32;
    pub fn sat_model_load(ctx: *mut sat_context, path: *const c_char, meta: *mut sat_model_meta,
                          out: *mut *mut sat_model) -> i32;
    pub fn sat_model_save_buffer(model: *const sat_model, meta: *const sat_model_meta,
                                 buf_out: *mut *mut c_void, size_out: *mut usize) -> i32;
    pub fn sat_model_load_buffer(ctx: *mut sat_context, buf: *const c_void, size: usize,
                                 meta: *mut sat_model_meta, out: *mut *mut sat_model) -> i32;
    pub fn sat_onnx_import_opts_init(opts: *mut sat_onnx_import_opts, size: u32) -> i32;
    pub fn sat_model_load_onnx(ctx: *mut sat_context, path: *const c_char, opts: *const sat_onnx_import_opts,
                               out: *mut *mut sat_model) -> i32;
    pub fn sat_model_load_onnx_buffer(ctx: *mut sat_context, buf: *const c_void, size: usize,
                                      opts: *const sat_onnx_import_opts, out: *mut *mut sat_model) -> i32;
    pub fn sat_onnx_export_opts_init(opts: *mut sat_onnx_export_opts, size: u32) -> i32;
    pub fn sat_model_save_onnx(model: *const sat_model, path: *const c_char, opts: *const sat_onnx_export_opts)
                               -> i32;
    pub fn sat_model_save_onnx_buffer(model: *const sat_model, opts: *const sat_onnx_export_opts,
                                      buf_out: *mut *mut c_void, size_out: *mut usize) -> i32;
    pub fn sat_checkpoint_save(trainer: *const sat_trainer, meta: *const sat_model_meta,
                               epoch: i64, batch_index: i64, path: *const c_char) -> i32;
    pub fn sat_checkpoint_load(trainer: *mut sat_trainer, path: *const c_char, epoch: *mut i64,
                               batch_index: *mut i64) -> i32;

    // runtime control of an optimizer
    pub fn sat_optimizer_set_lr(opt: *mut sat_optimizer, lr: f32) -> i32;
    pub fn sat_optimizer_base_lr(opt: *const sat_optimizer) -> f32;
    pub fn sat_optimizer_set_lr_scale(opt: *mut sat_optimizer, offset: i64, count: i64, scale: f32) -> i32;
    pub fn sat_optimizer_get_lr_scale(opt: *const sat_optimizer, scales: *mut f32) -> i32;
    pub fn sat_optimizer_set_frozen(opt: *mut sat_optimizer, mask: *const u8) -> i32;
    pub fn sat_optimizer_get_frozen(opt: *const sat_optimizer, mask: *mut u8) -> i32;

    // checkpoints of a model and an optimizer
    pub fn sat_optimizer_checkpoint_save(opt: *const sat_optimizer, meta: *const sat_model_meta,
                                         path: *const c_char) -> i32;
    pub fn sat_optimizer_checkpoint_load(opt: *mut sat_optimizer, path: *const c_char,
                                         meta: *mut sat_model_meta) -> i32;

    // destroying with a status (SAT_E_STATE while children live)
    pub fn sat_context_destroy_checked(ctx: *mut sat_context) -> i32;
    pub fn sat_model_destroy_checked(model: *mut sat_model) -> i32;
    pub fn sat_optimizer_destroy_checked(opt: *mut sat_optimizer) -> i32;
}
