"""Writes tiny-relu.onnx, the ONNX model of the sat-cli tests (eval --onnx, train
--init-onnx): for the tiny 12x12 two-class set of make_tiny_idx.c, an input normalisation,
Conv(1 -> 4, 3x3, pad 1), Relu, MaxPool 2, Flatten, Gemm(144 -> 10: the IDX reader gives ten classes), seeded random weights.
Run with Debian's python3-onnx: python3 make_tiny_onnx.py (writes next to itself)."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(12)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


nodes = [
    helper.make_node("Sub", ["x", "mean"], ["a"], name="sub"),
    helper.make_node("Div", ["a", "std"], ["b"], name="div"),
    helper.make_node("Conv", ["b", "w", "cb"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    helper.make_node("Relu", ["c"], ["r"], name="relu"),
    helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
    helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], name="fc", transB=1),
]
inits = [init("mean", np.full((1, 1, 1, 1), 0.4)), init("std", np.full((1, 1, 1, 1), 0.3)),
         init("w", rng.normal(0, 0.5, (4, 1, 3, 3))), init("cb", np.zeros(4)),
         init("fc", rng.normal(0, 0.1, (10, 144))), init("fcb", np.zeros(10))]
graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny-relu.onnx"))
