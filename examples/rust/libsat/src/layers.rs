//! Layer introspection: each layer's op, shape, inputs and activation, and where its tensors
//! sit in the flat parameter and state blocks, so that weights can be copied from or to
//! another framework without knowing the layout (dense weights `[out, in]`, conv weights
//! `[out, in, k, k]`, row-major, as in PyTorch).
use crate::{check, sys, Model, Result};
use std::ops::Range;
use std::os::raw::c_char;

/// The kind of a layer (`SAT_LAYER_*`); [`LayerInfo::op_name`] holds its spec keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerOp {
    Input,
    Normalize,
    Dense,
    Conv,
    BatchNorm,
    Act,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    Add,
    Flatten,
    /// The logistic sigmoid as a layer (a gate), apart from the model's activation.
    Sigmoid,
    /// `input0 * input1`, a `C x 1 x 1` one broadcast over `H x W` (a squeeze-excitation gate).
    Mul,
    /// Dropout in training-mode forwards, the identity otherwise.
    Dropout,
    /// A value this crate does not know (a newer library).
    Other(i32),
}

impl LayerOp {
    pub fn from_raw(v: i32) -> Self {
        match v {
            sys::SAT_LAYER_INPUT => Self::Input,
            sys::SAT_LAYER_NORMALIZE => Self::Normalize,
            sys::SAT_LAYER_DENSE => Self::Dense,
            sys::SAT_LAYER_CONV => Self::Conv,
            sys::SAT_LAYER_BN => Self::BatchNorm,
            sys::SAT_LAYER_ACT => Self::Act,
            sys::SAT_LAYER_MAXPOOL => Self::MaxPool,
            sys::SAT_LAYER_AVGPOOL => Self::AvgPool,
            sys::SAT_LAYER_GAP => Self::GlobalAvgPool,
            sys::SAT_LAYER_ADD => Self::Add,
            sys::SAT_LAYER_FLATTEN => Self::Flatten,
            sys::SAT_LAYER_SIGMOID => Self::Sigmoid,
            sys::SAT_LAYER_MUL => Self::Mul,
            sys::SAT_LAYER_DROPOUT => Self::Dropout,
            other => Self::Other(other),
        }
    }
}

/// What a tensor of a layer holds (`SAT_TENSOR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorRole {
    /// Dense `[out, in]` or conv `[out, in, k, k]`.
    Weight,
    Bias,
    /// Batch-norm gamma (PyTorch: `weight`).
    BnScale,
    /// Batch-norm beta (PyTorch: `bias`).
    BnShift,
    /// SmoothReLU's learnable `a`.
    ActAlpha,
    /// Batch-norm running mean (state block).
    RunningMean,
    /// Batch-norm running variance (state block).
    RunningVar,
    /// A value this crate does not know (a newer library).
    Other(i32),
}

impl TensorRole {
    pub fn from_raw(v: i32) -> Self {
        match v {
            sys::SAT_TENSOR_WEIGHT => Self::Weight,
            sys::SAT_TENSOR_BIAS => Self::Bias,
            sys::SAT_TENSOR_BN_SCALE => Self::BnScale,
            sys::SAT_TENSOR_BN_SHIFT => Self::BnShift,
            sys::SAT_TENSOR_ACT_ALPHA => Self::ActAlpha,
            sys::SAT_TENSOR_RUNNING_MEAN => Self::RunningMean,
            sys::SAT_TENSOR_RUNNING_VAR => Self::RunningVar,
            other => Self::Other(other),
        }
    }
}

/// Which flat block a tensor lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// [`Model::params`] (and the gradient block, with the same layout).
    Params,
    /// [`Model::state`]: batch-norm running statistics.
    State,
}

/// One tensor of a layer: `shape` (row-major) over `range` of its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub role: TensorRole,
    pub block: Block,
    pub offset: usize,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Number of floats (the product of the shape).
    pub fn count(&self) -> usize {
        self.shape.iter().product()
    }
    /// Its range of the block.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.count()
    }
}

/// One layer (spec line) of a model, from `sat_model_layer_info`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Position in the model (0 is the input); inputs always have lower indices.
    pub index: usize,
    pub op: LayerOp,
    /// The spec keyword ("conv", "bn", ...).
    pub op_name: String,
    /// Its `name=` label, empty if none.
    pub name: String,
    /// The spec line it came from (1-based).
    pub line: i32,
    /// Indices of the layers it reads (two for an add).
    pub inputs: Vec<usize>,
    /// Output (channels, height, width) per example.
    pub output_shape: (i32, i32, i32),
    /// Dense and conv outputs, else 0.
    pub units: i32,
    /// Conv and pooling window, else 0.
    pub kernel: i32,
    /// Conv and pooling stride, else 0.
    pub stride: i32,
    /// Conv zero padding, or maxpool padding (never wins the max), else 0.
    pub padding: i32,
    /// Act layers: the activation (`SAT_ACT_*`) and its parameter.
    pub activation: Option<(i32, f32)>,
    /// Its tensors, parameter block first, in block order.
    pub tensors: Vec<TensorInfo>,
}

impl LayerInfo {
    /// The tensor with this role, if the layer has one.
    pub fn tensor(&self, role: TensorRole) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.role == role)
    }
}

fn text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn tensors(raw: &[sys::sat_tensor_info], count: i32, block: Block, out: &mut Vec<TensorInfo>) {
    for t in raw.iter().take(count.clamp(0, raw.len() as i32) as usize) {
        out.push(TensorInfo {
            role: TensorRole::from_raw(t.role),
            block,
            offset: t.offset as usize,
            shape: t.shape[..t.ndim.clamp(0, 4) as usize].iter().map(|&d| d as usize).collect(),
        });
    }
}

impl<'ctx> Model<'ctx> {
    /// Number of layers, the input layer included.
    pub fn layer_count(&self) -> usize {
        unsafe { sys::sat_model_layer_count(self.raw) }.max(0) as usize
    }

    /// Layer `index` (0 = input, spec order). An index past the end gives an
    /// [`ErrorKind::InvalidArg`](crate::ErrorKind::InvalidArg) error.
    pub fn layer(&self, index: usize) -> Result<LayerInfo> {
        let mut li = std::mem::MaybeUninit::<sys::sat_layer_info>::zeroed();
        let index32 = i32::try_from(index).unwrap_or(i32::MAX);
        let raw = self.raw;
        unsafe { (*li.as_mut_ptr()).struct_size = std::mem::size_of::<sys::sat_layer_info>() as u32 };
        check(unsafe { sys::sat_model_layer_info(raw, index32, li.as_mut_ptr()) }, || unsafe {
            sys::sat_model_last_error(raw)
        })?;
        let li = unsafe { li.assume_init() };
        let mut all = Vec::new();
        tensors(&li.params, li.num_params, Block::Params, &mut all);
        tensors(&li.state, li.num_state, Block::State, &mut all);
        Ok(LayerInfo {
            index,
            op: LayerOp::from_raw(li.op),
            op_name: text(&li.op_name),
            name: text(&li.name),
            line: li.line,
            inputs: [li.input0, li.input1].iter().filter(|&&i| i >= 0).map(|&i| i as usize).collect(),
            output_shape: (li.channels, li.height, li.width),
            units: li.units,
            kernel: li.kernel,
            stride: li.stride,
            padding: li.padding,
            activation: (li.activation >= 0).then_some((li.activation, li.act_param)),
            tensors: all,
        })
    }

    /// Every layer, in spec order.
    pub fn layers(&self) -> Result<Vec<LayerInfo>> {
        (0..self.layer_count()).map(|i| self.layer(i)).collect()
    }

    /// The values of a tensor of this model's layers.
    ///
    /// # Panics
    /// If `t` does not fit this model's blocks (it came from another model).
    pub fn tensor(&self, t: &TensorInfo) -> &[f32] {
        match t.block {
            Block::Params => &self.params()[t.range()],
            Block::State => &self.state()[t.range()],
        }
    }

    /// The values of a tensor, writable: `model.tensor_mut(&w).copy_from_slice(&torch_w)`.
    ///
    /// # Panics
    /// If `t` does not fit this model's blocks (it came from another model).
    pub fn tensor_mut(&mut self, t: &TensorInfo) -> &mut [f32] {
        match t.block {
            Block::Params => &mut self.params_mut()[t.range()],
            Block::State => &mut self.state_mut()[t.range()],
        }
    }
}
