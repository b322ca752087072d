#!/usr/bin/env python3
"""scaling_model.py - docs/distributed.md's scaling table from measured figures.

Reads the output of measure.sh (sat-mpi-pgd's "timed" lines and the all-reduce table) and
predicts, for data-parallel PGD-AT with a fixed per-rank batch (weak scaling), the step time,
speed-up and efficiency on p nodes:

    T(p)    = T_c + T_grad(p) + T_bn(p) - overlap
    T_c     = b * t_ex / node_speed                  measured compute per example, per core
    T_grad  = 2 (p-1)/p * 4 P / BW + 2 (p-1) alpha   ring all-reduce of the P-float gradient block
    T_bn    = 3 L * ceil(log2 p) * (alpha + 8 (2c+1) / BW)
                                                     synchronised batch norm: 3 small all-reduces
                                                     per layer and training pass (recursive doubling)
    speed-up = p T_c / T(p),  efficiency = T_c / T(p)

overlap (bucketing, --overlap): the gradient all-reduce can run during the training pass's
backward only, the last of the step's (k+1) passes; it hides at most the share of T_c that
backward takes, about (2/3) / (k+1) of it.

    examples/mpi/scaling_model.py measure.txt [--per-rank-batch 64] [--node-speed 1 32]
"""
import argparse
import math
import re
import statistics
import sys

# Parameters, batch-norm layers and widest layer of each model (preact-resnet18: 11.2 M
# parameters, its compute per example scaled from resnet20's by the ratio of their
# multiply-adds at 32x32, 556 M / 41 M, as its preset is not measured here).
MODELS = {
    "madry-cnn": {"params": 3267459, "bn_layers": 0, "bn_width": 0},
    "resnet20": {"params": 272019, "bn_layers": 21, "bn_width": 64},
    "preact-resnet18": {"params": 11173962, "bn_layers": 17, "bn_width": 512, "from": ("resnet20", 556 / 41)},
}
# (name, bytes per second, latency per message in seconds)
NETWORKS = [("10 Gbit/s Ethernet", 10e9 / 8, 25e-6), ("100 Gbit/s RDMA", 100e9 / 8, 3e-6)]
NODES = [8, 64, 512]

TIMED = re.compile(r"model=(\S+) ranks=(\d+) batch=(\d+) .*?: ([\d.]+) images/s; per step ([\d.]+) s compute "
                   r"\(of which ([\d.]+) s batch-norm reductions\), ([\d.]+) s gradient all-reduce of (\d+) floats")
ALLREDUCE = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def read(path):
    runs, allreduce = {}, {}
    for line in open(path, encoding="utf-8"):
        m = TIMED.search(line)
        if m:
            key = (m[1], int(m[2]), int(m[3]))
            runs.setdefault(key, []).append({"images_s": float(m[4]), "compute_s": float(m[5]),
                                             "bn_s": float(m[6]), "grad_s": float(m[7]), "floats": int(m[8])})
            continue
        m = ALLREDUCE.match(line)
        if m:
            allreduce.setdefault(int(m[1]), []).append((float(m[2]), float(m[4])))
    return runs, allreduce


def median(runs, key, field):
    return statistics.median(r[field] for r in runs[key])


def step_time(model, t_ex, b, p, bw, alpha, attack_steps, overlap):
    spec = MODELS[model]
    t_c = b * t_ex
    grad = 2 * (p - 1) / p * 4 * spec["params"] / bw + 2 * (p - 1) * alpha
    rounds = math.ceil(math.log2(p)) if p > 1 else 0
    bn = 3 * spec["bn_layers"] * rounds * (alpha + 8 * (2 * spec["bn_width"] + 1) / bw)
    hidden = min(grad, t_c * (2 / 3) / (attack_steps + 1)) if overlap else 0.0
    return t_c, t_c + grad + bn - hidden, grad + bn


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("measurements")
    ap.add_argument("--per-rank-batch", type=int, nargs="+", default=[64])
    ap.add_argument("--node-speed", type=float, nargs="+", default=[1.0, 32.0],
                    help="a node's compute speed in measured cores (1: one core as measured)")
    ap.add_argument("--attack-steps", type=int, default=3)
    ap.add_argument("--overlap", action="store_true", help="bucketed all-reduce during the last backward")
    args = ap.parse_args()
    runs, allreduce = read(args.measurements)

    print("## Measured here (medians)\n")
    print("| model | ranks x batch | images/s | compute s/step | of which BN reductions s | gradient all-reduce s "
          "| runs |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(runs):
        n = len(runs[key])
        print(f"| {key[0]} | {key[1]} x {key[2] // key[1]} | {median(runs, key, 'images_s'):.1f} | "
              f"{median(runs, key, 'compute_s'):.3f} | {median(runs, key, 'bn_s'):.3f} | "
              f"{median(runs, key, 'grad_s'):.4f} | {n} |")
    if allreduce:
        print("\n| floats | all-reduce s (median of runs) | bus bandwidth GB/s |\n|---|---|---|")
        for size in sorted(allreduce):
            t = statistics.median(v[0] for v in allreduce[size])
            bus = statistics.median(v[1] for v in allreduce[size])
            print(f"| {size} | {t:.6f} | {bus:.2f} |")

    t_ex = {}
    for model in MODELS:
        src, scale = MODELS[model].get("from", (model, 1.0))
        if (src, 1, 128) not in runs:
            sys.exit(f"no 1-rank x 128 run of {src} in {args.measurements}")
        t_ex[model] = median(runs, (src, 1, 128), "compute_s") / 128 * scale

    print(f"\n## Predicted: PGD-{args.attack_steps} data parallelism, fixed per-rank batch"
          f"{', bucketed overlap' if args.overlap else ''}\n")
    print("| model | node speed | per-rank batch | network | compute s/step | "
          + " | ".join(f"{p} nodes: speed-up (efficiency)" for p in NODES) + " | batch where comm = compute at 512 |")
    print("|---|---|---|---|---|" + "---|" * len(NODES) + "---|")
    for model in MODELS:
        for speed in args.node_speed:
            for b in args.per_rank_batch:
                for net, bw, alpha in NETWORKS:
                    cells = []
                    for p in NODES:
                        t_c, t, _ = step_time(model, t_ex[model] / speed, b, p, bw, alpha, args.attack_steps,
                                              args.overlap)
                        cells.append(f"{p * t_c / t:.1f} ({100 * t_c / t:.0f}%)")
                    _, _, comm = step_time(model, t_ex[model] / speed, b, 512, bw, alpha, args.attack_steps, False)
                    b_eq = comm / (t_ex[model] / speed)
                    t_c = b * t_ex[model] / speed
                    print(f"| {model} | {speed:g} | {b} | {net} | {t_c:.3f} | " + " | ".join(cells)
                          + f" | {b_eq:.1f} |")


if __name__ == "__main__":
    main()
