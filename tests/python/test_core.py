"""Context, Model, arrays and errors through the ctypes package."""
import math
import os

import numpy as np
import pytest

import libsat

MLP_SPEC = "input 1 4 4\nflatten\ndense 8\nact relu\ndense 3\n"


def test_library_loaded(lib, lib_path):
    assert lib.version == libsat.__version__
    assert lib.build_info
    assert os.path.realpath(lib.path) == os.path.realpath(lib_path)
    assert "silu" in libsat.activations(lib)


def test_bad_spec_raises_with_line(ctx):
    with pytest.raises(libsat.Error) as e:
        libsat.Model(ctx, "input 1 4 4\nflatten\nconv3 4\n")
    assert e.value.status == libsat.SAT_E_INVALID_ARG
    assert "line 3" in e.value.message and "conv3" in e.value.message
    assert "line 3" in str(e.value)


def test_handle_errors_carry_the_message(ctx):
    m = libsat.Model(ctx, MLP_SPEC, max_batch=4)
    x = np.zeros((5, 1, 4, 4), np.float32)
    assert m.forward(x).shape[0] == 5  # above max_batch: run in chunks
    x[4, 0, 1, 2] = np.nan
    with pytest.raises(libsat.Error) as e:
        m.forward(x)
    assert e.value.status == libsat.SAT_E_NUMERIC
    assert "NaN" in e.value.message
    with pytest.raises(libsat.Error) as e:
        m.input_gradient(x[:2], [0, 7])
    assert e.value.status == libsat.SAT_E_INVALID_ARG and "label 7" in e.value.message
    with pytest.raises(libsat.Error) as e:
        libsat.preset_spec("no-such-net", (1, 8, 8), 10, library=ctx.library)
    assert "no-such-net" in e.value.message
    with pytest.raises(libsat.Error):
        libsat.Model(ctx, MLP_SPEC, activation="no-such-activation")
    m.close()
    with pytest.raises(libsat.Error) as e:
        m.forward(x[:1])
    assert e.value.status == libsat.SAT_E_STATE


def test_shapes_and_spec(ctx):
    m = libsat.Model.preset(ctx, "madry-cnn", (1, 28, 28), 10, activation="silu", max_batch=8)
    assert m.input_shape == (1, 28, 28) and m.num_classes == 10 and m.max_batch == 8
    assert "conv 32 k=5" in m.spec
    assert m.opts()["activation"] == 3
    assert m.param_count == 32 * 25 + 32 + 64 * 32 * 25 + 64 + 1024 * 3136 + 1024 + 10 * 1024 + 10
    with pytest.raises(ValueError):
        m.forward(np.zeros((2, 1, 28, 27), np.float32))


def _mlp_numpy(m, x):
    p = m.params
    w1, b1 = p[:128].reshape(8, 16), p[128:136]
    w2, b2 = p[136:160].reshape(3, 8), p[160:163]
    h = np.maximum(x.reshape(len(x), -1).astype(np.float64) @ w1.T + b1, 0)
    return h @ w2.T + b2


def test_forward_matches_numpy_and_params_share_memory(ctx):
    m = libsat.Model(ctx, MLP_SPEC, seed=3)
    assert m.param_count == 163
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 4, 4), dtype=np.float32)
    np.testing.assert_allclose(m.forward(x), _mlp_numpy(m, x), rtol=1e-5, atol=1e-5)
    # the view is the model's memory: writing it changes what the model computes
    p = m.params
    assert np.shares_memory(p, m.params)
    p[136:160] *= 2.0
    p[160:163] = [1.0, -1.0, 0.5]
    np.testing.assert_allclose(m.forward(x), _mlp_numpy(m, x), rtol=1e-5, atol=1e-5)
    # a view keeps the model alive after the last Python reference is gone
    del m
    assert np.isfinite(p).all()


def test_close_waits_for_the_views(ctx):
    import gc
    m = libsat.Model(ctx, MLP_SPEC, seed=3)
    x = np.random.default_rng(4).random((2, 1, 4, 4), dtype=np.float32)
    expected = m.forward(x)
    p = m.params
    head = p[:8]  # a derived array keeps the view (and so the memory) alive too
    before = p.copy()
    g = m.grads
    m.close()
    assert m.closed
    with pytest.raises(libsat.Error) as e:
        m.forward(x)
    assert e.value.status == libsat.SAT_E_STATE
    with pytest.raises(libsat.Error):
        m.params
    # the memory is still the model's: readable and writable
    np.testing.assert_array_equal(p, before)
    p[0] = 0.5
    assert head[0] == 0.5 and np.isfinite(g).all()
    assert m._h is not None
    del p, g
    gc.collect()
    assert m._h is not None  # `head` still holds it
    del head
    gc.collect()
    assert m._h is None  # the last view is gone: the model is destroyed
    assert expected.shape == (2, 3)
    # the same for an optimizer's state and a data set's images
    m = libsat.Model(ctx, MLP_SPEC)
    opt = libsat.Optimizer(m, kind="adam")
    state = opt.state
    opt.close()
    m.close()
    assert state.size > 0 and np.isfinite(state).all() and m._h is not None
    del state
    gc.collect()
    assert opt._h is None and m._h is None
    ds = libsat.Dataset.from_arrays(ctx, np.full((3, 1, 2, 2), 0.5, np.float32), [0, 1, 0], 2)
    images = ds.images
    ds.close()
    assert (images == 0.5).all() and ds._h is not None
    del images
    gc.collect()
    assert ds._h is None


def test_no_copy_for_float32_contiguous(ctx):
    m = libsat.Model(ctx, MLP_SPEC)
    x = np.random.default_rng(1).random((3, 1, 4, 4), dtype=np.float32)
    assert libsat._f32(x) is x
    assert libsat._f32(x[:, :, ::-1]) is not x  # a strided view is converted once
    out = np.empty((3, 3), np.float32)
    assert m.forward(x, out=out) is out
    np.testing.assert_array_equal(m.forward(x.astype(np.float64)), out)
    np.testing.assert_array_equal(m.forward(np.asfortranarray(x)), out)
    np.testing.assert_array_equal(m.forward(x.reshape(3, 16)), out)


def test_input_gradient_matches_finite_differences(ctx):
    m = libsat.Model(ctx, "input 1 2 2\nflatten\ndense 6\nact silu\ndense 3\n", seed=5)
    x = np.random.default_rng(2).random((2, 1, 2, 2)).astype(np.float32)
    y = np.array([0, 2], np.int32)
    losses, grad, logits = m.input_gradient(x, y)
    np.testing.assert_allclose(logits, m.forward(x), rtol=1e-6, atol=1e-6)
    ls = logits.astype(np.float64)
    ce = np.log(np.exp(ls).sum(1)) - ls[np.arange(2), y]
    np.testing.assert_allclose(losses, ce, rtol=1e-5, atol=1e-6)
    h = 1e-2
    for i in range(x.size):
        xp, xm = x.copy().reshape(-1), x.copy().reshape(-1)
        xp[i] += h
        xm[i] -= h
        fd = (m.input_gradient(xp, y)[0].sum(dtype=np.float64) -
              m.input_gradient(xm, y)[0].sum(dtype=np.float64)) / (2 * h)
        assert abs(fd - grad.reshape(-1)[i]) < 2e-3, (i, fd, grad.reshape(-1)[i])


def test_train_backward_fills_grads(ctx):
    m = libsat.Model(ctx, MLP_SPEC, seed=7)
    x = np.random.default_rng(3).random((4, 1, 4, 4), dtype=np.float32)
    y = np.array([0, 1, 2, 0], np.int32)
    before = m.params.copy()
    loss, correct = m.train_backward(x, y)
    assert math.isfinite(loss) and 0 <= correct <= 4
    g = m.grads
    assert g.shape == (163,) and np.abs(g).sum() > 0
    np.testing.assert_array_equal(m.params, before)  # parameters untouched
    # a plain SGD step through the views lowers the loss
    m.params[:] -= 0.1 * g
    assert m.train_backward(x, y)[0] < loss


def test_activation_checkpointing_same_bits(ctx):
    spec = ("input 2 8 8\nconv 6 k=3 p=1\nbn\nact name=a\nconv 6 k=3 p=1\nbn\nact\n"
            "conv 6 k=3 p=1\nbn\nadd a\nact name=b\nconv 6 k=3 p=1\nbn\nact\n"
            "conv 6 k=3 p=1\nbn\nadd b\nact\ngap\ndense 3\n")
    plain = libsat.Model(ctx, spec, seed=4)
    ckpt = libsat.Model(ctx, spec, seed=4, activation_checkpointing=1)
    assert ckpt.opts()["activation_checkpointing"] == 1
    x = np.random.default_rng(5).random((3, 2, 8, 8), dtype=np.float32)
    y = np.array([0, 1, 2], np.int32)
    for a, b in zip(plain.input_gradient(x, y), ckpt.input_gradient(x, y)):
        np.testing.assert_array_equal(a, b)
    assert plain.train_backward(x, y) == ckpt.train_backward(x, y)
    np.testing.assert_array_equal(plain.grads, ckpt.grads)
    ckpt.set_activation_checkpointing(False)
    assert ckpt.opts()["activation_checkpointing"] == 0
    with pytest.raises(libsat.Error, match="activation_checkpointing"):
        libsat.Model(ctx, spec, activation_checkpointing=2)


def test_clone_and_decay_mask(ctx):
    m = libsat.Model(ctx, MLP_SPEC, seed=9)
    c = m.clone()
    np.testing.assert_array_equal(c.params, m.params)
    assert not np.shares_memory(c.params, m.params)
    mask = m.decay_mask()
    assert mask[:128].all() and not mask[128:136].any()


def test_log_callback(lib):
    seen = []
    with libsat.Context(log=lambda level, msg: seen.append((level, msg)), log_level=3,
                        library=lib) as c:
        libsat.Model(c, MLP_SPEC).forward(np.zeros((1, 16), np.float32))
    assert all(isinstance(m, str) for _, m in seen)


def test_destroy_order_survives_cycles_and_early_close(lib):
    import gc
    x = np.zeros((1, 16), np.float32)
    # closing a context first only defers its destruction until its model is gone
    c = libsat.Context(library=lib)
    m = libsat.Model(c, MLP_SPEC)
    c.close()
    assert m.forward(x).shape == (1, 3)
    with pytest.raises(libsat.Error):
        libsat.Model(c, MLP_SPEC)
    m.close()
    assert c._h is None
    # a reference cycle finalised by the collector in any order
    for _ in range(20):
        c = libsat.Context(library=lib)
        m = libsat.Model(c, MLP_SPEC)
        box = {"c": c, "m": m}
        box["self"] = box
        c.cycle = box
        m.cycle = box
        del c, m, box
    gc.collect()


def test_presets_take_their_original_activation_by_default(ctx):
    """Without activation=, a preset gets its original network's activation (ReLU in the
    ResNets, SiLU in EfficientNet) and libsat's own presets SiLU; a given one is kept."""
    for name, side, act in (("resnet50", 32, "relu"), ("wrn-10-1", 8, "relu"),
                            ("efficientnet-b0", 32, "silu"), ("madry-cnn", 8, "silu")):
        m = libsat.Model.preset(ctx, name, (3, side, side), 10, max_batch=1)
        assert m.opts()["activation"] == ctx.library.activation(act), name
        m = libsat.Model.preset(ctx, name, (3, side, side), 10, activation="gelu", max_batch=1)
        assert m.opts()["activation"] == ctx.library.activation("gelu"), name
