"""ONNX import against PyTorch's exporter: madry-cnn and resnet20 (and the preact-resnet18 and
efficientnet-b0 of torch_presets.py) defined in PyTorch (random
weights, batch norm with non-trivial running statistics, eval mode), exported with
torch.onnx.export at opset 13 and loaded with Model.load_onnx. Logits and the input gradient
of the summed cross-entropy must agree with PyTorch's own.

Tolerance: |libsat - torch| <= 1e-4 * max|torch|, per quantity (the gradients of resnet20
are ~1e-4 per pixel, so the bound is relative to each quantity's own size): both sides compute in float32 and sum in different orders (BLIS vs.
PyTorch's GEMM and convolution blocking; dot products of up to 3136 terms in madry-cnn's
dense layer, 576 in resnet20's convolutions, through 19 layers there), whose rounding is
~1e-6 relative per layer; 1e-4 leaves room for its growth through the depth, yet any real
discrepancy (a transposed weight, a wrong padding, batch-norm epsilon or a lost shortcut)
moves values by 1e-2 or more. Measured: at most 6.3e-7 of max|torch| for logits and 5.1e-7
for input gradients (run with -s to see the figures)."""
import io

import numpy as np
import pytest

import libsat

import torch  # python3-torch: a missing PyTorch fails this test, it does not skip it
nn = torch.nn
F = torch.nn.functional

TOL = 1e-4


class MadryCNN(nn.Module):
    """The madry-cnn preset's architecture, with the input normalisation in front; it flattens
    with x.view(x.size(0), -1), which the exporter writes (dynamic batch) as Shape, Gather,
    Unsqueeze, Concat and Reshape."""

    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.25]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.5]).view(1, 1, 1, 1))
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, 1024)
        self.fc2 = nn.Linear(1024, 10)
        self.act = act()

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.max_pool2d(self.act(self.conv1(x)), 2)
        x = F.max_pool2d(self.act(self.conv2(x)), 2)
        return self.fc2(self.act(self.fc1(x.view(x.size(0), -1))))  # Shape, Gather, ..., Reshape


class Block(nn.Module):
    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = act()
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + (x if self.short is None else self.short(x)))


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (He et al.): 3 stages x 3 basic blocks, widths 16/32/64."""

    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.act = act()
        blocks, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for b in range(3):
                blocks.append(Block(cin, width, stride if b == 0 else 1, act))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(self.act(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _randomise(net, seed):
    """Random weights and batch-norm statistics far from the identity, so that a lost
    scale, shift, mean or variance shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
                m.running_mean.uniform_(-0.3, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return net.eval()


def _export(net, shape, **kw):
    buf = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, *shape), buf, opset_version=13, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                      **kw)
    return buf.getvalue()


def _torch_side(net, x, y):
    xt = torch.tensor(x, requires_grad=True)
    logits = net(xt)
    F.cross_entropy(logits, torch.tensor(y, dtype=torch.long), reduction="sum").backward()
    return logits.detach().numpy(), xt.grad.numpy()


def _close(got, want, what):
    scale = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    print(f"{what}: max |libsat - torch| = {err:.3g}, relative to max |torch| {err / scale:.3g}")
    assert err <= TOL * scale, f"{what}: max |libsat - torch| = {err:g} (scale {scale:g})"


def _compare(model, net, shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, *shape)).astype(np.float32)
    y = rng.integers(0, 10, size=n).astype(np.int32)
    want_logits, want_grad = _torch_side(net, x, y)
    _, grad, logits = model.input_gradient(x, y)
    _close(logits, want_logits, "logits")
    _close(grad, want_grad, "input gradient")
    # the values really depend on the input and the weights: not a trivial agreement
    assert np.abs(want_grad).max() > 1e-6 and np.std(want_logits) > 1e-2


@pytest.fixture(scope="module")
def ctx():
    return libsat.Context(num_threads=1, seed=3)


def test_madry_cnn(ctx, tmp_path):
    torch.manual_seed(1)
    net = _randomise(MadryCNN(), 1)
    path = tmp_path / "madry.onnx"
    path.write_bytes(_export(net, (1, 28, 28)))
    model = libsat.Model.load_onnx(ctx, path)
    assert "normalize mean=0.25 std=0.5" in model.spec
    assert model.input_shape == (1, 28, 28) and model.num_classes == 10
    _compare(model, net, (1, 28, 28))


@pytest.mark.parametrize("keep_bn", [True, False], ids=["bn-nodes", "bn-folded-by-exporter"])
def test_resnet20(ctx, keep_bn):
    torch.manual_seed(2)
    net = _randomise(ResNet20(), 2)
    # PRESERVE keeps BatchNormalization nodes (eval mode: inference); EVAL lets the
    # exporter fold them into the convolutions.
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    model = libsat.Model.load_onnx_buffer(
        ctx, _export(net, (3, 32, 32), training=mode, do_constant_folding=not keep_bn))
    layers = [l.op for l in model.layers()]
    assert (layers.count("bn") == 21) == keep_bn and layers.count("add") == 9
    _compare(model, net, (3, 32, 32), n=4)


def test_replace_relu_by_silu(ctx):
    """The paper's change on import: the ReLU model's weights under SiLU equal PyTorch's
    same weights with nn.SiLU."""
    torch.manual_seed(4)
    relu_net = _randomise(MadryCNN(), 4)
    model = libsat.Model.load_onnx_buffer(ctx, _export(relu_net, (1, 28, 28)),
                                          replace_act_from="relu", replace_act_to="silu")
    assert "act relu" not in model.spec and model.spec.count("act silu") == 3
    silu_net = MadryCNN(act=nn.SiLU).eval()
    silu_net.load_state_dict(relu_net.state_dict())
    _compare(model, silu_net, (1, 28, 28))


class SmoothNet(nn.Module):
    """The activations PyTorch exports as subgraphs (SiLU as x * Sigmoid(x), GELU as the Erf
    subgraph and as the tanh form), and a squeeze-excitation gate."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.se1 = nn.Conv2d(8, 4, 1)
        self.se2 = nn.Conv2d(4, 8, 1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = F.gelu(self.conv(x))
        gate = torch.sigmoid(self.se2(F.silu(self.se1(F.adaptive_avg_pool2d(x, 1)))))
        x = F.gelu(x * gate, approximate="tanh")
        return self.fc(torch.flatten(x, 1))


def test_subgraph_activations(ctx):
    torch.manual_seed(5)
    net = SmoothNet().eval()
    model = libsat.Model.load_onnx_buffer(ctx, _export(net, (3, 8, 8)))
    acts = [l.activation for l in model.layers() if l.op == "act"]
    assert acts == ["gelu", "silu", "gelu-tanh"]
    assert [l.op for l in model.layers()].count("mul") == 1
    _compare(model, net, (3, 8, 8))


def test_unsupported_op_names_the_node(ctx):
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.LeakyReLU(0.1), nn.Linear(4, 3)).eval()
    with pytest.raises(libsat.Error) as e:
        libsat.Model.load_onnx_buffer(ctx, _export(net, (3, 2, 2)))
    assert e.value.status == libsat.SAT_E_UNSUPPORTED
    assert "(LeakyRelu)" in str(e.value)


# ---- the same attack on the same weights: libsat's PGD-20 against PyTorch's ----

FMNIST = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def _idx(name):
    import gzip
    with gzip.open(f"{FMNIST}/{name}.gz", "rb") as f:
        data = f.read()
    if "images" in name:
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, 2, 1)
        self.c2 = nn.Conv2d(16, 32, 3, 2, 1)
        self.fc1 = nn.Linear(32 * 7 * 7, 100)
        self.fc2 = nn.Linear(100, 10)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def _torch_pgd_robust(net, x, y, eps, steps):
    """PGD-k in Linf from x (no random start), step 2.5 eps / k, the sign of the summed
    cross-entropy's gradient, projected to the ball and [0,1]; an example counts as broken
    if any iterate is misclassified (what libsat's attack keeps: a misclassified iterate
    over any other)."""
    step = 2.5 * eps / steps
    xa = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool)
    for _ in range(steps):
        xa.requires_grad_(True)
        F.cross_entropy(net(xa), y, reduction="sum").backward()
        with torch.no_grad():
            xa = torch.min(torch.max(xa + step * xa.grad.sign(), x - eps), x + eps).clamp(0, 1)
            broken |= net(xa).argmax(1) != y
    return 1.0 - broken.float().mean().item()


def test_pgd20_matches_pytorch(ctx):
    """A small CNN trained briefly in PyTorch on Fashion-MNIST (one pass over 10,000 images),
    exported and imported: libsat's PGD-20 and PyTorch's PGD-20 on the same 1,000 test images
    must give robust accuracies within 5 examples in a thousand. Both follow the sign of
    gradients that agree to float rounding; an element whose gradient is near zero can take
    another sign and an example near the decision boundary another path, which is the few
    examples allowed. eps 0.03 leaves robust accuracy well between 0 and the clean accuracy,
    so the comparison is not trivial."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    xtr, ytr = _idx("train-images-idx3-ubyte")[:10000], _idx("train-labels-idx1-ubyte")[:10000]
    xte, yte = _idx("t10k-images-idx3-ubyte")[:1000], _idx("t10k-labels-idx1-ubyte")[:1000]
    net = SmallCNN()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for i in range(0, len(xtr), 100):
        opt.zero_grad()
        F.cross_entropy(net(torch.tensor(xtr[i:i + 100])), torch.tensor(ytr[i:i + 100])).backward()
        opt.step()
    net.eval()
    model = libsat.Model.load_onnx_buffer(ctx, _export(net, (1, 28, 28)), max_batch=250)

    eps, steps = 0.03, 20
    xt, yt = torch.tensor(xte), torch.tensor(yte)
    clean_torch = (net(xt).argmax(1) == yt).float().mean().item()
    robust_torch = _torch_pgd_robust(net, xt, yt, eps, steps)
    y32 = yte.astype(np.int32)
    clean_sat = float((model.forward(xte).argmax(1) == y32).mean())
    x_adv = model.attack(xte, y32, method="pgd", eps=eps, steps=steps, random_start=0)
    robust_sat = float((model.forward(x_adv).argmax(1) == y32).mean())
    print(f"clean: torch {clean_torch:.3f} libsat {clean_sat:.3f}; "
          f"PGD-{steps} eps {eps}: torch {robust_torch:.3f} libsat {robust_sat:.3f}")
    assert abs(clean_sat - clean_torch) <= 0.001
    assert 0.1 < robust_torch < clean_torch - 0.1
    assert abs(robust_sat - robust_torch) <= 0.005


def test_softplus_with_beta(ctx):
    """PyTorch writes Softplus(beta=b) as Mul, Softplus, Div: libsat's parametric softplus."""
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(beta=2.5), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 10)).eval()
    model = libsat.Model.load_onnx_buffer(ctx, _export(net, (3, 6, 6)))
    assert "act psoftplus param=2.5 " in model.spec
    _compare(model, net, (3, 6, 6))


@pytest.mark.parametrize("name,shape,act", [
    ("preact-resnet18", (3, 32, 32), "relu"),  # Rice et al.'s network: x.mean over (2, 3)
    ("efficientnet-b0", (3, 64, 64), "silu"),  # depthwise convs and squeeze-excitation gates
])
def test_preset_networks(ctx, name, shape, act):
    """The benchmarks' networks as their PyTorch code writes them (torch_presets.py), exported
    by PyTorch: their global pooling is a ReduceMean over the spatial axes, EfficientNet's
    gates a ReduceMean with keepdims, 1x1 convolutions, Sigmoid and a broadcast Mul."""
    import torch_presets
    torch.manual_seed(5)
    net = torch_presets.build(name, 10, {"relu": F.relu, "silu": F.silu}[act])
    # Batch-norm statistics of real activations (a cumulative average over one random
    # batch): arbitrary ones make a 16-block EfficientNet's gradients vanish (~1e-14).
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        net.train()(torch.rand(8, *shape))
    net.eval()
    model = libsat.Model.load_onnx_buffer(
        ctx, _export(net, shape, training=torch.onnx.TrainingMode.PRESERVE,
                     do_constant_folding=False))
    assert model.param_count == torch_presets.param_count(net)
    _compare(model, net, shape, n=2)
