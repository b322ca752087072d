#!/usr/bin/python3
"""PyTorch counterpart of sat_bench: the same models, batch, attack and optimizer.

    /usr/bin/python3 tests/bench/torch_bench.py --model resnet20 --act silu --threads 2 \
        [--batch 128] [--reps 5] [--metrics train,pgd1,pgdk,attack] [--size S]

--model is madry-cnn, resnet20 or any libsat preset of tests/python/torch_presets.py
(wrn-D-K included); --size S sets an S x S input instead of the model's usual one (the
ImageNet networks at 64x64, as preset_memory --size 64).

Measures one configuration in this process and prints one JSON line per measurement
(the metrics of sat_bench: train_ms, pgd1_ms, pgdk_ms, attack_img_s, peak_rss_mb).

PGD: Linf, eps 8/255, step 2/255, uniform random start, projection and [0,1] clipping
after every step, gradient of the summed cross-entropy with respect to the input only
(torch.autograd.grad, so no weight gradients are computed), batch norm in eval mode
during the attack. Training: batch norm in train mode, mean cross-entropy, SGD lr 0.01,
momentum 0.9, weight decay 5e-4 on weights only (libsat's default decay mask).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The preset networks as written for the parity test (tests/python/torch_presets.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import torch_presets  # noqa: E402

# model: (input shape, attack steps of the PGD-k step), as sat_bench
MODELS = {"madry-cnn": ((1, 28, 28), 10), "resnet20": ((3, 32, 32), 7),
          "preact-resnet18": ((3, 32, 32), 10), "efficientnet-b0": ((3, 224, 224), 1),
          "resnet50": ((3, 224, 224), 1), "resnext50-32x4d": ((3, 224, 224), 1)}
WRN_SHAPE = ((3, 32, 32), 10)  # wrn-D-K, any depth and widen factor
METRICS = ["train", "pgd1", "pgdk", "attack"]

EPS = 8.0 / 255.0
STEP = 2.0 / 255.0


def act_module(name):
    return nn.ReLU() if name == "relu" else nn.SiLU()


class MadryCNN(nn.Module):
    """conv5x5x32 p2, act, maxpool2, conv5x5x64 p2, act, maxpool2, dense 1024, act, dense 10."""

    def __init__(self, act):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), act_module(act), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), act_module(act), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), act_module(act), nn.Linear(1024, 10))

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """libsat's resnet20 block: 3x3 conv, bn, act, 3x3 conv, bn, + shortcut, act; a 1x1
    strided conv + bn projection when the shape changes."""

    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.a1 = act_module(act)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.a2 = act_module(act)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(self.a1(self.b1(self.c1(x)))))
        return self.a2(y + (self.proj(x) if self.proj is not None else x))


class ResNet20(nn.Module):
    def __init__(self, act):
        super().__init__()
        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), act_module(act)]
        cin = 16
        for stage, width in enumerate((16, 32, 64)):
            for blk in range(3):
                stride = 2 if stage > 0 and blk == 0 else 1
                layers.append(Block(cin, width, stride, act))
                cin = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def pgd(model, x, y, steps):
    """Linf PGD from a uniform random start; BN in eval mode; input gradients only."""
    was_training = model.training
    model.eval()
    x_adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp_(0.0, 1.0)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, [x_adv])
        with torch.no_grad():
            x_adv = x_adv + STEP * g.sign()
            x_adv = torch.min(torch.max(x_adv, x - EPS), x + EPS).clamp_(0.0, 1.0)
    model.train(was_training)
    return x_adv.detach()


def train_step(model, opt, x, y):
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def pgd_train_step(model, opt, x, y, steps):
    return train_step(model, opt, pgd(model, x, y, steps), y)


def median_time(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20",
                    help="one of %s or wrn-D-K" % ", ".join(MODELS))
    ap.add_argument("--size", type=int, default=0, help="input height and width (default: the model's)")
    ap.add_argument("--act", default="silu", choices=["relu", "silu"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--metrics", default=",".join(METRICS),
                    help="which of train,pgd1,pgdk,attack to measure (peak_rss_mb always)")
    a = ap.parse_args()
    wanted = a.metrics.split(",")

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.model in MODELS:
        shape, k = MODELS[a.model]
    elif a.model.startswith("wrn-"):
        shape, k = WRN_SHAPE
    else:
        ap.error("unknown model %r" % a.model)
    if a.size > 0:
        shape = (shape[0], a.size, a.size)
    if a.model == "madry-cnn":
        model = MadryCNN(a.act)
    elif a.model == "resnet20":
        model = ResNet20(a.act)
    else:
        model = torch_presets.build(a.model, 10, F.relu if a.act == "relu" else F.silu)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": no_decay, "weight_decay": 0.0}], lr=0.01, momentum=0.9)
    x = torch.rand(a.batch, *shape)
    y = torch.arange(a.batch) % 10

    def emit(metric, value):
        print(json.dumps({"impl": "torch", "model": a.model, "act": a.act, "threads": a.threads,
                          "batch": a.batch, "metric": metric, "value": value}), flush=True)

    if "train" in wanted:
        emit("train_ms", 1e3 * median_time(lambda: train_step(model, opt, x, y), a.reps))
    if "pgd1" in wanted:
        emit("pgd1_ms", 1e3 * median_time(lambda: pgd_train_step(model, opt, x, y, 1), a.reps))
    if "pgdk" in wanted:
        emit("pgdk_steps", k)
        emit("pgdk_ms", 1e3 * median_time(lambda: pgd_train_step(model, opt, x, y, k), a.reps))
    if "attack" in wanted:
        t = median_time(lambda: pgd(model, x, y, 10), a.reps)
        emit("attack_img_s", a.batch / t)
    emit("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


if __name__ == "__main__":
    main()
