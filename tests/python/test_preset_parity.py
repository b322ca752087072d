"""PyTorch parity of the ImageNet and robustness-benchmark presets: each preset against the
same network written directly in PyTorch (torch_presets.py, as the papers' code writes it),
with libsat's weights and batch-norm statistics copied in. Logits and the input gradient of
the summed cross-entropy are compared with batch norm in inference mode (running statistics
of another batch, computed by PyTorch's training-mode forward, with random scales and shifts,
so that they matter and activations keep their size through every layer) and with batch
statistics (torch's train mode; libsat's 'batch' forward, the attacks' batch-statistics mode).

The parameter counts are PyTorch's sum(p.numel()) of those networks; the C test
(test_presets.c) and sat.h's sat_preset_spec documentation carry the same integers.

Small inputs keep CI short: 3x32x32 for the CIFAR networks, 3x64x64 for the ImageNet ones,
batches of 3. Tolerance: as in test_torch_parity.py, relative to the largest value of each
quantity (and at least 1e-3, so that no vanishing quantity is compared); 1e-4 there for
four layers, 1e-3 here for up to 50 layers of sums of up to 4608
terms in float32, each summed in another order by each side (still far below what a wrong
layout, stride, padding or missing layer moves: 1e-1 or more)."""
import numpy as np
import pytest

import libsat

import torch  # python3-torch: a missing PyTorch fails this test, it does not skip it
import torch_presets

F = torch.nn.functional

TOL = 1e-3

# name, input shape, classes, activation, parameter count (PyTorch's sum(p.numel())). Each
# network with ReLU, as in the original, and with a smooth activation, as the paper trains it.
PRESETS = [
    ("preact-resnet18", (3, 32, 32), 10, "relu", 11172170),
    ("preact-resnet18", (3, 32, 32), 10, "softplus", 11172170),
    ("wrn-16-2", (3, 32, 32), 10, "relu", 691674),
    ("wrn-16-2", (3, 32, 32), 10, "silu", 691674),
    ("resnet50", (3, 64, 64), 10, "relu", 23528522),
    ("resnet50", (3, 64, 64), 10, "gelu", 23528522),
    ("resnext50-32x4d", (3, 64, 64), 10, "silu", 23000394),
    ("efficientnet-b0", (3, 64, 64), 10, "silu", 4020358),
]

TORCH_ACT = {"relu": F.relu, "silu": F.silu, "gelu": F.gelu, "softplus": F.softplus}
BATCH = 3


def _randomise_affine(model, rng):
    for layer in model.layers():
        if layer.op == "bn":
            c = layer.output_shape[0]
            layer.params["bn_scale"].data[...] = rng.uniform(0.5, 1.5, c)
            layer.params["bn_shift"].data[...] = rng.normal(0, 0.1, c)


def _torch_side(net, x, y, train):
    net.train(train)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = net(xt)
    F.cross_entropy(out, torch.from_numpy(y).long(), reduction="sum").backward()
    return out.detach().numpy(), xt.grad.numpy()


def _libsat_side(model, x, y, bn_mode):
    e = libsat.Exec.of_model(model)
    logits = e.forward(x, bn_mode=bn_mode)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0  # d(summed cross-entropy)/dlogits
    grad, _ = e.backward(p)
    return logits, grad


# The input gradient of a ReLU network, in the 2-norm (see test_preset_matches_torch).
RELU_GRAD_TOL = 0.1


def _close(key, what, ours, theirs, norm="max", tol=TOL):
    """max|ours - theirs| <= tol max|theirs|, or with norm="l2" the same in the 2-norm."""
    if norm == "max":
        d, scale = float(np.abs(ours - theirs).max()), float(np.abs(theirs).max())
    else:
        d, scale = float(np.linalg.norm(ours - theirs)), float(np.linalg.norm(theirs))
    print(f"\n[preset parity] {key:<36} {what:<6} {norm}|diff| = {d:.3e} ({norm}|torch| {scale:.3g})")
    assert scale > 1e-3, (key, what, scale)  # a quantity of a healthy size was compared
    assert d <= tol * scale, (key, what, d, scale)


@pytest.mark.parametrize("name,shape,classes,act,count", PRESETS,
                         ids=[f"{p[0]}-{p[3]}" for p in PRESETS])
def test_preset_matches_torch(ctx, torch_threads, name, shape, classes, act, count):
    """Running statistics with every activation; batch statistics with the smooth ones only.
    Among the 10^6..10^7 ReLU inputs of a batch some lie within float32 rounding of the
    kink, where either side may land, and one unit on the other side changes a whole
    receptive field's gradient. Measured against float64 (PyTorch, same weights): wrn-16-2
    with batch statistics, PyTorch's float32 gradient within 2e-7, libsat's one example off
    by 2% (nearest ReLU input to the kink: 1.5e-7); resnet50 with running statistics, both
    float32 forwards within 5e-5 of float64, the gradients off per example by 0.0003%, 0.26%,
    0.54% (PyTorch) and 3.1%, 0.36%, 0.44% (libsat). So with ReLU the logits are compared as
    always, the input gradient only in the 2-norm within RELU_GRAD_TOL (a wrong derivative
    or layer moves it by its own size); the smooth activations, which have no kink, check
    every gradient value within TOL, with running and with batch statistics."""
    m = libsat.Model.preset(ctx, name, shape, classes, activation=act, seed=13, max_batch=BATCH)
    net = torch_presets.build(name, classes, TORCH_ACT[act])
    assert m.param_count == count == torch_presets.param_count(net)
    rng = np.random.default_rng(17)
    _randomise_affine(m, rng)
    torch_presets.copy_weights(m, net, shape)
    x_stats = rng.random((16,) + shape, dtype=np.float32)
    torch_presets.set_running_stats(m, net, shape, torch.from_numpy(x_stats))
    x = rng.random((BATCH,) + shape, dtype=np.float32)
    y = rng.integers(0, classes, BATCH).astype(np.int32)
    modes = (("inference", False),) + ((("batch", True),) if act != "relu" else ())
    for bn_mode, train in modes:
        logits, grad = _libsat_side(m, x, y, bn_mode)
        t_logits, t_grad = _torch_side(net, x, y, train)
        key = f"{name} ({act}, bn {bn_mode})"
        _close(key, "logits", logits, t_logits)
        if act == "relu":
            _close(key, "grad", grad, t_grad, "l2", RELU_GRAD_TOL)
        else:
            _close(key, "grad", grad, t_grad)


def test_copy_catches_a_wrong_network(ctx):
    """The pairing of layers refuses a network that is not the preset (here ResNet-50's
    layers against ResNeXt-50's grouped 3x3 convolutions), so a parity pass means the
    architecture matched, not only the arithmetic."""
    m = libsat.Model.preset(ctx, "resnet50", (3, 64, 64), 10, seed=1, max_batch=1)
    with pytest.raises(AssertionError):
        torch_presets.copy_weights(m, torch_presets.build("resnext50-32x4d", 10, F.relu), (3, 64, 64))
