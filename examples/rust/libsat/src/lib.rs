//! Rust bindings of libsat: Smooth Adversarial Training for image classifiers.
//!
//! [`sys`] (the `libsat-sys` crate) holds the raw `extern "C"` declarations of `sat.h`;
//! this crate is the safe layer:
//! handles freed by `Drop`, `Result<T, Error>` carrying the library's own message, and
//! slices in and out.
//!
//! ```no_run
//! use libsat::{Context, Dataset, EvalOpts, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer,
//!              TrainerOpts};
//! let ctx = Context::new(1, 0)?;
//! let mut train = Dataset::load(&ctx, libsat::DataFormat::Idx, libsat::default_data_dir(),
//!                               libsat::Split::Train)?;
//! let mut model = Model::preset(&ctx, "madry-cnn", (1, 28, 28), 10, &ModelOpts::new()?)?;
//! let mut opt = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.01, 0.9)?)?;
//! {
//!     let mut trainer = Trainer::new(&mut opt, &TrainerOpts::pgd(0.3, 7)?)?;
//!     train.shuffle(1, 0, libsat::Augment::NONE)?;
//!     let (mut x, mut y) = (vec![0f32; 64 * 28 * 28], vec![0i32; 64]);
//!     for b in 0..train.num_batches(64) {
//!         let n = train.batch_into(b, 64, &mut x, &mut y)?;
//!         trainer.step(&x[..n * 28 * 28], &y[..n])?;
//!     }
//! }
//! let test = Dataset::load(&ctx, libsat::DataFormat::Idx, libsat::default_data_dir(),
//!                          libsat::Split::Test)?;
//! drop(opt);  // gives the model back
//! let r = model.evaluate(&EvalOpts::new()?.eps(0.3).steps(&[1, 10]), test.images(), test.labels())?;
//! println!("clean {:.3}  PGD-10 {:.3}", r.clean_accuracy, r.robust_accuracy[1]);
//! let bytes = model.save_buffer(None)?;
//! let copy = Model::load_buffer(&ctx, &bytes)?;
//! # Ok::<(), libsat::Error>(())
//! ```
//!
//! Lifetimes enforce the C rules on who outlives whom: models and data sets borrow their
//! context; an optimizer holds its model mutably and a trainer its optimizer, as long as
//! they exist (they change the parameters, and destroying them reads their parents), so a
//! parent dropped too early is a compile error, not a use after free.
//! [`Optimizer::model`] and [`Trainer::model`] give access in between. Handles are neither `Send` nor `Sync`
//! (one handle, one thread, as in C).

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_void};
use std::path::Path;
use std::ptr;

/// The raw declarations of `sat.h` (the `libsat-sys` crate).
pub use libsat_sys as sys;

mod layers;
pub use layers::{Block, LayerInfo, LayerOp, TensorInfo, TensorRole};

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                               */
/* ------------------------------------------------------------------------------------ */

/// A failed libsat call: the `SAT_E_*` status and the library's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

/// The `SAT_E_*` status of an [`Error`] as an enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArg,
    NoMem,
    Shape,
    State,
    Io,
    Format,
    Version,
    Unsupported,
    Numeric,
    Aborted,
    Internal,
    /// A status this crate does not know (from a newer library).
    Other(i32),
}

impl ErrorKind {
    pub fn from_status(status: i32) -> Self {
        match status {
            sys::SAT_E_INVALID_ARG => ErrorKind::InvalidArg,
            sys::SAT_E_NOMEM => ErrorKind::NoMem,
            sys::SAT_E_SHAPE => ErrorKind::Shape,
            sys::SAT_E_STATE => ErrorKind::State,
            sys::SAT_E_IO => ErrorKind::Io,
            sys::SAT_E_FORMAT => ErrorKind::Format,
            sys::SAT_E_VERSION => ErrorKind::Version,
            sys::SAT_E_UNSUPPORTED => ErrorKind::Unsupported,
            sys::SAT_E_NUMERIC => ErrorKind::Numeric,
            sys::SAT_E_ABORTED => ErrorKind::Aborted,
            sys::SAT_E_INTERNAL => ErrorKind::Internal,
            other => ErrorKind::Other(other),
        }
    }
}

impl Error {
    fn new(status: i32, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.is_empty() {
            message = status_string(status);
        }
        Error { status, message }
    }

    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_status(self.status)
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

/// Version numbers (major, minor, patch) of the loaded library.
pub fn version_numbers() -> (i32, i32, i32) {
    let (mut a, mut b, mut c) = (0, 0, 0);
    unsafe { sys::sat_version(&mut a, &mut b, &mut c) };
    (a, b, c)
}

/// One line describing the build of the loaded library (compiler, BLIS version).
pub fn build_info() -> String {
    unsafe { cstr(sys::sat_build_info()) }
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

fn c_path(p: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = match p.to_str() {
        Some(s) => s.as_bytes().to_vec(),
        None => {
            return Err(Error::new(sys::SAT_E_INVALID_ARG, format!("path {} is not valid UTF-8", p.display())))
        }
    };
    CString::new(bytes)
        .map_err(|_| Error::new(sys::SAT_E_INVALID_ARG, format!("path {} contains a NUL byte", p.display())))
}

fn shape_error(message: String) -> Error {
    Error::new(sys::SAT_E_SHAPE, message)
}

/* ------------------------------------------------------------------------------------ */
/* Options                                                                              */
/* ------------------------------------------------------------------------------------ */

macro_rules! opts_type {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $init:path) => {
        $(#[$doc])*
        ///
        /// Dereferences to the raw struct, so every field can be read and set directly;
        /// the chained setters are shorthands.
        #[derive(Clone, Copy, Debug)]
        pub struct $name(pub $raw);
        impl $name {
            /// The library's defaults (filled by its own `*_init`).
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
    /// `sat_exec_opts`: the kind of an [`Exec`] and its largest batch.
    ExecOpts, sys::sat_exec_opts, sys::sat_exec_opts_init);
opts_type!(
    /// `sat_attack_opts`: method (FGSM, PGD, APGD-CE, APGD-DLR, FAB, Square), norm, eps, steps,
    /// restarts, ...
    AttackOpts, sys::sat_attack_opts, sys::sat_attack_opts_init);
opts_type!(
    /// `sat_optimizer_opts`: kind, lr, momentum, weight decay, schedule.
    OptimizerOpts, sys::sat_optimizer_opts, sys::sat_optimizer_opts_init);
opts_type!(
    /// `sat_trainer_opts`: method (PGD-AT, Fast-AT, ...), eps, steps, ...
    TrainerOpts, sys::sat_trainer_opts, sys::sat_trainer_opts_init);
opts_type!(
    /// `sat_eval_opts`: the threat model and the attacks [`Model::evaluate`] runs.
    EvalOpts, sys::sat_eval_opts, sys::sat_eval_opts_init);
opts_type!(
    /// `sat_model_meta`: what a model was trained for and how, stored in model files.
    ModelMeta, sys::sat_model_meta, sys::sat_model_meta_init);
opts_type!(
    /// `sat_onnx_import_opts`: an activation kind swapped for another on import, max batch
    /// ([`Model::load_onnx`]).
    OnnxImportOpts, sys::sat_onnx_import_opts, sys::sat_onnx_import_opts_init);
opts_type!(
    /// `sat_onnx_export_opts`: the opset the file declares (13 to 17) and its batch
    /// dimension (0: symbolic) ([`Model::save_onnx`]).
    OnnxExportOpts, sys::sat_onnx_export_opts, sys::sat_onnx_export_opts_init);
opts_type!(
    /// `sat_autoattack_opts`: version of the sequence, norm, eps and seed of
    /// [`Model::autoattack`].
    AutoAttackOpts, sys::sat_autoattack_opts, sys::sat_autoattack_opts_init);

/// Threat-model norm (`SAT_NORM_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Norm {
    Linf = sys::SAT_NORM_LINF,
    L2 = sys::SAT_NORM_L2,
}

/// Attack method (`SAT_ATTACK_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum AttackMethod {
    Fgsm = sys::SAT_ATTACK_FGSM,
    Pgd = sys::SAT_ATTACK_PGD,
    ApgdCe = sys::SAT_ATTACK_APGD_CE,
    /// Targeted APGD with the DLR loss: needs targets.
    ApgdDlr = sys::SAT_ATTACK_APGD_DLR,
    /// FAB, minimum norm: returns the closest adversarial point found when it is within
    /// eps, `x` otherwise. With `targeted(true)` it is FAB-T (needs targets).
    Fab = sys::SAT_ATTACK_FAB,
    /// Square, score-based black-box (logits only); `steps` counts its queries.
    Square = sys::SAT_ATTACK_SQUARE,
}

/// Version of the AutoAttack sequence (`SAT_AA_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum AutoAttackVersion {
    /// APGD-CE, APGD-T, FAB-T, Square.
    Standard = sys::SAT_AA_STANDARD,
    /// APGD-CE, APGD-DLR, FAB, Square, APGD-T, FAB-T, with more restarts.
    Plus = sys::SAT_AA_PLUS,
    /// APGD-CE and APGD-DLR with gradients averaged over several passes (randomised models).
    Rand = sys::SAT_AA_RAND,
}

/// One attack of an AutoAttack sequence (`SAT_AA_ATTACK_*`), as listed in
/// [`AutoAttackResult::attacks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoAttackStage {
    ApgdCe,
    /// APGD on the targeted DLR loss, one run per target class.
    ApgdT,
    /// Targeted FAB, one run per target class.
    FabT,
    Square,
    /// APGD on the untargeted DLR loss.
    ApgdDlr,
    Fab,
    /// A value this crate does not know (a newer library).
    Other(i32),
}

impl AutoAttackStage {
    pub fn from_raw(v: i32) -> Self {
        match v {
            sys::SAT_AA_ATTACK_APGD_CE => Self::ApgdCe,
            sys::SAT_AA_ATTACK_APGD_T => Self::ApgdT,
            sys::SAT_AA_ATTACK_FAB_T => Self::FabT,
            sys::SAT_AA_ATTACK_SQUARE => Self::Square,
            sys::SAT_AA_ATTACK_APGD_DLR => Self::ApgdDlr,
            sys::SAT_AA_ATTACK_FAB => Self::Fab,
            other => Self::Other(other),
        }
    }
}

/// What AutoAttack did with one example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoAttackOutcome {
    /// Correct when clean and under every attack (`SAT_AA_ROBUST`).
    Robust,
    /// Already wrong when clean: not attacked (`SAT_AA_MISCLASSIFIED`).
    Misclassified,
    /// Broken by the attack at this position of [`AutoAttackResult::attacks`].
    BrokenBy(usize),
}

impl AutoAttackOutcome {
    pub fn from_raw(v: i32) -> Self {
        match v {
            sys::SAT_AA_ROBUST => Self::Robust,
            v if v >= 0 => Self::BrokenBy(v as usize),
            _ => Self::Misclassified,
        }
    }
}

/// Attack loss (`SAT_LOSS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum AttackLoss {
    CrossEntropy = sys::SAT_LOSS_CE,
    /// Carlini-Wagner margin on the logits.
    Margin = sys::SAT_LOSS_MARGIN,
}

/// Batch-norm mode of the attack's forward passes (`SAT_BN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum BnMode {
    /// Running statistics.
    Inference = sys::SAT_BN_INFERENCE,
    /// Batch statistics (running ones untouched).
    Batch = sys::SAT_BN_BATCH,
    /// Batch statistics and the running ones updated (writes the model): only for
    /// [`Model::exec`], the model's own execution, which borrows the model mutably.
    Train = sys::SAT_BN_TRAIN,
}

/// What an [`Exec`] plans memory for (`SAT_EXEC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum ExecKind {
    /// Forward only: no memory for any backward.
    Inference = sys::SAT_EXEC_INFERENCE,
    /// Forward and backward to the input.
    InputGrad = sys::SAT_EXEC_INPUT_GRAD,
    /// Also parameter gradients.
    Train = sys::SAT_EXEC_TRAIN,
}

impl ExecOpts {
    /// Options of the given kind; the largest batch is the model's.
    pub fn kind(kind: ExecKind) -> Result<Self> {
        let mut o = ExecOpts::new()?;
        o.0.kind = kind as i32;
        Ok(o)
    }
    /// The largest batch of one forward (0: the model's).
    pub fn max_batch(mut self, max_batch: i64) -> Self {
        self.0.max_batch = max_batch;
        self
    }
}

impl OnnxImportOpts {
    /// Defaults with every activation of kind `from` replaced by `to` (names: "relu",
    /// "silu", ...), keeping the weights: the paper's change applied on import.
    pub fn replacing(from: &str, to: &str) -> Result<Self> {
        let mut o = Self::new()?;
        o.replace_act_from = activation_from_name(from)?;
        o.replace_act_to = activation_from_name(to)?;
        Ok(o)
    }
}

impl ModelOpts {
    /// Defaults with this activation, by name ("silu", "gelu", "smoothrelu", ...). Without
    /// it (`ModelOpts::new()`) a model gets its spec's own activation: a preset's original
    /// (ReLU in the ResNets, SiLU in EfficientNet), else SiLU.
    pub fn with_activation(name: &str) -> Result<Self> {
        let mut o = Self::new()?;
        o.activation = activation_from_name(name)?;
        Ok(o)
    }
    pub fn max_batch(mut self, max_batch: i32) -> Self {
        self.0.max_batch = max_batch;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
    /// The derivatives used in the attacker's and the optimizer's backward passes.
    pub fn backward(mut self, attack: Backward, train: Backward) -> Self {
        self.0.attack_backward_act = attack.act;
        self.0.attack_backward_param = attack.param;
        self.0.train_backward_act = train.act;
        self.0.train_backward_param = train.param;
        self
    }
    pub fn attack_bn_mode(mut self, mode: BnMode) -> Self {
        self.0.attack_bn_mode = mode as i32;
        self
    }
    /// Activation checkpointing: keep only the outputs at segment ends and run each
    /// segment's forward again in the backward (the same results, less memory, about one
    /// more forward per backward).
    pub fn activation_checkpointing(mut self, on: bool) -> Self {
        self.0.activation_checkpointing = on as i32;
        self
    }
}

impl AttackOpts {
    /// L-inf PGD with `steps` steps in the eps-ball.
    pub fn pgd(eps: f32, steps: i32) -> Result<Self> {
        Ok(Self::new()?.method(AttackMethod::Pgd).eps(eps).steps(steps))
    }
    /// L-inf FGSM (one step; with a random start unless `random_start(false)`).
    pub fn fgsm(eps: f32) -> Result<Self> {
        Ok(Self::new()?.method(AttackMethod::Fgsm).eps(eps))
    }
    /// L-inf APGD with the cross-entropy loss (Croce and Hein), untargeted.
    pub fn apgd_ce(eps: f32, steps: i32) -> Result<Self> {
        Ok(Self::new()?.method(AttackMethod::ApgdCe).eps(eps).steps(steps))
    }
    /// L-inf targeted APGD with the DLR loss: use [`Model::attack_targeted`].
    pub fn apgd_dlr(eps: f32, steps: i32) -> Result<Self> {
        Ok(Self::new()?.method(AttackMethod::ApgdDlr).eps(eps).steps(steps).targeted(true))
    }
    /// L-inf untargeted FAB with `steps` iterations (AutoAttack uses 100).
    pub fn fab(eps: f32, steps: i32) -> Result<Self> {
        Ok(Self::new()?.method(AttackMethod::Fab).eps(eps).steps(steps))
    }
    /// L-inf untargeted Square with `queries` queries after the first (AutoAttack uses 5000).
    pub fn square(eps: f32, queries: i32) -> Result<Self> {
        Ok(Self::new()?.method(AttackMethod::Square).eps(eps).steps(queries))
    }
    pub fn method(mut self, method: AttackMethod) -> Self {
        self.0.method = method as i32;
        self
    }
    pub fn norm(mut self, norm: Norm) -> Self {
        self.0.norm = norm as i32;
        self
    }
    pub fn loss(mut self, loss: AttackLoss) -> Self {
        self.0.loss = loss as i32;
        self
    }
    pub fn eps(mut self, eps: f32) -> Self {
        self.0.eps = eps;
        self
    }
    /// NaN: the method's default.
    pub fn step_size(mut self, step_size: f32) -> Self {
        self.0.step_size = step_size;
        self
    }
    pub fn steps(mut self, steps: i32) -> Self {
        self.0.steps = steps;
        self
    }
    pub fn restarts(mut self, restarts: i32) -> Self {
        self.0.restarts = restarts;
        self
    }
    pub fn random_start(mut self, on: bool) -> Self {
        self.0.random_start = on as i32;
        self
    }
    pub fn targeted(mut self, on: bool) -> Self {
        self.0.targeted = on as i32;
        self
    }
    /// `None`: the model's attack batch-norm mode.
    pub fn bn_mode(mut self, mode: Option<BnMode>) -> Self {
        self.0.bn_mode = mode.map_or(-1, |m| m as i32);
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
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
    pub fn adam(lr: f32) -> Result<Self> {
        let mut o = Self::new()?;
        o.kind = sys::SAT_OPT_ADAM;
        o.lr = lr;
        o.weight_decay = 0.0;
        Ok(o)
    }
    /// Adam with decoupled weight decay.
    pub fn adamw(lr: f32, weight_decay: f32) -> Result<Self> {
        let mut o = Self::new()?;
        o.kind = sys::SAT_OPT_ADAMW;
        o.lr = lr;
        o.weight_decay = weight_decay;
        Ok(o)
    }
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.0.weight_decay = weight_decay;
        self
    }
    /// Cosine decay to 0 over `total_steps`.
    pub fn cosine(mut self, total_steps: i64) -> Self {
        self.0.schedule = sys::SAT_SCHED_COSINE;
        self.0.total_steps = total_steps;
        self
    }
    /// Triangular one-cycle: peak at `peak_frac` of `total_steps`.
    pub fn one_cycle(mut self, total_steps: i64, peak_frac: f32) -> Self {
        self.0.schedule = sys::SAT_SCHED_ONECYCLE;
        self.0.total_steps = total_steps;
        self.0.peak_frac = peak_frac;
        self
    }
    /// lr *= gamma at each milestone (at most `SAT_MAX_MILESTONES`; more are rejected
    /// by the library when the optimizer is created).
    pub fn milestones(mut self, milestones: &[i64], gamma: f32) -> Self {
        self.0.schedule = sys::SAT_SCHED_STEP;
        self.0.gamma = gamma;
        self.0.num_milestones = milestones.len().min(i32::MAX as usize) as i32;
        for (d, s) in self.0.milestones.iter_mut().zip(milestones) {
            *d = *s;
        }
        self
    }
    pub fn warmup(mut self, warmup_steps: i64) -> Self {
        self.0.warmup_steps = warmup_steps;
        self
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
    /// Fast-AT (Wong et al.): FGSM from a random start.
    pub fn fast(eps: f32) -> Result<Self> {
        let mut o = Self::new()?;
        o.method = sys::SAT_TRAIN_FAST;
        o.eps = eps;
        Ok(o)
    }
    /// Free-AT (Shafahi et al.) with `replays` replays of each batch.
    pub fn free(eps: f32, replays: i32) -> Result<Self> {
        let mut o = Self::new()?;
        o.method = sys::SAT_TRAIN_FREE;
        o.eps = eps;
        o.free_replays = replays;
        Ok(o)
    }
    /// TRADES (Zhang et al.): CE + beta KL, with a `steps`-step attacker.
    pub fn trades(eps: f32, steps: i32, beta: f32) -> Result<Self> {
        let mut o = Self::new()?;
        o.method = sys::SAT_TRAIN_TRADES;
        o.eps = eps;
        o.steps = steps;
        o.trades_beta = beta;
        Ok(o)
    }
    /// Standard (non-adversarial) training.
    pub fn standard() -> Result<Self> {
        let mut o = Self::new()?;
        o.method = sys::SAT_TRAIN_STANDARD;
        Ok(o)
    }
    pub fn norm(mut self, norm: Norm) -> Self {
        self.0.norm = norm as i32;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
    /// Data parallelism: this process is `rank` of `rank_count`; with a batch of n its random
    /// starts are those of examples rank*n.. of one process's batch of rank_count*n.
    pub fn rank(mut self, rank: i32, rank_count: i32) -> Self {
        self.0.rank = rank;
        self.0.rank_count = rank_count;
        self
    }
}

impl AutoAttackOpts {
    /// The standard sequence at this L-inf eps.
    pub fn standard(eps: f32) -> Result<Self> {
        Ok(Self::new()?.eps(eps))
    }
    pub fn version(mut self, version: AutoAttackVersion) -> Self {
        self.0.version = version as i32;
        self
    }
    pub fn norm(mut self, norm: Norm) -> Self {
        self.0.norm = norm as i32;
        self
    }
    /// Linf: in [0,1]; L2: in [0, sqrt(C*H*W)].
    pub fn eps(mut self, eps: f32) -> Self {
        self.0.eps = eps;
        self
    }
    /// [`sys::SAT_SEED_CONTEXT`] (the default) takes the context's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
}

impl EvalOpts {
    pub fn norm(mut self, norm: Norm) -> Self {
        self.0.norm = norm as i32;
        self
    }
    pub fn eps(mut self, eps: f32) -> Self {
        self.0.eps = eps;
        self
    }
    /// NaN (default): 2.5 eps / k for each k.
    pub fn step_size(mut self, step_size: f32) -> Self {
        self.0.step_size = step_size;
        self
    }
    /// The PGD step counts to evaluate (1..=`SAT_EVAL_MAX_STEPS` entries; a longer or
    /// empty list is rejected by [`Model::evaluate`] with the library's message).
    pub fn steps(mut self, steps: &[i32]) -> Self {
        self.0.num_steps = steps.len().min(i32::MAX as usize) as i32;
        self.0.steps = [0; sys::SAT_EVAL_MAX_STEPS];
        for (d, s) in self.0.steps.iter_mut().zip(steps) {
            *d = *s;
        }
        self
    }
    pub fn restarts(mut self, restarts: i32) -> Self {
        self.0.restarts = restarts;
        self
    }
    /// Also run APGD-CE and targeted APGD-DLR with `steps` steps and `targets` target classes.
    pub fn apgd(mut self, steps: i32, targets: i32) -> Self {
        self.0.apgd = 1;
        self.0.apgd_steps = steps;
        self.0.apgd_targets = targets;
        self
    }
    /// Chunk size (default: the model's max batch).
    pub fn batch(mut self, batch: i32) -> Self {
        self.0.batch = batch;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
    /// The step counts currently set.
    pub fn step_list(&self) -> &[i32] {
        let k = (self.0.num_steps.max(0) as usize).min(sys::SAT_EVAL_MAX_STEPS);
        &self.0.steps[..k]
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

/// Name of an activation id ("relu", "silu", ...), `None` if unknown.
pub fn activation_name(act: i32) -> Option<String> {
    let p = unsafe { sys::sat_activation_name(act) };
    if p.is_null() {
        None
    } else {
        Some(unsafe { cstr(p) })
    }
}

/// Names of all activations the library knows, in id order.
pub fn activations() -> Vec<String> {
    (0..).map_while(activation_name).collect()
}

/// The default parameter of an activation (10 for psoftplus, 400 for smoothrelu, 1 else).
pub fn activation_default_param(act: i32) -> f32 {
    unsafe { sys::sat_activation_default_param(act) }
}

/// The derivative used in a backward pass instead of the forward activation's own
/// (the paper's ablation): an activation id and its parameter (NaN: its default).
#[derive(Clone, Copy, Debug)]
pub struct Backward {
    pub act: i32,
    pub param: f32,
}

impl Backward {
    /// The forward function's own derivative.
    pub const SAME: Backward = Backward { act: sys::SAT_ACT_SAME, param: f32::NAN };

    /// The derivative of the activation `name`, with its default parameter.
    pub fn act(name: &str) -> Result<Self> {
        Ok(Backward { act: activation_from_name(name)?, param: f32::NAN })
    }
    pub fn param(self, param: f32) -> Self {
        Backward { param, ..self }
    }
}

impl PartialEq for Backward {
    fn eq(&self, o: &Self) -> bool {
        self.act == o.act && (self.param == o.param || (self.param.is_nan() && o.param.is_nan()))
    }
}

/* ------------------------------------------------------------------------------------ */
/* Context                                                                              */
/* ------------------------------------------------------------------------------------ */

/// Threads and the default seed shared by the models and data sets made with it.
pub struct Context {
    raw: *mut sys::sat_context,
    /// The `user` of the C progress callback: boxed, so its address does not move.
    progress: Box<RefCell<ProgressState>>,
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
        Ok(Context { raw, progress: Box::new(RefCell::new(ProgressState { closure: None, panic: None })) })
    }

    pub fn as_ptr(&self) -> *mut sys::sat_context {
        self.raw
    }

    /// Changes the thread count (1..=256) for later calls.
    pub fn set_num_threads(&mut self, num_threads: i32) -> Result<()> {
        let raw = self.raw;
        check(unsafe { sys::sat_context_set_num_threads(raw, num_threads) },
              || unsafe { sys::sat_context_last_error(raw) })
    }

    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_context_last_error(self.raw)) }
    }

    /// Destroys the context now and reports the library's status
    /// (`sat_context_destroy_checked`). The borrow checker already keeps models and data
    /// sets from outliving the context, so this fails only while a handle made through
    /// [`sys`] from [`Context::as_ptr`] lives: the context is then handed back, still usable.
    pub fn close(self) -> std::result::Result<(), (Self, Error)> {
        let raw = self.raw;
        match check(unsafe { sys::sat_context_destroy_checked(raw) }, || unsafe { sys::sat_context_last_error(raw) }) {
            Ok(()) => {
                std::mem::forget(self);
                Ok(())
            }
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        unsafe { sys::sat_context_destroy(self.raw) }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Progress and cancellation                                                            */
/* ------------------------------------------------------------------------------------ */

type ProgressClosure = Box<dyn FnMut(&str, i64, i64) -> bool>;

/// What the progress trampoline reaches through `user`.
struct ProgressState {
    closure: Option<ProgressClosure>,
    panic: Option<String>,
}

unsafe extern "C" fn progress_trampoline(user: *mut c_void, what: *const c_char, done: i64, total: i64) -> i32 {
    let cell = &*(user as *const RefCell<ProgressState>);
    // Busy only if the closure itself led here again; such a report is not passed on.
    let Ok(mut st) = cell.try_borrow_mut() else { return 0 };
    let what = cstr(what);
    let st = &mut *st;
    let Some(f) = st.closure.as_mut() else { return 0 };
    // A panic must not unwind into C: it cancels the call and is kept for take_progress_panic.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&what, done, total))) {
        Ok(cancel) => cancel as i32,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".into());
            st.panic.get_or_insert(format!("progress closure panicked: {what}"));
            1
        }
    }
}

impl Context {
    /// Sets the progress closure of the long calls made with this context's models, callback
    /// models, trainers and data sets (attacks, AutoAttack, evaluation, training steps, data
    /// set loading). It gets the running call's name (`"sat_attack"`, `"sat_train_step"`,
    /// ...) and `done` of `total` units of its work, is called on the calling thread first
    /// with `done == 0`, then after every bounded piece of work, last with `done == total`;
    /// returning `true` cancels the call, which then fails with [`ErrorKind::Aborted`]. A
    /// cancelled training step leaves the model and optimizer as they were. To cancel from
    /// another thread, capture an `Arc<AtomicBool>` that thread sets:
    ///
    /// ```
    /// use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
    /// let ctx = libsat::Context::new(1, 0)?;
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let flag = stop.clone();
    /// ctx.set_progress(move |_what, _done, _total| flag.load(Ordering::Relaxed))?;
    /// // another thread: stop.store(true, Ordering::Relaxed);
    /// # Ok::<(), libsat::Error>(())
    /// ```
    ///
    /// A panic in the closure cancels the call too; its message is kept for
    /// [`Context::take_progress_panic`]. Calling this from inside the closure fails with
    /// [`ErrorKind::State`].
    pub fn set_progress(&self, f: impl FnMut(&str, i64, i64) -> bool + 'static) -> Result<()> {
        self.replace_progress(Some(Box::new(f)))
    }

    /// Removes the progress closure: long calls report nothing and cannot be cancelled.
    pub fn clear_progress(&self) -> Result<()> {
        self.replace_progress(None)
    }

    /// The message of a panic in the progress closure that cancelled a call, once.
    pub fn take_progress_panic(&self) -> Option<String> {
        self.progress.try_borrow_mut().ok().and_then(|mut st| st.panic.take())
    }

    fn replace_progress(&self, closure: Option<ProgressClosure>) -> Result<()> {
        let mut st = self.progress.try_borrow_mut().map_err(|_| {
            Error::new(sys::SAT_E_STATE, "set_progress: called from inside the progress closure")
        })?;
        let on = closure.is_some();
        st.closure = closure;
        let raw = self.raw;
        let user = &*self.progress as *const RefCell<ProgressState> as *mut c_void;
        check(unsafe { sys::sat_context_set_progress(raw, if on { Some(progress_trampoline) } else { None }, user) },
              || unsafe { sys::sat_context_last_error(raw) })
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

/// Per-iteration statistics of an attack ([`Model::attack_traced`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackTrace {
    /// Mean loss after each step (steps x restarts entries).
    pub loss: Vec<f32>,
    /// Fraction still correctly classified after each step.
    pub accuracy: Vec<f32>,
}

/// `SAT_FLAG_*` warnings of an evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvalFlags(pub u32);

impl EvalFlags {
    /// Some input gradients are all zero (gradient masking?).
    pub const ZERO_GRAD: EvalFlags = EvalFlags(sys::SAT_FLAG_ZERO_GRAD);
    /// NaN/Inf input gradients.
    pub const NONFINITE_GRAD: EvalFlags = EvalFlags(sys::SAT_FLAG_NONFINITE_GRAD);
    /// Robust accuracy still falling between the last two step counts.
    pub const NOT_CONVERGED: EvalFlags = EvalFlags(sys::SAT_FLAG_NOT_CONVERGED);
    /// FGSM beats the strongest multi-step PGD.
    pub const ONE_STEP_STRONGER: EvalFlags = EvalFlags(sys::SAT_FLAG_ONE_STEP_STRONGER);
    /// AutoAttack only: Square broke more than 0.2% of the examples after every gradient
    /// attack before it had failed on them.
    pub const SQUARE_STRONGER: EvalFlags = EvalFlags(sys::SAT_FLAG_SQUARE_STRONGER);

    pub fn contains(self, other: EvalFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Result of [`Model::evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// Examples evaluated.
    pub n: i64,
    pub clean_accuracy: f32,
    /// The PGD step counts, as in the options.
    pub steps: Vec<i32>,
    /// Accuracy under PGD-`steps[i]`.
    pub robust_accuracy: Vec<f32>,
    pub fgsm_accuracy: f32,
    /// Worst case of APGD-CE and APGD-T; `None` when APGD was not run.
    pub apgd_accuracy: Option<f32>,
    pub flags: EvalFlags,
}

impl EvalResult {
    /// The lowest accuracy over every attack run (PGD, FGSM, APGD).
    pub fn worst_accuracy(&self) -> f32 {
        self.robust_accuracy
            .iter()
            .copied()
            .chain([self.fgsm_accuracy])
            .chain(self.apgd_accuracy)
            .fold(self.clean_accuracy, f32::min)
    }
}

/// Result of [`Model::autoattack`] and [`Model::autoattack_with_examples`].
#[derive(Clone, Debug, PartialEq)]
pub struct AutoAttackResult {
    /// Examples evaluated.
    pub n: i64,
    pub clean_accuracy: f32,
    /// Fraction correct under every attack of the sequence (the last of `accuracy_after`).
    pub robust_accuracy: f32,
    /// The attacks, in the order run.
    pub attacks: Vec<AutoAttackStage>,
    /// Robust accuracy after `attacks[0..=i]`; never rises along the sequence.
    pub accuracy_after: Vec<f32>,
    /// `SAT_FLAG_*` warnings (including [`EvalFlags::SQUARE_STRONGER`]).
    pub flags: EvalFlags,
    /// Examples Square broke that every gradient attack before it missed.
    pub square_only: i64,
    /// One outcome per example.
    pub outcomes: Vec<AutoAttackOutcome>,
    /// With [`Model::autoattack_with_examples`]: the adversarial example of each broken
    /// example and the clean one elsewhere, like `x`.
    pub x_adv: Option<Vec<f32>>,
}

/// Buffers for one sat_autoattack-style call (`call(x_adv or NULL, outcome, result)`) and
/// the safe result built from them.
fn run_autoattack(n: i64, x_len: usize, keep_adv: bool,
                  call: impl FnOnce(*mut f32, *mut i32, *mut sys::sat_autoattack_result) -> Result<()>)
                  -> Result<AutoAttackResult> {
    let mut x_adv = if keep_adv { Some(vec![0f32; x_len]) } else { None };
    let mut outcome = vec![0i32; n as usize];
    let mut r = sys::sat_autoattack_result {
        struct_size: std::mem::size_of::<sys::sat_autoattack_result>() as u32,
        ..Default::default()
    };
    call(x_adv.as_mut().map_or(ptr::null_mut(), |v| v.as_mut_ptr()), outcome.as_mut_ptr(), &mut r)?;
    let k = (r.num_attacks.max(0) as usize).min(sys::SAT_AA_MAX_ATTACKS);
    Ok(AutoAttackResult {
        n: r.n,
        clean_accuracy: r.clean_accuracy,
        robust_accuracy: r.robust_accuracy,
        attacks: r.attacks[..k].iter().map(|&a| AutoAttackStage::from_raw(a)).collect(),
        accuracy_after: r.accuracy_after[..k].to_vec(),
        flags: EvalFlags(r.flags),
        square_only: r.square_only,
        outcomes: outcome.into_iter().map(AutoAttackOutcome::from_raw).collect(),
        x_adv,
    })
}

/// A classifier. Borrows its context:
///
/// ```
/// use libsat::{Context, Model, ModelOpts};
/// let ctx = Context::new(1, 0)?;
/// let model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// drop(model);
/// drop(ctx);
/// # Ok::<(), libsat::Error>(())
/// ```
///
/// so dropping the context first does not compile (the same code, two lines swapped):
///
/// ```compile_fail,E0505
/// use libsat::{Context, Model, ModelOpts};
/// let ctx = Context::new(1, 0)?;
/// let model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// drop(ctx);
/// drop(model);
/// # Ok::<(), libsat::Error>(())
/// ```
pub struct Model<'ctx> {
    raw: *mut sys::sat_model,
    shape: (i32, i32, i32),
    num_classes: i32,
    _ctx: PhantomData<&'ctx Context>,
}

fn new_meta_for_load() -> Result<ModelMeta> {
    ModelMeta::new()
}

impl<'ctx> Model<'ctx> {
    /// Takes ownership of a model handle (destroyed if its shape cannot be read).
    fn from_raw(raw: *mut sys::sat_model) -> Result<Self> {
        let mut m = Model { raw, shape: (0, 0, 0), num_classes: 0, _ctx: PhantomData };
        let (mut c, mut h, mut w, mut k) = (0, 0, 0, 0);
        m.check(unsafe { sys::sat_model_shape(raw, &mut c, &mut h, &mut w, &mut k) })?;
        m.shape = (c, h, w);
        m.num_classes = k;
        Ok(m)
    }

    /// Builds a model from a text spec (see sat.h for the grammar).
    pub fn new(ctx: &'ctx Context, spec: &str, opts: &ModelOpts) -> Result<Self> {
        let spec = c_string(spec, "spec")?;
        let mut raw = ptr::null_mut();
        check_tls(unsafe { sys::sat_model_create(ctx.raw, spec.as_ptr(), &opts.0, &mut raw) })?;
        Self::from_raw(raw)
    }

    /// A preset ("mlp", "madry-cnn", "small-cnn", "resnet20", "preact-resnet18", "wrn-D-K"
    /// such as "wrn-28-10", "resnet50", "resnext50-32x4d", "efficientnet-b0") for input (C, H, W).
    pub fn preset(ctx: &'ctx Context, name: &str, input: (i32, i32, i32), num_classes: i32,
                  opts: &ModelOpts) -> Result<Self> {
        Self::new(ctx, &preset_spec(name, input, num_classes)?, opts)
    }

    /// Loads a model file written by [`Model::save`] (or the C library / CLI).
    pub fn load(ctx: &'ctx Context, path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::load_with_meta(ctx, path)?.0)
    }

    /// Loads a model file and the metadata stored with it.
    pub fn load_with_meta(ctx: &'ctx Context, path: impl AsRef<Path>) -> Result<(Self, ModelMeta)> {
        let p = c_path(path.as_ref())?;
        let mut meta = new_meta_for_load()?;
        let mut raw = ptr::null_mut();
        check_create(unsafe { sys::sat_model_load(ctx.raw, p.as_ptr(), &mut meta.0, &mut raw) },
                     || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Ok((Self::from_raw(raw)?, meta))
    }

    /// Loads a model from bytes written by [`Model::save_buffer`] (the model file format).
    /// Damaged or foreign bytes give an [`ErrorKind::Format`] (or `Version`) error.
    pub fn load_buffer(ctx: &'ctx Context, bytes: &[u8]) -> Result<Self> {
        Ok(Self::load_buffer_with_meta(ctx, bytes)?.0)
    }

    /// Builds a model from an ONNX file (what `torch.onnx.export` writes): the graph becomes
    /// a spec, its initializers the parameters and batch-norm statistics. An op libsat lacks
    /// gives an [`ErrorKind::Unsupported`] error naming the node; a damaged file a `Format` one.
    pub fn load_onnx(ctx: &'ctx Context, path: impl AsRef<Path>, opts: Option<&OnnxImportOpts>) -> Result<Self> {
        let p = c_path(path.as_ref())?;
        let o = opts.map_or(ptr::null(), |o| &o.0 as *const _);
        let mut raw = ptr::null_mut();
        check_create(unsafe { sys::sat_model_load_onnx(ctx.raw, p.as_ptr(), o, &mut raw) },
                     || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Self::from_raw(raw)
    }

    /// [`Model::load_onnx`] from the bytes of an ONNX file.
    pub fn load_onnx_buffer(ctx: &'ctx Context, bytes: &[u8], opts: Option<&OnnxImportOpts>) -> Result<Self> {
        let o = opts.map_or(ptr::null(), |o| &o.0 as *const _);
        let mut raw = ptr::null_mut();
        check_create(unsafe {
            sys::sat_model_load_onnx_buffer(ctx.raw, bytes.as_ptr().cast(), bytes.len(), o, &mut raw)
        }, || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Self::from_raw(raw)
    }

    pub fn load_buffer_with_meta(ctx: &'ctx Context, bytes: &[u8]) -> Result<(Self, ModelMeta)> {
        let mut meta = new_meta_for_load()?;
        let mut raw = ptr::null_mut();
        check_create(unsafe {
            sys::sat_model_load_buffer(ctx.raw, bytes.as_ptr().cast(), bytes.len(), &mut meta.0, &mut raw)
        }, || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Ok((Self::from_raw(raw)?, meta))
    }

    /// Writes the model (spec, options, parameters, batch-norm statistics, meta) to `path`,
    /// replacing an existing file whole or not at all.
    pub fn save(&self, path: impl AsRef<Path>, meta: Option<&ModelMeta>) -> Result<()> {
        let p = c_path(path.as_ref())?;
        let m = meta.map_or(ptr::null(), |m| &m.0 as *const _);
        self.check(unsafe { sys::sat_model_save(self.raw, m, p.as_ptr()) })
    }

    /// The model file's bytes.
    pub fn save_buffer(&self, meta: Option<&ModelMeta>) -> Result<Vec<u8>> {
        let m = meta.map_or(ptr::null(), |m| &m.0 as *const _);
        let mut buf: *mut c_void = ptr::null_mut();
        let mut size = 0usize;
        let st = unsafe { sys::sat_model_save_buffer(self.raw, m, &mut buf, &mut size) };
        self.take_buffer(st, buf, size)
    }

    /// Writes the model as a standard ONNX file (opset 13 by default; input `input`
    /// [batch, C, H, W], output `logits`), replacing an existing file whole or not at all.
    /// PyTorch and ONNX tools read it; [`Model::load_onnx`] reads it back.
    pub fn save_onnx(&self, path: impl AsRef<Path>, opts: Option<&OnnxExportOpts>) -> Result<()> {
        let p = c_path(path.as_ref())?;
        let o = opts.map_or(ptr::null(), |o| &o.0 as *const _);
        self.check(unsafe { sys::sat_model_save_onnx(self.raw, p.as_ptr(), o) })
    }

    /// The bytes of the model's ONNX file ([`Model::save_onnx`]).
    pub fn save_onnx_buffer(&self, opts: Option<&OnnxExportOpts>) -> Result<Vec<u8>> {
        let o = opts.map_or(ptr::null(), |o| &o.0 as *const _);
        let mut buf: *mut c_void = ptr::null_mut();
        let mut size = 0usize;
        let st = unsafe { sys::sat_model_save_onnx_buffer(self.raw, o, &mut buf, &mut size) };
        self.take_buffer(st, buf, size)
    }

    /// The bytes of a buffer a save call (status `st`) handed out, which is freed here.
    fn take_buffer(&self, st: i32, buf: *mut c_void, size: usize) -> Result<Vec<u8>> {
        // freed by the library's own sat_free however the copy ends
        struct Owned(*mut c_void);
        impl Drop for Owned {
            fn drop(&mut self) {
                unsafe { sys::sat_free(self.0) }
            }
        }
        let owned = Owned(buf);
        self.check(st)?;
        if owned.0.is_null() || size == 0 {
            return Ok(Vec::new());
        }
        Ok(unsafe { std::slice::from_raw_parts(owned.0 as *const u8, size) }.to_vec())
    }

    /// A deep copy (parameters, batch-norm statistics, options) on the same context.
    pub fn try_clone(&self) -> Result<Model<'ctx>> {
        let mut raw = ptr::null_mut();
        let me = self.raw;
        check_create(unsafe { sys::sat_model_clone(me, &mut raw) },
                     || unsafe { sys::sat_model_last_error(me) })?;
        Self::from_raw(raw)
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
    /// The normalised spec text the model was built from.
    pub fn spec(&self) -> String {
        unsafe { cstr(sys::sat_model_spec(self.raw)) }
    }
    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_model_last_error(self.raw)) }
    }
    /// The options the model was created with (backward overrides as currently set).
    pub fn opts(&self) -> Result<ModelOpts> {
        let mut o = ModelOpts::new()?;
        self.check(unsafe { sys::sat_model_get_opts(self.raw, &mut o.0) })?;
        Ok(o)
    }
    /// The backward overrides of the attacker and the optimizer.
    pub fn backward(&self) -> Result<(Backward, Backward)> {
        let o = self.opts()?;
        Ok((Backward { act: o.attack_backward_act, param: o.attack_backward_param },
            Backward { act: o.train_backward_act, param: o.train_backward_param }))
    }
    /// Changes the derivative used by the attacker's (input-gradient) and the optimizer's
    /// (parameter-gradient) backward passes; [`Backward::SAME`] restores the forward one.
    pub fn set_backward(&mut self, attack: Backward, train: Backward) -> Result<()> {
        self.check(unsafe {
            sys::sat_model_set_backward(self.raw, attack.act, attack.param, train.act, train.param)
        })
    }
    /// Turns activation checkpointing on or off; each execution is planned again by its
    /// next forward pass. A loaded model starts with it off.
    pub fn set_activation_checkpointing(&mut self, on: bool) -> Result<()> {
        self.check(unsafe { sys::sat_model_set_activation_checkpointing(self.raw, on as i32) })
    }
    pub fn param_count(&self) -> usize {
        unsafe { sys::sat_model_param_count(self.raw) as usize }
    }
    /// The flat parameter block (spec order, weight then bias per layer).
    pub fn params(&self) -> &[f32] {
        unsafe { slice_or_empty(sys::sat_model_params(self.raw), self.param_count()) }
    }
    pub fn params_mut(&mut self) -> &mut [f32] {
        let n = self.param_count();
        unsafe { slice_mut_or_empty(sys::sat_model_params(self.raw), n) }
    }
    /// The gradient block written by [`Model::train_backward`].
    pub fn grads(&self) -> &[f32] {
        unsafe { slice_or_empty(sys::sat_model_grads(self.raw), self.param_count()) }
    }
    /// The gradient block, writable: where a data-parallel run puts the reduced gradient
    /// before [`Trainer::apply`] or [`Optimizer::step`].
    pub fn grads_mut(&mut self) -> &mut [f32] {
        let n = self.param_count();
        unsafe { slice_mut_or_empty(sys::sat_model_grads(self.raw), n) }
    }
    /// Batch-norm running statistics (empty without batch norm).
    pub fn state(&self) -> &[f32] {
        let n = unsafe { sys::sat_model_state_count(self.raw) }.max(0) as usize;
        unsafe { slice_or_empty(sys::sat_model_state(self.raw), n) }
    }
    pub fn state_mut(&mut self) -> &mut [f32] {
        let n = unsafe { sys::sat_model_state_count(self.raw) }.max(0) as usize;
        unsafe { slice_mut_or_empty(sys::sat_model_state(self.raw), n) }
    }
    /// Per-parameter weight-decay mask: 1 for weights, 0 for biases, batch-norm and
    /// activation parameters.
    pub fn decay_mask(&self) -> Result<Vec<u8>> {
        let mut mask = vec![0u8; self.param_count()];
        self.check(unsafe { sys::sat_model_decay_mask(self.raw, mask.as_mut_ptr()) })?;
        Ok(mask)
    }

    /// The model's own execution (`sat_model_exec`): the one its own calls use, so a loss
    /// of your own costs no second arena. It borrows the model mutably, so it may run a
    /// training forward ([`BnMode::Train`], which updates the running statistics) and
    /// write parameter gradients into the model's own block
    /// ([`Exec::backward_to_model_grads`]).
    pub fn exec(&mut self) -> Result<Exec<'_>> {
        let raw = unsafe { sys::sat_model_exec(self.raw) };
        if raw.is_null() {
            return Err(Error::new(sys::SAT_E_NOMEM, self.last_error()));
        }
        Ok(Exec::wrap(raw, self, Some(self.raw)))
    }

    fn check(&self, status: i32) -> Result<()> {
        let raw = self.raw;
        check(status, || unsafe { sys::sat_model_last_error(raw) })
    }

    fn batch(&self, x: &[f32], labels: Option<&[i32]>, what: &str) -> Result<i64> {
        let es = self.example_size();
        if es == 0 || x.len() % es != 0 {
            return Err(shape_error(format!("{what}: {} values are not whole examples of {es}", x.len())));
        }
        let n = x.len() / es;
        if let Some(l) = labels {
            if l.len() != n {
                return Err(shape_error(format!("{what}: {} labels for {n} examples", l.len())));
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

    fn attack_impl(&self, opts: &AttackOpts, x: &[f32], labels: &[i32], targets: Option<&[i32]>,
                   trace: Option<&mut AttackTrace>) -> Result<Vec<f32>> {
        let n = self.batch(x, Some(labels), "attack")?;
        if let Some(t) = targets {
            if t.len() != n as usize {
                return Err(shape_error(format!("attack: {} targets for {n} examples", t.len())));
            }
        }
        let mut x_adv = vec![0f32; x.len()];
        let cap = opts.steps.max(1) as usize * opts.restarts.max(1) as usize;
        let (mut tl, mut ta) = (Vec::new(), Vec::new());
        let mut raw_trace = trace.as_ref().map(|_| {
            tl = vec![0f32; cap];
            ta = vec![0f32; cap];
            sys::sat_attack_trace {
                struct_size: std::mem::size_of::<sys::sat_attack_trace>() as u32,
                capacity: cap.min(i32::MAX as usize) as i32,
                count: 0,
                reserved0: 0,
                loss: tl.as_mut_ptr(),
                accuracy: ta.as_mut_ptr(),
            }
        });
        self.check(unsafe {
            sys::sat_attack(self.raw, &opts.0, x.as_ptr(), labels.as_ptr(),
                            targets.map_or(ptr::null(), |t| t.as_ptr()), n, x_adv.as_mut_ptr(),
                            raw_trace.as_mut().map_or(ptr::null_mut(), |t| t as *mut _))
        })?;
        if let (Some(out), Some(rt)) = (trace, raw_trace) {
            let k = (rt.count.max(0) as usize).min(cap);
            tl.truncate(k);
            ta.truncate(k);
            *out = AttackTrace { loss: tl, accuracy: ta };
        }
        Ok(x_adv)
    }

    /// Adversarial examples for (x, labels) with the method of `opts` (FGSM, PGD,
    /// APGD-CE, FAB, Square); the model is never changed.
    pub fn attack(&self, opts: &AttackOpts, x: &[f32], labels: &[i32]) -> Result<Vec<f32>> {
        self.attack_impl(opts, x, labels, None, None)
    }

    /// A targeted attack (or APGD-DLR): `targets` gives one target class per example.
    pub fn attack_targeted(&self, opts: &AttackOpts, x: &[f32], labels: &[i32], targets: &[i32]) -> Result<Vec<f32>> {
        self.attack_impl(opts, x, labels, Some(targets), None)
    }

    /// An attack that also returns the loss and accuracy after each step.
    pub fn attack_traced(&self, opts: &AttackOpts, x: &[f32], labels: &[i32],
                         targets: Option<&[i32]>) -> Result<(Vec<f32>, AttackTrace)> {
        let mut trace = AttackTrace::default();
        let x_adv = self.attack_impl(opts, x, labels, targets, Some(&mut trace))?;
        Ok((x_adv, trace))
    }

    fn autoattack_impl(&self, opts: &AutoAttackOpts, x: &[f32], labels: &[i32], keep_adv: bool)
                       -> Result<AutoAttackResult> {
        let n = self.batch(x, Some(labels), "autoattack")?;
        run_autoattack(n, x.len(), keep_adv, |xa, out, r| {
            self.check(unsafe { sys::sat_autoattack(self.raw, &opts.0, x.as_ptr(), labels.as_ptr(), n, xa, out, r) })
        })
    }

    /// AutoAttack's sequence on n examples: each attack runs only on the examples still
    /// classified correctly; an example is robust only if it survives them all. The model
    /// is not changed. Bad options give an error with the library's message.
    pub fn autoattack(&self, opts: &AutoAttackOpts, x: &[f32], labels: &[i32]) -> Result<AutoAttackResult> {
        self.autoattack_impl(opts, x, labels, false)
    }

    /// [`Model::autoattack`], also returning the adversarial examples in
    /// [`AutoAttackResult::x_adv`].
    pub fn autoattack_with_examples(&self, opts: &AutoAttackOpts, x: &[f32], labels: &[i32])
                                    -> Result<AutoAttackResult> {
        self.autoattack_impl(opts, x, labels, true)
    }

    /// Clean accuracy, and robust accuracy under FGSM, PGD with each step count of
    /// `opts` and (if enabled) APGD, on n examples processed in chunks.
    pub fn evaluate(&self, opts: &EvalOpts, x: &[f32], labels: &[i32]) -> Result<EvalResult> {
        let n = self.batch(x, Some(labels), "evaluate")?;
        let mut r = sys::sat_eval_result {
            struct_size: std::mem::size_of::<sys::sat_eval_result>() as u32,
            ..Default::default()
        };
        self.check(unsafe { sys::sat_evaluate(self.raw, &opts.0, x.as_ptr(), labels.as_ptr(), n, &mut r) })?;
        let k = (r.num_steps.max(0) as usize).min(sys::SAT_EVAL_MAX_STEPS);
        Ok(EvalResult {
            n: r.n,
            clean_accuracy: r.clean_accuracy,
            steps: opts.0.steps[..k].to_vec(),
            robust_accuracy: r.robust_accuracy[..k].to_vec(),
            fgsm_accuracy: r.fgsm_accuracy,
            apgd_accuracy: if r.apgd_accuracy.is_nan() { None } else { Some(r.apgd_accuracy) },
            flags: EvalFlags(r.flags),
        })
    }
}

impl Model<'_> {
    /// Destroys the model now and reports the library's status (`sat_model_destroy_checked`).
    /// Safe code cannot drop a model its optimizers still borrow, so this fails only while
    /// a handle made through [`sys`] from [`Model::as_ptr`] lives: the model is then handed
    /// back, still usable.
    pub fn close(self) -> std::result::Result<(), (Self, Error)> {
        let raw = self.raw;
        match check(unsafe { sys::sat_model_destroy_checked(raw) }, || unsafe { sys::sat_model_last_error(raw) }) {
            Ok(()) => {
                std::mem::forget(self);
                Ok(())
            }
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for Model<'_> {
    fn drop(&mut self) {
        unsafe { sys::sat_model_destroy(self.raw) }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Callback models                                                                      */
/* ------------------------------------------------------------------------------------ */

/// What a [`CallbackModel`]'s closures return: `Err(message)` stops the running call, which
/// then fails with [`ErrorKind::Aborted`] and this message.
pub type CallbackResult = std::result::Result<(), String>;

type LogitsClosure<'a> = Box<dyn FnMut(&[f32], &mut [f32]) -> CallbackResult + 'a>;
type GradClosure<'a> = Box<dyn FnMut(&[f32], &[f32], &mut [f32]) -> CallbackResult + 'a>;

/// What the trampolines reach through `user`: the closures and the first failure of a call.
struct CallbackState<'a> {
    example_size: usize,
    num_classes: usize,
    logits: LogitsClosure<'a>,
    grad: Option<GradClosure<'a>>,
    failure: Option<String>,
}

impl CallbackState<'_> {
    /// Runs one closure call; an `Err` or a panic (caught here: it never unwinds into C) is
    /// recorded and turned into a non-zero status.
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> CallbackResult) -> i32 {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *self)));
        let failure = match outcome {
            Ok(Ok(())) => return 0,
            Ok(Err(message)) => message,
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string payload".into());
                format!("callback panicked: {what}")
            }
        };
        self.failure.get_or_insert(failure);
        1
    }
}

unsafe extern "C" fn logits_trampoline(user: *mut c_void, x: *const f32, n: i64, logits: *mut f32) -> i32 {
    let st = &mut *(user as *mut CallbackState);
    let n = n.max(0) as usize;
    let x = std::slice::from_raw_parts(x, n * st.example_size);
    let out = std::slice::from_raw_parts_mut(logits, n * st.num_classes);
    st.guard(|st| (st.logits)(x, out))
}

unsafe extern "C" fn grad_trampoline(user: *mut c_void, x: *const f32, n: i64, dlogits: *const f32,
                                     dx: *mut f32) -> i32 {
    let st = &mut *(user as *mut CallbackState);
    let n = n.max(0) as usize;
    let x = std::slice::from_raw_parts(x, n * st.example_size);
    let dl = std::slice::from_raw_parts(dlogits, n * st.num_classes);
    let dx = std::slice::from_raw_parts_mut(dx, n * st.example_size);
    st.guard(|st| match st.grad.as_mut() {
        Some(g) => g(x, dl, dx),
        None => Err("no input-gradient closure".into()),
    })
}

/// A classifier implemented in Rust, given to libsat as closures so that its attacks and
/// AutoAttack can evaluate it. Borrows its context and whatever the closures borrow.
///
/// The logits closure gets `x` (n examples, NCHW, raw [0,1] pixels) and writes
/// `n * num_classes` logits. The optional input-gradient closure gets the same `x`, the
/// `dlogits` (`n * num_classes`) and writes `dx` (like `x`), the gradient of
/// `sum dlogits * logits(x)`; without it only gradient-free attacks (Square) run. A closure
/// returning `Err` or panicking stops the call with [`ErrorKind::Aborted`]: the panic is
/// caught before it reaches the library, and its message is the error's.
///
/// The closures may borrow local data, which must then outlive the model:
///
/// ```
/// use libsat::{CallbackModel, Context};
/// let ctx = Context::new(1, 0)?;
/// let bias = vec![0.5f32, -0.5];
/// let model = CallbackModel::new(&ctx, (1, 1, 2), 2, |x: &[f32], out: &mut [f32]| {
///     out.iter_mut().zip(x.iter().zip(bias.iter().cycle())).for_each(|(o, (p, b))| *o = p + b);
///     Ok(())
/// })?;
/// drop(model);
/// drop(bias);
/// # Ok::<(), libsat::Error>(())
/// ```
///
/// so dropping what a closure borrows first does not compile (the same code, two lines
/// swapped):
///
/// ```compile_fail,E0505
/// use libsat::{CallbackModel, Context};
/// let ctx = Context::new(1, 0)?;
/// let bias = vec![0.5f32, -0.5];
/// let model = CallbackModel::new(&ctx, (1, 1, 2), 2, |x: &[f32], out: &mut [f32]| {
///     out.iter_mut().zip(x.iter().zip(bias.iter().cycle())).for_each(|(o, (p, b))| *o = p + b);
///     Ok(())
/// })?;
/// drop(bias);
/// drop(model);
/// # Ok::<(), libsat::Error>(())
/// ```
pub struct CallbackModel<'a> {
    raw: *mut sys::sat_callback_model,
    state: *mut CallbackState<'a>,
    shape: (i32, i32, i32),
    num_classes: usize,
    _ctx: PhantomData<&'a Context>,
}

impl<'a> CallbackModel<'a> {
    /// A model with logits only (Square and other gradient-free attacks).
    pub fn new(ctx: &'a Context, input: (i32, i32, i32), num_classes: i32,
               logits: impl FnMut(&[f32], &mut [f32]) -> CallbackResult + 'a) -> Result<Self> {
        Self::create(ctx, input, num_classes, None, Box::new(logits), None)
    }

    /// A model with logits and input gradients (every attack, AutoAttack).
    pub fn with_input_grad(ctx: &'a Context, input: (i32, i32, i32), num_classes: i32,
                           logits: impl FnMut(&[f32], &mut [f32]) -> CallbackResult + 'a,
                           input_grad: impl FnMut(&[f32], &[f32], &mut [f32]) -> CallbackResult + 'a)
                           -> Result<Self> {
        Self::create(ctx, input, num_classes, None, Box::new(logits), Some(Box::new(input_grad)))
    }

    /// Like [`CallbackModel::with_input_grad`] (`input_grad` may be `None`), with the
    /// largest batch the closures are given (default 128).
    pub fn with_max_batch(ctx: &'a Context, input: (i32, i32, i32), num_classes: i32, max_batch: i32,
                          logits: impl FnMut(&[f32], &mut [f32]) -> CallbackResult + 'a,
                          input_grad: Option<Box<dyn FnMut(&[f32], &[f32], &mut [f32]) -> CallbackResult + 'a>>)
                          -> Result<Self> {
        Self::create(ctx, input, num_classes, Some(max_batch), Box::new(logits), input_grad)
    }

    fn create(ctx: &'a Context, input: (i32, i32, i32), num_classes: i32, max_batch: Option<i32>,
              logits: LogitsClosure<'a>, grad: Option<GradClosure<'a>>) -> Result<Self> {
        let mut o = std::mem::MaybeUninit::<sys::sat_callback_model_opts>::zeroed();
        check_tls(unsafe {
            sys::sat_callback_model_opts_init(o.as_mut_ptr(), std::mem::size_of::<sys::sat_callback_model_opts>() as u32)
        })?;
        let mut o = unsafe { o.assume_init() };
        let es = [input.0, input.1, input.2].iter().map(|&d| d.max(0) as usize).product();
        let has_grad = grad.is_some();
        let state = Box::into_raw(Box::new(CallbackState {
            example_size: es,
            num_classes: num_classes.max(0) as usize,
            logits,
            grad,
            failure: None,
        }));
        o.channels = input.0;
        o.height = input.1;
        o.width = input.2;
        o.num_classes = num_classes;
        if let Some(mb) = max_batch {
            o.max_batch = mb;
        }
        o.logits_fn = Some(logits_trampoline);
        o.input_grad_fn = if has_grad { Some(grad_trampoline) } else { None };
        o.user = state as *mut c_void;
        let mut raw = ptr::null_mut();
        let st = unsafe { sys::sat_callback_model_create(ctx.as_ptr(), &o, &mut raw) };
        if let Err(e) = check_create(st, || unsafe { sys::sat_context_last_error(ctx.as_ptr()) }) {
            drop(unsafe { Box::from_raw(state) });
            return Err(e);
        }
        Ok(CallbackModel { raw, state, shape: input, num_classes: num_classes as usize, _ctx: PhantomData })
    }

    pub fn as_ptr(&self) -> *mut sys::sat_callback_model {
        self.raw
    }
    pub fn input_shape(&self) -> (i32, i32, i32) {
        self.shape
    }
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }
    pub fn example_size(&self) -> usize {
        (self.shape.0 * self.shape.1 * self.shape.2) as usize
    }
    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_callback_model_last_error(self.raw)) }
    }

    /// Runs a library call that may call the closures; a closure's failure replaces the
    /// library's generic "aborted" message.
    fn call(&mut self, f: impl FnOnce(*mut sys::sat_callback_model) -> i32) -> Result<()> {
        unsafe { (*self.state).failure = None };
        let status = f(self.raw);
        let failure = unsafe { (*self.state).failure.take() };
        let raw = self.raw;
        match (check(status, || unsafe { sys::sat_callback_model_last_error(raw) }), failure) {
            (Err(mut e), Some(msg)) if e.status == sys::SAT_E_ABORTED => {
                e.message = msg;
                Err(e)
            }
            (r, _) => r,
        }
    }

    fn batch(&self, x: &[f32], labels: &[i32], what: &str) -> Result<i64> {
        let es = self.example_size();
        if es == 0 || x.len() % es != 0 {
            return Err(shape_error(format!("{what}: {} values are not whole examples of {es}", x.len())));
        }
        let n = x.len() / es;
        if labels.len() != n {
            return Err(shape_error(format!("{what}: {} labels for {n} examples", labels.len())));
        }
        Ok(n as i64)
    }

    /// [`Model::attack`] on this model (`sat_callback_attack`).
    pub fn attack(&mut self, opts: &AttackOpts, x: &[f32], labels: &[i32]) -> Result<Vec<f32>> {
        self.attack_impl(opts, x, labels, None)
    }

    /// [`Model::attack_targeted`] on this model.
    pub fn attack_targeted(&mut self, opts: &AttackOpts, x: &[f32], labels: &[i32], targets: &[i32])
                           -> Result<Vec<f32>> {
        self.attack_impl(opts, x, labels, Some(targets))
    }

    fn attack_impl(&mut self, opts: &AttackOpts, x: &[f32], labels: &[i32], targets: Option<&[i32]>)
                   -> Result<Vec<f32>> {
        let n = self.batch(x, labels, "attack")?;
        if let Some(t) = targets {
            if t.len() != n as usize {
                return Err(shape_error(format!("attack: {} targets for {n} examples", t.len())));
            }
        }
        let mut x_adv = x.to_vec();
        self.call(|raw| unsafe {
            sys::sat_callback_attack(raw, &opts.0, x.as_ptr(), labels.as_ptr(),
                                     targets.map_or(ptr::null(), |t| t.as_ptr()), n, x_adv.as_mut_ptr(),
                                     ptr::null_mut())
        })?;
        Ok(x_adv)
    }

    /// [`Model::autoattack`] on this model (`sat_callback_autoattack`); needs the
    /// input-gradient closure ([`ErrorKind::Unsupported`] without it).
    pub fn autoattack(&mut self, opts: &AutoAttackOpts, x: &[f32], labels: &[i32]) -> Result<AutoAttackResult> {
        self.autoattack_impl(opts, x, labels, false)
    }

    /// [`CallbackModel::autoattack`], also returning the adversarial examples.
    pub fn autoattack_with_examples(&mut self, opts: &AutoAttackOpts, x: &[f32], labels: &[i32])
                                    -> Result<AutoAttackResult> {
        self.autoattack_impl(opts, x, labels, true)
    }

    fn autoattack_impl(&mut self, opts: &AutoAttackOpts, x: &[f32], labels: &[i32], keep_adv: bool)
                       -> Result<AutoAttackResult> {
        let n = self.batch(x, labels, "autoattack")?;
        run_autoattack(n, x.len(), keep_adv, |xa, out, r| {
            self.call(|raw| unsafe {
                sys::sat_callback_autoattack(raw, &opts.0, x.as_ptr(), labels.as_ptr(), n, xa, out, r)
            })
        })
    }
}

impl Drop for CallbackModel<'_> {
    fn drop(&mut self) {
        // The library never calls the closures from destroy; free them after it.
        unsafe {
            sys::sat_callback_model_destroy(self.raw);
            drop(Box::from_raw(self.state));
        }
    }
}

/// An execution of a model: the memory that runs it, apart from its weights. For a loss
/// of your own: [`Exec::forward`] with a batch-norm mode, then [`Exec::backward`] from your
/// dL/dlogits to the input and/or the parameters (the reduction, per example or mean, is
/// how you scale dlogits).
///
/// An `Exec` made with [`Exec::new`] borrows its model immutably and is `Send`: several of
/// them may run one model on several threads at once (see `tests/exec.rs`). They only
/// read the model, so none of them runs [`BnMode::Train`]; the model's own execution
/// ([`Model::exec`]) can, as it borrows the model mutably.
pub struct Exec<'m> {
    raw: *mut sys::sat_exec,
    /// The model, when this is its own execution (borrowed mutably).
    own_model: Option<*mut sys::sat_model>,
    example_size: usize,
    num_classes: usize,
    param_count: usize,
    _model: PhantomData<fn() -> &'m ()>,
}

// SAFETY: an execution's memory is its own and is used by the one thread that holds the
// Exec; what it shares is the model's weights, which it only reads (BnMode::Train, the one
// forward that writes the model, is refused unless the Exec borrows the model mutably),
// and which cannot change while the borrow lasts. The model's own calls (&self) use the
// model's own execution. The context's worker pool takes concurrent callers.
unsafe impl Send for Exec<'_> {}

impl<'m> Exec<'m> {
    fn wrap(raw: *mut sys::sat_exec, model: &Model, own_model: Option<*mut sys::sat_model>) -> Self {
        Exec {
            raw,
            own_model,
            example_size: model.example_size(),
            num_classes: model.num_classes(),
            param_count: model.param_count(),
            _model: PhantomData,
        }
    }

    /// An execution of `model` (see [`ExecOpts`]: kind and largest batch).
    pub fn new(model: &'m Model, opts: &ExecOpts) -> Result<Self> {
        let mut raw = ptr::null_mut();
        let m = model.raw;
        check_create(unsafe { sys::sat_exec_create(m, &opts.0, &mut raw) },
                     || unsafe { sys::sat_model_last_error(m) })?;
        Ok(Self::wrap(raw, model, None))
    }

    pub fn as_ptr(&self) -> *mut sys::sat_exec {
        self.raw
    }
    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_exec_last_error(self.raw)) }
    }
    fn check(&self, status: i32) -> Result<()> {
        let raw = self.raw;
        check(status, || unsafe { sys::sat_exec_last_error(raw) })
    }

    /// Logits, `n * num_classes` values, for `x` holding n examples; keeps what
    /// [`Exec::backward`] needs.
    pub fn forward(&mut self, x: &[f32], bn_mode: BnMode) -> Result<Vec<f32>> {
        if bn_mode == BnMode::Train && self.own_model.is_none() {
            return Err(Error::new(sys::SAT_E_STATE,
                                  "Exec::forward: BnMode::Train writes the model; use Model::exec, which borrows it mutably"));
        }
        let es = self.example_size;
        if es == 0 || x.len() % es != 0 {
            return Err(shape_error(format!("Exec::forward: {} values are not whole examples of {es}", x.len())));
        }
        let n = x.len() / es;
        let mut logits = vec![0f32; n * self.num_classes];
        self.check(unsafe {
            sys::sat_exec_forward(self.raw, x.as_ptr(), n as i64, bn_mode as i32, logits.as_mut_ptr())
        })?;
        Ok(logits)
    }

    /// The batch size of the last forward, which [`Exec::backward`] runs from (0: none).
    pub fn last_batch(&self) -> usize {
        unsafe { sys::sat_exec_last_batch(self.raw) }.max(0) as usize
    }

    /// Backward of the last forward (n = [`Exec::last_batch`] examples) from dL/dlogits
    /// (`n * num_classes`): to the input (`dx`, `n * example_size` values) and/or the
    /// parameters (`param_grads`, param_count values); `None` is not wanted. Both are
    /// overwritten.
    pub fn backward(&mut self, dlogits: &[f32], dx: Option<&mut [f32]>, param_grads: Option<&mut [f32]>)
                    -> Result<()> {
        let k = self.num_classes;
        let n = self.last_batch();
        // the library reads n rows: a shorter slice is refused here
        if dlogits.len() != n * k {
            if n == 0 {
                return Err(Error::new(sys::SAT_E_STATE,
                                      "Exec::backward: no forward to run backward from (call Exec::forward first)"));
            }
            return Err(shape_error(format!("Exec::backward: {} dlogits for {n} examples of {k} classes",
                                           dlogits.len())));
        }
        if let Some(d) = &dx {
            if d.len() < n * self.example_size {
                return Err(shape_error(format!("Exec::backward: dx has {} values, needs {}", d.len(),
                                               n * self.example_size)));
            }
        }
        if let Some(g) = &param_grads {
            if g.len() < self.param_count {
                return Err(shape_error(format!("Exec::backward: param_grads has {} values, needs {}", g.len(),
                                               self.param_count)));
            }
        }
        let dx = dx.map_or(ptr::null_mut(), |d| d.as_mut_ptr());
        let pg = param_grads.map_or(ptr::null_mut(), |g| g.as_mut_ptr());
        self.check(unsafe { sys::sat_exec_backward(self.raw, dlogits.as_ptr(), dx, pg) })
    }

    /// The input gradient of the last forward as a new vector.
    pub fn input_gradient(&mut self, dlogits: &[f32]) -> Result<Vec<f32>> {
        let mut dx = vec![0f32; self.last_batch() * self.example_size];
        self.backward(dlogits, Some(&mut dx), None)?;
        Ok(dx)
    }

    /// For the model's own execution ([`Model::exec`]): parameter gradients into the
    /// model's gradient block (what an [`Optimizer`] applies), and the input gradient into
    /// `dx` if given.
    pub fn backward_to_model_grads(&mut self, dlogits: &[f32], dx: Option<&mut [f32]>) -> Result<()> {
        let Some(m) = self.own_model else {
            return Err(Error::new(sys::SAT_E_STATE,
                                  "Exec::backward_to_model_grads: only for the model's own execution (Model::exec)"));
        };
        let grads = unsafe { slice_mut_or_empty(sys::sat_model_grads(m), self.param_count) };
        self.backward(dlogits, dx, Some(grads))
    }

    /// The model's gradient block, for the model's own execution (empty otherwise).
    pub fn model_grads(&self) -> &[f32] {
        match self.own_model {
            Some(m) => unsafe { slice_or_empty(sys::sat_model_grads(m), self.param_count) },
            None => &[],
        }
    }
}

impl Drop for Exec<'_> {
    fn drop(&mut self) {
        // A no-op for the model's own execution: the model frees it.
        unsafe { sys::sat_exec_destroy(self.raw) }
    }
}

unsafe fn slice_or_empty<'a, T>(p: *const T, n: usize) -> &'a [T] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, n)
    }
}

unsafe fn slice_mut_or_empty<'a, T>(p: *mut T, n: usize) -> &'a mut [T] {
    if p.is_null() || n == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p, n)
    }
}

/// Spec text of a preset model.
pub fn preset_spec(name: &str, input: (i32, i32, i32), num_classes: i32) -> Result<String> {
    preset_spec_normalized(name, input, num_classes, None)
}

/// Spec text of a preset model with an input normalisation: `(mean, std)`, one value per
/// channel each.
pub fn preset_spec_normalized(name: &str, input: (i32, i32, i32), num_classes: i32,
                              mean_std: Option<(&[f32], &[f32])>) -> Result<String> {
    let cname = c_string(name, "preset name")?;
    let (mean, std) = match mean_std {
        Some((m, s)) => {
            if m.len() != input.0.max(0) as usize || s.len() != input.0.max(0) as usize {
                return Err(Error::new(sys::SAT_E_INVALID_ARG,
                                      format!("preset_spec: mean and std need {} values each", input.0)));
            }
            (m.as_ptr(), s.as_ptr())
        }
        None => (ptr::null(), ptr::null()),
    };
    let mut out: *mut c_char = ptr::null_mut();
    check_tls(unsafe {
        sys::sat_preset_spec(cname.as_ptr(), input.0, input.1, input.2, num_classes, mean, std, &mut out)
    })?;
    let s = unsafe { cstr(out) };
    unsafe { sys::sat_free(out.cast()) };
    Ok(s)
}

/* ------------------------------------------------------------------------------------ */
/* Optimizer and Trainer                                                                */
/* ------------------------------------------------------------------------------------ */

/// An optimizer for one model. It holds the model mutably for its whole life: its updates
/// write the parameters, and destroying it reads the model, so the model can neither be
/// dropped nor used on its own while the optimizer exists. Reach it through
/// [`Optimizer::model`] and [`Optimizer::model_mut`] meanwhile, or drop the optimizer first.
///
/// ```
/// use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts};
/// let ctx = Context::new(1, 0)?;
/// let mut model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let mut optimizer = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9)?)?;
/// optimizer.model_mut().params_mut()[0] = 1.0;
/// optimizer.model_mut().train_backward(&[0.5; 8], &[0, 1], 0.0)?;
/// optimizer.step()?;
/// drop(optimizer);
/// drop(model);
/// # Ok::<(), libsat::Error>(())
/// ```
///
/// Dropping the model first (a use after free in C) does not compile (the code above with
/// the last two lines swapped):
///
/// ```compile_fail,E0505
/// use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts};
/// let ctx = Context::new(1, 0)?;
/// let mut model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let optimizer = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9)?)?;
/// drop(model);
/// drop(optimizer);
/// # Ok::<(), libsat::Error>(())
/// ```
///
/// Nor does changing the model behind the optimizer's back (not through
/// [`Optimizer::model_mut`]):
///
/// ```compile_fail,E0499
/// use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts};
/// let ctx = Context::new(1, 0)?;
/// let mut model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let mut optimizer = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9)?)?;
/// model.params_mut()[0] = 1.0;
/// optimizer.step()?;
/// # Ok::<(), libsat::Error>(())
/// ```
pub struct Optimizer<'m, 'ctx> {
    raw: *mut sys::sat_optimizer,
    model: &'m mut Model<'ctx>,
}

impl<'m, 'ctx> Optimizer<'m, 'ctx> {
    pub fn new(model: &'m mut Model<'ctx>, opts: &OptimizerOpts) -> Result<Self> {
        let mut raw = ptr::null_mut();
        let m = model.raw;
        check_create(unsafe { sys::sat_optimizer_create(m, &opts.0, &mut raw) },
                     || unsafe { sys::sat_model_last_error(m) })?;
        Ok(Optimizer { raw, model })
    }

    fn check(&self, status: i32) -> Result<()> {
        let raw = self.raw;
        check(status, || unsafe { sys::sat_optimizer_last_error(raw) })
    }

    /// The model this optimizer updates.
    pub fn model(&self) -> &Model<'ctx> {
        self.model
    }
    /// The model, mutably (e.g. for [`Model::train_backward`] before [`Optimizer::step`]).
    pub fn model_mut(&mut self) -> ModelMut<'_, 'ctx> {
        ModelMut(self.model)
    }
    /// Applies one update from the model's gradient block.
    pub fn step(&mut self) -> Result<()> {
        self.check(unsafe { sys::sat_optimizer_step(self.raw) })
    }
    /// Learning rate the next step will use.
    pub fn lr(&self) -> f32 {
        unsafe { sys::sat_optimizer_lr(self.raw) }
    }
    pub fn step_count(&self) -> i64 {
        unsafe { sys::sat_optimizer_step_count(self.raw) }
    }
    /// Moves the schedule to `step` (e.g. when resuming without a checkpoint).
    pub fn set_step_count(&mut self, step: i64) -> Result<()> {
        self.check(unsafe { sys::sat_optimizer_set_step_count(self.raw, step) })
    }
    /// The flat optimizer state (momentum, Adam moments).
    pub fn state(&self) -> &[f32] {
        let mut n = 0i64;
        let p = unsafe { sys::sat_optimizer_state(self.raw, &mut n) };
        unsafe { slice_or_empty(p, n.max(0) as usize) }
    }
    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_optimizer_last_error(self.raw)) }
    }

    /// Sets the base learning rate (finite, > 0); the schedule scales it, so [`Optimizer::lr`]
    /// is this times the schedule's factor at the current step.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        self.check(unsafe { sys::sat_optimizer_set_lr(self.raw, lr) })
    }
    /// The base learning rate.
    pub fn base_lr(&self) -> f32 {
        unsafe { sys::sat_optimizer_base_lr(self.raw) }
    }
    /// Scales the learning rate of the parameters in `range` of the flat block (a parameter
    /// group, e.g. one layer's weights) by `scale` (finite, >= 0; every scale starts at 1).
    pub fn set_lr_scale(&mut self, range: std::ops::Range<usize>, scale: f32) -> Result<()> {
        let count = range.end.saturating_sub(range.start);
        self.check(unsafe { sys::sat_optimizer_set_lr_scale(self.raw, range.start as i64, count as i64, scale) })
    }
    /// The per-parameter learning-rate scales.
    pub fn lr_scale(&self) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.model.param_count()];
        self.check(unsafe { sys::sat_optimizer_get_lr_scale(self.raw, out.as_mut_ptr()) })?;
        Ok(out)
    }
    /// Sets the freeze mask (one 0 or 1 per parameter; `None` unfreezes everything): frozen
    /// parameters and their optimizer state never change in a step.
    pub fn set_frozen(&mut self, mask: Option<&[u8]>) -> Result<()> {
        let p = match mask {
            None => ptr::null(),
            Some(m) if m.len() == self.model.param_count() => m.as_ptr(),
            Some(m) => {
                return Err(Error::new(sys::SAT_E_SHAPE, format!(
                    "set_frozen: {} values for {} parameters", m.len(), self.model.param_count())))
            }
        };
        self.check(unsafe { sys::sat_optimizer_set_frozen(self.raw, p) })
    }
    /// The freeze mask (1 = frozen).
    pub fn frozen(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.model.param_count()];
        self.check(unsafe { sys::sat_optimizer_get_frozen(self.raw, out.as_mut_ptr()) })?;
        Ok(out)
    }
    /// Saves the model and this optimizer (state, step count, learning rate, scales, freeze
    /// mask): a checkpoint for a loop of your own, without a trainer.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>, meta: Option<&ModelMeta>) -> Result<()> {
        let p = c_path(path.as_ref())?;
        let m = meta.map_or(ptr::null(), |m| &m.0 as *const _);
        self.check(unsafe { sys::sat_optimizer_checkpoint_save(self.raw, m, p.as_ptr()) })
    }
    /// Restores a [`Optimizer::save_checkpoint`] file into the model and this optimizer;
    /// returns the stored meta. On failure nothing is changed.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<ModelMeta> {
        let p = c_path(path.as_ref())?;
        let mut meta = ModelMeta::new()?;
        self.check(unsafe { sys::sat_optimizer_checkpoint_load(self.raw, p.as_ptr(), &mut meta.0) })?;
        Ok(meta)
    }
    /// Destroys the optimizer now and reports the library's status
    /// (`sat_optimizer_destroy_checked`); fails, handing the optimizer back, only while a
    /// trainer made through [`sys`] uses it.
    pub fn close(self) -> std::result::Result<(), (Self, Error)> {
        let raw = self.raw;
        match check(unsafe { sys::sat_optimizer_destroy_checked(raw) }, || unsafe { sys::sat_optimizer_last_error(raw) }) {
            Ok(()) => {
                std::mem::forget(self);
                Ok(())
            }
            Err(e) => Err((self, e)),
        }
    }
    /// The C handle (still owned by this object).
    pub fn as_ptr(&self) -> *mut sys::sat_optimizer {
        self.raw
    }
}

impl Drop for Optimizer<'_, '_> {
    fn drop(&mut self) {
        unsafe { sys::sat_optimizer_destroy(self.raw) }
    }
}

/// Mutable access to an optimizer's model ([`Optimizer::model_mut`]): the `&mut self`
/// methods of [`Model`], and every `&self` one through `Deref`. It is not a `&mut Model`,
/// so the model cannot be swapped for another one while the optimizer points at it:
///
/// ```compile_fail,E0596
/// use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts};
/// let ctx = Context::new(1, 0)?;
/// let mut model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let mut other = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let mut optimizer = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9)?)?;
/// std::mem::swap(&mut *optimizer.model_mut(), &mut other);
/// drop(other); // would free the optimizer's model
/// # Ok::<(), libsat::Error>(())
/// ```
pub struct ModelMut<'a, 'ctx>(&'a mut Model<'ctx>);

impl<'ctx> std::ops::Deref for ModelMut<'_, 'ctx> {
    type Target = Model<'ctx>;
    fn deref(&self) -> &Model<'ctx> {
        self.0
    }
}

impl ModelMut<'_, '_> {
    /// [`Model::set_backward`].
    pub fn set_backward(&mut self, attack: Backward, train: Backward) -> Result<()> {
        self.0.set_backward(attack, train)
    }
    /// [`Model::params_mut`].
    pub fn params_mut(&mut self) -> &mut [f32] {
        self.0.params_mut()
    }
    /// [`Model::state_mut`].
    pub fn state_mut(&mut self) -> &mut [f32] {
        self.0.state_mut()
    }
    /// [`Model::grads_mut`].
    pub fn grads_mut(&mut self) -> &mut [f32] {
        self.0.grads_mut()
    }
    /// [`Model::train_backward`].
    pub fn train_backward(&mut self, x: &[f32], labels: &[i32], label_smoothing: f32) -> Result<(f32, i64)> {
        self.0.train_backward(x, labels, label_smoothing)
    }
}

/// Statistics of one training step.
pub type StepStats = sys::sat_step_stats;

/// Adversarial training steps. Holds the optimizer (and through it the model) mutably
/// while it lives; [`Trainer::model`] reads the model between steps.
///
/// ```
/// use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};
/// let ctx = Context::new(1, 0)?;
/// let mut model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let mut optimizer = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9)?)?;
/// let mut trainer = Trainer::new(&mut optimizer, &TrainerOpts::pgd(0.1, 2)?)?;
/// trainer.step(&[0.5; 8], &[0, 1])?;
/// drop(trainer);
/// drop(optimizer);
/// # Ok::<(), libsat::Error>(())
/// ```
///
/// Dropping the optimizer while the trainer still uses it does not compile (the last two
/// lines swapped):
///
/// ```compile_fail,E0505
/// use libsat::{Context, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};
/// let ctx = Context::new(1, 0)?;
/// let mut model = Model::new(&ctx, "input 1 2 2\nflatten\ndense 2\n", &ModelOpts::new()?)?;
/// let mut optimizer = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9)?)?;
/// let mut trainer = Trainer::new(&mut optimizer, &TrainerOpts::pgd(0.1, 2)?)?;
/// trainer.step(&[0.5; 8], &[0, 1])?;
/// drop(optimizer);
/// drop(trainer);
/// # Ok::<(), libsat::Error>(())
/// ```
pub struct Trainer<'a, 'm, 'ctx> {
    raw: *mut sys::sat_trainer,
    opt: &'a mut Optimizer<'m, 'ctx>,
    /// The data-parallel closures ([`Trainer::with_bn_reduce`], [`Trainer::with_grad_ready`]),
    /// boxed so that the library's `user` pointer to them does not move.
    hooks: Option<Box<HookState<'a>>>,
}

/// What the trainer's callback trampolines reach through `user`.
struct HookState<'a> {
    bn_reduce: Option<Box<dyn FnMut(&mut [f64]) -> bool + 'a>>,
    grad_ready: Option<Box<dyn FnMut(usize, &mut [f32]) -> bool + 'a>>,
    grads: *mut f32,
    panic: Option<String>,
}

/// Runs a closure of the trainer's hooks: `false` or a panic becomes the C refusal 1. A panic
/// must not unwind into C: it fails the step and becomes the error's message.
fn guarded(st: &mut HookState, what: &str, f: impl FnOnce(&mut HookState) -> bool) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *st))) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(p) => {
            let why = p.downcast_ref::<&str>().map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
            st.panic = Some(format!("{what} closure panicked: {why}"));
            1
        }
    }
}

unsafe extern "C" fn bn_reduce_trampoline(user: *mut c_void, sums: *mut f64, count: i64) -> i32 {
    let st = &mut *(user as *mut HookState);
    let sums = std::slice::from_raw_parts_mut(sums, count as usize);
    guarded(st, "batch-norm reduction", |st| st.bn_reduce.as_mut().map_or(false, |f| f(sums)))
}

unsafe extern "C" fn grad_ready_trampoline(user: *mut c_void, offset: i64, count: i64) -> i32 {
    let st = &mut *(user as *mut HookState);
    let range = std::slice::from_raw_parts_mut(st.grads.add(offset as usize), count as usize);
    guarded(st, "gradient-ready", |st| st.grad_ready.as_mut().map_or(false, |f| f(offset as usize, range)))
}

impl<'a, 'm, 'ctx> Trainer<'a, 'm, 'ctx> {
    /// A trainer that crafts adversarial examples with the optimizer's model and updates it
    /// with the optimizer.
    pub fn new(opt: &'a mut Optimizer<'m, 'ctx>, opts: &TrainerOpts) -> Result<Self> {
        let mut raw = ptr::null_mut();
        let m = opt.model.raw;
        check_create(unsafe { sys::sat_trainer_create(m, opt.raw, &opts.0, &mut raw) },
                     || unsafe { sys::sat_model_last_error(m) })?;
        Ok(Trainer { raw, opt, hooks: None })
    }

    /// A data-parallel trainer with synchronised batch norm (`sat_trainer_opts.bn_reduce`):
    /// `reduce` gets each batch-norm layer's sums and must replace them, in place, by their
    /// sums over all ranks (an all-reduce of f64), returning `true`; `false` or a panic fails
    /// the trainer's call with [`ErrorKind::Aborted`] and nothing changed (a panic's message
    /// is the error's). The closure may borrow data that outlives the trainer.
    pub fn with_bn_reduce(opt: &'a mut Optimizer<'m, 'ctx>, opts: &TrainerOpts,
                          reduce: impl FnMut(&mut [f64]) -> bool + 'a) -> Result<Self> {
        Self::with_hooks(opt, opts, Some(Box::new(reduce)), None)
    }

    /// A data-parallel trainer that overlaps the gradient reduction with the backward
    /// (`sat_trainer_opts.grad_ready`): during [`Trainer::compute`], `ready` gets each range of
    /// the gradient block as soon as it is final, with its offset in the block, per layer from
    /// the block's end down to 0, and returns `true` (after starting, say, a non-blocking
    /// all-reduce of it); `false` or a panic fails the call as for [`Trainer::with_bn_reduce`].
    pub fn with_grad_ready(opt: &'a mut Optimizer<'m, 'ctx>, opts: &TrainerOpts,
                           ready: impl FnMut(usize, &mut [f32]) -> bool + 'a) -> Result<Self> {
        Self::with_hooks(opt, opts, None, Some(Box::new(ready)))
    }

    #[allow(clippy::type_complexity)]
    fn with_hooks(opt: &'a mut Optimizer<'m, 'ctx>, opts: &TrainerOpts,
                  bn_reduce: Option<Box<dyn FnMut(&mut [f64]) -> bool + 'a>>,
                  grad_ready: Option<Box<dyn FnMut(usize, &mut [f32]) -> bool + 'a>>) -> Result<Self> {
        let grads = unsafe { sys::sat_model_grads(opt.model.raw) };
        let mut o = *opts;
        if bn_reduce.is_some() {
            o.bn_reduce = Some(bn_reduce_trampoline);
        }
        if grad_ready.is_some() {
            o.grad_ready = Some(grad_ready_trampoline);
        }
        let mut state = Box::new(HookState { bn_reduce, grad_ready, grads, panic: None });
        let user = &mut *state as *mut HookState as *mut c_void;
        o.bn_reduce_user = user;
        o.grad_ready_user = user;
        let mut t = Self::new(opt, &o)?;
        t.hooks = Some(state);
        Ok(t)
    }

    fn check(&self, status: i32) -> Result<()> {
        let raw = self.raw;
        check(status, || unsafe { sys::sat_trainer_last_error(raw) })
    }

    /// check(), with the message of a panic in a closure of the hooks.
    fn check_step(&mut self, status: i32) -> Result<()> {
        let panic = self.hooks.as_mut().and_then(|st| st.panic.take());
        match (self.check(status), panic) {
            (Err(e), Some(msg)) if e.kind() == ErrorKind::Aborted => Err(Error::new(sys::SAT_E_ABORTED, msg)),
            (r, _) => r,
        }
    }

    /// The model being trained (read access between steps).
    pub fn model(&self) -> &Model<'ctx> {
        self.opt.model()
    }

    /// The optimizer (read access between steps).
    pub fn optimizer(&self) -> &Optimizer<'m, 'ctx> {
        self.opt
    }

    /// [`Optimizer::set_lr`] on the optimizer this trainer holds; from the next step on.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        self.opt.set_lr(lr)
    }
    /// [`Optimizer::set_lr_scale`] on the optimizer this trainer holds.
    pub fn set_lr_scale(&mut self, range: std::ops::Range<usize>, scale: f32) -> Result<()> {
        self.opt.set_lr_scale(range, scale)
    }
    /// [`Optimizer::set_frozen`] on the optimizer this trainer holds.
    pub fn set_frozen(&mut self, mask: Option<&[u8]>) -> Result<()> {
        self.opt.set_frozen(mask)
    }

    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_trainer_last_error(self.raw)) }
    }

    /// One adversarial training step on a batch.
    pub fn step(&mut self, x: &[f32], labels: &[i32]) -> Result<StepStats> {
        let n = self.opt.model.batch(x, Some(labels), "train step")?;
        let mut st = StepStats { struct_size: std::mem::size_of::<StepStats>() as u32, ..Default::default() };
        let status = unsafe { sys::sat_train_step(self.raw, x.as_ptr(), labels.as_ptr(), n, &mut st) };
        self.check_step(status)?;
        Ok(st)
    }

    /// The gradient half of a step (`sat_train_compute`): the batch's mean gradient into the
    /// model's gradient block ([`Trainer::grads_mut`]), weights unchanged. Reduce it across
    /// ranks, then [`Trainer::apply`]. Free-AT is refused (`ErrorKind::Unsupported`).
    pub fn compute(&mut self, x: &[f32], labels: &[i32]) -> Result<StepStats> {
        let n = self.opt.model.batch(x, Some(labels), "train compute")?;
        let mut st = StepStats { struct_size: std::mem::size_of::<StepStats>() as u32, ..Default::default() };
        let status = unsafe { sys::sat_train_compute(self.raw, x.as_ptr(), labels.as_ptr(), n, &mut st) };
        self.check_step(status)?;
        Ok(st)
    }
    /// The update half of a step (`sat_train_apply`): the optimizer on the gradient block.
    pub fn apply(&mut self) -> Result<()> {
        self.check(unsafe { sys::sat_train_apply(self.raw) })
    }
    /// The model's gradient block, for the reduction between [`Trainer::compute`] and
    /// [`Trainer::apply`].
    pub fn grads_mut(&mut self) -> &mut [f32] {
        self.opt.model.grads_mut()
    }

    /// Writes a checkpoint: the model file plus the optimizer state and step count and the
    /// trainer's RNG position, so a resumed run continues bit-exactly. `epoch` and
    /// `batch_index` are your loop position, given back by [`Trainer::load_checkpoint`].
    pub fn save_checkpoint(&self, path: impl AsRef<Path>, meta: Option<&ModelMeta>, epoch: i64,
                           batch_index: i64) -> Result<()> {
        let p = c_path(path.as_ref())?;
        let m = meta.map_or(ptr::null(), |m| &m.0 as *const _);
        self.check(unsafe { sys::sat_checkpoint_save(self.raw, m, epoch, batch_index, p.as_ptr()) })
    }

    /// Restores a checkpoint into this trainer, its model and optimizer (built with the
    /// same spec); returns (epoch, batch_index). On failure nothing is changed.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<(i64, i64)> {
        let p = c_path(path.as_ref())?;
        let (mut e, mut b) = (0i64, 0i64);
        self.check(unsafe { sys::sat_checkpoint_load(self.raw, p.as_ptr(), &mut e, &mut b) })?;
        Ok((e, b))
    }
}

impl Drop for Trainer<'_, '_, '_> {
    fn drop(&mut self) {
        unsafe { sys::sat_trainer_destroy(self.raw) }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Dataset                                                                              */
/* ------------------------------------------------------------------------------------ */

/// File format for [`Dataset::load`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum DataFormat {
    /// MNIST / Fashion-MNIST: `DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
    Idx = sys::SAT_DATA_IDX,
    /// `DIR/data_batch_{1..5}.bin`, `DIR/test_batch.bin`.
    Cifar10 = sys::SAT_DATA_CIFAR10,
}

/// Which part of a data set to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Split {
    Train = sys::SAT_SPLIT_TRAIN,
    Test = sys::SAT_SPLIT_TEST,
}

/// Augmentation flags of [`Dataset::shuffle`]; combine with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Augment(pub u32);

impl Augment {
    pub const NONE: Augment = Augment(sys::SAT_AUG_NONE);
    /// Random crop with 4 pixels of zero padding.
    pub const CROP: Augment = Augment(sys::SAT_AUG_CROP);
    /// Random horizontal flip.
    pub const FLIP: Augment = Augment(sys::SAT_AUG_FLIP);
}

impl std::ops::BitOr for Augment {
    type Output = Augment;
    fn bitor(self, o: Augment) -> Augment {
        Augment(self.0 | o.0)
    }
}

/// Directory of Debian's dataset-fashion-mnist package (the default data directory).
pub fn default_data_dir() -> String {
    unsafe { cstr(sys::sat_default_data_dir()) }
}

/// Images (float32 NCHW in [0,1]) and labels held by the library. Borrows its context.
pub struct Dataset<'ctx> {
    raw: *mut sys::sat_dataset,
    shape: (i32, i32, i32),
    num_classes: i32,
    _ctx: PhantomData<&'ctx Context>,
}

impl<'ctx> Dataset<'ctx> {
    fn from_raw(raw: *mut sys::sat_dataset) -> Result<Self> {
        let mut d = Dataset { raw, shape: (0, 0, 0), num_classes: 0, _ctx: PhantomData };
        let (mut c, mut h, mut w, mut k) = (0, 0, 0, 0);
        d.check(unsafe { sys::sat_dataset_shape(raw, &mut c, &mut h, &mut w, &mut k) })?;
        d.shape = (c, h, w);
        d.num_classes = k;
        Ok(d)
    }

    fn check(&self, status: i32) -> Result<()> {
        let raw = self.raw;
        check(status, || unsafe { sys::sat_dataset_last_error(raw) })
    }

    /// Loads the `split` of a data set stored as `format` files in `dir` (IDX files may be
    /// gzipped). A missing file gives [`ErrorKind::Io`], a damaged one [`ErrorKind::Format`],
    /// with a message naming the file.
    pub fn load(ctx: &'ctx Context, format: DataFormat, dir: impl AsRef<Path>, split: Split) -> Result<Self> {
        let d = c_path(dir.as_ref())?;
        let mut raw = ptr::null_mut();
        check_create(unsafe { sys::sat_dataset_load(ctx.raw, format as i32, d.as_ptr(), split as i32, &mut raw) },
                     || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Self::from_raw(raw)
    }

    /// Loads an IDX image file and label file given directly.
    pub fn load_idx(ctx: &'ctx Context, images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (i, l) = (c_path(images.as_ref())?, c_path(labels.as_ref())?);
        let mut raw = ptr::null_mut();
        check_create(unsafe { sys::sat_dataset_load_idx(ctx.raw, i.as_ptr(), l.as_ptr(), &mut raw) },
                     || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Self::from_raw(raw)
    }

    /// A data set of copies of `x` (n examples of `shape` = (C, H, W)) and `labels`
    /// (n values in 0..num_classes).
    pub fn from_arrays(ctx: &'ctx Context, x: &[f32], labels: &[i32], shape: (i32, i32, i32),
                       num_classes: i32) -> Result<Self> {
        let es = shape.0 as i64 * shape.1 as i64 * shape.2 as i64;
        if es <= 0 || x.len() as i64 % es != 0 {
            return Err(shape_error(format!("Dataset::from_arrays: {} values are not whole examples of {:?}",
                                           x.len(), shape)));
        }
        let n = x.len() as i64 / es;
        if labels.len() as i64 != n {
            return Err(shape_error(format!("Dataset::from_arrays: {} labels for {n} examples", labels.len())));
        }
        let mut raw = ptr::null_mut();
        check_create(unsafe {
            sys::sat_dataset_from_arrays(ctx.raw, x.as_ptr(), labels.as_ptr(), n, shape.0, shape.1,
                                         shape.2, num_classes, &mut raw)
        }, || unsafe { sys::sat_context_last_error(ctx.raw) })?;
        Self::from_raw(raw)
    }

    pub fn as_ptr(&self) -> *mut sys::sat_dataset {
        self.raw
    }
    /// Number of examples.
    pub fn len(&self) -> usize {
        unsafe { sys::sat_dataset_size(self.raw) }.max(0) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shape per example (C, H, W).
    pub fn input_shape(&self) -> (i32, i32, i32) {
        self.shape
    }
    pub fn num_classes(&self) -> usize {
        self.num_classes as usize
    }
    pub fn example_size(&self) -> usize {
        (self.shape.0 * self.shape.1 * self.shape.2) as usize
    }
    pub fn last_error(&self) -> String {
        unsafe { cstr(sys::sat_dataset_last_error(self.raw)) }
    }
    /// All images in storage order (not the shuffled order), `len() * example_size()` values.
    pub fn images(&self) -> &[f32] {
        unsafe { slice_or_empty(sys::sat_dataset_images(self.raw), self.len() * self.example_size()) }
    }
    /// All labels in storage order.
    pub fn labels(&self) -> &[i32] {
        unsafe { slice_or_empty(sys::sat_dataset_labels(self.raw), self.len()) }
    }
    /// Starts an epoch: the order becomes a permutation fixed by (seed, epoch), with the
    /// given augmentation.
    pub fn shuffle(&mut self, seed: u64, epoch: i64, aug: Augment) -> Result<()> {
        self.check(unsafe { sys::sat_dataset_shuffle(self.raw, seed, epoch, aug.0) })
    }
    /// Number of batches of size `batch` in an epoch (the last may be shorter).
    pub fn num_batches(&self, batch: usize) -> usize {
        if batch == 0 {
            0
        } else {
            self.len().div_ceil(batch)
        }
    }
    /// Copies batch `index` (of size `batch`) of the current order into the caller's
    /// slices, which must hold at least `batch` examples and labels; returns the number
    /// of examples written (smaller for the last batch).
    pub fn batch_into(&mut self, index: usize, batch: usize, x: &mut [f32], labels: &mut [i32]) -> Result<usize> {
        let es = self.example_size();
        if batch == 0 || x.len() < batch * es || labels.len() < batch {
            return Err(shape_error(format!(
                "Dataset::batch_into: a batch of {batch} needs {} values and {batch} labels, got {} and {}",
                batch * es, x.len(), labels.len())));
        }
        let mut n = 0i64;
        self.check(unsafe {
            sys::sat_dataset_batch(self.raw, index as i64, batch as i64, x.as_mut_ptr(), labels.as_mut_ptr(), &mut n)
        })?;
        Ok(n.max(0) as usize)
    }
    /// Batch `index` of the current order as new vectors (x, labels).
    pub fn batch(&mut self, index: usize, batch: usize) -> Result<(Vec<f32>, Vec<i32>)> {
        let mut x = vec![0f32; batch * self.example_size()];
        let mut y = vec![0i32; batch];
        let n = self.batch_into(index, batch, &mut x, &mut y)?;
        x.truncate(n * self.example_size());
        y.truncate(n);
        Ok((x, y))
    }
    /// Moves `count` examples (1..len) chosen by a seeded permutation into a new data set,
    /// e.g. a validation split; both parts keep their relative order.
    pub fn split(&mut self, count: usize, seed: u64) -> Result<Dataset<'ctx>> {
        let mut raw = ptr::null_mut();
        let me = self.raw;
        check_create(unsafe { sys::sat_dataset_split(me, count as i64, seed, &mut raw) },
                     || unsafe { sys::sat_dataset_last_error(me) })?;
        Self::from_raw(raw)
    }
    /// Keeps only the first `count` examples (1..=len).
    pub fn truncate(&mut self, count: usize) -> Result<()> {
        self.check(unsafe { sys::sat_dataset_truncate(self.raw, count as i64) })
    }
}

impl Drop for Dataset<'_> {
    fn drop(&mut self) {
        unsafe { sys::sat_dataset_destroy(self.raw) }
    }
}

/// The README's example is compiled as a doctest so it stays in step with the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;
