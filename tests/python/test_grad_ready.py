"""Overlapping the gradient reduction (Trainer's grad_ready): compute() hands model.grads out
range by range, from its end down to 0, each range already final, and trains bit for bit as
without it; an exception in it ends compute() with nothing changed."""
import numpy as np
import pytest

from rank_rig import data as _data, rig as _rig


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
