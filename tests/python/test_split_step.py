"""The training step split for data parallelism: Trainer.compute + Trainer.apply equal
Trainer.step, and two ranks with averaged gradients match one process on their batches."""
import numpy as np
import pytest

import libsat

SPEC = "input 1 6 6\nconv 4 k=3\nact\nflatten\ndense 16\nact\ndense 3\n"
SPEC_BN = "input 1 6 6\nconv 4 k=3\nbn\nact\nflatten\ndense 16\nact\ndense 3\n"


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 6, 6), dtype=np.float32), (np.arange(n) % 3).astype(np.int32)


def _rig(ctx, spec, **opts):
    m = libsat.Model(ctx, spec, seed=1, max_batch=16)
    opt = libsat.Optimizer(m, kind="sgd", lr=0.05, momentum=0.9)
    return m, opt, libsat.Trainer(m, opt, eps=0.05, steps=2, **opts)


@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_compute_apply_equals_step(ctx, need, method):
    need("train_compute", "train_apply")
    a, _, ta = _rig(ctx, SPEC_BN, method=method)
    b, ob, tb = _rig(ctx, SPEC_BN, method=method)
    for s in range(3):
        x, y = _data(seed=s)
        sa = ta.step(x, y)
        before = b.params.copy()
        sb = tb.compute(x, y)
        np.testing.assert_array_equal(b.params, before)
        assert ob.step_count == s
        tb.apply()
        np.testing.assert_equal(sa, sb)  # NaN clean_accuracy included
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.state, b.state)


def test_two_ranks_match_one(ctx, need):
    need("train_compute", "train_apply")
    one, _, t1 = _rig(ctx, SPEC, method="pgd")
    ranks = [_rig(ctx, SPEC, method="pgd", rank=r, rank_count=2) for r in range(2)]
    for s in range(3):
        x, y = _data(16, seed=10 + s)
        t1.step(x, y)
        for r, (_, _, t) in enumerate(ranks):
            t.compute(x[8 * r:8 * r + 8], y[8 * r:8 * r + 8])
        mean = (ranks[0][0].grads + ranks[1][0].grads) / 2
        for m, _, t in ranks:
            m.grads[:] = mean
            t.apply()
    np.testing.assert_array_equal(ranks[0][0].params, ranks[1][0].params)
    np.testing.assert_allclose(ranks[0][0].params, one.params, rtol=0, atol=1e-5)


def test_refusals(ctx, need):
    need("train_compute", "train_apply")
    x, y = _data()
    _, _, free = _rig(ctx, SPEC, method="free")
    with pytest.raises(libsat.Error) as e:
        free.compute(x, y)
    assert e.value.status == libsat.SAT_E_UNSUPPORTED and "Free-AT" in e.value.message
    with pytest.raises(libsat.Error) as e:
        _rig(ctx, SPEC, rank=2, rank_count=2)
    assert e.value.status == libsat.SAT_E_INVALID_ARG and "rank" in e.value.message
