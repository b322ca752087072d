"""ONNX export, checked without libsat.

For models covering every layer and every activation (and the resnet20 and madry-cnn
presets), sat-onnx-export-model writes the ONNX file, an input batch and libsat's logits.
Then, with Debian's onnx and torch only:

  checker  onnx.checker.check_model(full_check=True) accepts the file (this includes
           ONNX's strict shape inference) and the inferred output is [batch, classes];
  torch    the graph, rebuilt node by node from the file in PyTorch
           (examples/onnx/onnx_torch.py), gives libsat's
           logits within float rounding.

Tolerance of the comparison: both sides compute in float32 with different summation
orders (BLIS and im2col against PyTorch's convolutions), different elementary functions
(libsat's erfc and exp polynomial against libm's erf and exp) and a different order of
operations inside GELU and normalisation; each differs by a few units in the last place
per op (2^-24 = 6e-8 relative). Over up to 20 layers whose dot products run over up to
3136 terms (madry-cnn's dense layer) the measured worst case is 6e-7 of the largest logit
(max(1, max |logit|)); the bound is 2e-5 of it, 30 times that, and below what an export
error makes: batch norm's epsilon written as 1e-4 instead of 1e-5 moves the logits by
1.5e-4, and a wrong tensor, constant or attribute by far more.

usage: onnx_export_check.py --writer PATH --work DIR --only checker|torch
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "onnx"))
from onnx_torch import run_in_torch  # noqa: E402  (the graph rebuilt in PyTorch)

ACTIVATIONS = ["relu", "softplus", "psoftplus", "silu", "gelu", "gelu-tanh", "elu", "celu", "smoothrelu"]

# A small CNN with batch norm after conv and dense layers, a grouped strided conv and a
# padded max pool: the activation is the model's, so it appears three times.
SMALL_CNN = """input 3 8 8
normalize mean=0.49,0.48,0.45 std=0.25,0.24,0.26
conv 4 k=3 p=1
bn
act
conv 4 k=3 s=2 p=1 g=2
bn
act
maxpool k=3 s=2 p=1
flatten
dense 16
bn
act
dense 5
"""

# Every other layer: residual add, squeeze-excitation (gap, dense, sigmoid, mul by a
# [N, C] gate), average pooling, dropout, a conv after a dense layer, a dense layer reading a
# 4-D tensor, activations with explicit parameters, and a last layer of rank 4.
EVERY_LAYER = """input 2 6 6
normalize mean=0.5 std=0.3
conv 6 k=3 p=1 bias=0 name=trunk
act silu param=1.5
conv 6 k=3 p=1 g=3
act psoftplus param=4
add trunk name=res
gap
flatten
dense 3
act elu param=0.7
dense 6
sigmoid
mul res
avgpool k=2 s=2
act celu param=1.3
dropout p=0.3
act smoothrelu param=20
dense 8
act gelu-tanh
conv 4 k=1
gap
"""

MODELS = [("cnn_" + a.replace("-", "_"), SMALL_CNN, a) for a in ACTIVATIONS] + [
    ("every_layer", EVERY_LAYER, "gelu"),
    ("resnet20_silu", "preset:resnet20:3:32:32:10", "silu"),
    ("madry_cnn_gelu", "preset:madry-cnn:1:28:28:10", "gelu"),
]
BATCH = 4


def export(writer, work, name, spec, act):
    src = spec
    if not spec.startswith("preset:"):
        src = os.path.join(work, name + ".spec")
        with open(src, "w") as f:
            f.write(spec)
    prefix = os.path.join(work, name)
    subprocess.run([writer, src, act, str(BATCH), prefix], check=True)
    return prefix


def check_checker(model, classes, name):
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    got = [d.dim_param or d.dim_value for d in dims]
    assert got == ["batch", classes], f"{name}: output shape {got}"
    print(f"{name}: accepted by onnx.checker (opset {model.opset_import[0].version}, "
          f"{len(model.graph.node)} nodes)")


def check_torch(model, prefix, name):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.fromfile(prefix + ".input", dtype="<f4").reshape([BATCH] + shape)
    ref = np.fromfile(prefix + ".logits", dtype="<f4").reshape(BATCH, -1)
    with torch.no_grad():
        got = run_in_torch(model, torch.from_numpy(x)).numpy()
    err = float(np.abs(got - ref).max())
    scale = max(1.0, float(np.abs(ref).max()))
    print(f"{name}: max |torch - libsat| = {err:.3g} (largest logit {scale:.3g}, "
          f"relative {err / scale:.3g})")
    assert got.shape == ref.shape
    assert err <= 2e-5 * scale, f"{name}: logits differ by {err} (bound {2e-5 * scale})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", choices=["checker", "torch"], required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(1)
    for name, spec, act in MODELS:
        prefix = export(args.writer, args.work, name, spec, act)
        model = onnx.load(prefix + ".onnx")
        classes = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
        if args.only == "checker":
            check_checker(model, classes, name)
        else:
            check_torch(model, prefix, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
