"""Overlapping the gradient reduction (Trainer's grad_ready): compute() hands model.grads out
range by range, from its end down to 0, each range already final, and trains bit for bit as
without it; an exception in it ends compute() with nothing changed."""
import numpy as np
import pytest

import libsat

SPEC_BN = "input 1 6 6\nconv 4 k=3\nbn\nact\nflatten\ndense 16\nbn\nact\ndense 3\n"


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 6, 6), dtype=np.float32), (np.arange(n) % 3).astype(np.int32)


def _rig(ctx, **opts):
    m = libsat.Model(ctx, SPEC_BN, seed=1, max_batch=16)
    opt = libsat.Optimizer(m, kind="sgd", lr=0.05, momentum=0.9)
    return m, libsat.Trainer(m, opt, method="pgd", eps=0.05, steps=2, **opts)


def test_ranges_cover_the_block_and_are_final(ctx):
    plain_m, plain = _rig(ctx)
    ranges, seen = [], []
    holder = {}

    def ready(offset, count):
        ranges.append((offset, count))
        seen.append(holder["m"].grads[offset:offset + count].copy())

    m, t = _rig(ctx, grad_ready=ready)
    holder["m"] = m
    x, y = _data()
    plain.compute(x, y)
    t.compute(x, y)
    # per layer from the end: dense 3, bn, dense 16, bn, conv
    assert len(ranges) == 5
    end = m.param_count
    for offset, count in ranges:
        assert count >= 1 and offset + count == end
        end = offset
    assert end == 0
    np.testing.assert_array_equal(np.concatenate(seen[::-1]), m.grads)
    np.testing.assert_array_equal(plain_m.grads, m.grads)
    plain.apply()
    t.apply()
    np.testing.assert_array_equal(plain_m.params, m.params)


def test_an_exception_ends_compute(ctx):
    def refuse(offset, count):
        raise RuntimeError("the other rank is gone")
    m, t = _rig(ctx, grad_ready=refuse)
    before, state = m.params.copy(), m.state.copy()
    x, y = _data()
    with pytest.raises(RuntimeError, match="the other rank is gone"):
        t.compute(x, y)
    np.testing.assert_array_equal(m.params, before)
    np.testing.assert_array_equal(m.state, state)
