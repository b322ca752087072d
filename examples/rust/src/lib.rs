//! Rust bindings of libsat: Smooth Adversarial Training for image classifiers.
//!
//! [`sys`] holds the raw `extern "C"` declarations of `sat.h`; the rest is a safe layer:
//! handles freed by `Drop`, `Result<T, Error>` carrying the library's own message, and
//! slices in and out.
//!
//! ```no_run
//! use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};
//! let ctx = Context::new(1, 0)?;
//! let mut model = Model::preset(&ctx, "madry-cnn", (1, 28, 28), 10, &ModelOpts::new()?)?;
//! let x = vec![0.5f32; 4 * 28 * 28];
//! let y = [1, 2, 3, 4];
//! let logits = model.forward(&x)?;
//! let mut opt = Optimizer::new(&model, &OptimizerOpts::new()?)?;
//! let mut trainer = Trainer::new(&mut model, &mut opt, &TrainerOpts::pgd(0.3, 7)?)?;
//! let stats = trainer.step(&x, &y)?;
//! # Ok::<(), libsat::Error>(())
//! ```
//!
//! Borrowing mirrors the C rules: a model borrows its context; an optimizer and a trainer
//! hold the model mutably while they exist (they change its parameters), and
//! `Trainer::model()` gives read access in between. Handles are neither `Send` nor `Sync`
//! (one handle, one thread, as in C).

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::ptr;

/// Raw declarations of `include/sat.h` (the subset this crate uses, layouts as in C).
#[allow(non_camel_case_types)]
pub mod sys {
    use std::os::raw::{c_char, c_void};

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

    pub const SAT_ACT_SAME: i32 = -1;
    pub const SAT_ACT_RELU: i32 = 0;
    pub const SAT_ACT_SOFTPLUS: i32 = 1;
    pub const SAT_ACT_PSOFTPLUS: i32 = 2;
    pub const SAT_ACT_SILU: i32 = 3;
    pub const SAT_ACT_GELU: i32 = 4;
    pub const SAT_ACT_GELU_TANH: i32 = 5;
    pub const SAT_ACT_ELU: i32 = 6;
    pub const SAT_ACT_CELU: i32 = 7;
    pub const SAT_ACT_SMOOTHRELU: i32 = 8;

    pub const SAT_ATTACK_FGSM: i32 = 0;
    pub const SAT_ATTACK_PGD: i32 = 1;
    pub const SAT_ATTACK_APGD_CE: i32 = 2;
    pub const SAT_ATTACK_APGD_DLR: i32 = 3;
    pub const SAT_NORM_LINF: i32 = 0;
    pub const SAT_NORM_L2: i32 = 1;

    pub const SAT_OPT_SGD: i32 = 0;
    pub const SAT_OPT_ADAM: i32 = 1;
    pub const SAT_OPT_ADAMW: i32 = 2;
    pub const SAT_MAX_MILESTONES: usize = 8;

    pub const SAT_TRAIN_STANDARD: i32 = 0;
    pub const SAT_TRAIN_PGD: i32 = 1;
    pub const SAT_TRAIN_FAST: i32 = 2;
    pub const SAT_TRAIN_FREE: i32 = 3;
    pub const SAT_TRAIN_TRADES: i32 = 4;

    #[repr(C)]
    pub struct sat_context {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct sat_model {
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

    pub type sat_log_fn = Option<unsafe extern "C" fn(*mut c_void, i32, *const c_char)>;
    pub type sat_alloc_fn = Option<unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void>;
    pub type sat_dealloc_fn = Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>;

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

    extern "C" {
        pub fn sat_version_string() -> *const c_char;
        pub fn sat_status_string(status: i32) -> *const c_char;
        pub fn sat_last_error() -> *const c_char;
        pub fn sat_free(ptr: *mut c_void);

        pub fn sat_context_opts_init(opts: *mut sat_context_opts, size: u32) -> i32;
        pub fn sat_context_create(opts: *const sat_context_opts, out: *mut *mut sat_context) -> i32;
        pub fn sat_context_destroy(ctx: *mut sat_context);
        pub fn sat_context_last_error(ctx: *const sat_context) -> *const c_char;

        pub fn sat_activation_from_name(name: *const c_char, act: *mut i32) -> i32;

        pub fn sat_model_opts_init(opts: *mut sat_model_opts, size: u32) -> i32;
        pub fn sat_preset_spec(name: *const c_char, channels: i32, height: i32, width: i32,
                               num_classes: i32, mean: *const f32, std: *const f32,
                               spec_out: *mut *mut c_char) -> i32;
        pub fn sat_model_create(ctx: *mut sat_context, spec: *const c_char,
                                opts: *const sat_model_opts, out: *mut *mut sat_model) -> i32;
        pub fn sat_model_destroy(model: *mut sat_model);
        pub fn sat_model_last_error(model: *const sat_model) -> *const c_char;
        pub fn sat_model_shape(model: *const sat_model, channels: *mut i32, height: *mut i32,
                               width: *mut i32, num_classes: *mut i32) -> i32;
        pub fn sat_model_max_batch(model: *const sat_model) -> i64;
        pub fn sat_model_spec(model: *const sat_model) -> *const c_char;
        pub fn sat_model_param_count(model: *const sat_model) -> i64;
        pub fn sat_model_params(model: *mut sat_model) -> *mut f32;
        pub fn sat_model_grads(model: *mut sat_model) -> *mut f32;
        pub fn sat_model_forward(model: *mut sat_model, x: *const f32, n: i64,
                                 logits: *mut f32) -> i32;
        pub fn sat_model_input_gradient(model: *mut sat_model, x: *const f32, labels: *const i32,
                                        n: i64, losses: *mut f32, grad: *mut f32,
                                        logits: *mut f32) -> i32;
        pub fn sat_model_train_backward(model: *mut sat_model, x: *const f32, labels: *const i32,
                                        n: i64, label_smoothing: f32, loss: *mut f32,
                                        correct: *mut i64) -> i32;

        pub fn sat_attack_opts_init(opts: *mut sat_attack_opts, size: u32) -> i32;
        pub fn sat_attack(model: *mut sat_model, opts: *const sat_attack_opts, x: *const f32,
                          labels: *const i32, targets: *const i32, n: i64, x_adv: *mut f32,
                          trace: *mut sat_attack_trace) -> i32;

        pub fn sat_optimizer_opts_init(opts: *mut sat_optimizer_opts, size: u32) -> i32;
        pub fn sat_optimizer_create(model: *mut sat_model, opts: *const sat_optimizer_opts,
                                    out: *mut *mut sat_optimizer) -> i32;
        pub fn sat_optimizer_destroy(opt: *mut sat_optimizer);
        pub fn sat_optimizer_last_error(opt: *const sat_optimizer) -> *const c_char;
        pub fn sat_optimizer_step(opt: *mut sat_optimizer) -> i32;
        pub fn sat_optimizer_lr(opt: *const sat_optimizer) -> f32;
        pub fn sat_optimizer_step_count(opt: *const sat_optimizer) -> i64;

        pub fn sat_trainer_opts_init(opts: *mut sat_trainer_opts, size: u32) -> i32;
        pub fn sat_trainer_create(model: *mut sat_model, opt: *mut sat_optimizer,
                                  opts: *const sat_trainer_opts,
                                  out: *mut *mut sat_trainer) -> i32;
        pub fn sat_trainer_destroy(trainer: *mut sat_trainer);
        pub fn sat_trainer_last_error(trainer: *const sat_trainer) -> *const c_char;
        pub fn sat_train_step(trainer: *mut sat_trainer, x: *const f32, labels: *const i32, n: i64,
                              stats: *mut sat_step_stats) -> i32;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                               */
/* ------------------------------------------------------------------------------------ */

/// A failed libsat call: the `SAT_E_*` status and the library's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

impl Error {
    fn new(status: i32, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.is_empty() {
            message = status_string(status);
        }
        Error { status, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{} {}]", self.message, status_string(self.status), self.status)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Static description of a status code ("invalid argument", ...).
pub fn status_string(status: i32) -> String {
    unsafe { cstr(sys::sat_status_string(status)) }
}

/// Version of the loaded library ("0.1.0").
pub fn version() -> String {
    unsafe { cstr(sys::sat_version_string()) }
}

unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn check(status: i32, message: impl FnOnce() -> *const c_char) -> Result<()> {
    if status == sys::SAT_OK {
        Ok(())
    } else {
        Err(Error::new(status, unsafe { cstr(message()) }))
    }
}

fn check_tls(status: i32) -> Result<()> {
    check(status, || unsafe { sys::sat_last_error() })
}

/// Creation from a parent handle: the thread-local message, else the parent's.
fn check_create(status: i32, parent: impl FnOnce() -> *const c_char) -> Result<()> {
    if status == sys::SAT_OK {
        return Ok(());
    }
    let mut msg = unsafe { cstr(sys::sat_last_error()) };
    if msg.is_empty() {
        msg = unsafe { cstr(parent()) };
    }
    Err(Error::new(status, msg))
}

fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(sys::SAT_E_INVALID_ARG, format!("{what} contains a NUL byte")))
}

/* ------------------------------------------------------------------------------------ */
/* Options                                                                              */
/* ------------------------------------------------------------------------------------ */

macro_rules! opts_type {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $init:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name(pub $raw);
        impl $name {
            /// The library's defaults (filled by its own `*_opts_init`).
            pub fn new() -> Result<Self> {
                let mut o = std::mem::MaybeUninit::<$raw>::zeroed();
                check_tls(unsafe { $init(o.as_mut_ptr(), std::mem::size_of::<$raw>() as u32) })?;
                Ok($name(unsafe { o.assume_init() }))
            }
        }
        impl std::ops::Deref for $name {
            type Target = $raw;
            fn deref(&self) -> &$raw {
                &self.0
            }
        }
        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $raw {
                &mut self.0
            }
        }
    };
}

opts_type!(
    /// `sat_model_opts`: activation, max batch, backward overrides, seed.
    ModelOpts, sys::sat_model_opts, sys::sat_model_opts_init);
opts_type!(
    /// `sat_attack_opts`: method, norm, eps, steps, restarts, ...
    AttackOpts, sys::sat_attack_opts, sys::sat_attack_opts_init);
opts_type!(
    /// `sat_optimizer_opts`: kind, lr, momentum, weight decay, schedule.
    OptimizerOpts, sys::sat_optimizer_opts, sys::sat_optimizer_opts_init);
opts_type!(
    /// `sat_trainer_opts`: method (PGD-AT, Fast-AT, ...), eps, steps, ...
    TrainerOpts, sys::sat_trainer_opts, sys::sat_trainer_opts_init);

impl ModelOpts {
    /// Defaults with this activation, by name ("silu", "gelu", "smoothrelu", ...).
    pub fn with_activation(name: &str) -> Result<Self> {
        let mut o = Self::new()?;
        o.activation = activation_from_name(name)?;
        Ok(o)
    }
}

impl AttackOpts {
    /// L-inf PGD with `steps` steps in the eps-ball.
    pub fn pgd(eps: f32, steps: i32) -> Result<Self> {
        let mut o = Self::new()?;
        o.method = sys::SAT_ATTACK_PGD;
        o.eps = eps;
        o.steps = steps;
        Ok(o)
    }
}

impl OptimizerOpts {
    pub fn sgd(lr: f32, momentum: f32) -> Result<Self> {
        let mut o = Self::new()?;
        o.kind = sys::SAT_OPT_SGD;
        o.lr = lr;
        o.momentum = momentum;
        Ok(o)
    }
}

impl TrainerOpts {
    /// PGD adversarial training (Madry et al.) with an L-inf attacker.
    pub fn pgd(eps: f32, steps: i32) -> Result<Self> {
        let mut o = Self::new()?;
        o.method = sys::SAT_TRAIN_PGD;
        o.eps = eps;
        o.steps = steps;
        Ok(o)
    }
}

/// Activation id from its name (case-insensitive; "swish" is SiLU).
pub fn activation_from_name(name: &str) -> Result<i32> {
    let c = c_string(name, "activation name")?;
    let mut act = 0i32;
    let st = unsafe { sys::sat_activation_from_name(c.as_ptr(), &mut act) };
    if st != sys::SAT_OK {
        let msg = unsafe { cstr(sys::sat_last_error()) };
        return Err(Error::new(st, if msg.is_empty() { format!("unknown activation '{name}'") } else { msg }));
    }
    Ok(act)
}

/* ------------------------------------------------------------------------------------ */
/* Context                                                                              */
/* ------------------------------------------------------------------------------------ */

/// Threads and the default seed shared by the models made with it.
pub struct Context {
    raw: *mut sys::sat_context,
}

impl Context {
    pub fn new(num_threads: i32, seed: u64) -> Result<Self> {
        let mut o = std::mem::MaybeUninit::<sys::sat_context_opts>::zeroed();
        check_tls(unsafe {
            sys::sat_context_opts_init(o.as_mut_ptr(), std::mem::size_of::<sys::sat_context_opts>() as u32)
        })?;
        let mut o = unsafe { o.assume_init() };
        o.num_threads = num_threads;
        o.seed = seed;
        let mut raw = ptr::null_mut();
        check_tls(unsafe { sys::sat_context_create(&o, &mut raw) })?;
        Ok(Context { raw })
    }

    pub fn as_ptr(&self) -> *mut sys::sat_context {
        self.raw
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        unsafe { sys::sat_context_destroy(self.raw) }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Model                                                                                */
/* ------------------------------------------------------------------------------------ */

/// Result of [`Model::input_gradient`].
#[derive(Clone, Debug)]
pub struct InputGradient {
    /// Cross-entropy per example.
    pub losses: Vec<f32>,
    /// Gradient of the summed loss with respect to the input, like `x`.
    pub grad: Vec<f32>,
    pub logits: Vec<f32>,
}

/// A classifier. Borrows its context.
pub struct Model<'ctx> {
    raw: *mut sys::sat_model,
    shape: (i32, i32, i32),
    num_classes: i32,
    _ctx: PhantomData<&'ctx Context>,
}

impl<'ctx> Model<'ctx> {
    /// Builds a model from a text spec (see sat.h for the grammar).
    pub fn new(ctx: &'ctx Context, spec: &str, opts: &ModelOpts) -> Result<Self> {
        let spec = c_string(spec, "spec")?;
        let mut raw = ptr::null_mut();
        check_tls(unsafe { sys::sat_model_create(ctx.raw, spec.as_ptr(), &opts.0, &mut raw) })?;
        let mut m = Model { raw, shape: (0, 0, 0), num_classes: 0, _ctx: PhantomData };
        let (mut c, mut h, mut w, mut k) = (0, 0, 0, 0);
        m.check(unsafe { sys::sat_model_shape(raw, &mut c, &mut h, &mut w, &mut k) })?;
        m.shape = (c, h, w);
        m.num_classes = k;
        Ok(m)
    }

    /// A preset ("mlp", "madry-cnn", "small-cnn", "resnet20") for input (C, H, W).
    pub fn preset(ctx: &'ctx Context, name: &str, input: (i32, i32, i32), num_classes: i32,
                  opts: &ModelOpts) -> Result<Self> {
        Self::new(ctx, &preset_spec(name, input, num_classes)?, opts)
    }

    pub fn as_ptr(&self) -> *mut sys::sat_model {
        self.raw
    }
    /// Input shape per example (C, H, W).
    pub fn input_shape(&self) -> (i32, i32, i32) {
        self.shape
    }
    pub fn num_classes(&self) -> usize {
        self.num_classes as usize
    }
    pub fn example_size(&self) -> usize {
        (self.shape.0 * self.shape.1 * self.shape.2) as usize
    }
    pub fn max_batch(&self) -> i64 {
        unsafe { sys::sat_model_max_batch(self.raw) }
    }
    pub fn spec(&self) -> String {
        unsafe { cstr(sys::sat_model_spec(self.raw)) }
    }
    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_model_last_error(self.raw)) }
    }
    pub fn param_count(&self) -> usize {
        unsafe { sys::sat_model_param_count(self.raw) as usize }
    }
    /// The flat parameter block (spec order, weight then bias per layer).
    pub fn params(&self) -> &[f32] {
        unsafe { std::slice::from_raw_parts(sys::sat_model_params(self.raw), self.param_count()) }
    }
    pub fn params_mut(&mut self) -> &mut [f32] {
        unsafe { std::slice::from_raw_parts_mut(sys::sat_model_params(self.raw), self.param_count()) }
    }
    /// The gradient block written by [`Model::train_backward`].
    pub fn grads(&self) -> &[f32] {
        unsafe { std::slice::from_raw_parts(sys::sat_model_grads(self.raw), self.param_count()) }
    }

    fn check(&self, status: i32) -> Result<()> {
        let raw = self.raw;
        check(status, || unsafe { sys::sat_model_last_error(raw) })
    }

    fn batch(&self, x: &[f32], labels: Option<&[i32]>, what: &str) -> Result<i64> {
        let es = self.example_size();
        if es == 0 || x.len() % es != 0 {
            return Err(Error::new(sys::SAT_E_SHAPE,
                                  format!("{what}: {} values are not whole examples of {es}", x.len())));
        }
        let n = x.len() / es;
        if let Some(l) = labels {
            if l.len() != n {
                return Err(Error::new(sys::SAT_E_SHAPE,
                                      format!("{what}: {} labels for {n} examples", l.len())));
            }
        }
        Ok(n as i64)
    }

    /// Logits, `n * num_classes` values, for `x` holding n examples.
    ///
    /// Takes `&self`: the library changes only the model's scratch memory, which no
    /// slice ever exposes, and a model is not `Sync`.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        let n = self.batch(x, None, "forward")?;
        let mut logits = vec![0f32; n as usize * self.num_classes()];
        self.check(unsafe { sys::sat_model_forward(self.raw, x.as_ptr(), n, logits.as_mut_ptr()) })?;
        Ok(logits)
    }

    /// Per-example cross-entropy and the gradient of its sum with respect to `x`.
    pub fn input_gradient(&self, x: &[f32], labels: &[i32]) -> Result<InputGradient> {
        let n = self.batch(x, Some(labels), "input_gradient")?;
        let mut r = InputGradient {
            losses: vec![0f32; n as usize],
            grad: vec![0f32; x.len()],
            logits: vec![0f32; n as usize * self.num_classes()],
        };
        self.check(unsafe {
            sys::sat_model_input_gradient(self.raw, x.as_ptr(), labels.as_ptr(), n,
                                          r.losses.as_mut_ptr(), r.grad.as_mut_ptr(),
                                          r.logits.as_mut_ptr())
        })?;
        Ok(r)
    }

    /// Mean cross-entropy and its parameter gradient into [`Model::grads`]; returns
    /// (loss, correct). Parameters are not changed.
    pub fn train_backward(&mut self, x: &[f32], labels: &[i32], label_smoothing: f32) -> Result<(f32, i64)> {
        let n = self.batch(x, Some(labels), "train_backward")?;
        let (mut loss, mut correct) = (0f32, 0i64);
        self.check(unsafe {
            sys::sat_model_train_backward(self.raw, x.as_ptr(), labels.as_ptr(), n, label_smoothing,
                                          &mut loss, &mut correct)
        })?;
        Ok((loss, correct))
    }

    /// Adversarial examples for (x, labels); the model is never changed.
    pub fn attack(&self, opts: &AttackOpts, x: &[f32], labels: &[i32]) -> Result<Vec<f32>> {
        let n = self.batch(x, Some(labels), "attack")?;
        let mut x_adv = vec![0f32; x.len()];
        self.check(unsafe {
            sys::sat_attack(self.raw, &opts.0, x.as_ptr(), labels.as_ptr(), ptr::null(), n,
                            x_adv.as_mut_ptr(), ptr::null_mut())
        })?;
        Ok(x_adv)
    }
}

impl Drop for Model<'_> {
    fn drop(&mut self) {
        unsafe { sys::sat_model_destroy(self.raw) }
    }
}

/// Spec text of a preset model.
pub fn preset_spec(name: &str, input: (i32, i32, i32), num_classes: i32) -> Result<String> {
    let cname = c_string(name, "preset name")?;
    let mut out: *mut c_char = ptr::null_mut();
    check_tls(unsafe {
        sys::sat_preset_spec(cname.as_ptr(), input.0, input.1, input.2, num_classes, ptr::null(),
                             ptr::null(), &mut out)
    })?;
    let s = unsafe { cstr(out) };
    unsafe { sys::sat_free(out.cast()) };
    Ok(s)
}

/* ------------------------------------------------------------------------------------ */
/* Optimizer and Trainer                                                                */
/* ------------------------------------------------------------------------------------ */

/// An optimizer bound to one model. [`Optimizer::step`] takes that model mutably, since
/// the update writes its parameters.
pub struct Optimizer {
    raw: *mut sys::sat_optimizer,
    model: *mut sys::sat_model,
}

impl Optimizer {
    pub fn new(model: &Model<'_>, opts: &OptimizerOpts) -> Result<Self> {
        let mut raw = ptr::null_mut();
        let m = model.raw;
        check_create(unsafe { sys::sat_optimizer_create(m, &opts.0, &mut raw) },
                     || unsafe { sys::sat_model_last_error(m) })?;
        Ok(Optimizer { raw, model: m })
    }

    /// Applies one update from the model's gradient block.
    pub fn step(&mut self, model: &mut Model<'_>) -> Result<()> {
        if model.raw != self.model {
            return Err(Error::new(sys::SAT_E_INVALID_ARG, "Optimizer::step: not the optimizer's model"));
        }
        let raw = self.raw;
        check(unsafe { sys::sat_optimizer_step(raw) }, || unsafe { sys::sat_optimizer_last_error(raw) })
    }
    pub fn lr(&self) -> f32 {
        unsafe { sys::sat_optimizer_lr(self.raw) }
    }
    pub fn step_count(&self) -> i64 {
        unsafe { sys::sat_optimizer_step_count(self.raw) }
    }
}

impl Drop for Optimizer {
    fn drop(&mut self) {
        unsafe { sys::sat_optimizer_destroy(self.raw) }
    }
}

/// Statistics of one training step.
pub type StepStats = sys::sat_step_stats;

/// Adversarial training steps. Holds the model and the optimizer mutably while it lives.
pub struct Trainer<'a, 'ctx> {
    raw: *mut sys::sat_trainer,
    model: &'a mut Model<'ctx>,
    _opt: &'a mut Optimizer,
}

impl<'a, 'ctx> Trainer<'a, 'ctx> {
    pub fn new(model: &'a mut Model<'ctx>, opt: &'a mut Optimizer, opts: &TrainerOpts) -> Result<Self> {
        if model.raw != opt.model {
            return Err(Error::new(sys::SAT_E_INVALID_ARG, "Trainer::new: the optimizer belongs to another model"));
        }
        let mut raw = ptr::null_mut();
        let m = model.raw;
        check_create(unsafe { sys::sat_trainer_create(m, opt.raw, &opts.0, &mut raw) },
                     || unsafe { sys::sat_model_last_error(m) })?;
        Ok(Trainer { raw, model, _opt: opt })
    }

    /// The model being trained (read access between steps).
    pub fn model(&self) -> &Model<'ctx> {
        self.model
    }

    /// One adversarial training step on a batch.
    pub fn step(&mut self, x: &[f32], labels: &[i32]) -> Result<StepStats> {
        let n = self.model.batch(x, Some(labels), "train step")?;
        let mut st = StepStats { struct_size: std::mem::size_of::<StepStats>() as u32, ..Default::default() };
        let raw = self.raw;
        check(unsafe { sys::sat_train_step(raw, x.as_ptr(), labels.as_ptr(), n, &mut st) },
              || unsafe { sys::sat_trainer_last_error(raw) })?;
        Ok(st)
    }
}

impl Drop for Trainer<'_, '_> {
    fn drop(&mut self) {
        unsafe { sys::sat_trainer_destroy(self.raw) }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod layout {
    use super::sys::*;
    use std::mem::size_of;

    #[test]
    fn struct_sizes_match_c() {
        // fixed-width fields with natural alignment: these are the C sizes on LP64
        assert_eq!(size_of::<sat_model_opts>(), 48);
        assert_eq!(size_of::<sat_attack_opts>(), 56);
        assert_eq!(size_of::<sat_optimizer_opts>(), 144);
        assert_eq!(size_of::<sat_trainer_opts>(), 56);
        assert_eq!(size_of::<sat_step_stats>(), 24);
        assert_eq!(size_of::<sat_context_opts>(), 64);
    }
}
