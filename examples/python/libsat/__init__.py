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

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import signal
import threading
import weakref
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Type, TypeVar, Union, overload)

import numpy as np
import numpy.typing as npt

from . import _ffi
from ._version import __version__
from ._ffi import (SAT_E_ABORTED, SAT_E_FORMAT, SAT_E_INTERNAL, SAT_E_INVALID_ARG,  # noqa: F401
                   SAT_E_IO, SAT_E_NOMEM, SAT_E_NUMERIC, SAT_E_SHAPE, SAT_E_STATE,
                   SAT_E_UNSUPPORTED, SAT_E_VERSION, SAT_OK)

__all__ = ["__version__", "Error", "LibraryVersionError", "Library", "load", "Context", "Model",
           "Exec", "CallbackModel", "Optimizer", "Trainer", "Dataset", "Layer", "Tensor", "preset_spec",
           "activations"]

#: A filesystem path.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: What `library=` accepts: a loaded Library, a path to libsat.so, or None (the default one).
LibraryLike = Union["Library", PathLike, None]
#: A name from one of the tables below, or the C constant itself.
Enum = Union[str, int]
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]
#: CallbackModel's logits callable: x (n, C, H, W) -> logits (n, num_classes).
LogitsFn = Callable[[FloatArray], npt.ArrayLike]
#: CallbackModel's input-gradient callable: (x, dlogits) -> gradient like x.
InputGradFn = Callable[[FloatArray, FloatArray], npt.ArrayLike]
#: Context's progress callable: (what, done, total) -> a true value to cancel the call.
ProgressFn = Callable[[str, int, int], Any]
#: Trainer's batch-norm reduction: sums (a float64 view) -> None, after summing it over the
#: ranks in place; raising aborts the trainer's call.
BnReduceFn = Callable[[npt.NDArray[np.float64]], Any]
#: Trainer's gradient-ready callable: (offset, count) -> None, when model.grads[offset:offset +
#: count] is final during compute(); raising aborts the call.
GradReadyFn = Callable[[int, int], Any]

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
#: sat_tensor_info.role by SAT_TENSOR_* id: the keys of Layer.params and Layer.state.
TENSOR_ROLES = ("weight", "bias", "bn_scale", "bn_shift", "act_alpha", "running_mean",
                "running_var")
NORMS = {"linf": 0, "l2": 1}
LOSSES = {"ce": 0, "margin": 1}
BN_MODES = {"inference": 0, "batch": 1, "train": 2}
EXEC_KINDS = {"inference": 0, "input_grad": 1, "input-grad": 1, "train": 2}
OPTIMIZERS = {"sgd": 0, "adam": 1, "adamw": 2}
SCHEDULES = {"constant": 0, "step": 1, "cosine": 2, "onecycle": 3}
TRAIN_METHODS = {"standard": 0, "pgd": 1, "fast": 2, "free": 3, "trades": 4}
DATA_FORMATS = {"idx": 0, "cifar10": 1}
SPLITS = {"train": 0, "test": 1}
AUG = {"none": 0, "crop": 1, "flip": 2}


class Error(Exception):
    """A libsat call failed. `status` is the SAT_E_* code, `message` the library's text."""

    def __init__(self, status: int, message: str, status_string: str = "") -> None:
        self.status = int(status)
        self.message = message or status_string
        self.status_string = status_string
        super().__init__(f"{self.message} [{status_string or 'status'} {self.status}]")


class LibraryVersionError(ImportError):
    """The libsat found is not a version this package can use (another major version, or
    older than the package). Raised by `import libsat` and by `libsat.load`."""


def _s(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b else ""


# --------------------------------------------------------------------------------------
# Library loading
# --------------------------------------------------------------------------------------

class Library:
    """A loaded libsat. Most code never needs this: Context(library=...) accepts a path."""

    def __init__(self, path: Optional[PathLike] = None) -> None:
        self.raw = _ffi.RawLibrary(path)
        self.path: str = self.raw.path
        _check_version(self.version_info, self.path)

    def has(self, name: str) -> bool:
        return self.raw.has(name)

    @property
    def version(self) -> str:
        return _s(self.raw.version_string())

    @property
    def version_info(self) -> Tuple[int, int, int]:
        """(major, minor, patch) of the loaded library."""
        v = [ctypes.c_int32() for _ in range(3)]
        self.raw.version(*(ctypes.byref(a) for a in v))
        return (v[0].value, v[1].value, v[2].value)

    @property
    def build_info(self) -> str:
        return _s(self.raw.build_info())

    def status_string(self, status: int) -> str:
        return _s(self.raw.status_string(status))

    def check(self, status: int, message_fn: Optional[Callable[[], Optional[bytes]]] = None
              ) -> None:
        """Raises Error for a failed status; message_fn() gives the handle's message."""
        if status == SAT_OK:
            return
        msg = _s(message_fn()) if message_fn else _s(self.raw.last_error())
        raise Error(status, msg, self.status_string(status))

    @overload
    def activation(self, act: None) -> None: ...
    @overload
    def activation(self, act: Enum) -> int: ...

    def activation(self, act: Optional[Enum]) -> Optional[int]:
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

    def activation_name(self, act: int) -> str:
        return _s(self.raw.activation_name(act))


def _version_tuple(text: str) -> Tuple[int, int, int]:
    major, minor, patch = (int(v) for v in text.split(".")[:3])
    return major, minor, patch


def _check_version(found: Tuple[int, int, int], path: str) -> None:
    """The package calls the functions of libsat __version__; within a major version the
    library only adds functions (docs/abi.md), so any library of the same major version
    and at least this minor.patch works."""
    want = _version_tuple(__version__)
    if found[0] != want[0] or found < want:
        raise LibraryVersionError(
            f"the libsat Python package {__version__} needs libsat {want[0]}.x at least "
            f"{__version__}, but {path} is libsat {'.'.join(map(str, found))}; install a "
            f"matching libsat or name one with LIBSAT_LIBRARY=/path/to/libsat.so.{want[0]}")


_libraries: Dict[str, Library] = {}


def load(path: Optional[PathLike] = None) -> Library:
    """The Library at `path` (or found through $LIBSAT_LIBRARY, pkg-config or the system's
    search), loaded once. Raises LibraryVersionError for a libsat of the wrong version."""
    key = _ffi.find_library(path)
    lib = _libraries.get(key)
    if lib is None:
        lib = _libraries[key] = Library(key)
    return lib


def _library(library: LibraryLike) -> Library:
    if isinstance(library, Library):
        return library
    return load(library)


# --------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------

def _f32(a: npt.ArrayLike) -> FloatArray:
    """a as a float32 C-contiguous array: the same object when it already is one."""
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if not arr.flags.aligned:
        arr = arr.copy()
    return arr


def _i32(a: npt.ArrayLike) -> IntArray:
    arr = np.ascontiguousarray(a, dtype=np.int32)
    return arr.reshape(-1)


def _pf(arr: Optional[FloatArray]) -> Any:
    return arr.ctypes.data_as(_ffi.PF) if arr is not None else None


def _pi(arr: Optional[IntArray]) -> Any:
    return arr.ctypes.data_as(_ffi.PI32) if arr is not None else None


def _out(out: Optional[np.ndarray], shape: Tuple[int, ...], dtype: type = np.float32
         ) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if (not isinstance(out, np.ndarray) or out.dtype != dtype or not out.flags.c_contiguous
            or not out.flags.writeable or out.size != int(np.prod(shape))):
        raise ValueError(f"out must be a writeable C-contiguous {np.dtype(dtype).name} array "
                         f"of {int(np.prod(shape))} elements")
    return out


class _View:
    """Exposes library memory to numpy. The numpy array (and every array derived from it)
    keeps this object as its base; while it lives, its owner counts it as a dependant, so
    owner.close() only marks the handle closed and the memory stays valid until the last
    view is gone."""

    def __init__(self, owner: "_Handle", ptr: Any, count: int, ctype: str, readonly: bool
                 ) -> None:
        addr = ctypes.cast(ptr, ctypes.c_void_p).value or 0
        self.__array_interface__ = {"shape": (int(count),), "typestr": ctype,
                                    "data": (addr, readonly), "version": 3}
        owner._live_children += 1
        weakref.finalize(self, owner._release_child)


def _view(owner: "_Handle", ptr: Any, count: int, ctype: str = "<f4", readonly: bool = False
          ) -> np.ndarray:
    if count <= 0 or not ptr:
        return np.empty(0, dtype=np.dtype(ctype))
    return np.asarray(_View(owner, ptr, count, ctype, readonly))


# --------------------------------------------------------------------------------------
# Options structs
# --------------------------------------------------------------------------------------

def _enum(value: Enum, table: Mapping[str, int], what: str) -> int:
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError(f"unknown {what} '{value}' (known: {', '.join(sorted(table))})")
    return int(value)


_S = TypeVar("_S", bound=ctypes.Structure)


def _opts(lib: Library, cls: Type[_S], init_name: str, kwargs: Mapping[str, Any],
          enums: Optional[Mapping[str, Tuple[Optional[Mapping[str, int]], str]]] = None) -> _S:
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


def _struct_dict(s: ctypes.Structure) -> Dict[str, Any]:
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
ONNX_ENUMS = {"replace_act_from": _ACT, "replace_act_to": _ACT}


def _meta(lib: Library, meta: Optional[Union[Mapping[str, Any], _ffi.ModelMeta]]
          ) -> Optional[_ffi.ModelMeta]:
    if meta is None:
        return None
    if isinstance(meta, _ffi.ModelMeta):
        return meta
    return _opts(lib, _ffi.ModelMeta, "model_meta_init", dict(meta), META_ENUMS)


# --------------------------------------------------------------------------------------
# Handles
# --------------------------------------------------------------------------------------

_H = TypeVar("_H", bound="_Handle")


class _Handle:
    """Owns one C handle. The C rule "destroy a handle before the handles it was made from"
    is kept even when the garbage collector finalises a reference cycle in arbitrary order
    (which happens, e.g., with objects held by a traceback): a handle that still has live
    dependants (handles made from it, numpy views of its memory) only marks itself closed
    and is destroyed when the last dependant goes."""

    _destroy: str = ""
    # A parent handle's status-returning destroy: it refuses while a child made outside this
    # package (through the raw functions) is alive, and close() then raises.
    _destroy_checked: str = ""
    _last_error: str = ""

    def __init__(self, lib: Library) -> None:
        self._lib = lib
        self._h: Optional[int] = None
        self._parents: Tuple[_Handle, ...] = ()
        self._live_children = 0
        self._close_pending = False

    def _adopt(self, h: Optional[int], *parents: _Handle) -> None:
        """Takes ownership of handle h, made from (and depending on) `parents`."""
        self._h = h
        self._parents = parents
        for p in parents:
            p._live_children += 1

    @property
    def handle(self) -> int:
        if not self._h or self._close_pending:
            raise Error(SAT_E_STATE, f"{type(self).__name__} is closed", "wrong state")
        return self._h

    def _check(self, status: int) -> None:
        if status == SAT_E_ABORTED:
            ctx = self._context_of()
            if ctx is not None:
                ctx._raise_progress_error()
        h = self._h
        self._lib.check(status, lambda: getattr(self._lib.raw, self._last_error)(h))

    def _check_long(self, fn: Callable[..., int], *args: Any) -> None:
        """Calls fn(*args), a C call that reports progress: Ctrl-C during it cancels it."""
        ctx = self._context_of()
        with ctx._interruptible() if ctx is not None else contextlib.nullcontext():
            status = fn(*args)
        self._check(status)

    def _context_of(self) -> Optional["Context"]:
        """The Context this handle was made from (through its parents)."""
        if isinstance(self, Context):
            return self
        for p in self._parents:
            ctx = p._context_of()
            if ctx is not None:
                return ctx
        return None

    @property
    def closed(self) -> bool:
        """True once close() was called (the handle can no longer be used), even while
        dependants still keep the C handle alive."""
        return not self._h or self._close_pending

    def close(self) -> None:
        """Destroys the handle now, or as soon as its dependants (the handles made from it
        and the numpy views of its memory) are gone; either way the object cannot be used
        any more. Also done when the object is garbage collected."""
        if not self._h:
            return
        if self._live_children > 0:
            self._close_pending = True
            return
        if self._destroy_checked:
            # Raises, keeping the handle usable, while the library still counts children.
            self._check(getattr(self._lib.raw, self._destroy_checked)(self._h))
            h, self._h = self._h, None
        else:
            h, self._h = self._h, None
            getattr(self._lib.raw, self._destroy)(h)
        parents, self._parents = self._parents, ()
        for p in parents:
            p._release_child()

    def _release_child(self) -> None:
        self._live_children -= 1
        if self._close_pending and self._live_children == 0:
            self.close()

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def last_error(self) -> str:
        return _s(getattr(self._lib.raw, self._last_error)(self._h)) if self._h else ""


class Context(_Handle):
    """Threads, seed and (optionally) a log callback shared by the handles made with it.

    progress(what, done, total), if given (or set later with set_progress), is called by
    the long calls made with the context's handles (attacks, evaluate, autoattack,
    Trainer.step, Dataset.load) on the calling thread, with `done` of `total` units of
    work finished; a true return value cancels the call, which then raises Error with
    status SAT_E_ABORTED (a cancelled Trainer.step leaves the model and optimizer as they
    were). An exception raised by progress cancels the call too and is raised from it.
    Ctrl-C during a long call works the same way, with or without a progress callable:
    the call stops at its next report and raises KeyboardInterrupt.
    """

    _destroy = "context_destroy"
    _destroy_checked = "context_destroy_checked"
    _last_error = "context_last_error"

    def __init__(self, num_threads: Optional[int] = None, seed: Optional[int] = None,
                 log: Optional[Callable[[int, str], None]] = None,
                 log_level: Optional[int] = None, library: LibraryLike = None,
                 progress: Optional[ProgressFn] = None) -> None:
        super().__init__(_library(library))
        o = _opts(self._lib, _ffi.ContextOpts, "context_opts_init",
                  {"num_threads": num_threads, "seed": seed, "log_level": log_level})
        self._log_cb = None
        if log is not None:
            # kept on self: the C side holds the pointer as long as the context lives
            send = log
            self._log_cb = _ffi.LOG_FN(lambda user, level, msg: send(int(level), _s(msg)))
            o.log_fn = self._log_cb
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.context_create(ctypes.byref(o), ctypes.byref(h)))
        self._adopt(h.value)
        self._progress = progress
        self._progress_error: Optional[BaseException] = None
        self._interrupted = False
        # Always installed, so that Ctrl-C reaches long calls; a weak reference, so that the
        # callback does not keep the context alive.
        me = weakref.ref(self)

        def report(user: Any, what: bytes, done: int, total: int) -> int:
            ctx = me()
            return ctx._report(what, done, total) if ctx is not None else 0

        self._c_progress = _ffi.PROGRESS_FN(report)
        self._check(self._lib.raw.context_set_progress(self.handle, self._c_progress, None))

    def set_progress(self, progress: Optional[ProgressFn]) -> None:
        """Sets (None: removes) the progress callable; see the class documentation."""
        _ = self.handle  # refuses a closed context
        self._progress = progress

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        """During a long call, Ctrl-C only sets a flag that the next progress report turns
        into a cancel (raised as KeyboardInterrupt by the call): Python's own handler would
        raise inside the ctypes callback, where the exception is lost. Only on the main
        thread and with Python's default handler; other handlers are left alone."""
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            yield
            return
        self._interrupted = False

        def on_sigint(signum: int, frame: Any) -> None:
            self._interrupted = True

        old = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)
            missed, self._interrupted = self._interrupted, False
        if missed:  # arrived after the last report: not lost
            raise KeyboardInterrupt

    def _report(self, what: bytes, done: int, total: int) -> int:
        if self._interrupted:
            self._interrupted = False
            self._progress_error = KeyboardInterrupt()
            return 1
        try:
            fn = self._progress
            return 1 if fn is not None and fn(_s(what), int(done), int(total)) else 0
        except BaseException as e:  # KeyboardInterrupt included: raised again by the call
            self._progress_error = e
            return 1

    def _raise_progress_error(self) -> None:
        err, self._progress_error = self._progress_error, None
        if err is not None:
            raise err

    @property
    def library(self) -> Library:
        return self._lib

    def set_num_threads(self, n: int) -> None:
        self._check(self._lib.raw.context_set_num_threads(self.handle, int(n)))


def preset_spec(name: str, input_shape: Sequence[int], num_classes: int,
                mean: Optional[npt.ArrayLike] = None, std: Optional[npt.ArrayLike] = None,
                library: LibraryLike = None) -> str:
    """Spec text of a preset ('mlp', 'madry-cnn', 'small-cnn', 'resnet20', 'preact-resnet18',
    'wrn-D-K' such as 'wrn-28-10', 'resnet50', 'resnext50-32x4d', 'efficientnet-b0';
    sat_preset_spec in sat.h lists them with their parameter counts)."""
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
        return ctypes.string_at(out).decode()
    finally:
        lib.raw.free(out)


def activations(library: LibraryLike = None) -> List[str]:
    """Names of the activations the library knows, in id order."""
    lib = _library(library)
    names: List[str] = []
    i = 0
    while True:
        n = lib.raw.activation_name(i)
        if not n:
            return names
        names.append(_s(n))
        i += 1


class _Classifier(_Handle):
    """What libsat's attacks see of a classifier: input shape, classes, and the attack
    entry points (sat_attack / sat_autoattack or their callback-model twins)."""

    _raw_attack: str = ""
    _raw_autoattack: str = ""
    input_shape: Tuple[int, ...]
    num_classes: int
    example_size: int

    # -- batches ----------------------------------------------------------------------

    @overload
    def _batch(self, x: npt.ArrayLike) -> Tuple[FloatArray, None, int]: ...
    @overload
    def _batch(self, x: npt.ArrayLike, labels: npt.ArrayLike) -> Tuple[FloatArray, IntArray, int]: ...

    def _batch(self, x: npt.ArrayLike, labels: Optional[npt.ArrayLike] = None
               ) -> Tuple[FloatArray, Optional[IntArray], int]:
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

    def attack(self, x: npt.ArrayLike, labels: npt.ArrayLike,
               targets: Optional[npt.ArrayLike] = None, trace: bool = False,
               out: Optional[FloatArray] = None, opts: Optional[_ffi.AttackOpts] = None,
               **kwargs: Any) -> Union[FloatArray, Tuple[FloatArray, Dict[str, FloatArray]]]:
        """Adversarial examples for (x, labels). Keywords are sat_attack_opts fields:
        method ('fgsm', 'pgd', 'apgd-ce', 'apgd-dlr', 'fab', 'square'), norm ('linf', 'l2'),
        loss ('ce', 'margin'), eps, step_size, steps, restarts, random_start, targeted,
        bn_mode, seed. With trace=True returns (x_adv, {'loss': [...], 'accuracy': [...]})."""
        x, labels, n = self._batch(x, labels)
        o = opts if opts is not None else _opts(self._lib, _ffi.AttackOpts, "attack_opts_init",
                                                kwargs, ATTACK_ENUMS)
        t = _i32(targets) if targets is not None else None
        if t is not None and t.size != n:
            raise ValueError(f"{t.size} targets for {n} examples")
        x_adv = _out(out, x.shape)
        tr, tl, ta = None, None, None  # type: Any, Any, Any
        if trace:
            cap = max(1, o.steps) * max(1, o.restarts)
            tl = np.zeros(cap, dtype=np.float32)
            ta = np.zeros(cap, dtype=np.float32)
            tr = _ffi.AttackTrace(ctypes.sizeof(_ffi.AttackTrace), cap, 0, 0, _pf(tl), _pf(ta))
        self._check_long(getattr(self._lib.raw, self._raw_attack),
                         self.handle, ctypes.byref(o), _pf(x), _pi(labels), _pi(t), n, _pf(x_adv),
                         ctypes.byref(tr) if tr is not None else None)
        if trace:
            return x_adv, {"loss": tl[:tr.count].copy(), "accuracy": ta[:tr.count].copy()}
        return x_adv

    def autoattack(self, x: npt.ArrayLike, labels: npt.ArrayLike, return_adv: bool = False,
                   **kwargs: Any) -> Dict[str, Any]:
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
        self._check_long(getattr(self._lib.raw, self._raw_autoattack),
                         self.handle, ctypes.byref(o), _pf(x), _pi(labels), n, _pf(x_adv),
                         _pi(outcome), ctypes.byref(r))
        k = r.num_attacks
        out: Dict[str, Any] = {
            "clean_accuracy": r.clean_accuracy, "robust_accuracy": r.robust_accuracy,
            "attacks": [AA_ATTACKS[a] for a in list(r.attacks)[:k]],
            "accuracy_after": list(r.accuracy_after)[:k],
            "flags": {name for bit, name in FLAGS.items() if r.flags & bit},
            "square_only": int(r.square_only), "outcome": outcome}
        if return_adv:
            out["x_adv"] = x_adv
        return out


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor of a layer: `data` is a numpy view of its range of the model's parameter
    (or state) block in its logical row-major shape, sharing memory with the model (dense
    weight [out, in], conv weight [out, in, k, k], as torch.nn.Linear / Conv2d)."""

    role: str                  #: a TENSOR_ROLES name: 'weight', 'bias', 'bn_scale', ...
    offset: int                #: index of its first float in the block
    shape: Tuple[int, ...]     #: logical shape
    data: FloatArray           #: view of shape `shape` into the block (writable)


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer (spec line) of a model, as sat_model_layer_info reports it."""

    index: int                 #: position in the model (0 is the input)
    op: str                    #: spec keyword: 'input', 'conv', 'dense', 'bn', 'act', ...
    name: str                  #: its name= label, '' if none
    line: int                  #: spec line
    inputs: Tuple[int, ...]    #: indices of the layers it reads (two for 'add')
    output_shape: Tuple[int, int, int]  #: (channels, height, width) per example
    units: int                 #: dense/conv outputs, else 0
    kernel: int                #: conv/pooling window, else 0
    stride: int                #: conv/pooling stride, else 0
    padding: int               #: conv/maxpool padding, else 0
    activation: Optional[str]  #: act: the activation's name, else None
    act_param: float           #: act: its parameter, else NaN
    params: Dict[str, Tensor]  #: its tensors of the parameter block, by role, in block order
    state: Dict[str, Tensor]   #: its tensors of the state block (batch-norm statistics)


class Model(_Classifier):
    """A classifier built from a text spec or a preset.

    Options (keywords): activation ('silu', 'relu', ... or an id; without it the spec's own: a
    preset's original activation, ReLU in the ResNets and SiLU in EfficientNet, else 'silu'),
    act_param, max_batch,
    attack_backward_act, attack_backward_param, train_backward_act, train_backward_param,
    attack_bn_mode ('inference' | 'batch'), seed, activation_checkpointing (0 | 1: keep only
    segment ends and run each segment's forward again in the backward; same results, less
    memory, about one more forward per backward).
    """

    _destroy = "model_destroy"
    _destroy_checked = "model_destroy_checked"
    _last_error = "model_last_error"
    _raw_attack = "attack"
    _raw_autoattack = "autoattack"

    def __init__(self, ctx: Context, spec: str, **opts: Any) -> None:
        super().__init__(ctx._lib)
        self._ctx = ctx  # the context must outlive the model
        o = _opts(self._lib, _ffi.ModelOpts, "model_opts_init", opts, MODEL_ENUMS)
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.model_create(ctx.handle, spec.encode(), ctypes.byref(o),
                                                   ctypes.byref(h)))
        self._adopt(h.value, ctx)
        self._cache_shape()

    @classmethod
    def _wrap(cls, ctx: Context, h: Optional[int]) -> Model:
        m = cls.__new__(cls)
        _Handle.__init__(m, ctx._lib)
        m._ctx = ctx
        m._adopt(h, ctx)
        m._cache_shape()
        return m

    def _cache_shape(self) -> None:
        c, h, w, k = (ctypes.c_int32() for _ in range(4))
        self._check(self._lib.raw.model_shape(self._h, ctypes.byref(c), ctypes.byref(h),
                                              ctypes.byref(w), ctypes.byref(k)))
        self.input_shape = (c.value, h.value, w.value)
        self.num_classes = k.value
        self.example_size = c.value * h.value * w.value

    @classmethod
    def preset(cls, ctx: Context, name: str, input_shape: Sequence[int], num_classes: int,
               mean: Optional[npt.ArrayLike] = None, std: Optional[npt.ArrayLike] = None,
               **opts: Any) -> Model:
        return cls(ctx, preset_spec(name, input_shape, num_classes, mean, std, ctx._lib), **opts)

    @property
    def context(self) -> Context:
        return self._ctx

    @property
    def spec(self) -> str:
        return _s(self._lib.raw.model_spec(self.handle))

    @property
    def max_batch(self) -> int:
        return int(self._lib.raw.model_max_batch(self.handle))

    @property
    def param_count(self) -> int:
        return int(self._lib.raw.model_param_count(self.handle))

    @property
    def params(self) -> FloatArray:
        """The flat parameter block as a float32 array sharing memory with the model
        (writing it changes the model). The array keeps the model's memory alive: close()
        takes effect once the last such view is gone."""
        return _view(self, self._lib.raw.model_params(self.handle), self.param_count)

    @property
    def grads(self) -> FloatArray:
        """The flat gradient block (filled by train_backward), shared with the model."""
        return _view(self, self._lib.raw.model_grads(self.handle), self.param_count)

    @property
    def state(self) -> FloatArray:
        """Batch-norm running statistics, shared with the model."""
        return _view(self, self._lib.raw.model_state(self.handle),
                     int(self._lib.raw.model_state_count(self.handle)))

    @property
    def layer_count(self) -> int:
        """Number of layers, the input layer included."""
        return int(self._lib.raw.model_layer_count(self.handle))

    def layer(self, index: int) -> Layer:
        """Layer `index` (0 = input, in spec order) with numpy views of its tensors."""
        li = _ffi.LayerInfo()
        li.struct_size = ctypes.sizeof(li)
        self._check(self._lib.raw.model_layer_info(self.handle, int(index), ctypes.byref(li)))
        blocks = (self.params, self.state)

        def tensors(infos: Any, count: int, block: FloatArray) -> Dict[str, Tensor]:
            out: Dict[str, Tensor] = {}
            for t in infos[:count]:
                shape = tuple(int(d) for d in t.shape[:t.ndim])
                view = block[t.offset:t.offset + t.count].reshape(shape)
                out[TENSOR_ROLES[t.role]] = Tensor(TENSOR_ROLES[t.role], int(t.offset), shape,
                                                   view)
            return out

        inputs = tuple(i for i in (li.input0, li.input1) if i >= 0)
        return Layer(index=int(index), op=_s(li.op_name), name=_s(li.name), line=li.line,
                     inputs=inputs, output_shape=(li.channels, li.height, li.width),
                     units=li.units, kernel=li.kernel, stride=li.stride, padding=li.padding,
                     activation=(self._lib.activation_name(li.activation)
                                 if li.activation >= 0 else None),
                     act_param=float(li.act_param),
                     params=tensors(li.params, li.num_params, blocks[0]),
                     state=tensors(li.state, li.num_state, blocks[1]))

    def layers(self) -> List[Layer]:
        """Every layer in spec order (a topological order: inputs come first). Each
        Tensor.data is a view into the model's blocks, so copying a PyTorch state_dict in is
        `layer.params["weight"].data[...] = w.numpy()`."""
        return [self.layer(i) for i in range(self.layer_count)]

    def opts(self) -> Dict[str, Any]:
        o = _ffi.ModelOpts()
        o.struct_size = ctypes.sizeof(o)
        self._check(self._lib.raw.model_get_opts(self.handle, ctypes.byref(o)))
        return _struct_dict(o)

    def decay_mask(self) -> npt.NDArray[np.uint8]:
        out = np.empty(self.param_count, dtype=np.uint8)
        self._check(self._lib.raw.model_decay_mask(
            self.handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))))
        return out

    def set_backward(self, attack_act: Enum = -1, attack_param: float = math.nan,
                     train_act: Enum = -1, train_param: float = math.nan) -> None:
        self._check(self._lib.raw.model_set_backward(
            self.handle, self._lib.activation(attack_act), attack_param,
            self._lib.activation(train_act), train_param))

    def set_activation_checkpointing(self, on: bool) -> None:
        """Activation checkpointing on or off (each execution is planned again by its next
        forward pass); a loaded model starts with it off."""
        self._check(self._lib.raw.model_set_activation_checkpointing(self.handle, 1 if on else 0))

    def clone(self) -> Model:
        h = ctypes.c_void_p()
        self._check(self._lib.raw.model_clone(self.handle, ctypes.byref(h)))
        return Model._wrap(self._ctx, h.value)

    def forward(self, x: npt.ArrayLike, out: Optional[FloatArray] = None) -> FloatArray:
        """Logits (n, num_classes), batch norm in inference mode."""
        x, _, n = self._batch(x)
        logits = _out(out, (n, self.num_classes))
        self._check(self._lib.raw.model_forward(self.handle, _pf(x), n, _pf(logits)))
        return logits

    def input_gradient(self, x: npt.ArrayLike, labels: npt.ArrayLike
                       ) -> Tuple[FloatArray, FloatArray, FloatArray]:
        """(losses[n], grad like x, logits[n, classes]): per-example cross-entropy and the
        gradient of their sum with respect to the input (the attack plan)."""
        x, labels, n = self._batch(x, labels)
        losses = np.empty(n, dtype=np.float32)
        grad = np.empty(x.shape, dtype=np.float32)
        logits = np.empty((n, self.num_classes), dtype=np.float32)
        self._check(self._lib.raw.model_input_gradient(self.handle, _pf(x), _pi(labels), n,
                                                       _pf(losses), _pf(grad), _pf(logits)))
        return losses, grad, logits

    def train_backward(self, x: npt.ArrayLike, labels: npt.ArrayLike,
                       label_smoothing: float = 0.0) -> Tuple[float, int]:
        """Mean cross-entropy and its parameter gradient (into `grads`); returns
        (loss, correct). Parameters are not changed."""
        x, labels, n = self._batch(x, labels)
        loss, correct = ctypes.c_float(), ctypes.c_int64()
        self._check(self._lib.raw.model_train_backward(self.handle, _pf(x), _pi(labels), n,
                                                       label_smoothing, ctypes.byref(loss),
                                                       ctypes.byref(correct)))
        return float(loss.value), int(correct.value)

    def evaluate(self, x: npt.ArrayLike, labels: npt.ArrayLike, **kwargs: Any
                 ) -> Dict[str, Any]:
        """Clean and robust accuracy; keywords are sat_eval_opts fields (steps=[1, 10, 20],
        eps, norm, restarts, apgd, ...). Returns a dict."""
        x, labels, n = self._batch(x, labels)
        o = _opts(self._lib, _ffi.EvalOpts, "eval_opts_init", kwargs, EVAL_ENUMS)
        r = _ffi.EvalResult()
        r.struct_size = ctypes.sizeof(r)
        self._check_long(self._lib.raw.evaluate, self.handle, ctypes.byref(o), _pf(x), _pi(labels),
                         n, ctypes.byref(r))
        out = _struct_dict(r)
        k = r.num_steps
        out["steps"] = list(o.steps)[:k]
        out["robust_accuracy"] = out["robust_accuracy"][:k]
        return out

    # -- files ------------------------------------------------------------------------

    def save(self, path: PathLike, meta: Optional[Mapping[str, Any]] = None) -> None:
        """Writes a model file; meta is a dict of sat_model_meta fields (norm, eps, ...)."""
        m = _meta(self._lib, meta)
        self._check(self._lib.raw.model_save(self.handle, ctypes.byref(m) if m else None,
                                             os.fsencode(path)))

    def save_buffer(self, meta: Optional[Mapping[str, Any]] = None) -> bytes:
        m = _meta(self._lib, meta)
        buf, size = ctypes.c_void_p(), ctypes.c_size_t()
        self._check(self._lib.raw.model_save_buffer(self.handle, ctypes.byref(m) if m else None,
                                                    ctypes.byref(buf), ctypes.byref(size)))
        return self._take_bytes(buf, size)

    def save_onnx(self, path: PathLike, **opts: Any) -> None:
        """Writes the model as a standard ONNX file (opset 13; input 'input' [batch, C, H,
        W], output 'logits'), atomically. Options (keywords): opset (13 to 17), batch_dim
        (0: a symbolic batch dimension, else that fixed size). torch and onnxruntime read
        the file; Model.load_onnx reads it back."""
        o = _opts(self._lib, _ffi.OnnxExportOpts, "onnx_export_opts_init", opts)
        self._check(self._lib.raw.model_save_onnx(self.handle, os.fsencode(path), ctypes.byref(o)))

    def save_onnx_buffer(self, **opts: Any) -> bytes:
        """save_onnx() into bytes (onnx.load_from_string reads them)."""
        o = _opts(self._lib, _ffi.OnnxExportOpts, "onnx_export_opts_init", opts)
        buf, size = ctypes.c_void_p(), ctypes.c_size_t()
        self._check(self._lib.raw.model_save_onnx_buffer(self.handle, ctypes.byref(o), ctypes.byref(buf),
                                                         ctypes.byref(size)))
        return self._take_bytes(buf, size)

    def _take_bytes(self, buf: ctypes.c_void_p, size: ctypes.c_size_t) -> bytes:
        """The bytes of a buffer the library handed out, which is freed here."""
        try:
            return ctypes.string_at(buf, size.value)
        finally:
            self._lib.raw.free(buf)

    @classmethod
    def load(cls, ctx: Context, path: PathLike, with_meta: bool = False
             ) -> Union[Model, Tuple[Model, Dict[str, Any]]]:
        lib = ctx._lib
        meta = _opts(lib, _ffi.ModelMeta, "model_meta_init", {})
        h = ctypes.c_void_p()
        lib.check(lib.raw.model_load(ctx.handle, os.fsencode(path), ctypes.byref(meta),
                                     ctypes.byref(h)))
        m = cls._wrap(ctx, h.value)
        return (m, _struct_dict(meta)) if with_meta else m

    @classmethod
    def load_buffer(cls, ctx: Context, data: bytes, with_meta: bool = False
                    ) -> Union[Model, Tuple[Model, Dict[str, Any]]]:
        lib = ctx._lib
        data = bytes(data)
        meta = _opts(lib, _ffi.ModelMeta, "model_meta_init", {})
        h = ctypes.c_void_p()
        lib.check(lib.raw.model_load_buffer(ctx.handle, data, len(data), ctypes.byref(meta),
                                            ctypes.byref(h)))
        m = cls._wrap(ctx, h.value)
        return (m, _struct_dict(meta)) if with_meta else m

    @classmethod
    def load_onnx(cls, ctx: Context, path: PathLike, **opts: Any) -> Model:
        """A model from an ONNX file (torch.onnx.export's output): the graph becomes a spec,
        its initializers the parameters and batch-norm statistics. Options (keywords):
        replace_act_from, replace_act_to ('relu' -> 'silu': the paper's change, keeping the
        weights), replace_act_param, max_batch. An op libsat lacks raises Error with status
        'unsupported' naming the node."""
        lib = ctx._lib
        o = _opts(lib, _ffi.OnnxImportOpts, "onnx_import_opts_init", opts, ONNX_ENUMS)
        h = ctypes.c_void_p()
        lib.check(lib.raw.model_load_onnx(ctx.handle, os.fsencode(path), ctypes.byref(o),
                                          ctypes.byref(h)))
        return cls._wrap(ctx, h.value)

    @classmethod
    def load_onnx_buffer(cls, ctx: Context, data: bytes, **opts: Any) -> Model:
        """load_onnx() from the bytes of an ONNX model (onnx.ModelProto.SerializeToString())."""
        lib = ctx._lib
        data = bytes(data)
        o = _opts(lib, _ffi.OnnxImportOpts, "onnx_import_opts_init", opts, ONNX_ENUMS)
        h = ctypes.c_void_p()
        lib.check(lib.raw.model_load_onnx_buffer(ctx.handle, data, len(data), ctypes.byref(o),
                                                 ctypes.byref(h)))
        return cls._wrap(ctx, h.value)



class Exec(_Handle):
    """An execution of a model: the memory that runs it, apart from its weights. For a
    loss of your own: forward() with a chosen batch-norm mode, then backward() from your
    dL/dlogits to the input and/or the parameters (the reduction, per example or mean, is
    how you scale dlogits). Several Exec objects of one model may run on different threads
    at once (inference and input gradients only read the model).

    kind: 'inference' (forward only, no backward memory), 'input_grad' (backward to the
    input) or 'train' (default: also parameter gradients and bn_mode='train').
    max_batch: the largest batch of one forward; 0 (default) the model's.
    """

    _destroy = "exec_destroy"
    _last_error = "exec_last_error"

    def __init__(self, model: Model, kind: Enum = "train", max_batch: int = 0) -> None:
        super().__init__(model._lib)
        self._model = model
        o = _opts(self._lib, _ffi.ExecOpts, "exec_opts_init", {"kind": kind, "max_batch": max_batch},
                  {"kind": (EXEC_KINDS, "execution kind")})
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.exec_create(model.handle, ctypes.byref(o), ctypes.byref(h)))
        self._adopt(h.value, model)
        self._x_shape: Tuple[int, ...] = ()

    @classmethod
    def of_model(cls, model: Model) -> Exec:
        """The model's own execution (sat_model_exec): the one its own calls use, so it
        costs no second arena. The model frees it; this object keeps the model alive."""
        h = model._lib.raw.model_exec(model.handle)
        if not h:
            model._check(SAT_E_NOMEM)
        e = cls.__new__(cls)
        _Handle.__init__(e, model._lib)
        e._model = model
        e._adopt(h, model)
        e._x_shape = ()
        return e

    @property
    def model(self) -> Model:
        return self._model

    @property
    def last_batch(self) -> int:
        """The batch size of the last forward, which backward() runs from (0: none)."""
        return int(self._lib.raw.exec_last_batch(self.handle))

    def forward(self, x: npt.ArrayLike, bn_mode: Enum = "inference",
                out: Optional[FloatArray] = None) -> FloatArray:
        """Logits (n, num_classes), keeping what backward() needs. bn_mode: 'inference',
        'batch' or 'train' (batch statistics and the running ones updated: writes the
        model; 'train' executions only)."""
        x, _, n = self._model._batch(x)
        logits = _out(out, (n, self._model.num_classes))
        self._check(self._lib.raw.exec_forward(self.handle, _pf(x), n,
                                               _enum(bn_mode, BN_MODES, "batch-norm mode"), _pf(logits)))
        self._x_shape = x.shape if x.ndim > 1 else (n,) + tuple(self._model.input_shape)
        return logits

    def backward(self, dlogits: npt.ArrayLike, input_grad: bool = True,
                 param_grads: Union[bool, FloatArray, None] = None
                 ) -> Tuple[Optional[FloatArray], Optional[FloatArray]]:
        """Backward of the last forward from dL/dlogits (n, num_classes). Returns
        (dx shaped like the forward's x or None, parameter gradients or None).
        param_grads: None/False (not wanted), True (a new array) or a float32 array of
        param_count values to overwrite (e.g. model.grads)."""
        dl = _f32(dlogits)
        n = self.last_batch
        if n and dl.size != n * self._model.num_classes:
            raise ValueError(f"dlogits of {dl.size} values is not {n} x {self._model.num_classes} "
                             f"(the last forward's batch)")
        dx = (np.empty((max(n, 1),) + tuple(self._model.input_shape), dtype=np.float32)
              if input_grad else None)
        if dx is not None and self._x_shape and int(np.prod(self._x_shape)) == dx.size:
            dx = dx.reshape(self._x_shape)
        grads: Optional[FloatArray] = None
        if isinstance(param_grads, np.ndarray):
            grads = _out(param_grads, (self._model.param_count,))
        elif param_grads:
            grads = np.empty(self._model.param_count, dtype=np.float32)
        self._check(self._lib.raw.exec_backward(self.handle, _pf(dl), _pf(dx), _pf(grads)))
        return dx, grads

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

    def __init__(self, ctx: Context, input_shape: Sequence[int], num_classes: int,
                 logits_fn: LogitsFn, input_grad_fn: Optional[InputGradFn] = None,
                 max_batch: int = 128) -> None:
        super().__init__(ctx._lib)
        self._ctx = ctx
        self.input_shape = tuple(int(v) for v in input_shape)
        self.num_classes = int(num_classes)
        self.example_size = int(np.prod(self.input_shape))
        self._error: Optional[BaseException] = None
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

    def _trampoline(self, fn: Callable[..., npt.ArrayLike], grad: bool
                    ) -> Callable[..., int]:
        shape, k = self.input_shape, self.num_classes

        def call(user: Any, xp: Any, n: int, ap: Any, bp: Any) -> int:
            try:
                x = np.ctypeslib.as_array(xp, shape=(n,) + shape)
                if grad:
                    res = fn(x, np.ctypeslib.as_array(ap, shape=(n, k)))
                    want, dst = (n,) + shape, bp
                else:
                    res = fn(x)
                    want, dst = (n, k), ap
                arr = np.asarray(res, dtype=np.float32)
                if arr.size != int(np.prod(want)):
                    raise ValueError(f"callback returned shape {arr.shape}, expected {want}")
                np.ctypeslib.as_array(dst, shape=want)[...] = arr.reshape(want)
                return 0
            except BaseException as e:  # reported by the call that ran the attack
                self._error = e
                return 1

        if grad:
            return call
        return lambda user, xp, n, zp: call(user, xp, n, zp, None)

    def _check(self, status: int) -> None:
        err, self._error = self._error, None
        if err is not None and status == SAT_E_ABORTED:
            raise err
        super()._check(status)

    @property
    def context(self) -> Context:
        return self._ctx


class Optimizer(_Handle):
    """SGD / Adam / AdamW with a schedule for one model. Keywords are
    sat_optimizer_opts fields: kind, lr, momentum, nesterov, weight_decay, schedule,
    total_steps, warmup_steps, milestones=[...], gamma, ..."""

    _destroy = "optimizer_destroy"
    _destroy_checked = "optimizer_destroy_checked"
    _last_error = "optimizer_last_error"

    def __init__(self, model: Model, **opts: Any) -> None:
        super().__init__(model._lib)
        self._model = model
        o = _opts(self._lib, _ffi.OptimizerOpts, "optimizer_opts_init", opts, OPTIMIZER_ENUMS)
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.optimizer_create(model.handle, ctypes.byref(o),
                                                       ctypes.byref(h)))
        self._adopt(h.value, model)

    def step(self) -> None:
        self._check(self._lib.raw.optimizer_step(self.handle))

    @property
    def lr(self) -> float:
        return float(self._lib.raw.optimizer_lr(self.handle))

    @property
    def step_count(self) -> int:
        return int(self._lib.raw.optimizer_step_count(self.handle))

    @step_count.setter
    def step_count(self, step: int) -> None:
        self._check(self._lib.raw.optimizer_set_step_count(self.handle, int(step)))

    @property
    def state(self) -> FloatArray:
        count = ctypes.c_int64()
        ptr = self._lib.raw.optimizer_state(self.handle, ctypes.byref(count))
        return _view(self, ptr, count.value)

    @property
    def base_lr(self) -> float:
        """The base learning rate, which the schedule scales (lr is the scaled one)."""
        return float(self._lib.raw.optimizer_base_lr(self.handle))

    @base_lr.setter
    def base_lr(self, lr: float) -> None:
        self._check(self._lib.raw.optimizer_set_lr(self.handle, float(lr)))

    def set_lr_scale(self, offset: int, count: int, scale: float) -> None:
        """Scales the learning rate of parameters [offset, offset + count) of the flat block
        (a parameter group, e.g. one layer's weights)."""
        self._check(self._lib.raw.optimizer_set_lr_scale(self.handle, int(offset), int(count),
                                                         float(scale)))

    @property
    def lr_scale(self) -> FloatArray:
        """A copy of the per-parameter learning-rate scales."""
        out = np.empty(self._model.param_count, dtype=np.float32)
        self._check(self._lib.raw.optimizer_get_lr_scale(self.handle, _pf(out)))
        return out

    @property
    def frozen(self) -> npt.NDArray[np.uint8]:
        """A copy of the freeze mask (1 = frozen)."""
        out = np.empty(self._model.param_count, dtype=np.uint8)
        self._check(self._lib.raw.optimizer_get_frozen(
            self.handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))))
        return out

    @frozen.setter
    def frozen(self, mask: Optional[npt.ArrayLike]) -> None:
        """Sets the freeze mask (param_count values of 0 or 1, booleans work); None
        unfreezes everything."""
        if mask is None:
            self._check(self._lib.raw.optimizer_set_frozen(self.handle, None))
            return
        m = np.ascontiguousarray(mask, dtype=np.uint8).reshape(-1)
        if m.size != self._model.param_count:
            raise ValueError(f"frozen: {m.size} values for {self._model.param_count} parameters")
        self._check(self._lib.raw.optimizer_set_frozen(
            self.handle, m.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))))

    def save_checkpoint(self, path: PathLike, meta: Optional[Mapping[str, Any]] = None) -> None:
        """Saves the model and this optimizer, without a trainer."""
        m = _meta(self._lib, meta)
        self._check(self._lib.raw.optimizer_checkpoint_save(
            self.handle, ctypes.byref(m) if m else None, os.fsencode(path)))

    def load_checkpoint(self, path: PathLike) -> Dict[str, Any]:
        """Restores a save_checkpoint() file into the model and this optimizer; returns the
        stored meta."""
        meta = _opts(self._lib, _ffi.ModelMeta, "model_meta_init", {})
        self._check(self._lib.raw.optimizer_checkpoint_load(self.handle, os.fsencode(path),
                                                            ctypes.byref(meta)))
        return _struct_dict(meta)


class Trainer(_Handle):
    """Adversarial training steps. Keywords are sat_trainer_opts fields: method ('pgd',
    'fast', 'free', 'trades', 'standard'), norm, eps, step_size, steps, random_start,
    clean_fraction, attack_bn_mode, label_smoothing, free_replays, trades_beta, seed, rank,
    rank_count.

    bn_reduce (synchronised batch norm, sat_bn_reduce_fn): a callable given each batch-norm
    layer's sums as a float64 array to replace, in place, by their sums over all ranks (for
    mpi4py: ``comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)``); an exception it raises ends
    the step (nothing changed) and is raised again by that step.

    grad_ready (overlapping the gradient reduction with the backward, sat_grad_ready_fn): a
    callable given (offset, count) by compute() as soon as model.grads[offset:offset + count]
    is final, per layer from the block's end down to 0 (for mpi4py: start
    ``comm.Iallreduce(MPI.IN_PLACE, grads[offset:offset + count], op=MPI.SUM)`` and wait for
    the requests after compute()); an exception it raises ends compute() as for bn_reduce."""

    _destroy = "trainer_destroy"
    _last_error = "trainer_last_error"

    def __init__(self, model: Model, optimizer: Optimizer, bn_reduce: Optional[BnReduceFn] = None,
                 grad_ready: Optional[GradReadyFn] = None, **opts: Any) -> None:
        super().__init__(model._lib)
        self._model, self._optimizer = model, optimizer  # borrowed by the trainer
        self._error: Optional[BaseException] = None
        o = _opts(self._lib, _ffi.TrainerOpts, "trainer_opts_init", opts, TRAINER_ENUMS)
        if bn_reduce is not None:
            reduce = bn_reduce
            self._bn_reduce_cb = _ffi.BN_REDUCE_FN(self._guarded(
                lambda user, sums, count: reduce(np.ctypeslib.as_array(sums, shape=(int(count),)))))
            o.bn_reduce = self._bn_reduce_cb  # kept alive here
        if grad_ready is not None:
            ready = grad_ready
            self._grad_ready_cb = _ffi.GRAD_READY_FN(self._guarded(
                lambda user, offset, count: ready(int(offset), int(count))))
            o.grad_ready = self._grad_ready_cb  # kept alive here
        h = ctypes.c_void_p()
        self._lib.check(self._lib.raw.trainer_create(model.handle, optimizer.handle,
                                                     ctypes.byref(o), ctypes.byref(h)))
        self._adopt(h.value, model, optimizer)

    @property
    def model(self) -> Model:
        return self._model

    @property
    def optimizer(self) -> Optimizer:
        return self._optimizer

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., int]:
        """A C callback running fn, an exception becoming the refusal 1."""
        def call(*args: Any) -> int:
            try:
                fn(*args)
                return 0
            except BaseException as e:  # raised again by the step that called it
                self._error = e
                return 1
        return call

    def _check(self, status: int) -> None:
        err, self._error = self._error, None
        if err is not None and status == SAT_E_ABORTED:
            raise err
        super()._check(status)

    def step(self, x: npt.ArrayLike, labels: npt.ArrayLike) -> Dict[str, float]:
        """One training step; returns {'loss', 'adv_accuracy', 'clean_accuracy', 'lr'}."""
        x, labels, n = self._model._batch(x, labels)
        st = _ffi.StepStats()
        st.struct_size = ctypes.sizeof(st)
        self._check_long(self._lib.raw.train_step, self.handle, _pf(x), _pi(labels), n,
                         ctypes.byref(st))
        return _struct_dict(st)

    def compute(self, x: npt.ArrayLike, labels: npt.ArrayLike) -> Dict[str, float]:
        """The gradient half of a step (sat_train_compute): the batch's mean gradient into
        model.grads, weights unchanged; reduce it across ranks, then apply(). Returns the
        stats of step()."""
        x, labels, n = self._model._batch(x, labels)
        st = _ffi.StepStats()
        st.struct_size = ctypes.sizeof(st)
        self._check_long(self._lib.raw.train_compute, self.handle, _pf(x), _pi(labels), n,
                         ctypes.byref(st))
        return _struct_dict(st)

    def apply(self) -> None:
        """The update half of a step (sat_train_apply): the optimizer on model.grads."""
        self._check(self._lib.raw.train_apply(self.handle))

    def save_checkpoint(self, path: PathLike, epoch: int = 0, batch_index: int = 0,
                        meta: Optional[Mapping[str, Any]] = None) -> None:
        m = _meta(self._lib, meta)
        self._check(self._lib.raw.checkpoint_save(self.handle, ctypes.byref(m) if m else None,
                                                  int(epoch), int(batch_index),
                                                  os.fsencode(path)))

    def load_checkpoint(self, path: PathLike) -> Tuple[int, int]:
        """Restores a checkpoint; returns (epoch, batch_index)."""
        e, b = ctypes.c_int64(), ctypes.c_int64()
        self._check(self._lib.raw.checkpoint_load(self.handle, os.fsencode(path),
                                                  ctypes.byref(e), ctypes.byref(b)))
        return int(e.value), int(b.value)


class Dataset(_Handle):
    """Images and labels held by the library: from IDX / CIFAR-10 files or from arrays."""

    _destroy = "dataset_destroy"
    _last_error = "dataset_last_error"

    def __init__(self, ctx: Context, h: Optional[int]) -> None:
        super().__init__(ctx._lib)
        self._ctx = ctx
        self._adopt(h, ctx)

    @classmethod
    def load(cls, ctx: Context, directory: Optional[PathLike] = None, format: Enum = "idx",
             split: Enum = "train") -> Dataset:
        """Loads DIR/{train,t10k}-... (IDX, gzip or plain) or CIFAR-10 binaries. directory
        defaults to the library's default data directory (Debian's Fashion-MNIST)."""
        lib = ctx._lib
        if directory is None:
            directory = _s(lib.raw.default_data_dir())
        h = ctypes.c_void_p()
        with ctx._interruptible():
            st = lib.raw.dataset_load(ctx.handle, _enum(format, DATA_FORMATS, "format"),
                                      os.fsencode(directory), _enum(split, SPLITS, "split"),
                                      ctypes.byref(h))
        if st == SAT_E_ABORTED:
            ctx._raise_progress_error()
        lib.check(st)
        return cls(ctx, h.value)

    @classmethod
    def load_idx(cls, ctx: Context, images_path: PathLike, labels_path: PathLike) -> Dataset:
        lib = ctx._lib
        h = ctypes.c_void_p()
        with ctx._interruptible():
            st = lib.raw.dataset_load_idx(ctx.handle, os.fsencode(images_path),
                                          os.fsencode(labels_path), ctypes.byref(h))
        if st == SAT_E_ABORTED:
            ctx._raise_progress_error()
        lib.check(st)
        return cls(ctx, h.value)

    @classmethod
    def from_arrays(cls, ctx: Context, x: npt.ArrayLike, labels: npt.ArrayLike,
                    num_classes: int) -> Dataset:
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

    def __len__(self) -> int:
        return int(self._lib.raw.dataset_size(self.handle))

    def _shape(self) -> Tuple[int, int, int, int]:
        v = [ctypes.c_int32() for _ in range(4)]
        self._check(self._lib.raw.dataset_shape(self.handle, *(ctypes.byref(a) for a in v)))
        return (v[0].value, v[1].value, v[2].value, v[3].value)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return self._shape()[:3]

    @property
    def num_classes(self) -> int:
        return self._shape()[3]

    @property
    def images(self) -> FloatArray:
        """All images, (n, C, H, W), a read-only view of the library's memory."""
        n = len(self)
        v = _view(self, self._lib.raw.dataset_images(self.handle), n * int(np.prod(self.input_shape)),
                  readonly=True)
        return v.reshape((n,) + self.input_shape)

    @property
    def labels(self) -> IntArray:
        return _view(self, self._lib.raw.dataset_labels(self.handle), len(self), "<i4",
                     readonly=True)

    def shuffle(self, seed: int = 0, epoch: int = 0,
                aug: Union[int, str, Sequence[str]] = 0) -> None:
        """Starts an epoch: seeded order and augmentation ('crop', 'flip', their sum or
        a list of names)."""
        if isinstance(aug, str):
            aug = [aug]
        if not isinstance(aug, int):
            aug = sum(_enum(a, AUG, "augmentation") for a in aug)
        self._check(self._lib.raw.dataset_shuffle(self.handle, int(seed), int(epoch), aug))

    def batch(self, index: int, batch_size: int) -> Tuple[FloatArray, IntArray]:
        """Batch `index` of the current order: (x (n, C, H, W), labels (n,))."""
        x = np.empty((batch_size,) + self.input_shape, dtype=np.float32)
        y = np.empty(batch_size, dtype=np.int32)
        n = ctypes.c_int64()
        self._check(self._lib.raw.dataset_batch(self.handle, int(index), int(batch_size), _pf(x),
                                                _pi(y), ctypes.byref(n)))
        return x[:n.value], y[:n.value]

    def batches(self, batch_size: int) -> Iterator[Tuple[FloatArray, IntArray]]:
        """Iterates over the batches of the current order."""
        count = (len(self) + batch_size - 1) // batch_size
        for i in range(count):
            yield self.batch(i, batch_size)

    def split(self, count: int, seed: int = 0) -> Dataset:
        h = ctypes.c_void_p()
        self._check(self._lib.raw.dataset_split(self.handle, int(count), int(seed),
                                                ctypes.byref(h)))
        return Dataset(self._ctx, h.value)

    def truncate(self, count: int) -> None:
        self._check(self._lib.raw.dataset_truncate(self.handle, int(count)))


# Import fails early, with a message that says what to do, when no usable libsat is found.
try:
    load()
except OSError as e:
    raise ImportError(
        f"the libsat Python package cannot load the libsat C library ({e}); install libsat "
        f"so that pkg-config or the dynamic loader finds it, or name it with "
        f"LIBSAT_LIBRARY=/path/to/libsat.so.0") from e
