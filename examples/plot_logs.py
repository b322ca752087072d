#!/usr/bin/python3
"""Turns the output of `sat-cli compare --log-dir DIR` into PNG plots.

Usage: python3 examples/plot_logs.py DIR [--out OUTDIR]

Reads DIR/compare.jsonl (one line per run: activation and seed) and, when present, the
per-epoch training logs DIR/train-ACT-seedS.jsonl, and writes into OUTDIR (default DIR):

  robust_vs_steps.png   robust accuracy against the number of PGD steps, one line per
                        activation (the curve must flatten for the number to be trusted)
  clean_vs_robust.png   clean against robust accuracy (strongest PGD) per activation
  training_curves.png   validation PGD accuracy and training loss per epoch (if the
                        training logs exist)

Needs Debian's python3-matplotlib; uses the non-interactive Agg backend, so no display is
required.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{number}: not a JSON line ({e})")
    return rows


def run_name(r):
    """A run of compare: its activation, and its seed when the log has one."""
    return r["activation"] + (f" seed {r['seed']}" if "seed" in r else "")


def train_log(logdir, r):
    """The per-epoch log of a run: train-ACT-seedS.jsonl (train-ACT.jsonl before seeds)."""
    name = r["activation"] + (f"-seed{r['seed']}" if "seed" in r else "")
    return os.path.join(logdir, f"train-{name}.jsonl")


def pct(v):
    return None if v is None else 100.0 * v


def plot_robust_vs_steps(rows, out):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for r in rows:
        steps = r["pgd_steps"]
        acc = [pct(a) for a in r["pgd_acc"]]
        ax.plot(steps, acc, marker="o", label=run_name(r))
    ax.set_xscale("log")
    ax.set_xlabel("PGD steps (k)")
    ax.set_ylabel("robust accuracy (%)")
    eps = rows[0].get("eps")
    ax.set_title("Robust accuracy under PGD-k" + (f", eps {eps:.3g}" if eps else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(title="activation")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_clean_vs_robust(rows, out):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for r in rows:
        clean = pct(r["clean_acc"])
        robust = pct(r["pgd_acc"][-1])
        ax.scatter([clean], [robust], s=60)
        ax.annotate(run_name(r), (clean, robust), textcoords="offset points",
                    xytext=(6, 4))
    k = rows[0]["pgd_steps"][-1]
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel(f"PGD-{k} robust accuracy (%)")
    ax.set_title("Clean vs robust accuracy per activation")
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_training(logdir, rows, out):
    curves = []
    for r in rows:
        path = train_log(logdir, r)
        if os.path.exists(path):
            curves.append((run_name(r), read_jsonl(path)))
    if not curves:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, log in curves:
        epochs = [e["epoch"] for e in log]
        ax1.plot(epochs, [pct(e.get("val_pgd_acc")) for e in log], marker="o", label=name)
        ax2.plot(epochs, [e["train_loss"] for e in log], marker="o", label=name)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation PGD accuracy (%)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("adversarial training loss")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(title="activation")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def main():
    p = argparse.ArgumentParser(description="Plots from `sat-cli compare --log-dir DIR`.")
    p.add_argument("logdir", help="the --log-dir of sat-cli compare")
    p.add_argument("--out", help="where to write the PNGs (default: the log directory)")
    a = p.parse_args()
    src = os.path.join(a.logdir, "compare.jsonl")
    if not os.path.exists(src):
        print(f"plot_logs.py: {src} not found; run `sat-cli compare --log-dir {a.logdir}` first",
              file=sys.stderr)
        return 3
    rows = read_jsonl(src)
    if not rows:
        print(f"plot_logs.py: {src} is empty", file=sys.stderr)
        return 3
    out = a.out or a.logdir
    os.makedirs(out, exist_ok=True)
    written = []
    path = os.path.join(out, "robust_vs_steps.png")
    plot_robust_vs_steps(rows, path)
    written.append(path)
    path = os.path.join(out, "clean_vs_robust.png")
    plot_clean_vs_robust(rows, path)
    written.append(path)
    path = os.path.join(out, "training_curves.png")
    if plot_training(a.logdir, rows, path):
        written.append(path)
    for w in written:
        print(f"wrote {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
