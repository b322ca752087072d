"""Progress and cancellation from Python: Context(progress=...) sees every long call report
from 0 to total; a true return value cancels it with Error(SAT_E_ABORTED) and a cancelled
training step leaves the model and optimizer as they were; an exception in the callable and
Ctrl-C (KeyboardInterrupt, also when it arrives from another thread) stop the call and are
raised from it."""
import _thread
import os
import threading
import time

import numpy as np
import pytest

import libsat

SPEC = "input 1 4 4\ndense 16\nbn\nact\ndense 4\n"


def _data(n=10):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 4, 4), dtype=np.float32), (np.arange(n) % 4).astype(np.int32)


class Recorder:
    def __init__(self, cancel_at=None):
        self.reports = []
        self.cancel_at = cancel_at

    def __call__(self, what, done, total):
        self.reports.append((what, done, total))
        return len(self.reports) - 1 == self.cancel_at


def _check_reports(reports, what):
    assert len(reports) >= 2
    assert {r[0] for r in reports} == {what}
    done = [r[1] for r in reports]
    assert done[0] == 0 and done == sorted(done) and done[-1] == reports[0][2]


def test_attack_reports_and_cancels(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=4)
    x, y = _data()
    ref = m.attack(x, y, method="pgd", steps=3)
    rec = Recorder()
    ctx.set_progress(rec)
    np.testing.assert_array_equal(m.attack(x, y, method="pgd", steps=3), ref)
    _check_reports(rec.reports, "sat_attack")
    assert rec.reports[-1][2] == 10 * 3
    ctx.set_progress(Recorder(cancel_at=len(rec.reports) // 2))
    with pytest.raises(libsat.Error) as e:
        m.attack(x, y, method="pgd", steps=3)
    assert e.value.status == libsat.SAT_E_ABORTED
    assert "cancelled" in str(e.value)
    ctx.set_progress(None)
    np.testing.assert_array_equal(m.attack(x, y, method="pgd", steps=3), ref)


def test_evaluate_and_autoattack_report(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=4)
    x, y = _data()
    for what, call in (("sat_evaluate", lambda: m.evaluate(x, y, steps=[1, 2])),
                       ("sat_autoattack", lambda: m.autoattack(x, y))):
        rec = Recorder()
        ctx.set_progress(rec)
        call()
        _check_reports(rec.reports, what)
        ctx.set_progress(Recorder(cancel_at=0))
        with pytest.raises(libsat.Error) as e:
            call()
        assert e.value.status == libsat.SAT_E_ABORTED


def test_cancelled_train_step_changes_nothing(lib):
    x, y = _data(4)

    def trainer(ctx):
        m = libsat.Model(ctx, SPEC, max_batch=4, seed=5)
        return libsat.Trainer(m, libsat.Optimizer(m), method="pgd", steps=3, seed=6)

    with libsat.Context(seed=1, library=lib) as ctx:
        fresh = trainer(ctx)
        fresh.step(x, y)
        want = fresh.model.params.copy()
        t = trainer(ctx)
        before = (t.model.params.copy(), t.model.state.copy(), t.optimizer.state.copy())
        ctx.set_progress(Recorder(cancel_at=2))
        with pytest.raises(libsat.Error) as e:
            t.step(x, y)
        assert e.value.status == libsat.SAT_E_ABORTED
        for a, b in zip(before, (t.model.params, t.model.state, t.optimizer.state)):
            np.testing.assert_array_equal(a, b)
        ctx.set_progress(None)
        t.step(x, y)
        np.testing.assert_array_equal(t.model.params, want)


def test_dataset_load_reports(ctx, tmp_path):
    n = 50
    images = tmp_path / "images"
    labels = tmp_path / "labels"
    images.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(n * 784))
    labels.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, n]) + bytes(i % 10 for i in range(n)))
    rec = Recorder()
    ctx.set_progress(rec)
    assert len(libsat.Dataset.load_idx(ctx, images, labels)) == n
    _check_reports(rec.reports, "sat_dataset_load_idx")
    ctx.set_progress(lambda what, done, total: done > 0)
    with pytest.raises(libsat.Error) as e:
        libsat.Dataset.load_idx(ctx, images, labels)
    assert e.value.status == libsat.SAT_E_ABORTED


def test_exception_in_progress_is_raised(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=4)
    x, y = _data()

    def fails(what, done, total):
        raise ValueError("stop here")

    ctx.set_progress(fails)
    with pytest.raises(ValueError, match="stop here"):
        m.attack(x, y)
    ctx.set_progress(None)
    m.attack(x, y)  # the error does not linger


def _interrupt_when(event):
    def run():
        event.wait(10)
        _thread.interrupt_main()  # what Ctrl-C does
    th = threading.Thread(target=run)
    th.start()
    return th


def test_ctrl_c_during_a_long_call_raises_keyboard_interrupt(ctx):
    m = libsat.Model(ctx, SPEC, max_batch=4)
    x, y = _data()
    started = threading.Event()
    rec = Recorder()

    def progress(what, done, total):
        rec(what, done, total)
        if done > 0:
            started.set()

    ctx.set_progress(progress)
    th = _interrupt_when(started)
    try:
        with pytest.raises(KeyboardInterrupt):
            m.attack(x, y, method="pgd", steps=1_000_000)
    finally:
        started.set()
        th.join()
    assert 0 < rec.reports[-1][1] < rec.reports[-1][2]  # stopped early, by the interrupt
    ctx.set_progress(None)
    m.attack(x, y)  # the context works on


def test_ctrl_c_without_a_progress_callable(ctx):
    """The context's own callback turns Ctrl-C into a cancel."""
    m = libsat.Model(ctx, SPEC, max_batch=4)
    x, y = _data()
    go = threading.Event()
    th = _interrupt_when(go)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            go.set()
            m.attack(x, y, method="pgd", steps=10_000_000)  # minutes if not interrupted
    finally:
        th.join()
    assert time.monotonic() - t0 < 30
