#!/usr/bin/python3
"""Rebuilds the tables and figures of docs/experiments.md from the logs of run.sh.

Usage: /usr/bin/python3 examples/experiments/report.py LOGDIR [--doc FILE] [--figures DIR]

LOGDIR is run.sh's $OUT (default build/experiments): LOGDIR/<experiment>/<part>/ holds one
`sat-cli compare` log directory, whose run-ACT-seedS.json files are the raw numbers of each
training (one per activation and seed). Every table is written between the markers
    <!-- table:NAME -->  ...  <!-- end table:NAME -->
of the document (default docs/experiments.md), so the text around them stays as written;
a table whose runs are missing says so instead of numbers. The figures (PNG) go to
--figures (default docs/figures) as experiments-*.png.

Statistics: mean +- sample standard deviation over the seeds; a difference between two
rows is paired by seed (same seed: same initialisation, data order and attack starts),
with a 95% Student t confidence interval over the paired differences.
"""
import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

# Two-sided 95% quantiles of Student's t by degrees of freedom (statistics tables).
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646,
        8: 2.3060, 9: 2.2622, 10: 2.2281, 15: 2.1314, 20: 2.0860, 30: 2.0423}

COLUMNS = [("clean", "clean %"), ("pgd10", "PGD-10 %"), ("pgd50", "PGD-50 %"),
           ("apgd", "APGD-CE/T %")]
TINY_COLUMNS = {"pgd10": 0, "pgd50": -1}  # tiny runs use other step counts: first, last


def t975(df):
    if df in T975:
        return T975[df]
    below = max(k for k in T975 if k < df)
    return T975[below] if df < 30 else 1.96


# A run whose clean accuracy stays below twice chance (10 classes) never learned: its
# numbers are in every mean, and the tables count such runs in a column of their own.
FAILED_BELOW = 20.0


def load_runs(part_dir):
    """{(activation, seed): run record} of one compare log directory. A run's training
    minutes are the sum of its epochs' times in its per-epoch log, so that a run resumed
    after an interruption counts the epochs before the interruption too."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(part_dir, "run-*-seed*.json"))):
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        epochs = os.path.join(part_dir, f"train-{r['activation']}-seed{r['seed']}.jsonl")
        r["train_minutes"] = r["train_seconds"] / 60.0
        if os.path.exists(epochs):
            with open(epochs, encoding="utf-8") as f:
                secs = [json.loads(line).get("seconds") for line in f if line.strip()]
            if secs and all(isinstance(v, (int, float)) for v in secs):
                r["train_minutes"] = sum(secs) / 60.0
        runs[(r["activation"], int(r["seed"]))] = r
    return runs


def failed(r):
    return metric(r, "clean") < FAILED_BELOW


def metric(r, key):
    """A run's accuracy in %, by column key (None when the run did not measure it)."""
    if key == "clean":
        v = r["clean_acc"]
    elif key == "apgd":
        v = r.get("apgd_acc")
    else:
        steps = r["pgd_steps"]
        k = int(key[3:])
        if k in steps:
            v = r["pgd_acc"][steps.index(k)]
        else:  # the tiny test recipe: stand in with the nearest column
            v = r["pgd_acc"][TINY_COLUMNS[key]]
    return None if v is None else 100.0 * v


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}"


def paired(row, base, key, trained_only=False):
    """Mean of row - base over the seeds both have (trained_only: and in which neither run
    stayed at chance), with its 95% interval."""
    seeds = sorted(set(row) & set(base))
    if trained_only:
        seeds = [s for s in seeds if not failed(row[s]) and not failed(base[s])]
    d = [metric(row[s], key) - metric(base[s], key) for s in seeds
         if metric(row[s], key) is not None and metric(base[s], key) is not None]
    if not d:
        return "n/a"
    m = statistics.mean(d)
    if len(d) < 2:
        return f"{m:+.2f} (1 seed)"
    h = t975(len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    seeds_note = f" ({len(d)} seeds)" if trained_only else ""
    return f"{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}]{seeds_note}"


def by_seed(runs, act):
    return {s: r for (a, s), r in runs.items() if a == act}


def table(rows, base_label=None):
    """rows: [(label, {seed: run})]. Mean +- sd per column, then the paired difference of
    every row against the row named base_label (default the first)."""
    rows = [(label, rs) for label, rs in rows if rs]
    if not rows:
        return "*No runs in the logs yet: run `bash examples/experiments/run.sh` first.*\n"
    out = ["| row | seeds | " + " | ".join(h for _, h in COLUMNS) +
           " | runs at chance | training minutes per run |",
           "|---" * (len(COLUMNS) + 4) + "|"]
    for label, rs in rows:
        cells = [mean_sd([metric(r, k) for r in rs.values()]) for k, _ in COLUMNS]
        minutes = statistics.mean(r["train_minutes"] for r in rs.values())
        at_chance = sorted(s for s, r in rs.items() if failed(r))
        chance = f"{len(at_chance)} (seed {', '.join(map(str, at_chance))})" if at_chance else "0"
        out.append(f"| {label} | {len(rs)} | " + " | ".join(cells) + f" | {chance} | {minutes:.1f} |")
    base_label = base_label or rows[0][0]
    base = dict(rows).get(base_label)
    if base and len(rows) > 1:
        out += differences(rows, base, base_label, False,
                           f"Paired difference against {base_label} (same seeds), in points, with "
                           "its 95% confidence interval:")
        if any(failed(r) for _, rs in rows for r in rs.values()):
            # chosen after the runs: a secondary view, not the comparison fixed before
            out += differences(rows, base, base_label, True,
                               "The same over only the seeds in which neither run stayed at chance "
                               "(a view chosen after seeing the runs, with the number of seeds it keeps):")
    return "\n".join(out) + "\n"


def differences(rows, base, base_label, trained_only, title):
    """The lines of a table of every row's paired difference against the base row."""
    out = ["", title, "", "| row | " + " | ".join(h for _, h in COLUMNS) + " |",
           "|---" * (len(COLUMNS) + 1) + "|"]
    for label, rs in rows:
        if label != base_label:
            out.append(f"| {label} - {base_label} | " +
                       " | ".join(paired(rs, base, k, trained_only) for k, _ in COLUMNS) + " |")
    return out


def wallclock(logdir, experiment):
    path = os.path.join(logdir, experiment, "wallclock.tsv")
    if not os.path.exists(path):
        return ""
    parts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            name, seconds, when = line.rstrip("\n").split("\t")
            parts[name] = (int(seconds), when)  # the last run of a part counts
    total = sum(s for s, _ in parts.values())
    detail = ", ".join(f"{n} {s / 60:.0f} min" for n, (s, _) in parts.items())
    last = max(w for _, w in parts.values())
    return (f"\nWall clock of `run.sh {experiment}` (finished {last}): {total / 3600:.1f} h "
            f"({detail}).\n")


def build_tables(logdir):
    part = lambda e, p: load_runs(os.path.join(logdir, e, p))  # noqa: E731
    acts = part("activations", "all")
    order = ["relu", "softplus", "psoftplus", "silu", "gelu", "elu", "celu", "smoothrelu"]
    names = {"psoftplus": "psoftplus (a=10)"}
    t = {}
    t["activations"] = table([(names.get(a, a), by_seed(acts, a)) for a in order]) + \
        wallclock(logdir, "activations")
    t["activations-runs"] = runs_table([(names.get(a, a), by_seed(acts, a)) for a in order])
    short = part("short", "baseline")  # PGD-AT at the short budget of the other tables
    t["ablation"] = table([
        ("relu", by_seed(short, "relu")),
        ("relu, attacker with psoftplus' derivative", by_seed(part("ablation", "attacker"), "relu")),
        ("relu, optimizer with psoftplus' derivative", by_seed(part("ablation", "optimizer"), "relu")),
        ("relu, both with psoftplus' derivative", by_seed(part("ablation", "both"), "relu")),
        ("silu", by_seed(short, "silu")),
    ]) + wallclock(logdir, "ablation")
    cap = []
    for model in ("small-cnn", "madry-cnn"):
        runs = part("capacity", model)
        cap += [(f"{model} {a}", by_seed(runs, a)) for a in ("relu", "silu")]
    t["capacity"] = capacity_table(cap) + wallclock(logdir, "capacity")
    meth = [("PGD-AT relu", by_seed(short, "relu")), ("PGD-AT silu", by_seed(short, "silu"))]
    for m, label in (("fast", "Fast-AT"), ("free", "Free-AT"), ("trades", "TRADES")):
        runs = part("methods", m)
        meth += [(f"{label} {a}", by_seed(runs, a)) for a in ("relu", "silu")]
    t["methods"] = capacity_table(meth) + wallclock(logdir, "methods")
    t["overfitting"] = overfitting_table(part("overfitting", "eps0.3")) + \
        wallclock(logdir, "overfitting")
    t["short"] = wallclock(logdir, "short") or "*No runs in the logs yet.*\n"
    return t


def runs_table(rows):
    """Every run's own numbers: clean / PGD-50 / APGD-CE/T per seed."""
    rows = [(label, rs) for label, rs in rows if rs]
    if not rows:
        return table([])
    seeds = sorted({s for _, rs in rows for s in rs})
    out = ["Each run, clean / PGD-50 / APGD-CE/T %:", "",
           "| row | " + " | ".join(f"seed {s}" for s in seeds) + " |",
           "|---" * (len(seeds) + 1) + "|"]
    for label, rs in rows:
        cells = []
        for s in seeds:
            r = rs.get(s)
            cells.append("-" if r is None else " / ".join(
                "n/a" if metric(r, k) is None else f"{metric(r, k):.2f}" for k in ("clean", "pgd50", "apgd")))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def capacity_table(rows):
    """Rows come in ReLU/SiLU pairs; each pair gets its own paired SiLU - ReLU line."""
    text = table(rows, base_label=rows[0][0])
    lines = ["", "SiLU - ReLU within each pair (same seeds), in points, 95% interval:", "",
             "| pair | " + " | ".join(h for _, h in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    any_pair = False
    for (lr, relu), (ls, silu) in zip(rows[0::2], rows[1::2]):
        if relu and silu:
            any_pair = True
            lines.append(f"| {ls.rsplit(' ', 1)[0]} | " +
                         " | ".join(paired(silu, relu, k) for k, _ in COLUMNS) + " |")
    # The difference against the first row mixes models or methods: keep only the pairs.
    text = text.split("\nPaired difference against")[0]
    return text + ("\n".join(lines) + "\n" if any_pair else "")


def overfitting_table(runs):
    if not runs:
        return table([])
    out = ["| activation | seeds | clean % | PGD-50 % | guard triggered | at epoch |",
           "|---|---|---|---|---|---|"]
    for a in ("relu", "silu"):
        rs = by_seed(runs, a)
        if not rs:
            continue
        hit = [r for r in rs.values() if r.get("catastrophic_overfitting")]
        epochs = ", ".join(str(r["catastrophic_epoch"]) for r in hit) or "-"
        out.append(f"| {a} | {len(rs)} | {mean_sd([metric(r, 'clean') for r in rs.values()])} | "
                   f"{mean_sd([metric(r, 'pgd50') for r in rs.values()])} | "
                   f"{len(hit)} of {len(rs)} | {epochs} |")
    return "\n".join(out) + "\n"


def figures(logdir, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acts = load_runs(os.path.join(logdir, "activations", "all"))
    if not acts:
        return []
    os.makedirs(outdir, exist_ok=True)
    names = sorted({a for a, _ in acts}, key=lambda a: (a != "relu", a))
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for a in names:
        rs = list(by_seed(acts, a).values())
        steps = rs[0]["pgd_steps"]
        ys = [statistics.mean(100 * r["pgd_acc"][i] for r in rs) for i in range(len(steps))]
        ax.plot(steps, ys, marker="o", label=a)
    ax.set_xscale("log")
    ax.set_xlabel("PGD steps")
    ax.set_ylabel("robust accuracy % (mean over seeds)")
    ax.set_title("Robust accuracy against PGD steps, per activation")
    ax.legend(fontsize=8)
    written.append(save(fig, outdir, "experiments-robust-vs-steps.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for a in names:
        rs = list(by_seed(acts, a).values())
        ax.scatter([metric(r, "clean") for r in rs], [metric(r, "pgd50") for r in rs], label=a)
    ax.set_xlabel("clean accuracy %")
    ax.set_ylabel("PGD-50 robust accuracy %")
    ax.set_title("Clean against robust accuracy, one point per seed")
    ax.legend(fontsize=8)
    written.append(save(fig, outdir, "experiments-clean-vs-robust.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, a in enumerate(names):
        for (act, seed), _ in sorted(acts.items()):
            if act != a:
                continue
            path = os.path.join(logdir, "activations", "all", f"train-{a}-seed{seed}.jsonl")
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
            ax.plot([r["epoch"] for r in rows], [100 * r["val_pgd_acc"] for r in rows],
                    color=f"C{i}", alpha=0.7, label=a if seed == min(s for b, s in acts if b == a) else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out PGD-10 accuracy %")
    ax.set_title("Held-out robust accuracy per epoch, one line per seed")
    ax.legend(fontsize=8)
    written.append(save(fig, outdir, "experiments-heldout-per-epoch.png"))
    return written


def save(fig, outdir, name):
    import matplotlib.pyplot as plt
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fill(doc, tables):
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    for name, body in tables.items():
        pattern = re.compile(r"(<!-- table:%s -->\n).*?(<!-- end table:%s -->)" % (name, name),
                             re.S)
        if not pattern.search(text):
            sys.exit(f"report.py: {doc} has no markers for the table '{name}'")
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    with open(doc, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("logdir", nargs="?", default=os.path.join(root, "build", "experiments"))
    ap.add_argument("--doc", default=os.path.join(root, "docs", "experiments.md"))
    ap.add_argument("--figures", default=os.path.join(root, "docs", "figures"))
    args = ap.parse_args()
    if not os.path.isdir(args.logdir):
        sys.exit(f"report.py: no log directory {args.logdir} (run examples/experiments/run.sh)")
    tables = build_tables(args.logdir)
    fill(args.doc, tables)
    for path in figures(args.logdir, args.figures):
        print("figure", path)
    print(f"tables written into {args.doc}")


if __name__ == "__main__":
    main()
