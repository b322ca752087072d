"""libsat from Python: Smooth Adversarial Training through ctypes and numpy.

    import numpy as np, libsat
    ctx = libsat.Context(num_threads=2, library="/path/to/libsat.so")  # or $LIBSAT_LIBRARY
    model = libsat.Model.preset(ctx, "madry-cnn", (1, 28, 28), 10, activation="silu")
    logits = model.forward(x)                      # x: (n, 1, 28, 28) float32
    x_adv = model.attack(x, y, eps=0.3, steps=40)
    opt = libsat.Optimizer(model, kind="sgd", lr=0.01)
    trainer = libsat.Trainer(model, opt, method="pgd", eps=0.3, steps=7)
    stats = trainer.step(x, y)

Arrays go in as numpy arrays. A float32 C-contiguous array is passed to the library as is
(no copy); anything else is converted once. Results come back as new numpy arrays, or
into `out=` arrays. `Model.params` / `Model.grads` are numpy views that share memory with
the model. Every failure of the library raises `libsat.Error` with the status code and
the library's own message ("model spec line 4: unknown layer 'conv3'").
"""

import ctypes
import math
import os

import numpy as np

from . import _ffi
from ._ffi import (SAT_E_ABORTED, SAT_E_FORMAT, SAT_E_INTERNAL, SAT_E_INVALID_ARG,  # noqa: F401
                   SAT_E_IO, SAT_E_NOMEM, SAT_E_NUMERIC, SAT_E_SHAPE, SAT_E_STATE,
                   SAT_E_UNSUPPORTED, SAT_E_VERSION, SAT_OK)

__all__ = ["Error", "Library", "load", "Context", "Model", "CallbackModel", "Optimizer", "Trainer",
           "Dataset", "preset_spec", "activations"]

ATTACK_METHODS = {"fgsm": 0, "pgd": 1, "apgd-ce": 2, "apgd_ce": 2, "apgd-dlr": 3, "apgd_dlr": 3,
                  "fab": 4, "square": 5}
AA_VERSIONS = {"standard": 0, "plus": 1, "rand": 2}
# Names of the attacks of an AutoAttack sequence, indexed by SAT_AA_ATTACK_*.
AA_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square", "apgd-dlr", "fab")
# AutoAttack outcomes of an example besides the index of the attack that broke it.
AA_ROBUST = -1
AA_MISCLASSIFIED = -2
FLAGS = {1: "zero_grad", 2: "nonfinite_grad", 4: "not_converged", 8: "one_step_stronger",
         16: "square_stronger"}
NORMS = {"linf": 0, "l2": 1}
LOSSES = {"ce": 0, "margin": 1}
BN_MODES = {"inference": 0, "batch": 1}
OPTIMIZERS = {"sgd": 0, "adam": 1, "adamw": 2}
SCHEDULES = {"constant": 0, "step": 1, "cosine": 2, "onecycle": 3}
TRAIN_METHODS = {"standard": 0, "pgd": 1, "fast": 2, "free": 3, "trades": 4}
DATA_FORMATS = {"idx": 0, "cifar10": 1}
SPLITS = {"train": 0, "test": 1}
AUG = {"none": 0, "crop": 1, "flip": 2}


class Error(Exception):
    """A libsat call failed. `status` is the SAT_E_* code, `message` the library's text."""

    def __init__(self, status, message, status_string=""):
        self.status = int(status)
        self.message = message or status_string
        self.status_string = status_string
        super().__init__(f"{self.message} [{status_string or 'status'} {self.status}]")


def _s(b):
    return b.decode("utf-8", "replace") if b else ""


# --------------------------------------------------------------------------------------
# Library loading
# --------------------------------------------------------------------------------------

class Library:
    """A loaded libsat. Most code never needs this: Context(library=...) accepts a path."""

    def __init__(self, path=None):
        self.raw = _ffi.RawLibrary(path)
        self.path = self.raw.path

    def has(self, name):
        return self.raw.has(name)

    @property
    def version(self):
        return _s(self.raw.version_string())

    @property
    def build_info(self):
        return _s(self.raw.build_info())

    def status_string(self, status):
        return _s(self.raw.status_string(status))

    def check(self, status, message_fn=None):
        """Raises Error for a failed status; message_fn() gives the handle's message."""
        if status == SAT_OK:
            return
        msg = _s(message_fn()) if message_fn else _s(self.raw.last_error())
        raise Error(status, msg, self.status_string(status))

    def activation(self, act):
        """Activation id from a name ('silu', 'swish', ...) or an int."""
        if act is None:
            return None
        if isinstance(act, str):
            out = ctypes.c_int32()
            st = self.raw.activation_from_name(act.encode(), ctypes.byref(out))
            if st != SAT_OK:
                msg = _s(self.raw.last_error()) or f"unknown activation '{act}'"
                raise Error(st, msg, self.status_string(st))
            return out.value
        return int(act)

    def activation_name(self, act):
        return _s(self.raw.activation_name(act))


_libraries = {}


def load(path=None):
    """The Library at `path` (or found through $LIBSAT_LIBRARY / the system), loaded once."""
    key = _ffi.find_library(path)
    lib = _libraries.get(key)
    if lib is None:
        lib = _libraries[key] = Library(key)
    return lib


def _library(library):
    if isinstance(library, Library):
        return library
    return load(library)


# --------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------

def _f32(a, name="array"):
    """a as a float32 C-contiguous array: the same object when it already is one."""
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if not arr.flags.aligned:
        arr = arr.copy()
    return arr


def _i32(a):
    arr = np.ascontiguousarray(a, dtype=np.int32)
    return arr.reshape(-1)


def _pf(arr):
    return arr.ctypes.data_as(_ffi.PF) if arr is not None else None


def _pi(arr):
    return arr.ctypes.data_as(_ffi.PI32) if arr is not None else None


def _out(out, shape, dtype=np.float32):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if (not isinstance(out, np.ndarray) or out.dtype != dtype or not out.flags.c_contiguous
            or not out.flags.writeable or out.size != int(np.prod(shape))):
        raise ValueError(f"out must be a writeable C-contiguous {np.dtype(dtype).name} array "
                         f"of {int(np.prod(shape))} elements")
    return out


class _View:
    """Exposes library memory to numpy while keeping its owner alive."""

    def __init__(self, owner, ptr, count, ctype="<f4", readonly=False):
        self._owner = owner
        addr = ctypes.cast(ptr, ctypes.c_void_p).value or 0
        self.__array_interface__ = {"shape": (int(count),), "typestr": ctype,
                                    "data": (addr, readonly), "version": 3}


def _view(owner, ptr, count, ctype="<f4", readonly=False):
    if count <= 0 or not ptr:
        return np.empty(0, dtype=np.dtype(ctype))
    return np.asarray(_View(owner, ptr, count, ctype, readonly))


# --------------------------------------------------------------------------------------
# Options structs
# --------------------------------------------------------------------------------------

def _enum(value, table, what):
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError(f"unknown {what} '{value}' (known: {', '.join(sorted(table))})")
    return int(value)


def _opts(lib, cls, init_name, kwargs, enums=None):
    """An options struct initialised by the library's own *_opts_init, then the
    keyword arguments applied. Unknown keywords raise TypeError."""
    o = cls()
    lib.check(getattr(lib.raw, init_name)(ctypes.byref(o), ctypes.sizeof(cls)))
    names = {f[0] for f in cls._fields_} - {"struct_size"}
    enums = enums or {}
    for key, value in kwargs.items():
        if value is None:
            continue
        if key not in names:
            raise TypeError(f"{cls.__name__}: unknown option '{key}' "
                            f"(known: {', '.join(sorted(names))})")
        if key in enums:
            table, what = enums[key]
            value = lib.activation(value) if table is None else _enum(value, table, what)
        field = getattr(o, key)
        if isinstance(field, ctypes.Array):
            arr = getattr(o, key)
            if len(value) > len(arr):
                raise ValueError(f"{key}: at most {len(arr)} entries")
            for i, v in enumerate(value):
                arr[i] = v
            count = {"milestones": "num_milestones", "steps": "num_steps"}.get(key)
            if count and count not in kwargs:
                setattr(o, count, len(value))
        else:
            setattr(o, key, value)
    return o


def _struct_dict(s):
    out = {}
    for name, _ in s._fields_:
        if name == "struct_size" or name.startswith("reserved"):
            continue
        v = getattr(s, name)
        out[name] = list(v) if isinstance(v, ctypes.Array) else v
    return out


_ACT = (None, "activation")
MODEL_ENUMS = {"activation": _ACT, "attack_backward_act": _ACT, "train_backward_act": _ACT,
               "attack_bn_mode": (BN_MODES, "batch-norm mode")}
ATTACK_ENUMS = {"method": (ATTACK_METHODS, "attack"), "norm": (NORMS, "norm"),
                "loss": (LOSSES, "loss"), "bn_mode": (BN_MODES, "batch-norm mode")}
OPTIMIZER_ENUMS = {"kind": (OPTIMIZERS, "optimizer"), "schedule": (SCHEDULES, "schedule")}
TRAINER_ENUMS = {"method": (TRAIN_METHODS, "training method"), "norm": (NORMS, "norm"),
                 "attack_bn_mode": (BN_MODES, "batch-norm mode")}
EVAL_ENUMS = {"norm": (NORMS, "norm")}
AUTOATTACK_ENUMS = {"version": (AA_VERSIONS, "AutoAttack version"), "norm": (NORMS, "norm")}
META_ENUMS = {"norm": (NORMS, "norm"), "method": (TRAIN_METHODS, "training method")}


def _meta(lib, meta):
    if meta is None:
        return None
    if isinstance(meta, _ffi.ModelMeta):
        return meta
    return _opts(lib, _ffi.ModelMeta, "model_meta_init", dict(meta), META_ENUMS)


# --------------------------------------------------------------------------------------
# Handles
# --------------------------------------------------------------------------------------

class _Handle:
    """Owns one C handle. The C rule "destroy a handle before the handles it was made from"
    is kept even when the garbage collector finalises a reference cycle in arbitrary order
    (which happens, e.g., with objects held by a traceback): a handle that still has live
    dependants only marks itself closed and is destroyed when the last dependant goes."""

    _destroy = None
    _last_error = None

    def __init__(self, lib):
        self._lib = lib
        self._h = None
        self._parents = ()
        self._live_children = 0
        self._close_pending = False

    def _adopt(self, h, *parents):
        """Takes ownership of handle h, made from (and depending on) `parents`."""
        self._h = h
        self._parents = parents
        for p in parents:
            p._live_children += 1

    @property
    def handle(self):
        if not self._h or self._close_pending:
            raise Error(SAT_E_STATE, f"{type(self).__name__} is closed", "wrong state")
        return self._h

    def _check(self, status):
        h = self._h
        self._lib.check(status, lambda: getattr(self._lib.raw, self._last_error)(h))

    def close(self):
        """Destroys the handle now, or as soon as the handles made from it are destroyed
        (also done when the object is garbage collected)."""
        if not self._h:
            return
        if self._live_children > 0:
            self._close_pending = True
            return
        h, self._h = self._h, None
        getattr(self._lib.raw, self._destroy)(h)
        parents, self._parents = self._parents, ()
        for p in parents:
            p._live_children -= 1
            if p._close_pending and p._live_children == 0:
                p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def last_error(self):
        return _s(getattr(self._lib.raw, self._last_error)(self._h)) if self._h else ""


class Context(_Handle):
    """Threads, seed and (optionally) a log callback shared by the handles made with it."""

    _destroy = "context_destroy"
    _last_error = "context_last_error"

    def __init__(self, num_threads=None, seed=None, log=None, log_level=None, library=None):
        super().__init__(_library(library))
        o = _opts(self._lib, _ffi.ContextOpts, "context_opts_init",
                  {"num_threads": num_threads, "seed": seed, "log_level": log_level})
        self._log_cb = None
        if log is not None:
            # kept on self: the C side holds the pointer as long as the context lives
            self._log_cb = _ffi.LOG_FN(lambda user, level, msg: log(int(level), _s(msg)))
            o.log_fn = self._log_cb
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.context_create(ctypes.byref(o), ctypes.byref(h)))
        self._adopt(h.value)

    @property
    def library(self):
        return self._lib

    def set_num_threads(self, n):
        self._check(self._lib.raw.context_set_num_threads(self.handle, int(n)))


def preset_spec(name, input_shape, num_classes, mean=None, std=None, library=None):
    """Spec text of a preset ('mlp', 'madry-cnn', 'small-cnn', 'resnet20')."""
    lib = _library(library)
    c, h, w = (int(v) for v in input_shape)
    m = _f32(mean) if mean is not None else None
    s = _f32(std) if std is not None else None
    for arr, what in ((m, "mean"), (s, "std")):
        if arr is not None and arr.size != c:
            raise ValueError(f"{what} needs {c} values")
    out = ctypes.c_void_p()
    lib.check(lib.raw.preset_spec(name.encode(), c, h, w, int(num_classes), _pf(m), _pf(s),
                                  ctypes.byref(out)))
    try:
        return ctypes.string_at(out.value).decode()
    finally:
        lib.raw.free(out)


def activations(library=None):
    """Names of the activations the library knows, in id order."""
    lib = _library(library)
    names, i = [], 0
    while True:
        n = lib.raw.activation_name(i)
        if not n:
            return names
        names.append(_s(n))
        i += 1


class _Classifier(_Handle):
    """What libsat's attacks see of a classifier: input shape, classes, and the attack
    entry points (sat_attack / sat_autoattack or their callback-model twins)."""

    _raw_attack = None
    _raw_autoattack = None

    # -- batches ----------------------------------------------------------------------

    def _batch(self, x, labels=None):
        x = _f32(x)
        if x.ndim == 0 or x.size % self.example_size or (
                x.ndim > 1 and x.shape[0] * self.example_size != x.size):
            raise ValueError(f"x of shape {x.shape} is not a batch of {self.input_shape} examples")
        n = x.size // self.example_size
        if labels is not None:
            labels = _i32(labels)
            if labels.size != n:
                raise ValueError(f"{labels.size} labels for {n} examples")
        return x, labels, n

    def attack(self, x, labels, targets=None, trace=False, out=None, opts=None, **kwargs):
        """Adversarial examples for (x, labels). Keywords are sat_attack_opts fields:
        method ('fgsm', 'pgd', 'apgd-ce', 'apgd-dlr', 'fab', 'square'), norm ('linf', 'l2'), loss ('ce',
        'margin'), eps, step_size, steps, restarts, random_start, targeted, bn_mode, seed.
        With trace=True returns (x_adv, {'loss': [...], 'accuracy': [...]})."""
        x, labels, n = self._batch(x, labels)
        o = opts if opts is not None else _opts(self._lib, _ffi.AttackOpts, "attack_opts_init",
                                                kwargs, ATTACK_ENUMS)
        t = _i32(targets) if targets is not None else None
        if t is not None and t.size != n:
            raise ValueError(f"{t.size} targets for {n} examples")
        x_adv = _out(out, x.shape)
        tr, tl, ta = None, None, None
        if trace:
            cap = max(1, o.steps) * max(1, o.restarts)
            tl = np.zeros(cap, dtype=np.float32)
            ta = np.zeros(cap, dtype=np.float32)
            tr = _ffi.AttackTrace(ctypes.sizeof(_ffi.AttackTrace), cap, 0, 0, _pf(tl), _pf(ta))
        self._check(getattr(self._lib.raw, self._raw_attack)(
            self.handle, ctypes.byref(o), _pf(x), _pi(labels), _pi(t), n, _pf(x_adv),
            ctypes.byref(tr) if tr is not None else None))
        if trace:
            return x_adv, {"loss": tl[:tr.count].copy(), "accuracy": ta[:tr.count].copy()}
        return x_adv

    def autoattack(self, x, labels, return_adv=False, **kwargs):
        """AutoAttack's sequence (sat_autoattack). Keywords: version ('standard', 'plus',
        'rand'), norm ('linf', 'l2'), eps, seed. Returns a dict: clean_accuracy,
        robust_accuracy, attacks (names in the order run), accuracy_after (one per attack),
        flags (set of names), square_only, outcome (int32 per example: AA_ROBUST,
        AA_MISCLASSIFIED or the index in attacks of the attack that broke it), and x_adv when
        return_adv is true."""
        x, labels, n = self._batch(x, labels)
        o = _opts(self._lib, _ffi.AutoattackOpts, "autoattack_opts_init", kwargs, AUTOATTACK_ENUMS)
        r = _ffi.AutoattackResult()
        r.struct_size = ctypes.sizeof(r)
        outcome = np.empty(n, dtype=np.int32)
        x_adv = np.empty(x.shape, dtype=np.float32) if return_adv else None
        self._check(getattr(self._lib.raw, self._raw_autoattack)(
            self.handle, ctypes.byref(o), _pf(x), _pi(labels), n, _pf(x_adv), _pi(outcome),
            ctypes.byref(r)))
        k = r.num_attacks
        out = {"clean_accuracy": r.clean_accuracy, "robust_accuracy": r.robust_accuracy,
               "attacks": [AA_ATTACKS[a] for a in list(r.attacks)[:k]],
               "accuracy_after": list(r.accuracy_after)[:k],
               "flags": {name for bit, name in FLAGS.items() if r.flags & bit},
               "square_only": int(r.square_only), "outcome": outcome}
        if return_adv:
            out["x_adv"] = x_adv
        return out


class Model(_Classifier):
    """A classifier built from a text spec or a preset.

    Options (keywords): activation ('silu', 'relu', ... or an id), act_param, max_batch,
    attack_backward_act, attack_backward_param, train_backward_act, train_backward_param,
    attack_bn_mode ('inference' | 'batch'), seed.
    """

    _destroy = "model_destroy"
    _last_error = "model_last_error"
    _raw_attack = "attack"
    _raw_autoattack = "autoattack"

    def __init__(self, ctx, spec, **opts):
        super().__init__(ctx._lib)
        self._ctx = ctx  # the context must outlive the model
        o = _opts(self._lib, _ffi.ModelOpts, "model_opts_init", opts, MODEL_ENUMS)
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.model_create(ctx.handle, spec.encode(), ctypes.byref(o),
                                                   ctypes.byref(h)))
        self._adopt(h.value, ctx)
        self._cache_shape()

    @classmethod
    def _wrap(cls, ctx, h):
        m = cls.__new__(cls)
        _Handle.__init__(m, ctx._lib)
        m._ctx = ctx
        m._adopt(h, ctx)
        m._cache_shape()
        return m

    def _cache_shape(self):
        c, h, w, k = (ctypes.c_int32() for _ in range(4))
        self._check(self._lib.raw.model_shape(self._h, ctypes.byref(c), ctypes.byref(h),
                                              ctypes.byref(w), ctypes.byref(k)))
        self.input_shape = (c.value, h.value, w.value)
        self.num_classes = k.value
        self.example_size = c.value * h.value * w.value

    @classmethod
    def preset(cls, ctx, name, input_shape, num_classes, mean=None, std=None, **opts):
        return cls(ctx, preset_spec(name, input_shape, num_classes, mean, std, ctx._lib), **opts)

    @property
    def context(self):
        return self._ctx

    @property
    def spec(self):
        return _s(self._lib.raw.model_spec(self.handle))

    @property
    def max_batch(self):
        return int(self._lib.raw.model_max_batch(self.handle))

    @property
    def param_count(self):
        return int(self._lib.raw.model_param_count(self.handle))

    @property
    def params(self):
        """The flat parameter block as a float32 array sharing memory with the model
        (writing it changes the model)."""
        return _view(self, self._lib.raw.model_params(self.handle), self.param_count)

    @property
    def grads(self):
        """The flat gradient block (filled by train_backward), shared with the model."""
        return _view(self, self._lib.raw.model_grads(self.handle), self.param_count)

    @property
    def state(self):
        """Batch-norm running statistics, shared with the model."""
        return _view(self, self._lib.raw.model_state(self.handle),
                     int(self._lib.raw.model_state_count(self.handle)))

    def opts(self):
        o = _ffi.ModelOpts()
        o.struct_size = ctypes.sizeof(o)
        self._check(self._lib.raw.model_get_opts(self.handle, ctypes.byref(o)))
        return _struct_dict(o)

    def decay_mask(self):
        out = np.empty(self.param_count, dtype=np.uint8)
        self._check(self._lib.raw.model_decay_mask(
            self.handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))))
        return out

    def set_backward(self, attack_act=-1, attack_param=math.nan, train_act=-1,
                     train_param=math.nan):
        self._check(self._lib.raw.model_set_backward(
            self.handle, self._lib.activation(attack_act), attack_param,
            self._lib.activation(train_act), train_param))

    def clone(self):
        h = ctypes.c_void_p()
        self._check(self._lib.raw.model_clone(self.handle, ctypes.byref(h)))
        return Model._wrap(self._ctx, h.value)

    def forward(self, x, out=None):
        """Logits (n, num_classes), batch norm in inference mode."""
        x, _, n = self._batch(x)
        logits = _out(out, (n, self.num_classes))
        self._check(self._lib.raw.model_forward(self.handle, _pf(x), n, _pf(logits)))
        return logits

    def input_gradient(self, x, labels):
        """(losses[n], grad like x, logits[n, classes]): per-example cross-entropy and the
        gradient of their sum with respect to the input (the attack plan)."""
        x, labels, n = self._batch(x, labels)
        losses = np.empty(n, dtype=np.float32)
        grad = np.empty(x.shape, dtype=np.float32)
        logits = np.empty((n, self.num_classes), dtype=np.float32)
        self._check(self._lib.raw.model_input_gradient(self.handle, _pf(x), _pi(labels), n,
                                                       _pf(losses), _pf(grad), _pf(logits)))
        return losses, grad, logits

    def train_backward(self, x, labels, label_smoothing=0.0):
        """Mean cross-entropy and its parameter gradient (into `grads`); returns
        (loss, correct). Parameters are not changed."""
        x, labels, n = self._batch(x, labels)
        loss, correct = ctypes.c_float(), ctypes.c_int64()
        self._check(self._lib.raw.model_train_backward(self.handle, _pf(x), _pi(labels), n,
                                                       label_smoothing, ctypes.byref(loss),
                                                       ctypes.byref(correct)))
        return float(loss.value), int(correct.value)

    def evaluate(self, x, labels, **kwargs):
        """Clean and robust accuracy; keywords are sat_eval_opts fields (steps=[1, 10, 20],
        eps, norm, restarts, apgd, ...). Returns a dict."""
        x, labels, n = self._batch(x, labels)
        o = _opts(self._lib, _ffi.EvalOpts, "eval_opts_init", kwargs, EVAL_ENUMS)
        r = _ffi.EvalResult()
        r.struct_size = ctypes.sizeof(r)
        self._check(self._lib.raw.evaluate(self.handle, ctypes.byref(o), _pf(x), _pi(labels), n,
                                           ctypes.byref(r)))
        out = _struct_dict(r)
        k = r.num_steps
        out["steps"] = list(o.steps)[:k]
        out["robust_accuracy"] = out["robust_accuracy"][:k]
        return out

    # -- files ------------------------------------------------------------------------

    def save(self, path, meta=None):
        """Writes a model file; meta is a dict of sat_model_meta fields (norm, eps, ...)."""
        m = _meta(self._lib, meta)
        self._check(self._lib.raw.model_save(self.handle, ctypes.byref(m) if m else None,
                                             os.fsencode(path)))

    def save_buffer(self, meta=None):
        m = _meta(self._lib, meta)
        buf, size = ctypes.c_void_p(), ctypes.c_size_t()
        self._check(self._lib.raw.model_save_buffer(self.handle, ctypes.byref(m) if m else None,
                                                    ctypes.byref(buf), ctypes.byref(size)))
        try:
            return ctypes.string_at(buf.value, size.value)
        finally:
            self._lib.raw.free(buf)

    @classmethod
    def load(cls, ctx, path, with_meta=False):
        lib = ctx._lib
        meta = _opts(lib, _ffi.ModelMeta, "model_meta_init", {})
        h = ctypes.c_void_p()
        lib.check(lib.raw.model_load(ctx.handle, os.fsencode(path), ctypes.byref(meta),
                                     ctypes.byref(h)))
        m = cls._wrap(ctx, h.value)
        return (m, _struct_dict(meta)) if with_meta else m

    @classmethod
    def load_buffer(cls, ctx, data, with_meta=False):
        lib = ctx._lib
        data = bytes(data)
        meta = _opts(lib, _ffi.ModelMeta, "model_meta_init", {})
        h = ctypes.c_void_p()
        lib.check(lib.raw.model_load_buffer(ctx.handle, data, len(data), ctypes.byref(meta),
                                            ctypes.byref(h)))
        m = cls._wrap(ctx, h.value)
        return (m, _struct_dict(meta)) if with_meta else m


class CallbackModel(_Classifier):
    """A classifier libsat did not build (numpy, PyTorch, ...), given as Python callables so
    that libsat's attacks and AutoAttack run on it unchanged:

        logits_fn(x) -> (n, num_classes) array, for x of shape (n, *input_shape)
        input_grad_fn(x, dlogits) -> array like x: the gradient with respect to x of
            sum(dlogits * logits_fn(x)); None allows only gradient-free attacks ('square')

    x and dlogits are float32 views of library memory, valid during the call only (copy
    them to keep them). Batches have at most max_batch examples. An exception raised by a
    callback stops the running attack and is raised again from it.
    """

    _destroy = "callback_model_destroy"
    _last_error = "callback_model_last_error"
    _raw_attack = "callback_attack"
    _raw_autoattack = "callback_autoattack"

    def __init__(self, ctx, input_shape, num_classes, logits_fn, input_grad_fn=None,
                 max_batch=128):
        super().__init__(ctx._lib)
        self._ctx = ctx
        self.input_shape = tuple(int(v) for v in input_shape)
        self.num_classes = int(num_classes)
        self.example_size = int(np.prod(self.input_shape))
        self._error = None
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape {input_shape} is not (channels, height, width)")
        self._c_logits = _ffi.LOGITS_FN(self._trampoline(logits_fn, grad=False))
        self._c_grad = (_ffi.INPUT_GRAD_FN(self._trampoline(input_grad_fn, grad=True))
                        if input_grad_fn is not None else None)
        c, h, w = self.input_shape
        o = _opts(self._lib, _ffi.CallbackModelOpts, "callback_model_opts_init",
                  {"channels": c, "height": h, "width": w, "num_classes": self.num_classes,
                   "max_batch": max_batch})
        o.logits_fn = self._c_logits
        if self._c_grad is not None:
            o.input_grad_fn = self._c_grad
        hnd = ctypes.c_void_p()
        self._lib.check(self._lib.raw.callback_model_create(ctx.handle, ctypes.byref(o),
                                                            ctypes.byref(hnd)))
        self._adopt(hnd.value, ctx)

    def _trampoline(self, fn, grad):
        shape, k = self.input_shape, self.num_classes

        def call(user, xp, n, ap, bp):
            try:
                x = np.ctypeslib.as_array(xp, shape=(n,) + shape)
                if grad:
                    res = fn(x, np.ctypeslib.as_array(ap, shape=(n, k)))
                    want, dst = (n,) + shape, bp
                else:
                    res = fn(x)
                    want, dst = (n, k), ap
                res = np.asarray(res, dtype=np.float32)
                if res.size != int(np.prod(want)):
                    raise ValueError(f"callback returned shape {res.shape}, expected {want}")
                np.ctypeslib.as_array(dst, shape=want)[...] = res.reshape(want)
                return 0
            except BaseException as e:  # reported by the call that ran the attack
                self._error = e
                return 1

        if grad:
            return call
        return lambda user, xp, n, zp: call(user, xp, n, zp, None)

    def _check(self, status):
        err, self._error = self._error, None
        if err is not None and status == SAT_E_ABORTED:
            raise err
        super()._check(status)

    @property
    def context(self):
        return self._ctx


class Optimizer(_Handle):
    """SGD / Adam / AdamW with a schedule for one model. Keywords are
    sat_optimizer_opts fields: kind, lr, momentum, nesterov, weight_decay, schedule,
    total_steps, warmup_steps, milestones=[...], gamma, ..."""

    _destroy = "optimizer_destroy"
    _last_error = "optimizer_last_error"

    def __init__(self, model, **opts):
        super().__init__(model._lib)
        self._model = model
        o = _opts(self._lib, _ffi.OptimizerOpts, "optimizer_opts_init", opts, OPTIMIZER_ENUMS)
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.optimizer_create(model.handle, ctypes.byref(o),
                                                       ctypes.byref(h)))
        self._adopt(h.value, model)

    def step(self):
        self._check(self._lib.raw.optimizer_step(self.handle))

    @property
    def lr(self):
        return float(self._lib.raw.optimizer_lr(self.handle))

    @property
    def step_count(self):
        return int(self._lib.raw.optimizer_step_count(self.handle))

    @step_count.setter
    def step_count(self, step):
        self._check(self._lib.raw.optimizer_set_step_count(self.handle, int(step)))

    @property
    def state(self):
        count = ctypes.c_int64()
        ptr = self._lib.raw.optimizer_state(self.handle, ctypes.byref(count))
        return _view(self, ptr, count.value)


class Trainer(_Handle):
    """Adversarial training steps. Keywords are sat_trainer_opts fields: method ('pgd',
    'fast', 'free', 'trades', 'standard'), norm, eps, step_size, steps, random_start,
    clean_fraction, attack_bn_mode, label_smoothing, free_replays, trades_beta, seed."""

    _destroy = "trainer_destroy"
    _last_error = "trainer_last_error"

    def __init__(self, model, optimizer, **opts):
        super().__init__(model._lib)
        self._model, self._optimizer = model, optimizer  # borrowed by the trainer
        o = _opts(self._lib, _ffi.TrainerOpts, "trainer_opts_init", opts, TRAINER_ENUMS)
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.trainer_create(model.handle, optimizer.handle,
                                                     ctypes.byref(o), ctypes.byref(h)))
        self._adopt(h.value, model, optimizer)

    @property
    def model(self):
        return self._model

    @property
    def optimizer(self):
        return self._optimizer

    def step(self, x, labels):
        """One training step; returns {'loss', 'adv_accuracy', 'clean_accuracy', 'lr'}."""
        x, labels, n = self._model._batch(x, labels)
        st = _ffi.StepStats()
        st.struct_size = ctypes.sizeof(st)
        self._check(self._lib.raw.train_step(self.handle, _pf(x), _pi(labels), n,
                                             ctypes.byref(st)))
        return _struct_dict(st)

    def save_checkpoint(self, path, epoch=0, batch_index=0, meta=None):
        m = _meta(self._lib, meta)
        self._check(self._lib.raw.checkpoint_save(self.handle, ctypes.byref(m) if m else None,
                                                  int(epoch), int(batch_index),
                                                  os.fsencode(path)))

    def load_checkpoint(self, path):
        """Restores a checkpoint; returns (epoch, batch_index)."""
        e, b = ctypes.c_int64(), ctypes.c_int64()
        self._check(self._lib.raw.checkpoint_load(self.handle, os.fsencode(path),
                                                  ctypes.byref(e), ctypes.byref(b)))
        return int(e.value), int(b.value)


class Dataset(_Handle):
    """Images and labels held by the library: from IDX / CIFAR-10 files or from arrays."""

    _destroy = "dataset_destroy"
    _last_error = "dataset_last_error"

    def __init__(self, ctx, h):
        super().__init__(ctx._lib)
        self._ctx = ctx
        self._adopt(h, ctx)

    @classmethod
    def load(cls, ctx, directory=None, format="idx", split="train"):
        """Loads DIR/{train,t10k}-... (IDX, gzip or plain) or CIFAR-10 binaries. directory
        defaults to the library's default data directory (Debian's Fashion-MNIST)."""
        lib = ctx._lib
        if directory is None:
            directory = _s(lib.raw.default_data_dir())
        h = ctypes.c_void_p()
        lib.check(lib.raw.dataset_load(ctx.handle, _enum(format, DATA_FORMATS, "format"),
                                       os.fsencode(directory), _enum(split, SPLITS, "split"),
                                       ctypes.byref(h)))
        return cls(ctx, h.value)

    @classmethod
    def load_idx(cls, ctx, images_path, labels_path):
        lib = ctx._lib
        h = ctypes.c_void_p()
        lib.check(lib.raw.dataset_load_idx(ctx.handle, os.fsencode(images_path),
                                           os.fsencode(labels_path), ctypes.byref(h)))
        return cls(ctx, h.value)

    @classmethod
    def from_arrays(cls, ctx, x, labels, num_classes):
        """x of shape (n, C, H, W) (copied), labels (n,)."""
        lib = ctx._lib
        x = _f32(x)
        if x.ndim != 4:
            raise ValueError("x must have shape (n, C, H, W)")
        labels = _i32(labels)
        n, c, hh, w = x.shape
        h = ctypes.c_void_p()
        lib.check(lib.raw.dataset_from_arrays(ctx.handle, _pf(x), _pi(labels), n, c, hh, w,
                                              int(num_classes), ctypes.byref(h)))
        return cls(ctx, h.value)

    def __len__(self):
        return int(self._lib.raw.dataset_size(self.handle))

    def _shape(self):
        v = [ctypes.c_int32() for _ in range(4)]
        self._check(self._lib.raw.dataset_shape(self.handle, *(ctypes.byref(a) for a in v)))
        return tuple(a.value for a in v)

    @property
    def input_shape(self):
        return self._shape()[:3]

    @property
    def num_classes(self):
        return self._shape()[3]

    @property
    def images(self):
        """All images, (n, C, H, W), a read-only view of the library's memory."""
        n = len(self)
        v = _view(self, self._lib.raw.dataset_images(self.handle), n * int(np.prod(self.input_shape)),
                  readonly=True)
        return v.reshape((n,) + self.input_shape)

    @property
    def labels(self):
        return _view(self, self._lib.raw.dataset_labels(self.handle), len(self), "<i4",
                     readonly=True)

    def shuffle(self, seed=0, epoch=0, aug=0):
        """Starts an epoch: seeded order and augmentation ('crop', 'flip', their sum or
        a list of names)."""
        if isinstance(aug, str):
            aug = [aug]
        if not isinstance(aug, int):
            aug = sum(_enum(a, AUG, "augmentation") for a in aug)
        self._check(self._lib.raw.dataset_shuffle(self.handle, int(seed), int(epoch), aug))

    def batch(self, index, batch_size):
        """Batch `index` of the current order: (x (n, C, H, W), labels (n,))."""
        x = np.empty((batch_size,) + self.input_shape, dtype=np.float32)
        y = np.empty(batch_size, dtype=np.int32)
        n = ctypes.c_int64()
        self._check(self._lib.raw.dataset_batch(self.handle, int(index), int(batch_size), _pf(x),
                                                _pi(y), ctypes.byref(n)))
        return x[:n.value], y[:n.value]

    def batches(self, batch_size):
        """Iterates over the batches of the current order."""
        count = (len(self) + batch_size - 1) // batch_size
        for i in range(count):
            yield self.batch(i, batch_size)

    def split(self, count, seed=0):
        h = ctypes.c_void_p()
        self._check(self._lib.raw.dataset_split(self.handle, int(count), int(seed),
                                                ctypes.byref(h)))
        return Dataset(self._ctx, h.value)

    def truncate(self, count):
        self._check(self._lib.raw.dataset_truncate(self.handle, int(count)))
