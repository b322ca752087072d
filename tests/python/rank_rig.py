"""What the data-parallel tests share (test_sync_bn, test_grad_ready): a model with two
batch-norm layers and a PGD trainer on it, and a batch of uniform images."""
import numpy as np

import libsat

SPEC_BN = "input 1 6 6\nconv 4 k=3\nbn\nact\nflatten\ndense 16\nbn\nact\ndense 3\n"


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 6, 6), dtype=np.float32), (np.arange(n) % 3).astype(np.int32)


def rig(ctx, **opts):
    m = libsat.Model(ctx, SPEC_BN, seed=1, max_batch=16)
    opt = libsat.Optimizer(m, kind="sgd", lr=0.05, momentum=0.9)
    return m, libsat.Trainer(m, opt, method="pgd", eps=0.05, steps=2, **opts)
