"""PyTorch parity: the madry-cnn preset (input 1x28x28, 10 classes) with each activation.
libsat's parameters are copied into an equivalent torch model (conv weight [out,in,k,k],
dense weight [out,in], spec order weight then bias, one learnable `a` per SmoothReLU layer)
and logits and the input gradient of the summed cross-entropy are compared in float32.

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


def _smoothrelu(a):
    def f(x):
        xc = torch.clamp(x, min=0)  # 0 for x < 0, and keeps log1p away from x <= -1/a
        return xc - torch.log1p(a * xc) / a
    return f


ACTIVATIONS = {
    "relu": lambda params: F.relu,
    "softplus": lambda params: F.softplus,
    "psoftplus": lambda params: (lambda x: F.softplus(x, beta=10.0)),
    "silu": lambda params: F.silu,
    "gelu": lambda params: F.gelu,
    "gelu-tanh": lambda params: (lambda x: F.gelu(x, approximate="tanh")),
    "elu": lambda params: F.elu,
    "celu": lambda params: F.celu,
    "smoothrelu": None,  # parameter per layer, read from the parameter block
}


class TorchMadry(torch.nn.Module):
    """conv5x5x32 p2, act, maxpool2, conv5x5x64 p2, act, maxpool2, dense 1024, act, dense 10."""

    def __init__(self, params, act_name):
        super().__init__()
        p = torch.from_numpy(params.copy())
        off = 0

        def take(*shape):
            nonlocal off
            k = int(np.prod(shape))
            t = p[off:off + k].reshape(shape).clone()
            off += k
            return t

        smooth = act_name == "smoothrelu"
        self.w1, self.b1 = take(32, 1, 5, 5), take(32)
        self.a1 = take(1).item() if smooth else None
        self.w2, self.b2 = take(64, 32, 5, 5), take(64)
        self.a2 = take(1).item() if smooth else None
        self.w3, self.b3 = take(1024, 64 * 7 * 7), take(1024)
        self.a3 = take(1).item() if smooth else None
        self.w4, self.b4 = take(10, 1024), take(10)
        assert off == p.numel(), (off, p.numel())
        if smooth:
            self.acts = [_smoothrelu(a) for a in (self.a1, self.a2, self.a3)]
        else:
            self.acts = [ACTIVATIONS[act_name](None)] * 3

    def forward(self, x):
        x = F.max_pool2d(self.acts[0](F.conv2d(x, self.w1, self.b1, padding=2)), 2)
        x = F.max_pool2d(self.acts[1](F.conv2d(x, self.w2, self.b2, padding=2)), 2)
        x = self.acts[2](F.linear(x.flatten(1), self.w3, self.b3))
        return F.linear(x, self.w4, self.b4)


@pytest.fixture(scope="module")
def torch_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


RESULTS = {}


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_madry_cnn_matches_torch(ctx, torch_threads, act):
    m = libsat.Model.preset(ctx, "madry-cnn", (1, 28, 28), 10, activation=act, seed=2020,
                            max_batch=4)
    rng = np.random.default_rng(42)
    x = rng.random((4, 1, 28, 28), dtype=np.float32)
    y = np.array([3, 1, 4, 1], np.int32)

    logits = m.forward(x)
    losses, grad, _ = m.input_gradient(x, y)

    net = TorchMadry(m.params, act)
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
    RESULTS[act] = (d_logits, d_grad)
    print(f"\n[torch parity] {act:<11} max|dlogits| = {d_logits:.3e} (max|logit| "
          f"{np.abs(t_logits).max():.3g})   max|dgrad| = {d_grad:.3e} (max|grad| "
          f"{np.abs(t_grad).max():.3g})   max|dloss| = {d_loss:.3e}")
    assert d_logits <= TOL * max(1.0, float(np.abs(t_logits).max())), d_logits
    assert d_loss <= TOL * max(1.0, float(np.abs(t_losses).max())), d_loss
    assert d_grad <= TOL * max(1.0, float(np.abs(t_grad).max())), d_grad
    assert np.abs(t_grad).max() > 0  # a non-trivial gradient was compared
