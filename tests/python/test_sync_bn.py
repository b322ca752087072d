"""Synchronised batch norm (Trainer's bn_reduce): a reduction that changes nothing is the
plain step bit for bit, an exception in it ends the step with nothing changed, and two
ranks on two threads, summing through a barrier, match one process on their batches."""
import threading

import numpy as np
import pytest

from rank_rig import data as _data, rig as _rig


def test_one_rank_is_the_plain_step(ctx):
    counts = []
    plain_m, plain = _rig(ctx)
    m, t = _rig(ctx, bn_reduce=lambda sums: counts.append(sums.size))
    x, y = _data()
    plain.step(x, y)
    t.step(x, y)
    np.testing.assert_array_equal(plain_m.params, m.params)
    np.testing.assert_array_equal(plain_m.state, m.state)
    # two layers: (4 + 1, 4) and (16 + 1, 16) forward, then 2*16 + 1 and 2*4 + 1 backward
    assert counts == [5, 4, 17, 16, 33, 9]


def test_an_exception_ends_the_step(ctx):
    def refuse(sums):
        raise RuntimeError("the other rank is gone")
    m, t = _rig(ctx, bn_reduce=refuse)
    before = m.params.copy()
    x, y = _data()
    with pytest.raises(RuntimeError, match="the other rank is gone"):
        t.compute(x, y)
    np.testing.assert_array_equal(m.params, before)


def test_two_ranks_on_threads_match_one(ctx):
    barrier = threading.Barrier(2)
    slots = [None, None]

    def reducer(r):
        def reduce(sums):
            slots[r] = sums.copy()
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()
            sums[:] = total
        return reduce

    one, t1 = _rig(ctx)
    ranks = [_rig(ctx, rank=r, rank_count=2, bn_reduce=reducer(r)) for r in range(2)]
    for s in range(2):
        x, y = _data(16, seed=20 + s)
        t1.step(x, y)
        threads = [threading.Thread(target=ranks[r][1].compute, args=(x[8 * r:8 * r + 8], y[8 * r:8 * r + 8]))
                   for r in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        mean = (ranks[0][0].grads + ranks[1][0].grads) / 2
        for m, t in ranks:
            m.grads[:] = mean
            t.apply()
    np.testing.assert_array_equal(ranks[0][0].params, ranks[1][0].params)
    np.testing.assert_array_equal(ranks[0][0].state, ranks[1][0].state)
    np.testing.assert_allclose(ranks[0][0].params, one.params, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ranks[0][0].state, one.state, rtol=0, atol=1e-5)
