"""Executions through the ctypes package: a loss written in Python (its dL/dlogits into
Exec.backward), the model's own execution, kinds and errors, threads on one model."""
import threading

import numpy as np
import pytest

import libsat

SPEC = "input 1 4 4\nconv 4 k=3 p=1\nbn\nact\nflatten\ndense 3\n"


def _ce_dlogits(logits, labels):
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p.astype(np.float32)


def _batch(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 4, 4), dtype=np.float32), rng.integers(0, 3, n).astype(np.int32)


def test_input_gradient_from_python_loss(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=8, seed=1)
    x, y = _batch()
    _, ref_grad, ref_logits = m.input_gradient(x, y)
    with libsat.Exec(m, "input_grad") as e:
        logits = e.forward(x)
        np.testing.assert_array_equal(logits, ref_logits)
        assert e.last_batch == len(y)
        with pytest.raises(ValueError):
            e.backward(_ce_dlogits(logits, y)[:2])  # fewer rows than the forward had
        dx, pg = e.backward(_ce_dlogits(logits, y))
        assert pg is None and dx.shape == x.shape
        np.testing.assert_allclose(dx, ref_grad, rtol=1e-4, atol=1e-6)
        with pytest.raises(libsat.Error) as err:
            e.backward(_ce_dlogits(logits, y), input_grad=False, param_grads=True)
        assert err.value.status == libsat.SAT_E_STATE
        assert "sat_exec_backward" in err.value.message


def test_param_grads_match_train_backward(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=8, seed=2)
    x, y = _batch(seed=1)
    state = m.state.copy()
    m.train_backward(x, y)
    ref = m.grads.copy()
    m.state[:] = state
    e = libsat.Exec(m)  # 'train' by default
    logits = e.forward(x, bn_mode="train")
    _, pg = e.backward(_ce_dlogits(logits, y) / len(y), input_grad=False, param_grads=True)
    np.testing.assert_allclose(pg, ref, rtol=1e-4, atol=1e-6)
    # into the model's own gradient block
    m.grads[:] = 0
    e.backward(_ce_dlogits(logits, y) / len(y), input_grad=False, param_grads=m.grads)
    np.testing.assert_allclose(m.grads, ref, rtol=1e-4, atol=1e-6)


def test_model_exec_and_errors(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=4, seed=3)
    x, y = _batch(4)
    own = libsat.Exec.of_model(m)
    logits = own.forward(x, bn_mode="batch")
    dx, _ = own.backward(np.ones_like(logits))
    assert np.isfinite(dx).all()
    inf = libsat.Exec(m, "inference", max_batch=2)
    with pytest.raises(libsat.Error) as err:
        inf.forward(x)  # 4 > 2
    assert err.value.status == libsat.SAT_E_SHAPE
    inf.forward(x[:2])
    with pytest.raises(libsat.Error) as err:
        inf.backward(np.zeros((2, 3), np.float32))
    assert err.value.status == libsat.SAT_E_STATE
    with pytest.raises(libsat.Error) as err:
        inf.forward(x[:2], bn_mode="train")
    assert err.value.status == libsat.SAT_E_STATE
    with pytest.raises(libsat.Error) as err:
        libsat.Exec(m, "train").backward(np.zeros((2, 3), np.float32))
    assert err.value.status == libsat.SAT_E_STATE and "no forward" in err.value.message
    with pytest.raises(ValueError):
        libsat.Exec(m, "sideways")
    # an execution keeps its model alive after the model is closed
    m.close()
    assert inf.forward(x[:2]).shape == (2, 3)


def test_threads_share_one_model(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=8, seed=4)
    xs = [_batch(8, seed=10 + t)[0] for t in range(4)]
    serial = [libsat.Exec(m, "inference").forward(x) for x in xs]
    execs = [libsat.Exec(m, "inference") for _ in range(4)]
    out = [None] * 4

    def run(t):
        for _ in range(20):
            out[t] = execs[t].forward(xs[t])

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in range(4):
        np.testing.assert_array_equal(out[t], serial[t])
