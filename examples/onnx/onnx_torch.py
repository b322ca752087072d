"""An ONNX graph rebuilt in PyTorch, one torch function per node, for the ops libsat's
export writes (docs/onnx.md). It needs only onnx and torch, not libsat: the tests use it to
check the export independently, the fine-tuning example to bring a libsat model back into
PyTorch. Gradients flow through it (PGD in PyTorch runs on it).

    model = onnx.load("model.onnx")
    logits = run_in_torch(model, x)      # x: a float32 tensor [N, C, H, W]
"""
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F


def ints(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.type == onnx.AttributeProto.INTS else a.i
    return default


def floats(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return a.f
    return default


def symmetric_padding(node):
    pads = ints(node, "pads", [0, 0, 0, 0])
    assert pads[:2] == pads[2:], f"{node.name}: asymmetric pads {pads}"
    return pads[:2]


def run_in_torch(model, x):
    """The graph rebuilt in PyTorch, one functional call per ONNX node."""
    env = {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    env[model.graph.input[0].name] = x
    for nd in model.graph.node:
        a = [env[i] for i in nd.input]
        op = nd.op_type
        if op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](a[0], a[1])
        elif op == "Conv":
            assert ints(nd, "dilations", [1, 1]) == [1, 1]
            y = F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=ints(nd, "strides"),
                         padding=symmetric_padding(nd), groups=ints(nd, "group", 1))
        elif op == "Gemm":
            assert ints(nd, "transA", 0) == 0 and floats(nd, "alpha", 1.0) == 1.0 and floats(nd, "beta", 1.0) == 1.0
            w = a[1].t() if ints(nd, "transB", 0) else a[1]
            y = a[0] @ w + (a[2] if len(a) > 2 else 0)
        elif op == "BatchNormalization":
            y = F.batch_norm(a[0], a[3], a[4], a[1], a[2], training=False, eps=floats(nd, "epsilon", 1e-5))
        elif op == "MaxPool":
            y = F.max_pool2d(a[0], ints(nd, "kernel_shape"), ints(nd, "strides"), symmetric_padding(nd))
        elif op == "AveragePool":
            assert symmetric_padding(nd) == [0, 0]
            y = F.avg_pool2d(a[0], ints(nd, "kernel_shape"), ints(nd, "strides"))
        elif op == "GlobalAveragePool":
            y = a[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            y = torch.flatten(a[0], ints(nd, "axis", 1))
        elif op == "Unsqueeze":
            y = a[0]
            for axis in sorted(a[1].tolist()):
                y = y.unsqueeze(axis)
        elif op == "Identity":
            y = a[0]
        elif op == "Elu":
            y = F.elu(a[0], alpha=floats(nd, "alpha", 1.0))
        elif op == "Celu":
            y = F.celu(a[0], alpha=floats(nd, "alpha", 1.0))
        elif op in ("Relu", "Sigmoid", "Tanh", "Erf", "Log", "Softplus"):
            y = {"Relu": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Erf": torch.erf,
                 "Log": torch.log, "Softplus": F.softplus}[op](a[0])
        else:
            raise AssertionError(f"node {nd.name}: op {op} is not rebuilt")
        env[nd.output[0]] = y
    return env[model.graph.output[0].name]
