"""Model.layers(): the layer introspection as Python objects, with numpy views of every
tensor that share memory with the model and together cover its blocks exactly once."""
import math

import numpy as np
import pytest

import libsat

SPEC = """input 3 8 8
normalize mean=0.5 std=0.25
conv 4 k=3 p=1 bias=0
bn
act name=r
conv 4 k=3 p=1
act smoothrelu param=7
add r
maxpool k=2
flatten
dense 6
act relu
dense 3
"""


@pytest.fixture
def model(ctx):
    return libsat.Model(ctx, SPEC, activation="silu", seed=3, max_batch=2)


def test_layers_describe_the_spec(model):
    layers = model.layers()
    assert model.layer_count == len(layers) == 13
    assert [l.op for l in layers] == ["input", "normalize", "conv", "bn", "act", "conv", "act",
                                      "add", "maxpool", "flatten", "dense", "act", "dense"]
    assert [l.line for l in layers] == list(range(1, 14))
    assert layers[0].inputs == () and layers[0].output_shape == (3, 8, 8)
    conv = layers[2]
    assert (conv.units, conv.kernel, conv.stride, conv.padding) == (4, 3, 1, 1)
    assert list(conv.params) == ["weight"] and conv.params["weight"].shape == (4, 3, 3, 3)
    bn = layers[3]
    assert list(bn.params) == ["bn_scale", "bn_shift"]
    assert list(bn.state) == ["running_mean", "running_var"]
    assert bn.state["running_var"].shape == (4,)
    assert layers[4].name == "r" and layers[4].activation == "silu" and layers[4].act_param == 1.0
    smooth = layers[6]
    assert smooth.activation == "smoothrelu" and smooth.act_param == 7.0
    assert smooth.params["act_alpha"].shape == (1,) and smooth.params["act_alpha"].data[0] == 7.0
    assert layers[7].op == "add" and layers[7].inputs == (6, 4)
    assert layers[8].output_shape == (4, 4, 4) and layers[8].kernel == 2
    assert layers[9].output_shape == (64, 1, 1)
    dense = layers[10]
    assert dense.params["weight"].shape == (6, 64) and dense.params["bias"].shape == (6,)
    assert layers[11].activation == "relu"
    assert layers[2].activation is None and math.isnan(layers[2].act_param)


NEW_OPS = """input 8 8 8
maxpool k=3 s=2 p=1 name=stem
conv 8 k=3 p=1 g=8 bias=0
dropout p=0.1
gap
conv 8 k=1
sigmoid name=gate
mul stem
conv 4 k=3 p=1 g=2
dense 3
"""


def test_layers_of_the_imagenet_ops(ctx):
    """Padded max-pooling, depthwise and grouped convolutions (weights [out, in/groups, k, k]),
    dropout, sigmoid and mul as the introspection reports them."""
    layers = libsat.Model(ctx, NEW_OPS, seed=1, max_batch=2).layers()
    assert [l.op for l in layers] == ["input", "maxpool", "conv", "dropout", "gap", "conv", "sigmoid",
                                      "mul", "conv", "dense"]
    stem = layers[1]
    assert (stem.kernel, stem.stride, stem.padding, stem.output_shape) == (3, 2, 1, (8, 4, 4))
    assert layers[2].params["weight"].shape == (8, 1, 3, 3)  # depthwise
    assert layers[8].params["weight"].shape == (4, 4, 3, 3)  # 2 groups of 4 input channels
    assert layers[3].output_shape == (8, 4, 4) and not layers[3].params
    assert layers[7].inputs == (6, 1) and layers[7].output_shape == (8, 4, 4)


def test_tensors_cover_the_blocks_once_and_share_memory(model):
    seen_p = np.zeros(model.param_count, np.int32)
    seen_s = np.zeros(len(model.state), np.int32)
    for layer in model.layers():
        for t in layer.params.values():
            seen_p[t.offset:t.offset + t.data.size] += 1
        for t in layer.state.values():
            seen_s[t.offset:t.offset + t.data.size] += 1
    assert (seen_p == 1).all() and (seen_s == 1).all()
    # weights are what the decay mask marks
    mask = np.zeros(model.param_count, np.uint8)
    for layer in model.layers():
        if "weight" in layer.params:
            t = layer.params["weight"]
            mask[t.offset:t.offset + t.data.size] = 1
    assert (mask == model.decay_mask()).all()
    # a view writes through to the model: zeroing the last layer's weight and setting its
    # bias makes every logit the bias
    last = model.layers()[-1]
    last.params["weight"].data[...] = 0
    last.params["bias"].data[...] = [1.0, -2.0, 0.5]
    logits = model.forward(np.full((2, 3, 8, 8), 0.3, np.float32))
    assert np.array_equal(logits, np.tile(np.float32([1.0, -2.0, 0.5]), (2, 1)))


def test_bad_index_raises(model):
    with pytest.raises(libsat.Error) as e:
        model.layer(13)
    assert e.value.status == libsat.SAT_E_INVALID_ARG
    assert "sat_model_layer_info" in str(e.value) and "0..12" in str(e.value)
    with pytest.raises(libsat.Error):
        model.layer(-1)
