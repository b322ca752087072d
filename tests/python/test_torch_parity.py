"""PyTorch parity: the madry-cnn preset (input 1x28x28, 10 classes) with each activation, a
residual block with batch norm, and the ops of the ImageNet families (padded max-pooling,
sigmoid, channel-wise mul). The torch model is rebuilt from Model.layers() alone: each
layer's op, inputs, attributes and activation, with its tensors copied from the views the
introspection gives (no hand-written layout). Logits and the input gradient of the summed
cross-entropy are compared in float32.

Tolerance: |libsat - torch| <= 1e-4 * max(1, max|torch|), per quantity. Both sides compute in
float32 but sum in different orders (BLIS vs. MKL-DNN/OpenBLAS GEMM blocking; dot products
of up to 3136 terms in the first dense layer, 800 in conv2) and use different libm/vectorised
exp/log1p/erf/tanh (a few ulp each). The float32 rounding error of a K-term dot product
grows like sqrt(K) * 2^-24 * sum|terms|, i.e. ~1e-6 relative here; 1e-4 relative leaves two
orders of magnitude for accumulation through four layers and the softmax, yet is far below
any real discrepancy (a wrong layout, activation parameter or derivative moves values by
1e-2 or more)."""
import numpy as np
import pytest

import libsat

import torch  # python3-torch: a missing PyTorch fails this test, it does not skip it
F = torch.nn.functional

TOL = 1e-4

ACTIVATIONS = ["relu", "softplus", "psoftplus", "silu", "gelu", "gelu-tanh", "elu", "celu",
               "smoothrelu"]


def _activation(layer):
    """The torch function of an `act` layer, from its kind and parameter (SmoothReLU: its
    learnable a, read from the parameter block)."""
    a = layer.act_param
    if layer.activation == "smoothrelu":
        alpha = float(layer.params["act_alpha"].data[0])

        def smoothrelu(x):
            xc = torch.clamp(x, min=0)  # 0 for x < 0, and keeps log1p away from x <= -1/a
            return xc - torch.log1p(alpha * xc) / alpha
        return smoothrelu
    return {
        "relu": F.relu,
        "softplus": F.softplus,
        "psoftplus": lambda x: F.softplus(x, beta=a),
        "silu": lambda x: x * torch.sigmoid(a * x),
        "gelu": F.gelu,
        "gelu-tanh": lambda x: F.gelu(x, approximate="tanh"),
        "elu": lambda x: F.elu(x, alpha=a),
        "celu": lambda x: F.celu(x, alpha=a),
    }[layer.activation]


def _tensor(t):
    return torch.nn.Parameter(torch.from_numpy(t.data.copy()), requires_grad=False)


class TorchFromLayers(torch.nn.Module):
    """A libsat model rebuilt in torch from its layer list (inference mode)."""

    def __init__(self, model):
        super().__init__()
        self.layers = model.layers()
        self.mods = torch.nn.ModuleDict()
        self.fns = {}
        for layer in self.layers:
            key = str(layer.index)
            p, s = layer.params, layer.state
            if layer.op == "conv":
                w = p["weight"]
                groups = self.layers[layer.inputs[0]].output_shape[0] // w.shape[1]
                m = torch.nn.Conv2d(w.shape[1] * groups, w.shape[0], layer.kernel, layer.stride,
                                    layer.padding, groups=groups, bias="bias" in p)
            elif layer.op == "dense":
                w = p["weight"]
                m = torch.nn.Linear(w.shape[1], w.shape[0], bias="bias" in p)
            elif layer.op == "bn":
                m = torch.nn.BatchNorm2d(layer.output_shape[0]).eval()
                m.weight, m.bias = _tensor(p["bn_scale"]), _tensor(p["bn_shift"])
                m.running_mean.copy_(torch.from_numpy(s["running_mean"].data))
                m.running_var.copy_(torch.from_numpy(s["running_var"].data))
            else:
                m = None
            if layer.op in ("conv", "dense"):
                m.weight = _tensor(p["weight"])
                if "bias" in p:
                    m.bias = _tensor(p["bias"])
            if m is not None:
                self.mods[key] = m
            elif layer.op == "act":
                self.fns[layer.index] = _activation(layer)

    def forward(self, x):
        out = []
        for layer in self.layers:
            i = layer.inputs[0] if layer.inputs else None
            a = out[i] if i is not None else x
            op, key = layer.op, str(layer.index)
            if op == "input":
                y = x
            elif op == "dense":
                y = self.mods[key](a.flatten(1))  # any input is read as C, H, W flattened
            elif op == "bn":
                y = self.mods[key](a if a.dim() == 4 else a.reshape(len(a), -1, 1, 1))
                y = y.reshape(a.shape)
            elif op == "conv":
                y = self.mods[key](a)
            elif op == "act":
                y = self.fns[layer.index](a)
            elif op == "maxpool":
                y = F.max_pool2d(a, layer.kernel, layer.stride, layer.padding)
            elif op == "avgpool":
                y = F.avg_pool2d(a, layer.kernel, layer.stride)
            elif op == "gap":
                y = a.mean(dim=(2, 3), keepdim=True)
            elif op == "add":
                y = a + out[layer.inputs[1]]
            elif op == "mul":
                y = a * out[layer.inputs[1]]  # torch broadcasts the C x 1 x 1 gate as libsat does
            elif op == "flatten":
                y = a.flatten(1)
            elif op == "dropout":
                y = a  # the identity outside training-mode forwards, as torch's eval()
            elif op == "sigmoid":
                y = torch.sigmoid(a)
            else:
                raise NotImplementedError(op)
            if op in ("dense", "flatten"):
                y = y.reshape(len(y), -1, 1, 1)  # libsat's [c, 1, 1] after dense and flatten
            out.append(y)
        return out[-1].flatten(1)


RESULTS = {}

RESIDUAL = """input 3 8 8
conv 8 k=3 p=1 bias=0
bn
act name=b0
conv 8 k=3 s=2 p=1 bias=0
bn
act
conv 8 k=3 p=1 bias=0
bn name=main
conv 8 k=1 s=2 bias=0 from=b0
bn
add main
act
avgpool k=2
gap
flatten
dense 16
bn
act psoftplus param=5
dense 10
"""


def _compare(m, x, y, key):
    logits = m.forward(x)
    losses, grad, _ = m.input_gradient(x, y)

    net = TorchFromLayers(m)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = net(xt)
    loss = F.cross_entropy(out, torch.from_numpy(y).long(), reduction="sum")
    loss.backward()
    t_logits = out.detach().numpy()
    t_grad = xt.grad.numpy()
    t_losses = F.cross_entropy(out.detach(), torch.from_numpy(y).long(), reduction="none").numpy()

    d_logits = float(np.abs(logits - t_logits).max())
    d_grad = float(np.abs(grad - t_grad).max())
    d_loss = float(np.abs(losses - t_losses).max())
    RESULTS[key] = (d_logits, d_grad)
    print(f"\n[torch parity] {key:<11} max|dlogits| = {d_logits:.3e} (max|logit| "
          f"{np.abs(t_logits).max():.3g})   max|dgrad| = {d_grad:.3e} (max|grad| "
          f"{np.abs(t_grad).max():.3g})   max|dloss| = {d_loss:.3e}")
    assert d_logits <= TOL * max(1.0, float(np.abs(t_logits).max())), d_logits
    assert d_loss <= TOL * max(1.0, float(np.abs(t_losses).max())), d_loss
    assert d_grad <= TOL * max(1.0, float(np.abs(t_grad).max())), d_grad
    assert np.abs(t_grad).max() > 0  # a non-trivial gradient was compared


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_madry_cnn_matches_torch(ctx, torch_threads, act):
    m = libsat.Model.preset(ctx, "madry-cnn", (1, 28, 28), 10, activation=act, seed=2020,
                            max_batch=4)
    rng = np.random.default_rng(42)
    x = rng.random((4, 1, 28, 28), dtype=np.float32)
    y = np.array([3, 1, 4, 1], np.int32)
    _compare(m, x, y, act)


def test_residual_batchnorm_matches_torch(ctx, torch_threads):
    """Batch norm (with statistics that are not the initial ones), a projection shortcut,
    average pooling and a parametric activation, all rebuilt from the layer list."""
    m = libsat.Model(ctx, RESIDUAL, activation="silu", seed=7, max_batch=4)
    rng = np.random.default_rng(5)
    for layer in m.layers():
        if layer.op == "bn":
            c = layer.output_shape[0]
            layer.state["running_mean"].data[...] = rng.normal(0, 0.2, c)
            layer.state["running_var"].data[...] = rng.uniform(0.5, 2.0, c)
            layer.params["bn_scale"].data[...] = rng.uniform(0.5, 1.5, c)
            layer.params["bn_shift"].data[...] = rng.normal(0, 0.1, c)
    x = rng.random((4, 3, 8, 8), dtype=np.float32)
    y = np.array([0, 9, 4, 2], np.int32)
    _compare(m, x, y, "residual")


# The ops the ImageNet families add, each in the place those networks use it.
NEW_OPS = """input 3 12 12
conv 8 k=3 p=1 bias=0
bn
act
dropout p=0.2
maxpool k=3 s=2 p=1 name=stem
gap
conv 4 k=1
act
conv 8 k=1
sigmoid name=gate
mul stem
conv 8 k=3 p=1 g=8
conv 8 k=3 s=2 p=1 g=2 bias=0
sigmoid name=s
conv 8 k=1 s=2 from=stem
mul s
gap
dense 10
"""


def test_new_ops_match_torch(ctx, torch_threads):
    """The ResNet stem's padded max-pooling (padding never wins the max: the inputs after an
    activation such as SiLU can be negative), a squeeze-excitation gate (sigmoid, then mul
    broadcasting it over H x W), depthwise and grouped convolutions, mul of two tensors of one
    shape, and dropout (the identity outside training, as in torch's eval mode)."""
    m = libsat.Model(ctx, NEW_OPS, activation="silu", seed=11, max_batch=4)
    rng = np.random.default_rng(8)
    x = rng.random((4, 3, 12, 12), dtype=np.float32) - 0.5
    y = np.array([1, 7, 3, 0], np.int32)
    _compare(m, x, y, "new-ops")
