"""ONNX export through the package: Model.save_onnx and save_onnx_buffer. ONNX's checker
accepts the bytes, the options land in the file, the import reads them back with the same
logits, and a bad option raises. (Every layer and activation against PyTorch is
onnx_export_check.py's.)"""
import numpy as np
import onnx
import pytest

import libsat

SPEC = "input 1 6 6\nnormalize mean=0.5 std=0.25\nconv 4 k=3 p=1\nbn\nact\nflatten\ndense 3\n"


def test_export_reads_back(ctx):
    m = libsat.Model(ctx, SPEC, activation="silu", max_batch=8, seed=5)
    data = m.save_onnx_buffer()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.opset_import[0].version == 13
    x = np.random.default_rng(0).random((5, 1, 6, 6), dtype=np.float32)
    back = libsat.Model.load_onnx_buffer(ctx, data)
    np.testing.assert_array_equal(back.forward(x), m.forward(x))


def test_file_and_options(ctx, tmp_path):
    m = libsat.Model(ctx, SPEC, activation="gelu", max_batch=8, seed=5)
    path = tmp_path / "m.onnx"
    m.save_onnx(path, opset=17, batch_dim=4)
    assert path.read_bytes() == m.save_onnx_buffer(opset=17, batch_dim=4)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 4
    x = np.random.default_rng(1).random((4, 1, 6, 6), dtype=np.float32)
    np.testing.assert_array_equal(libsat.Model.load_onnx(ctx, path).forward(x), m.forward(x))


def test_bad_options(ctx, tmp_path):
    m = libsat.Model(ctx, SPEC, activation="relu", max_batch=8, seed=5)
    with pytest.raises(libsat.Error) as e:
        m.save_onnx_buffer(opset=99)
    assert e.value.status_string == "unsupported" and "opset 99" in e.value.message
    with pytest.raises(libsat.Error) as e:
        m.save_onnx(tmp_path / "never.onnx", batch_dim=-1)
    assert e.value.status_string == "invalid argument"
    assert not (tmp_path / "never.onnx").exists()
    with pytest.raises(TypeError):
        m.save_onnx_buffer(opset_version=13)
