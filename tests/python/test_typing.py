"""The package's type hints, as a user's type checker sees them from the installed package
(py.typed; without it mypy refuses to analyse the package): mypy accepts the package itself
and a correct program, and reports a wrong one."""
import subprocess
import sys
import textwrap

GOOD = """
    import numpy as np
    import libsat

    ctx = libsat.Context(num_threads=1, seed=0)
    model = libsat.Model.preset(ctx, "mlp", (1, 4, 4), 3, mean=[0.5], std=[0.25])
    x = np.zeros((2, 1, 4, 4), np.float32)
    logits: np.ndarray = model.forward(x)
    params = model.params
    total: float = float(params.sum())
    loss, correct = model.train_backward(x, [0, 1])
    stats: dict = libsat.Trainer(model, libsat.Optimizer(model, lr=0.1)).step(x, [0, 1])
    version: str = libsat.__version__
    host = libsat.CallbackModel(ctx, (1, 4, 4), 3, lambda x: x.reshape(len(x), -1)[:, :3],
                                lambda x, dz: np.zeros_like(x))
    report: dict = host.autoattack(x, [0, 1], eps=0.1)
    robust: float = model.autoattack(x, [0, 1])["robust_accuracy"]
    layer: libsat.Layer = model.layers()[2]
    weight: np.ndarray = layer.params["weight"].data
    shape: tuple = layer.params["weight"].shape
    inputs: tuple = layer.inputs
"""

BAD = """
    import libsat

    ctx = libsat.Context(num_threads="two")
    spec: int = libsat.preset_spec("mlp", (1, 4, 4), 3)
"""


def _mypy(tmp_path, *args):
    cmd = [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir",
           str(tmp_path / "cache"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_package_passes_mypy(tmp_path):
    out = _mypy(tmp_path, "-p", "libsat")
    assert out.returncode == 0, out.stdout + out.stderr


def test_user_code_is_checked_against_the_hints(tmp_path):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(textwrap.dedent(GOOD))
    bad.write_text(textwrap.dedent(BAD))
    out = _mypy(tmp_path, str(good))
    assert out.returncode == 0, out.stdout + out.stderr
    out = _mypy(tmp_path, str(bad))
    assert out.returncode != 0
    assert 'bad.py:4: error: Argument "num_threads" to "Context" has incompatible type "str"' \
        in out.stdout, out.stdout
    assert 'bad.py:5: error: Incompatible types in assignment (expression has type "str", ' \
        'variable has type "int")' in out.stdout, out.stdout
