#!/usr/bin/python3
"""Does PGD adversarial training of small-cnn with ReLU fail to start in PyTorch too?

    /usr/bin/python3 examples/experiments/torch_collapse.py [--seeds 0,1,2,3,4] [--acts relu,silu]
        [--init he|torch] [--train-limit 12000] [--epochs 1]

An independent check of a libsat result (docs/experiments.md): with the common recipe
some ReLU seeds never leave chance accuracy, while SiLU always trains. This script
writes the same network and recipe in PyTorch, from its own code: small-cnn (conv 16 3x3
stride 2, act, conv 32 3x3 stride 2, act, dense 100, act, dense 10; no batch norm), the
input normalised by the training set's mean and standard deviation inside the model,
Linf PGD-7 at eps 0.1 (step 2.5 eps / 7, random start) on every training batch of 128,
SGD with momentum 0.9, weight decay 5e-4 on weights only, peak learning rate 0.05 with
half an epoch of linear warm-up and cosine decay to 0. --init he draws weights as libsat
does (normal, std sqrt(2 / fan_in), zero biases); --init torch keeps PyTorch's default.

It prints one JSON line per run: the mean training loss and the clean and PGD-10 accuracy
on 1000 held-out training examples (the last 1000 of the --train-limit first; libsat's
--val 1000 draws its 1000 at random, by seed).
"""
import argparse
import gzip
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    _, _, dims = struct.unpack(">HBB", raw[:4])
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def small_cnn(act, init):
    net = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), act(), nn.Conv2d(16, 32, 3, 2, 1), act(),
                        nn.Flatten(), nn.Linear(32 * 7 * 7, 100), act(), nn.Linear(100, 10))
    if init == "he":
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
                nn.init.zeros_(m.bias)
    return net


def pgd(model, x, y, eps, steps):
    step = 2.5 * eps / steps
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), [xa])
        with torch.no_grad():
            xa = torch.min(torch.max(xa + step * g.sign(), x - eps), x + eps).clamp(0, 1)
    return xa.detach()


def run(act_name, seed, a, xtr, ytr, xval, yval):
    torch.manual_seed(seed)
    act = {"relu": nn.ReLU, "silu": nn.SiLU,
           "psoftplus": lambda: nn.Softplus(beta=10.0)}[act_name]  # libsat's psoftplus, a = 10
    mean, std = float(xtr.mean()), float(xtr.std())
    net = small_cnn(act, a.init)

    def model(x):
        return net((x - mean) / std)

    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0}],
                          lr=0.05, momentum=0.9)
    batches = math.ceil(len(xtr) / 128)
    total, warm = batches * a.epochs, batches * 0.5
    t = 0
    losses = []
    for _ in range(a.epochs):
        order = torch.randperm(len(xtr))
        for b in range(batches):
            i = order[b * 128:(b + 1) * 128]
            x, y = xtr[i], ytr[i]
            lr = 0.05 * (t + 1) / warm if t < warm else \
                0.05 * 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, total - warm)))
            for g in opt.param_groups:
                g["lr"] = lr
            xa = pgd(model, x, y, a.eps, 7)
            loss = F.cross_entropy(model(xa), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            t += 1
    with torch.no_grad():
        clean = (model(xval).argmax(1) == yval).float().mean().item()
    robust = (model(pgd(model, xval, yval, a.eps, 10)).argmax(1) == yval).float().mean().item()
    return {"impl": "torch", "act": act_name, "seed": seed, "init": a.init,
            "train_loss": sum(losses) / len(losses), "val_clean": clean, "val_pgd10": robust}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--acts", default="relu,silu", help="relu, silu and/or psoftplus (a = 10)")
    ap.add_argument("--init", default="he", choices=["he", "torch"])
    ap.add_argument("--train-limit", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--eps", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    images = torch.from_numpy(idx(os.path.join(DATA, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255)
    labels = torch.from_numpy(idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    images = images.unsqueeze(1)[:a.train_limit]
    labels = labels[:a.train_limit]
    xtr, ytr, xval, yval = images[:-1000], labels[:-1000], images[-1000:], labels[-1000:]
    for act in a.acts.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            print(json.dumps(run(act, seed, a, xtr, ytr, xval, yval)), flush=True)


if __name__ == "__main__":
    main()
