"""Raw ctypes declarations of include/sat.h: structures, constants and prototypes.

Only this module knows the C layout. Structures mirror the header field by field; ctypes
applies the same natural alignment as the C compiler, so sizeof matches on every ABI
where the header's fixed-width types are used (which is all of them).
"""

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from typing import Any

c_int32 = ctypes.c_int32
c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_float = ctypes.c_float
c_size_t = ctypes.c_size_t
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
P = ctypes.POINTER

# Status codes (pinned by the header: never renumbered).
SAT_OK = 0
SAT_E_INVALID_ARG = -1
SAT_E_NOMEM = -2
SAT_E_SHAPE = -3
SAT_E_STATE = -4
SAT_E_IO = -5
SAT_E_FORMAT = -6
SAT_E_VERSION = -7
SAT_E_UNSUPPORTED = -8
SAT_E_NUMERIC = -9
SAT_E_ABORTED = -10
SAT_E_INTERNAL = -11

SAT_EVAL_MAX_STEPS = 16
SAT_MAX_MILESTONES = 8
SAT_AA_MAX_ATTACKS = 8
SAT_LAYER_MAX_TENSORS = 4
SAT_LAYER_NAME_MAX = 32

LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int32, c_char_p)
ALLOC_FN = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_size_t, c_size_t)
DEALLOC_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
LOGITS_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, P(c_float), c_int64, P(c_float))
INPUT_GRAD_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, P(c_float), c_int64, P(c_float), P(c_float))
PROGRESS_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, c_char_p, c_int64, c_int64)
BN_REDUCE_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, P(ctypes.c_double), c_int64)
GRAD_READY_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, c_int64, c_int64)


class ContextOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("num_threads", c_int32), ("seed", c_uint64),
                ("log_fn", LOG_FN), ("log_user", c_void_p), ("log_level", c_int32),
                ("reserved0", c_int32), ("alloc_fn", ALLOC_FN), ("dealloc_fn", DEALLOC_FN),
                ("alloc_user", c_void_p)]


class ModelOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("activation", c_int32), ("act_param", c_float),
                ("max_batch", c_int32), ("attack_backward_act", c_int32),
                ("attack_backward_param", c_float), ("train_backward_act", c_int32),
                ("train_backward_param", c_float), ("attack_bn_mode", c_int32),
                ("seed", c_uint64), ("activation_checkpointing", c_int32)]


class ExecOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("kind", c_int32), ("max_batch", c_int64)]


class AttackOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("method", c_int32), ("norm", c_int32),
                ("loss", c_int32), ("eps", c_float), ("step_size", c_float), ("steps", c_int32),
                ("restarts", c_int32), ("random_start", c_int32), ("targeted", c_int32),
                ("bn_mode", c_int32), ("seed", c_uint64)]


class AttackTrace(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("capacity", c_int32), ("count", c_int32),
                ("reserved0", c_int32), ("loss", P(c_float)), ("accuracy", P(c_float))]


class OptimizerOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("kind", c_int32), ("lr", c_float),
                ("momentum", c_float), ("nesterov", c_int32), ("weight_decay", c_float),
                ("decay_biases", c_int32), ("beta1", c_float), ("beta2", c_float),
                ("adam_eps", c_float), ("schedule", c_int32), ("reserved1", c_int32),
                ("total_steps", c_int64),
                ("warmup_steps", c_int64), ("peak_frac", c_float), ("gamma", c_float),
                ("num_milestones", c_int32), ("reserved0", c_int32),
                ("milestones", c_int64 * SAT_MAX_MILESTONES)]


class TrainerOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("method", c_int32), ("norm", c_int32),
                ("eps", c_float), ("step_size", c_float), ("steps", c_int32),
                ("random_start", c_int32), ("clean_fraction", c_float),
                ("attack_bn_mode", c_int32), ("label_smoothing", c_float),
                ("free_replays", c_int32), ("trades_beta", c_float), ("seed", c_uint64),
                ("rank", c_int32), ("rank_count", c_int32), ("bn_reduce", BN_REDUCE_FN),
                ("bn_reduce_user", c_void_p), ("grad_ready", GRAD_READY_FN),
                ("grad_ready_user", c_void_p)]


class StepStats(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_int32), ("loss", c_float),
                ("adv_accuracy", c_float), ("clean_accuracy", c_float), ("lr", c_float)]


class EvalOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("norm", c_int32), ("eps", c_float),
                ("step_size", c_float), ("num_steps", c_int32),
                ("steps", c_int32 * SAT_EVAL_MAX_STEPS), ("restarts", c_int32),
                ("apgd", c_int32), ("apgd_steps", c_int32), ("apgd_targets", c_int32),
                ("batch", c_int32), ("seed", c_uint64)]


class EvalResult(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("num_steps", c_int32), ("n", c_int64),
                ("clean_accuracy", c_float),
                ("robust_accuracy", c_float * SAT_EVAL_MAX_STEPS),
                ("fgsm_accuracy", c_float), ("apgd_accuracy", c_float), ("flags", c_uint32),
                ("reserved0", c_int32)]


class AutoattackOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("version", c_int32), ("norm", c_int32),
                ("eps", c_float), ("seed", c_uint64)]


class AutoattackResult(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("num_attacks", c_int32), ("n", c_int64),
                ("clean_accuracy", c_float), ("robust_accuracy", c_float),
                ("attacks", c_int32 * SAT_AA_MAX_ATTACKS),
                ("accuracy_after", c_float * SAT_AA_MAX_ATTACKS), ("flags", c_uint32),
                ("reserved0", c_int32), ("square_only", c_int64)]


class CallbackModelOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("channels", c_int32), ("height", c_int32),
                ("width", c_int32), ("num_classes", c_int32), ("max_batch", c_int32),
                ("reserved0", c_int32), ("logits_fn", LOGITS_FN),
                ("input_grad_fn", INPUT_GRAD_FN), ("user", c_void_p)]


class TensorInfo(ctypes.Structure):
    _fields_ = [("role", c_int32), ("ndim", c_int32), ("offset", c_int64), ("count", c_int64),
                ("shape", c_int32 * 4)]


class LayerInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("op", c_int32),
                ("op_name", ctypes.c_char * SAT_LAYER_NAME_MAX),
                ("name", ctypes.c_char * SAT_LAYER_NAME_MAX), ("line", c_int32),
                ("input0", c_int32), ("input1", c_int32), ("channels", c_int32),
                ("height", c_int32), ("width", c_int32), ("units", c_int32),
                ("kernel", c_int32), ("stride", c_int32), ("padding", c_int32),
                ("has_bias", c_int32), ("activation", c_int32), ("act_param", c_float),
                ("num_params", c_int32), ("num_state", c_int32), ("reserved0", c_int32),
                ("params", TensorInfo * SAT_LAYER_MAX_TENSORS),
                ("state", TensorInfo * SAT_LAYER_MAX_TENSORS)]


class ModelMeta(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("norm", c_int32), ("eps", c_float),
                ("method", c_int32), ("steps", c_int32), ("epochs", c_int32),
                ("clean_accuracy", c_float), ("robust_accuracy", c_float)]


class OnnxImportOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("replace_act_from", c_int32),
                ("replace_act_to", c_int32), ("replace_act_param", c_float),
                ("max_batch", c_int32)]


class OnnxExportOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("opset", c_int32), ("batch_dim", c_int32)]


# Every struct of sat.h and its mirror (tests/python/test_layout.py compares them with C).
STRUCTS = {
    "sat_context_opts": ContextOpts,
    "sat_model_opts": ModelOpts,
    "sat_exec_opts": ExecOpts,
    "sat_attack_opts": AttackOpts,
    "sat_attack_trace": AttackTrace,
    "sat_optimizer_opts": OptimizerOpts,
    "sat_trainer_opts": TrainerOpts,
    "sat_step_stats": StepStats,
    "sat_eval_opts": EvalOpts,
    "sat_eval_result": EvalResult,
    "sat_autoattack_opts": AutoattackOpts,
    "sat_autoattack_result": AutoattackResult,
    "sat_callback_model_opts": CallbackModelOpts,
    "sat_model_meta": ModelMeta,
    "sat_tensor_info": TensorInfo,
    "sat_layer_info": LayerInfo,
    "sat_onnx_import_opts": OnnxImportOpts,
    "sat_onnx_export_opts": OnnxExportOpts,
}

PF = P(c_float)
PI32 = P(c_int32)
PI64 = P(c_int64)
H = c_void_p  # every opaque handle

# name: (restype, argtypes)
PROTOTYPES = {
    "sat_version_string": (c_char_p, []),
    "sat_version": (None, [PI32, PI32, PI32]),
    "sat_build_info": (c_char_p, []),
    "sat_status_string": (c_char_p, [c_int32]),
    "sat_last_error": (c_char_p, []),
    "sat_free": (None, [c_void_p]),
    # context
    "sat_context_opts_init": (c_int32, [P(ContextOpts), c_uint32]),
    "sat_context_create": (c_int32, [P(ContextOpts), P(H)]),
    "sat_context_destroy": (None, [H]),
    "sat_context_destroy_checked": (c_int32, [H]),
    "sat_context_last_error": (c_char_p, [H]),
    "sat_context_set_num_threads": (c_int32, [H, c_int32]),
    # progress and cancellation
    "sat_context_set_progress": (c_int32, [H, PROGRESS_FN, c_void_p]),
    # activations
    "sat_activation_name": (c_char_p, [c_int32]),
    "sat_activation_from_name": (c_int32, [c_char_p, PI32]),
    "sat_activation_default_param": (c_float, [c_int32]),
    # models
    "sat_model_opts_init": (c_int32, [P(ModelOpts), c_uint32]),
    "sat_preset_spec": (c_int32, [c_char_p, c_int32, c_int32, c_int32, c_int32, PF, PF,
                                  P(c_void_p)]),
    "sat_model_create": (c_int32, [H, c_char_p, P(ModelOpts), P(H)]),
    "sat_model_destroy": (None, [H]),
    "sat_model_destroy_checked": (c_int32, [H]),
    "sat_model_last_error": (c_char_p, [H]),
    "sat_model_clone": (c_int32, [H, P(H)]),
    "sat_model_shape": (c_int32, [H, PI32, PI32, PI32, PI32]),
    "sat_model_max_batch": (c_int64, [H]),
    "sat_model_spec": (c_char_p, [H]),
    "sat_model_get_opts": (c_int32, [H, P(ModelOpts)]),
    "sat_model_set_backward": (c_int32, [H, c_int32, c_float, c_int32, c_float]),
    "sat_model_set_activation_checkpointing": (c_int32, [H, c_int32]),
    "sat_model_param_count": (c_int64, [H]),
    "sat_model_params": (PF, [H]),
    "sat_model_grads": (PF, [H]),
    "sat_model_state_count": (c_int64, [H]),
    "sat_model_state": (PF, [H]),
    # executions
    "sat_exec_opts_init": (c_int32, [P(ExecOpts), c_uint32]),
    "sat_exec_create": (c_int32, [H, P(ExecOpts), P(H)]),
    "sat_exec_destroy": (None, [H]),
    "sat_exec_last_error": (c_char_p, [H]),
    "sat_exec_forward": (c_int32, [H, PF, c_int64, c_int32, PF]),
    "sat_exec_backward": (c_int32, [H, PF, PF, PF]),
    "sat_exec_last_batch": (c_int64, [H]),
    "sat_model_exec": (H, [H]),
    "sat_model_decay_mask": (c_int32, [H, P(ctypes.c_uint8)]),
    "sat_model_forward": (c_int32, [H, PF, c_int64, PF]),
    "sat_model_input_gradient": (c_int32, [H, PF, PI32, c_int64, PF, PF, PF]),
    "sat_model_train_backward": (c_int32, [H, PF, PI32, c_int64, c_float, PF, PI64]),
    # layer introspection
    "sat_model_layer_count": (c_int32, [H]),
    "sat_model_layer_info": (c_int32, [H, c_int32, P(LayerInfo)]),
    # attacks
    "sat_attack_opts_init": (c_int32, [P(AttackOpts), c_uint32]),
    "sat_attack": (c_int32, [H, P(AttackOpts), PF, PI32, PI32, c_int64, PF, P(AttackTrace)]),
    "sat_pgd_attack": (c_int32, [H, P(AttackOpts), PF, PI32, c_int64, PF, P(AttackTrace)]),
    # optimizers
    "sat_optimizer_opts_init": (c_int32, [P(OptimizerOpts), c_uint32]),
    "sat_optimizer_create": (c_int32, [H, P(OptimizerOpts), P(H)]),
    "sat_optimizer_destroy": (None, [H]),
    "sat_optimizer_last_error": (c_char_p, [H]),
    "sat_optimizer_step": (c_int32, [H]),
    "sat_optimizer_lr": (c_float, [H]),
    "sat_optimizer_step_count": (c_int64, [H]),
    "sat_optimizer_state": (PF, [H, PI64]),
    "sat_optimizer_set_step_count": (c_int32, [H, c_int64]),
    "sat_optimizer_destroy_checked": (c_int32, [H]),
    "sat_optimizer_set_lr": (c_int32, [H, c_float]),
    "sat_optimizer_base_lr": (c_float, [H]),
    "sat_optimizer_set_lr_scale": (c_int32, [H, c_int64, c_int64, c_float]),
    "sat_optimizer_get_lr_scale": (c_int32, [H, PF]),
    "sat_optimizer_set_frozen": (c_int32, [H, P(ctypes.c_uint8)]),
    "sat_optimizer_get_frozen": (c_int32, [H, P(ctypes.c_uint8)]),
    # training
    "sat_trainer_opts_init": (c_int32, [P(TrainerOpts), c_uint32]),
    "sat_trainer_create": (c_int32, [H, H, P(TrainerOpts), P(H)]),
    "sat_trainer_destroy": (None, [H]),
    "sat_trainer_last_error": (c_char_p, [H]),
    "sat_train_step": (c_int32, [H, PF, PI32, c_int64, P(StepStats)]),
    "sat_train_compute": (c_int32, [H, PF, PI32, c_int64, P(StepStats)]),
    "sat_train_apply": (c_int32, [H]),
    # evaluation
    "sat_eval_opts_init": (c_int32, [P(EvalOpts), c_uint32]),
    "sat_evaluate": (c_int32, [H, P(EvalOpts), PF, PI32, c_int64, P(EvalResult)]),
    "sat_autoattack_opts_init": (c_int32, [P(AutoattackOpts), c_uint32]),
    "sat_autoattack": (c_int32, [H, P(AutoattackOpts), PF, PI32, c_int64, PF, PI32,
                                 P(AutoattackResult)]),
    # models outside libsat
    "sat_callback_model_opts_init": (c_int32, [P(CallbackModelOpts), c_uint32]),
    "sat_callback_model_create": (c_int32, [H, P(CallbackModelOpts), P(H)]),
    "sat_callback_model_destroy": (None, [H]),
    "sat_callback_model_last_error": (c_char_p, [H]),
    "sat_callback_attack": (c_int32, [H, P(AttackOpts), PF, PI32, PI32, c_int64, PF,
                                      P(AttackTrace)]),
    "sat_callback_autoattack": (c_int32, [H, P(AutoattackOpts), PF, PI32, c_int64, PF, PI32,
                                          P(AutoattackResult)]),
    # datasets
    "sat_default_data_dir": (c_char_p, []),
    "sat_dataset_load": (c_int32, [H, c_int32, c_char_p, c_int32, P(H)]),
    "sat_dataset_load_idx": (c_int32, [H, c_char_p, c_char_p, P(H)]),
    "sat_dataset_from_arrays": (c_int32, [H, PF, PI32, c_int64, c_int32, c_int32, c_int32,
                                          c_int32, P(H)]),
    "sat_dataset_destroy": (None, [H]),
    "sat_dataset_last_error": (c_char_p, [H]),
    "sat_dataset_size": (c_int64, [H]),
    "sat_dataset_shape": (c_int32, [H, PI32, PI32, PI32, PI32]),
    "sat_dataset_images": (PF, [H]),
    "sat_dataset_labels": (PI32, [H]),
    "sat_dataset_split": (c_int32, [H, c_int64, c_uint64, P(H)]),
    "sat_dataset_truncate": (c_int32, [H, c_int64]),
    "sat_dataset_shuffle": (c_int32, [H, c_uint64, c_int64, c_uint32]),
    "sat_dataset_batch": (c_int32, [H, c_int64, c_int64, PF, PI32, PI64]),
    # files
    "sat_model_meta_init": (c_int32, [P(ModelMeta), c_uint32]),
    "sat_model_save": (c_int32, [H, P(ModelMeta), c_char_p]),
    "sat_model_load": (c_int32, [H, c_char_p, P(ModelMeta), P(H)]),
    "sat_model_save_buffer": (c_int32, [H, P(ModelMeta), P(c_void_p), P(c_size_t)]),
    "sat_model_load_buffer": (c_int32, [H, c_void_p, c_size_t, P(ModelMeta), P(H)]),
    "sat_onnx_import_opts_init": (c_int32, [P(OnnxImportOpts), c_uint32]),
    "sat_model_load_onnx": (c_int32, [H, c_char_p, P(OnnxImportOpts), P(H)]),
    "sat_model_load_onnx_buffer": (c_int32, [H, c_void_p, c_size_t, P(OnnxImportOpts), P(H)]),
    "sat_onnx_export_opts_init": (c_int32, [P(OnnxExportOpts), c_uint32]),
    "sat_model_save_onnx": (c_int32, [H, c_char_p, P(OnnxExportOpts)]),
    "sat_model_save_onnx_buffer": (c_int32, [H, P(OnnxExportOpts), P(c_void_p), P(c_size_t)]),
    "sat_checkpoint_save": (c_int32, [H, P(ModelMeta), c_int64, c_int64, c_char_p]),
    "sat_checkpoint_load": (c_int32, [H, c_char_p, PI64, PI64]),
    "sat_optimizer_checkpoint_save": (c_int32, [H, P(ModelMeta), c_char_p]),
    "sat_optimizer_checkpoint_load": (c_int32, [H, c_char_p, P(ModelMeta)]),
}


SONAME = "libsat.so.0"


def _from_pkg_config():
    """libdir/libsat.so.0 of the libsat that pkg-config knows (PKG_CONFIG_PATH honoured),
    or None when there is no pkg-config or it knows no libsat."""
    tool = os.environ.get("PKG_CONFIG") or shutil.which("pkg-config")
    if not tool:
        return None
    try:
        out = subprocess.run([tool, "--variable=libdir", "libsat"], capture_output=True,
                             text=True, timeout=30, check=False)
    except OSError:
        return None
    libdir = out.stdout.strip()
    if out.returncode != 0 or not libdir:
        return None
    path = os.path.join(libdir, SONAME)
    return path if os.path.exists(path) else None


def find_library(path=None):
    """Where to load libsat from: an explicit path, then $LIBSAT_LIBRARY, then the
    libsat that pkg-config knows, then the system's search (ctypes.util.find_library,
    i.e. ldconfig), then the SONAME through the dynamic loader's own search."""
    if path:
        return os.fspath(path)
    env = os.environ.get("LIBSAT_LIBRARY")
    if env:
        return env
    return _from_pkg_config() or ctypes.util.find_library("sat") or SONAME


class _Missing:
    """Stands for a function the loaded library does not export (an older build)."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        raise NotImplementedError(f"{self.name} is not exported by the loaded libsat")


class RawLibrary:
    """The loaded shared object with typed function pointers as attributes (sat_ prefix
    dropped: raw.model_forward(...))."""

    def __init__(self, path=None):
        self.path = find_library(path)
        self.dll = ctypes.CDLL(self.path)
        self.missing = []
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                fn = getattr(self.dll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name[4:], _Missing(name))
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name[4:], fn)

    def __getattr__(self, name: str) -> Any:
        # Only reached for a name that no prototype set: a typing aid (attributes are the
        # typed function pointers set in __init__) and a clear error.
        raise AttributeError(f"libsat has no function sat_{name}")

    def has(self, name):
        """True if the library exports sat_<name> (name given with or without the prefix)."""
        if not name.startswith("sat_"):
            name = "sat_" + name
        return name in PROTOTYPES and name not in self.missing
