"""The preset networks written directly in PyTorch, as the papers' code writes them (PreAct
ResNet-18 of Rice et al., the wide ResNets of the Madry and TRADES code, torchvision's
ResNet-50, ResNeXt-50 32x4d and EfficientNet-B0), for the parity test and the parameter
counts in sat.h.

Each module calls its weighted layers in the order libsat's preset spec lists them, so the
weights are copied by pairing the two lists (copy_weights checks each pair's kind and shape).
That is the only freedom taken: the order in which independent branches run (a shortcut
before or after the main path) changes nothing computed. `act` is the activation, one
function for the whole network as libsat's model option is. Dropout (EfficientNet's head)
is left out: it is the identity in inference and in libsat's batch-statistics forward."""
import torch

nn = torch.nn


def conv(cin, cout, k, stride=1, groups=1, bias=False):
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=bias)


class PreActBlock(nn.Module):
    """bn, act, then 3x3 conv, bn, act, 3x3 conv; a 1x1 conv of the activated input as the
    shortcut when the shape changes, else the block's input."""

    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.act = act
        self.bn1 = nn.BatchNorm2d(cin)
        self.shortcut = conv(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.conv1 = conv(cin, cout, 3, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3)

    def forward(self, x):
        out = self.act(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.act(self.bn2(self.conv1(out))))
        return out + short


class PreActNet(nn.Module):
    """A 3x3 stem, stages of pre-activation blocks (the first block of each stage after the
    first has stride 2), bn, act, global average pooling, the classifier."""

    def __init__(self, stem, widths, blocks, classes, act):
        super().__init__()
        self.act = act
        self.stem = conv(3, stem, 3)
        layers, cin = [], stem
        for s, w in enumerate(widths):
            for b in range(blocks):
                layers.append(PreActBlock(cin, w, 2 if s > 0 and b == 0 else 1, act))
                cin = w
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        out = self.act(self.bn(self.blocks(self.stem(x))))
        return self.fc(out.mean(dim=(2, 3)))


def preact_resnet18(classes, act):
    return PreActNet(64, [64, 128, 256, 512], 2, classes, act)


def wrn(depth, widen, classes, act):
    return PreActNet(16, [16 * widen, 32 * widen, 64 * widen], (depth - 4) // 6, classes, act)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3): 1x1, 3x3 (groups), 1x1, each with bn;
    the downsample (1x1 conv + bn) runs first here, as libsat's spec lists it."""

    def __init__(self, cin, mid, cout, stride, groups, act):
        super().__init__()
        self.act = act
        self.down = (nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)
        self.body = nn.Sequential(conv(cin, mid, 1), nn.BatchNorm2d(mid))
        self.conv2 = conv(mid, mid, 3, stride, groups)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv(mid, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x):
        short = self.down(x) if self.down is not None else x
        out = self.act(self.body(x))
        out = self.act(self.bn2(self.conv2(out)))
        return self.act(self.bn3(self.conv3(out)) + short)


class BottleneckNet(nn.Module):
    """torchvision's ResNet-50 (groups 1, width 64) and ResNeXt-50 32x4d (groups 32, width 4)."""

    def __init__(self, groups, group_width, classes, act):
        super().__init__()
        self.act = act
        self.stem = nn.Sequential(conv(3, 64, 7, 2), nn.BatchNorm2d(64))
        layers, cin = [], 64
        for s, n in enumerate([3, 4, 6, 3]):
            planes = 64 << s
            mid, cout = planes * group_width // 64 * groups, 4 * planes
            for b in range(n):
                layers.append(Bottleneck(cin, mid, cout, 2 if s > 0 and b == 0 else 1, groups, act))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        out = torch.nn.functional.max_pool2d(self.act(self.stem(x)), 3, 2, 1)
        return self.fc(self.blocks(out).mean(dim=(2, 3)))


class MBConv(nn.Module):
    """torchvision's MBConv: 1x1 expansion (if any), depthwise kxk, squeeze-excitation to
    max(1, cin // 4) channels, 1x1 projection with bn and no activation, the residual when
    the shape is unchanged."""

    def __init__(self, cin, cout, expand, k, stride, act):
        super().__init__()
        self.act = act
        mid = cin * expand
        self.expand = (nn.Sequential(conv(cin, mid, 1), nn.BatchNorm2d(mid))
                       if expand != 1 else None)
        self.dw = nn.Sequential(conv(mid, mid, k, stride, groups=mid), nn.BatchNorm2d(mid))
        squeeze = max(1, cin // 4)
        self.fc1 = nn.Conv2d(mid, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, mid, 1)
        self.project = nn.Sequential(conv(mid, cout, 1), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.act(self.expand(x)) if self.expand is not None else x
        out = self.act(self.dw(out))
        gate = torch.sigmoid(self.fc2(self.act(self.fc1(out.mean(dim=(2, 3), keepdim=True)))))
        out = self.project(out * gate)
        return out + x if self.residual else out


class EfficientNetB0(nn.Module):
    STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

    def __init__(self, classes, act):
        super().__init__()
        self.act = act
        self.stem = nn.Sequential(conv(3, 32, 3, 2), nn.BatchNorm2d(32))
        layers, cin = [], 32
        for expand, k, stride, cout, n in self.STAGES:
            for b in range(n):
                layers.append(MBConv(cin, cout, expand, k, stride if b == 0 else 1, act))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Sequential(conv(cin, 1280, 1), nn.BatchNorm2d(1280))
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        out = self.blocks(self.act(self.stem(x)))
        return self.fc(self.act(self.head(out)).mean(dim=(2, 3)))


def build(name, classes, act):
    """The PyTorch network of a libsat preset name."""
    if name == "preact-resnet18":
        return preact_resnet18(classes, act)
    if name.startswith("wrn-"):
        depth, widen = (int(v) for v in name[4:].split("-"))
        return wrn(depth, widen, classes, act)
    if name == "resnet50":
        return BottleneckNet(1, 64, classes, act)
    if name == "resnext50-32x4d":
        return BottleneckNet(32, 4, classes, act)
    if name == "efficientnet-b0":
        return EfficientNetB0(classes, act)
    raise ValueError(name)


def param_count(net):
    return sum(p.numel() for p in net.parameters())


def weighted_in_call_order(net, input_shape):
    """The Conv2d, BatchNorm2d and Linear modules in the order a forward pass calls them."""
    order = []
    hooks = [m.register_forward_pre_hook(lambda mod, _: order.append(mod))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    with torch.no_grad():
        net.eval()(torch.zeros((1,) + tuple(input_shape)))
    for h in hooks:
        h.remove()
    return order


def paired_layers(model, net, input_shape):
    """(libsat layer, torch module) for every conv, dense and batch-norm layer, pairing libsat's
    in spec order with the modules in the order net calls them; fails on any mismatch of
    kind, bias or tensor shape."""
    mods = weighted_in_call_order(net, input_shape)
    layers = [l for l in model.layers() if l.op in ("conv", "dense", "bn")]
    assert len(layers) == len(mods), (len(layers), len(mods))
    kinds = {"conv": nn.Conv2d, "dense": nn.Linear, "bn": nn.BatchNorm2d}
    for layer, mod in zip(layers, mods):
        assert isinstance(mod, kinds[layer.op]), (layer.index, layer.op, mod)
        assert (mod.bias is not None) == ("bias" in layer.params or layer.op == "bn"), layer.index
        for dst, src in _tensors(layer, mod):
            assert tuple(dst.shape) == tuple(src.data.shape), (layer.index, dst.shape, src.data.shape)
    return list(zip(layers, mods))


def _tensors(layer, mod):
    p, s = layer.params, layer.state
    if layer.op == "bn":
        return [(mod.weight, p["bn_scale"]), (mod.bias, p["bn_shift"]),
                (mod.running_mean, s["running_mean"]), (mod.running_var, s["running_var"])]
    return [(mod.weight, p["weight"])] + ([(mod.bias, p["bias"])] if "bias" in p else [])


def copy_weights(model, net, input_shape):
    """Copies a libsat model's parameters and batch-norm statistics into net."""
    with torch.no_grad():
        for layer, mod in paired_layers(model, net, input_shape):
            for dst, src in _tensors(layer, mod):
                dst.copy_(torch.from_numpy(src.data.copy()))


def set_running_stats(model, net, input_shape, x):
    """Running statistics of a batch x in both networks (torch computes them with batch-norm
    in training mode, cumulative average), so that inference-mode activations have the scale
    the network was built for: neither vanishing nor exploding through 50 layers."""
    pairs = paired_layers(model, net, input_shape)
    bns = [mod for _, mod in pairs if isinstance(mod, nn.BatchNorm2d)]
    for mod in bns:
        mod.reset_running_stats()
        mod.momentum = None
    with torch.no_grad():
        net.train()(x)
    for layer, mod in pairs:
        if layer.op == "bn":
            layer.state["running_mean"].data[...] = mod.running_mean.numpy()
            layer.state["running_var"].data[...] = mod.running_var.numpy()
