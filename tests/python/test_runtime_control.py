"""Runtime control of an optimizer through the package: base learning rate, per-parameter
scales, the freeze mask, the model-and-optimizer checkpoint, and close() of a parent whose
children the library still counts."""
import numpy as np
import pytest

import libsat

# dense 8 over 16 inputs: parameters 0..135; dense 3: 136..162
SPEC = "input 1 4 4\nflatten\ndense 8\nact\ndense 3\n"
L1 = 136


def _batch(i):
    rng = np.random.default_rng(i)
    x = rng.random((4, 1, 4, 4), dtype=np.float32)
    y = (np.arange(4) + i) % 3
    return x, y.astype(np.int32)


def _step(model, opt, i):
    x, y = _batch(i)
    model.train_backward(x, y)
    opt.step()


def test_lr_and_scales(ctx):
    m = libsat.Model(ctx, SPEC, seed=2)
    opt = libsat.Optimizer(m, kind="sgd", lr=0.1, momentum=0.0, weight_decay=0.0,
                           schedule="cosine", total_steps=10)
    opt.step_count = 5  # cosine factor 0.5
    opt.base_lr = 0.4
    assert opt.base_lr == pytest.approx(0.4)
    assert opt.lr == pytest.approx(0.2)
    with pytest.raises(libsat.Error) as e:
        opt.base_lr = -1.0
    assert e.value.status == libsat.SAT_E_INVALID_ARG and "sat_optimizer_set_lr" in str(e.value)
    assert opt.base_lr == pytest.approx(0.4)

    opt.set_lr_scale(0, L1, 0.0)  # the first layer does not move
    scales = opt.lr_scale
    assert scales.shape == (m.param_count,)
    assert np.all(scales[:L1] == 0.0) and np.all(scales[L1:] == 1.0)
    before = m.params.copy()
    _step(m, opt, 0)
    assert np.array_equal(m.params[:L1], before[:L1])
    assert np.all(m.params[L1:] != before[L1:])
    with pytest.raises(libsat.Error):
        opt.set_lr_scale(m.param_count - 1, 2, 1.0)


def test_frozen_parameters_stay(ctx):
    m = libsat.Model(ctx, SPEC, seed=3)
    opt = libsat.Optimizer(m, kind="adam", lr=0.01, weight_decay=0.01)
    mask = np.zeros(m.param_count, dtype=bool)
    mask[:L1] = True
    opt.frozen = mask
    assert np.array_equal(opt.frozen, mask.astype(np.uint8))
    before = m.params.copy()
    for i in range(3):
        _step(m, opt, i)
    assert np.array_equal(m.params[:L1], before[:L1])
    assert np.all(m.params[L1:] != before[L1:])
    # Adam moments of frozen parameters untouched
    n = m.param_count
    assert np.all(opt.state[:L1] == 0) and np.all(opt.state[n:n + L1] == 0)
    bad = np.zeros(m.param_count, dtype=np.uint8)
    bad[3] = 2
    with pytest.raises(libsat.Error):
        opt.frozen = bad
    assert np.array_equal(opt.frozen, mask.astype(np.uint8))
    with pytest.raises(ValueError):
        opt.frozen = np.zeros(5)
    opt.frozen = None
    assert not opt.frozen.any()


def test_optimizer_checkpoint_resumes_exactly(ctx, tmp_path):
    def run(seed):
        m = libsat.Model(ctx, SPEC, seed=seed)
        return m, libsat.Optimizer(m, kind="sgd", lr=0.05, momentum=0.9)

    whole_m, whole_o = run(1)
    for i in range(6):
        _step(whole_m, whole_o, i)
    first_m, first_o = run(1)
    for i in range(3):
        _step(first_m, first_o, i)
    path = tmp_path / "run.satc"
    first_o.save_checkpoint(path, meta={"epochs": 4})
    m, o = run(99)
    assert o.load_checkpoint(path)["epochs"] == 4
    for i in range(3, 6):
        _step(m, o, i)
    assert np.array_equal(m.params, whole_m.params)
    assert np.array_equal(o.state, whole_o.state)

    # a trainer checkpoint is refused, naming the right call, and changes nothing
    t = libsat.Trainer(first_m, first_o, method="standard")
    t.save_checkpoint(tmp_path / "trainer.satc")
    before = m.params.copy()
    with pytest.raises(libsat.Error) as e:
        o.load_checkpoint(tmp_path / "trainer.satc")
    assert e.value.status == libsat.SAT_E_FORMAT and "sat_checkpoint_load" in str(e.value)
    assert np.array_equal(m.params, before)


def test_close_refused_while_library_counts_children(lib):
    ctx = libsat.Context(library=lib)
    m = libsat.Model(ctx, SPEC)
    raw = lib.raw
    # an optimizer made outside the package: only the library knows about it
    import ctypes
    h = ctypes.c_void_p()
    assert raw.optimizer_create(m.handle, None, ctypes.byref(h)) == libsat.SAT_OK
    with pytest.raises(libsat.Error) as e:
        m.close()
    assert e.value.status == libsat.SAT_E_STATE and "still alive" in str(e.value)
    assert not m.closed
    m.forward(np.zeros((1, 1, 4, 4), dtype=np.float32))  # still usable
    assert raw.optimizer_destroy_checked(h) == libsat.SAT_OK
    m.close()
    assert m.closed
    ctx.close()
    assert ctx.closed
