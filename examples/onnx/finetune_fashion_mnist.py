"""The full path of a PyTorch model through libsat, on Fashion-MNIST (Debian's
dataset-fashion-mnist):

  1. a small ReLU CNN with batch norm is trained in PyTorch (standard training, briefly);
  2. it is exported with torch.onnx.export (opset 13);
  3. libsat imports it with its ReLUs made SiLU (the paper's one change, weights kept) and
     fine-tunes it with PGD adversarial training;
  4. libsat exports the result as ONNX (Model.save_onnx);
  5. the file is loaded back into PyTorch (the graph rebuilt from the file, onnx_torch.py)
     and evaluated there.

Clean and PGD-20 accuracy (L-inf, eps 0.1) are measured in PyTorch with the same PGD for
the ReLU model before and for the fine-tuned SiLU model after, on the same test images.
A few minutes on two cores.

usage: PYTHONPATH=examples/python LIBSAT_LIBRARY=build/libsat.so \
       /usr/bin/python3 examples/onnx/finetune_fashion_mnist.py [--train N] [--test N] [--out DIR]
"""
import argparse
import gzip
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

import libsat
from onnx_torch import run_in_torch

DATA = "/usr/share/datasets/fashion-mnist"
EPS, PGD_STEPS, PGD_STEP = 0.1, 20, 0.01


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        data = f.read()
    if data[2] == 8 and data[3] == 3:  # images: magic, n, rows, cols, then bytes
        n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w).astype(np.float32) / 255.0
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


class Net(nn.Module):
    """Normalisation inside the model, so attacks see pixels in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.286]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.353]).view(1, 1, 1, 1))
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.fc1, self.fc2 = nn.Linear(32 * 7 * 7, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def pgd(f, x, y):
    """L-inf PGD from a random start in PyTorch, on any differentiable logits function f."""
    g = torch.Generator().manual_seed(0)
    xa = (x + torch.empty_like(x).uniform_(-EPS, EPS, generator=g)).clamp(0, 1)
    for _ in range(PGD_STEPS):
        xa.requires_grad_(True)
        loss = F.cross_entropy(f(xa), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xa)
        xa = (xa.detach() + PGD_STEP * grad.sign()).clamp(x - EPS, x + EPS).clamp(0, 1)
    return xa.detach()


def accuracy(f, x, y, batch=250):
    clean = robust = 0
    for i in range(0, len(x), batch):
        xb, yb = torch.from_numpy(x[i:i + batch]), torch.from_numpy(y[i:i + batch])
        with torch.no_grad():
            clean += (f(xb).argmax(1) == yb).sum().item()
        robust += (f(pgd(f, xb, yb)).argmax(1) == yb).sum().item()
    return 100.0 * clean / len(x), 100.0 * robust / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=20000, help="training images used")
    ap.add_argument("--test", type=int, default=1000, help="test images evaluated")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of smooth adversarial fine-tuning")
    ap.add_argument("--out", default=None, help="directory for the ONNX files (default: a temporary one)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="sat-onnx-")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    xtr, ytr = idx("train-images-idx3-ubyte.gz")[:args.train], idx("train-labels-idx1-ubyte.gz")[:args.train]
    xte, yte = idx("t10k-images-idx3-ubyte.gz")[:args.test], idx("t10k-labels-idx1-ubyte.gz")[:args.test]

    # 1. PyTorch: a ReLU model, one epoch of standard training
    t0 = time.time()
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for i in range(0, len(xtr), 128):
        loss = F.cross_entropy(net(torch.from_numpy(xtr[i:i + 128])), torch.from_numpy(ytr[i:i + 128]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    relu_clean, relu_robust = accuracy(net, xte, yte)
    print(f"PyTorch ReLU model:            clean {relu_clean:5.1f}%  PGD-{PGD_STEPS} {relu_robust:5.1f}%"
          f"  ({time.time() - t0:.0f} s)")

    # 2. out of PyTorch
    relu_path = os.path.join(out, "relu.onnx")
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), relu_path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

    # 3. into libsat, ReLU -> SiLU, PGD adversarial training
    t0 = time.time()
    ctx = libsat.Context(num_threads=2, seed=1)
    model = libsat.Model.load_onnx(ctx, relu_path, replace_act_from="relu", replace_act_to="silu", max_batch=128)
    ytr32, yte32 = ytr.astype(np.int32), yte.astype(np.int32)
    steps_per_epoch = (len(xtr) + 127) // 128
    sgd = libsat.Optimizer(model, kind="sgd", lr=0.02, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                           total_steps=args.epochs * steps_per_epoch)
    trainer = libsat.Trainer(model, sgd, method="pgd", eps=EPS, steps=3, step_size=0.04)
    for epoch in range(args.epochs):
        order = np.random.default_rng(epoch).permutation(len(xtr))
        for i in range(0, len(xtr), 128):
            b = order[i:i + 128]
            trainer.step(xtr[b], ytr32[b])
    del trainer, sgd  # the model is the optimizer's until then
    r = model.evaluate(xte, yte32, eps=EPS, steps=[PGD_STEPS], step_size=PGD_STEP)
    print(f"libsat SiLU, PGD-AT fine-tuned: clean {100 * r['clean_accuracy']:5.1f}%  PGD-{PGD_STEPS} "
          f"{100 * r['robust_accuracy'][0]:5.1f}%  (libsat's PGD; {time.time() - t0:.0f} s)")

    # 4. out of libsat, 5. back into PyTorch
    silu_path = os.path.join(out, "silu-pgd-at.onnx")
    model.save_onnx(silu_path)
    back = onnx.load(silu_path)
    onnx.checker.check_model(back)
    x = torch.from_numpy(xte[:64])
    with torch.no_grad():
        diff = (run_in_torch(back, x) - torch.from_numpy(model.forward(xte[:64]))).abs().max().item()
    silu_clean, silu_robust = accuracy(lambda t: run_in_torch(back, t), xte, yte)
    print(f"back in PyTorch (SiLU, ONNX):  clean {silu_clean:5.1f}%  PGD-{PGD_STEPS} {silu_robust:5.1f}%"
          f"  (logits within {diff:.1e} of libsat's)")
    print(f"files: {relu_path}, {silu_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
