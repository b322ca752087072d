"""Attacks on models outside libsat through the binding's CallbackModel: a numpy linear
classifier and a PyTorch nn.Module, each against the libsat model with the same weights.

The numpy model must give the same adversarial examples and the same AutoAttack outcomes as
its libsat twin. The PyTorch MLP computes in a different order (its own GEMMs and SiLU), so
its float32 logits differ in the last bits and an example that sits on a decision boundary
may go either way: its AutoAttack robust accuracy on 1000 examples must match the libsat
model's to within a few examples per thousand."""
import numpy as np
import pytest

import libsat

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")


def _forward(m, x):
    """Logits of any number of examples (Model.forward takes at most max_batch)."""
    return np.concatenate([m.forward(x[i:i + m.max_batch]) for i in range(0, len(x), m.max_batch)])


def _linear_twins(ctx):
    m = libsat.Model(ctx, "input 1 4 4\ndense 4\n", activation="relu", max_batch=16, seed=3)
    w = m.params[:64].reshape(4, 16).copy()
    b = m.params[64:68].copy()
    cm = libsat.CallbackModel(
        ctx, (1, 4, 4), 4,
        lambda x: x.reshape(len(x), -1) @ w.T + b,
        lambda x, dz: (dz @ w).reshape(x.shape),
        max_batch=7)
    return m, cm


def test_numpy_model_same_attacks(ctx):
    m, cm = _linear_twins(ctx)
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 4, 4), dtype=np.float32)
    y = _forward(m, x).argmax(1).astype(np.int32)
    for method in ("fgsm", "pgd", "apgd-ce", "fab", "square"):
        kw = dict(method=method, eps=0.1, steps=200 if method == "square" else 20, seed=4)
        a = m.attack(x, y, **kw)
        b = cm.attack(x, y, **kw)
        assert np.abs(a - b).max() <= 1e-3, method
        assert np.abs(a - x).max() > 0, method  # something moved
    ra = m.autoattack(x, y, eps=0.1)
    rb = cm.autoattack(x, y, eps=0.1, return_adv=True)
    assert ra["attacks"] == rb["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert ra["robust_accuracy"] < ra["clean_accuracy"] == 1.0
    np.testing.assert_array_equal(ra["outcome"], rb["outcome"])
    broken = rb["outcome"] >= 0
    assert broken.any()
    assert (_forward(m, rb["x_adv"][broken]).argmax(1) != y[broken]).all()
    np.testing.assert_array_equal(rb["x_adv"][~broken], x[~broken])


def test_callback_errors(ctx):
    x = np.zeros((3, 1, 4, 4), np.float32)
    y = np.zeros(3, np.int32)

    def broken(x):
        raise KeyError("host model failed")

    cm = libsat.CallbackModel(ctx, (1, 4, 4), 4, broken)
    with pytest.raises(KeyError, match="host model failed"):
        cm.attack(x, y, method="square", steps=5)
    with pytest.raises(libsat.Error) as e:  # no gradient callback: gradient attacks refused
        cm.attack(x, y, method="pgd")
    assert e.value.status == libsat.SAT_E_UNSUPPORTED
    wrong = libsat.CallbackModel(ctx, (1, 4, 4), 4, lambda x: np.zeros((len(x), 3)))
    with pytest.raises(ValueError, match="shape"):
        wrong.attack(x, y, method="square", steps=5)
    with pytest.raises(libsat.Error):
        libsat.CallbackModel(ctx, (1, 4, 4), 1, broken)  # one class: refused by the library


class TorchMLP(torch.nn.Module):
    """dense 32, SiLU, dense 10 on a flattened 1x8x8 input, weights from libsat's block."""

    def __init__(self, params):
        super().__init__()
        p = torch.from_numpy(params.copy())
        self.w1, self.b1 = p[:2048].reshape(32, 64), p[2048:2080]
        self.w2, self.b2 = p[2080:2400].reshape(10, 32), p[2400:2410]
        assert p.numel() == 2410

    def forward(self, x):
        h = torch.nn.functional.silu(torch.nn.functional.linear(x.flatten(1), self.w1, self.b1))
        return torch.nn.functional.linear(h, self.w2, self.b2)


def test_torch_module_autoattack(ctx):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = libsat.Model(ctx, "input 1 8 8\ndense 32\nact\ndense 10\n", activation="silu",
                         max_batch=128, seed=11)
        net = TorchMLP(m.params)

        def logits(x):
            with torch.no_grad():
                return net(torch.from_numpy(x)).numpy()

        def input_grad(x, dlogits):
            xt = torch.from_numpy(x.copy()).requires_grad_(True)
            net(xt).backward(torch.from_numpy(dlogits.copy()))
            return xt.grad.numpy()

        cm = libsat.CallbackModel(ctx, (1, 8, 8), 10, logits, input_grad, max_batch=128)
        n = 1000
        x = np.random.default_rng(5).random((n, 1, 8, 8), dtype=np.float32)
        y = _forward(m, x).argmax(1).astype(np.int32)  # every example starts correct
        assert np.abs(logits(x) - _forward(m, x)).max() < 1e-4
        ra = m.autoattack(x, y, eps=0.03, seed=1)
        rb = cm.autoattack(x, y, eps=0.03, seed=1)
        print(f"\n[autoattack] libsat {ra['accuracy_after']}  torch {rb['accuracy_after']}")
        assert 0.05 < ra["robust_accuracy"] < 0.95  # the comparison is not trivial
        for a, b in zip(ra["accuracy_after"], rb["accuracy_after"]):
            assert abs(a - b) * n <= 4
        assert abs(ra["robust_accuracy"] - rb["robust_accuracy"]) * n <= 4
        assert (ra["outcome"] != rb["outcome"]).sum() <= 8
    finally:
        torch.set_num_threads(old)
