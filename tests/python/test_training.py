"""Attack, Optimizer + Trainer, evaluate, model files and datasets through the package.
Tests of functions the loaded library does not export yet skip with the symbol names."""
import gzip
import struct

import numpy as np
import pytest

import libsat

SPEC = "input 1 6 6\nconv 4 k=3\nact\nflatten\ndense 16\nact\ndense 3\n"


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 6, 6), dtype=np.float32)
    y = (np.arange(n) % 3).astype(np.int32)
    x[y == 0, :, :3] *= 0.2  # a learnable signal
    return x, y


def test_attack_stays_in_ball(ctx, need):
    need("attack", "attack_opts_init")
    m = libsat.Model(ctx, SPEC, seed=1)
    x, y = _data()
    eps = 0.1
    x_adv, trace = m.attack(x, y, eps=eps, steps=5, method="pgd", trace=True, seed=3)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert np.abs(x_adv - x).max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert len(trace["loss"]) == 5
    clean_loss = m.input_gradient(x, y)[0].mean()
    assert m.input_gradient(x_adv, y)[0].mean() >= clean_loss
    # same options, same seed: same result; opts struct accepted directly too
    again = m.attack(x, y, eps=eps, steps=5, seed=3)
    np.testing.assert_array_equal(again, x_adv)
    with pytest.raises(libsat.Error) as e:
        m.attack(x, y, eps=-1.0)
    assert e.value.status == libsat.SAT_E_INVALID_ARG and e.value.message
    with pytest.raises(TypeError):
        m.attack(x, y, epsilon=0.1)


def test_trainer_steps(ctx, need):
    need("optimizer_create", "trainer_create", "train_step")
    m = libsat.Model(ctx, SPEC, seed=1)
    opt = libsat.Optimizer(m, kind="sgd", lr=0.05, momentum=0.9)
    tr = libsat.Trainer(m, opt, method="pgd", eps=0.05, steps=2)
    x, y = _data()
    before = m.params.copy()
    stats = [tr.step(x, y) for _ in range(3)]
    assert all(np.isfinite(s["loss"]) for s in stats)
    assert 0 <= stats[0]["adv_accuracy"] <= 1
    assert abs(stats[0]["lr"] - 0.05) < 1e-7
    assert opt.step_count == 3
    assert not np.array_equal(m.params, before)
    with pytest.raises(libsat.Error) as e:
        tr.step(x, np.full(8, 9, np.int32))
    assert e.value.message


def test_optimizer_step_from_train_backward(ctx, need):
    need("optimizer_create", "optimizer_step")
    m = libsat.Model(ctx, SPEC, seed=2)
    opt = libsat.Optimizer(m, kind="adam", lr=1e-2, weight_decay=0.0)
    x, y = _data()
    first, _ = m.train_backward(x, y)
    for _ in range(10):
        m.train_backward(x, y)
        opt.step()
    assert m.train_backward(x, y)[0] < first


def test_evaluate(ctx, need):
    need("evaluate", "eval_opts_init")
    m = libsat.Model(ctx, SPEC, seed=1)
    x, y = _data()
    r = m.evaluate(x, y, eps=0.05, steps=[1, 3])
    assert r["n"] == 8 and r["steps"] == [1, 3] and len(r["robust_accuracy"]) == 2
    assert 0 <= r["robust_accuracy"][-1] <= r["clean_accuracy"] <= 1


def test_save_load(ctx, need, tmp_path):
    need("model_save", "model_load", "model_save_buffer", "model_load_buffer")
    m = libsat.Model(ctx, SPEC, seed=4, activation="gelu")
    x, _ = _data()
    path = tmp_path / "m.sat"
    m.save(path, meta={"eps": 0.1, "method": "pgd", "steps": 7})
    m2, meta = libsat.Model.load(ctx, path, with_meta=True)
    np.testing.assert_array_equal(m2.params, m.params)
    np.testing.assert_array_equal(m2.forward(x), m.forward(x))
    assert abs(meta["eps"] - 0.1) < 1e-7 and meta["steps"] == 7
    m3 = libsat.Model.load_buffer(ctx, m.save_buffer())
    np.testing.assert_array_equal(m3.forward(x), m.forward(x))
    bad = tmp_path / "bad.sat"
    bad.write_bytes(b"not a model file at all" * 4)
    with pytest.raises(libsat.Error) as e:
        libsat.Model.load(ctx, bad)
    assert e.value.status in (libsat.SAT_E_FORMAT, libsat.SAT_E_VERSION) and e.value.message
    with pytest.raises(libsat.Error) as e:
        libsat.Model.load(ctx, tmp_path / "missing.sat")
    assert e.value.status == libsat.SAT_E_IO and "missing.sat" in e.value.message


def _write_idx(d, prefix, images, labels, gz):
    n, h, w = images.shape
    op = gzip.open if gz else open
    ext = ".gz" if gz else ""
    with op(d / f"{prefix}-images-idx3-ubyte{ext}", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + images.astype(np.uint8).tobytes())
    with op(d / f"{prefix}-labels-idx1-ubyte{ext}", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())


def test_dataset_load_and_batch(ctx, tmp_path):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (10, 28, 28))
    labels = np.arange(10) % 10
    _write_idx(tmp_path, "t10k", images, labels, gz=True)
    ds = libsat.Dataset.load(ctx, tmp_path, format="idx", split="test")
    assert len(ds) == 10 and ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    np.testing.assert_allclose(ds.images[:, 0], images / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ds.labels, labels)
    ds.shuffle(seed=1, epoch=0)
    seen = []
    for bx, by in ds.batches(4):
        assert bx.shape[1:] == (1, 28, 28) and len(bx) == len(by)
        seen.extend(by.tolist())
    assert sorted(seen) == sorted(labels.tolist()) and len(seen) == 10
    held = ds.split(3, seed=2)
    assert len(held) == 3 and len(ds) == 7
    ds.truncate(5)
    assert len(ds) == 5


def test_dataset_errors_and_arrays(ctx, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x801, 1, 2, 2))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 1) + b"\0")
    with pytest.raises(libsat.Error) as e:
        libsat.Dataset.load(ctx, tmp_path, split="test")
    assert e.value.status == libsat.SAT_E_FORMAT and "magic" in e.value.message
    with pytest.raises(libsat.Error) as e:
        libsat.Dataset.load(ctx, tmp_path / "nowhere")
    assert e.value.status == libsat.SAT_E_IO and e.value.message
    x, y = _data(5)
    ds = libsat.Dataset.from_arrays(ctx, x, y, 3)
    np.testing.assert_array_equal(ds.images, x)
    bx, by = ds.batch(0, 5)
    assert sorted(by.tolist()) == sorted(y.tolist())
