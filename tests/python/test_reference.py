"""The ctypes package must hand the library the same data a C host does and give back
the same numbers: sat-py-reference (C, built by tests/python/CMakeLists.txt) prints
logits, losses and gradients for a fixed preset/seed/input; the same calls through Python
must reproduce them bit for bit (same library, one thread, same inputs)."""
import subprocess

import numpy as np
import pytest

import libsat


def _run(reference, *args):
    out = subprocess.run([reference, *map(str, args)], check=True, capture_output=True,
                         text=True).stdout.split("\n")
    sections, i = {}, 0
    while i < len(out) and out[i]:
        name, count = out[i].split()
        count = int(count)
        sections[name] = np.array([float.fromhex(v) for v in out[i + 1:i + 1 + count]],
                                  dtype=np.float32)
        i += 1 + count
    return sections


@pytest.mark.parametrize("preset,shape,classes,act", [
    ("small-cnn", (3, 8, 8), 10, "silu"),
    ("mlp", (1, 5, 5), 4, "gelu"),
    ("madry-cnn", (1, 12, 12), 10, "smoothrelu"),
])
def test_same_numbers_as_c(ctx, reference, preset, shape, classes, act):
    seed, n = 11, 3
    ref = _run(reference, preset, *shape, classes, act, seed, n)
    m = libsat.Model.preset(ctx, preset, shape, classes, activation=act, seed=seed)
    size = n * int(np.prod(shape))
    x = ((np.arange(size, dtype=np.int64) * 7919) % 1000).astype(np.float32) / np.float32(999)
    x = x.reshape((n,) + shape)
    y = (3 * np.arange(n)) % classes
    np.testing.assert_array_equal(m.forward(x).reshape(-1), ref["logits"])
    losses, grad, logits = m.input_gradient(x, y)
    np.testing.assert_array_equal(losses, ref["losses"])
    np.testing.assert_array_equal(grad.reshape(-1), ref["input_grad"])
    np.testing.assert_array_equal(logits.reshape(-1), ref["logits"])
    loss, _ = m.train_backward(x, y)
    assert np.float32(loss) == ref["train_loss"][0]
    np.testing.assert_array_equal(m.grads, ref["grads"])
