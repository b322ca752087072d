#!/usr/bin/env python3
"""check_compare.py - checks of `sat-cli compare` and of the backward-derivative options on
the tiny data set, each recomputing or comparing what sat-cli wrote (standard library only).

  check_compare.py stats DIR               the printed tables against a hand computation
                                           from the raw numbers in DIR/compare.csv
  check_compare.py jobs SATCLI DIR ARGS..  --jobs 3 gives the numbers and model files of --jobs 1
  check_compare.py resume SATCLI DIR ARGS.. a compare killed mid-way, and one with a damaged
                                           result file, resume to the uninterrupted numbers
  check_compare.py ablation SATCLI DIR ARGS..  each backward override changes training
  check_compare.py unwritable SATCLI DIR ARGS..  a result file that cannot be written fails
                                           the compare with a message and leaves no
                                           temporary file
  check_compare.py experiments SATCLI TINYDATA DIR ROOT  examples/experiments/run.sh on the
                                           tiny set, then report.py: every table filled, and
                                           its paired interval equal to sat-cli's own
"""
import csv
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

# Two-sided 95% quantiles of Student's t, from a statistics table.
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764}


def fail(msg):
    sys.exit("FAIL: " + msg)


def read_csv(d):
    with open(os.path.join(d, "compare.csv")) as f:
        return list(csv.DictReader(f))


def acc_columns(rows):
    return ["clean_acc"] + [k for k in rows[0] if k.startswith("pgd")] + \
        (["apgd_acc"] if rows[0]["apgd_acc"] else [])


def table_cells(md, first):
    """The cells of the Markdown row whose first cell is `first`."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first:
            return cells
    fail(f"no row '{first}' in compare.md:\n{md}")


def parse_pm(cell):
    mean, sd = cell.split("+-")
    return float(mean), float(sd)


def parse_ci(cell):
    mean, rest = cell.split("[")
    lo, hi = rest.rstrip("]").split(",")
    return float(mean), float(lo), float(hi)


def close(a, b, what):
    if abs(a - b) > 0.0051:  # the table has two decimals
        fail(f"{what}: table says {a}, recomputed {b}")


def cmd_stats(d):
    rows = read_csv(d)
    with open(os.path.join(d, "compare.jsonl")) as f:
        lines = [json.loads(l) for l in f]
    if len(lines) != len(rows):
        fail("compare.jsonl and compare.csv hold different numbers of runs")
    for r, j in zip(rows, lines):
        if (r["activation"], int(r["seed"])) != (j["activation"], j["seed"]) or \
                float(r["clean_acc"]) != j["clean_acc"] or \
                [float(r[k]) for k in acc_columns(rows)[1:1 + len(j["pgd_acc"])]] != j["pgd_acc"]:
            fail(f"compare.jsonl and compare.csv disagree on {r['activation']} seed {r['seed']}")
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    seeds = list(dict.fromkeys(int(r["seed"]) for r in rows))
    n = len(seeds)
    val = {(r["activation"], int(r["seed"]), k): 100 * float(r[k])
           for r in rows for k in acc_columns(rows)}
    with open(os.path.join(d, "compare.md")) as f:
        md = f.read()
    if f"{n - 1} degrees of freedom" not in md or "Student t" not in md:
        fail("the interval is not described as Student t with n-1 degrees of freedom")
    spread = 0
    for a in acts:
        cells = table_cells(md, a)
        if int(cells[1]) != n:
            fail(f"{a}: {cells[1]} seeds in the table, {n} in the log")
        for c, k in enumerate(acc_columns(rows)):
            x = [val[(a, s, k)] for s in seeds]
            mean = sum(x) / n
            sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
            spread = max(spread, sd)
            m_t, sd_t = parse_pm(cells[2 + c])
            close(m_t, mean, f"{a} {k} mean")
            close(sd_t, sd, f"{a} {k} standard deviation")
    for a in acts[1:]:
        cells = table_cells(md, f"{a} - {acts[0]}")
        for c, k in enumerate(acc_columns(rows)):
            diff = [val[(a, s, k)] - val[(acts[0], s, k)] for s in seeds]
            mean = sum(diff) / n
            sd = math.sqrt(sum((v - mean) ** 2 for v in diff) / (n - 1))
            half = T975[n - 1] * sd / math.sqrt(n)
            m_t, lo_t, hi_t = parse_ci(cells[1 + c])
            close(m_t, mean, f"{a}-{acts[0]} {k} mean difference")
            close(lo_t, mean - half, f"{a}-{acts[0]} {k} interval low")
            close(hi_t, mean + half, f"{a}-{acts[0]} {k} interval high")
            spread = max(spread, half)
    if spread == 0:
        fail("every run gave the same numbers: the check would not catch a wrong formula")
    print(f"tables agree with the raw numbers: {len(acts)} activations x {n} seeds")


def run(satcli, args, **kw):
    p = subprocess.run([satcli] + args, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        fail(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout


def numbers(d):
    """The accuracies of every run (timings left out)."""
    return {(r["activation"], r["seed"]): [r[k] for k in acc_columns(read_csv(d))] +
            [r["epochs"], r["best_epoch"], r["flags"]] for r in read_csv(d)}


def same_runs(d1, d2):
    a, b = numbers(d1), numbers(d2)
    if a != b:
        fail(f"different numbers:\n{a}\n{b}")
    for f in sorted(os.listdir(d1)):
        if f.startswith("model-"):
            with open(os.path.join(d1, f), "rb") as x, open(os.path.join(d2, f), "rb") as y:
                if x.read() != y.read():
                    fail(f"{f} differs between {d1} and {d2}")
    return len(a)


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.dirname(d) or ".", exist_ok=True)
    return d


def cmd_jobs(satcli, d, args):
    one, three = fresh(d + "/jobs1"), fresh(d + "/jobs3")
    run(satcli, ["compare"] + args + ["--jobs", "1", "--log-dir", one])
    run(satcli, ["compare"] + args + ["--jobs", "3", "--log-dir", three])
    n = same_runs(one, three)
    print(f"--jobs 3 gave the numbers and model files of --jobs 1 for {n} runs")


def finished_runs(d):
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f.startswith("run-") and f.endswith(".json"))


def kill_when(satcli, args, d, ready):
    """Starts compare into d and kills it (parent and children) once ready() is true."""
    p = subprocess.Popen([satcli, "compare"] + args + ["--log-dir", d],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    while p.poll() is None and not (os.path.isdir(d) and ready()):
        time.sleep(0.002)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def checkpoints(d):
    return [f for f in os.listdir(d) if f.startswith("checkpoint-") and f.endswith(".ckpt")]


LONG_EPOCH = 1000.0


def lengthen_logged_epochs(d):
    """Rewrites the epoch logs of the interrupted runs as if every epoch so far had taken
    LONG_EPOCH seconds (tiny epochs take milliseconds, too little to see). Returns
    {log name: epochs logged}."""
    logged = {}
    for path in glob.glob(os.path.join(d, "train-*.jsonl")):
        with open(path) as f:
            lines = [line for line in f if line.strip()]
        if lines:
            with open(path, "w") as f:
                f.writelines(re.sub(r'"seconds": [0-9.e+-]+', f'"seconds": {LONG_EPOCH}', line)
                             for line in lines)
            logged[os.path.basename(path)] = len(lines)
    return logged


def whole_training_time(d, logged):
    """A resumed run's train_seconds include the epochs logged before the interruption."""
    for name, epochs in logged.items():
        with open(os.path.join(d, "run-" + name[len("train-"):-len(".jsonl")] + ".json")) as f:
            r = json.load(f)
        if r["train_seconds"] < epochs * LONG_EPOCH:
            fail(f"{name}: train_seconds {r['train_seconds']} leaves out the {epochs} epoch(s) "
                 f"logged before the interruption ({epochs * LONG_EPOCH:.0f} s)")


def cmd_resume(satcli, d, args):
    ref, cut = fresh(d + "/reference"), fresh(d + "/killed")
    run(satcli, ["compare"] + args + ["--log-dir", ref])
    total = len(numbers(ref))

    # Killed within the first run, after an epoch: that run continues from its checkpoint.
    mid = fresh(d + "/killed-mid-run")
    kill_when(satcli, args, mid, lambda: checkpoints(mid))
    if finished_runs(mid) or not checkpoints(mid):
        fail("the kill did not come between the first epoch and the end of the first run")
    logged = lengthen_logged_epochs(mid)
    if not logged:
        fail("the interrupted run logged no epoch")
    out = run(satcli, ["compare"] + args + ["--log-dir", mid])
    if "resuming from" not in out or "finished before" in out:
        fail(f"the first run did not continue from its checkpoint:\n{out}")
    same_runs(ref, mid)
    if checkpoints(mid):
        fail("checkpoints of finished runs were left behind")
    whole_training_time(mid, logged)
    # Killed as soon as the first run has finished: finished runs are read back.
    kill_when(satcli, args, cut, lambda: finished_runs(cut))
    finished = finished_runs(cut)
    if not finished or len(finished) == total:
        fail(f"the kill came too early or too late: {len(finished)} of {total} runs finished")
    out = run(satcli, ["compare"] + args + ["--log-dir", cut])
    for f in finished:
        if f"[{f[4:-5]}] finished before" not in out:
            fail(f"{f} was not read back:\n{out}")
    if out.count("finished before") != len(finished):
        fail(f"more runs read back than had finished:\n{out}")
    same_runs(ref, cut)
    # A damaged result file (cut in half, as by a full disk) is not trusted: that run is redone.
    path = os.path.join(cut, finished[0])
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[:len(text) // 2])
    out = run(satcli, ["compare"] + args + ["--log-dir", cut])
    if f"[{finished[0][4:-5]}] finished before" in out or \
            out.count("finished before") != total - 1:
        fail(f"the damaged {finished[0]} was reused, or others were recomputed:\n{out}")
    same_runs(ref, cut)
    print(f"killed after {len(finished)} of {total} runs; resumed to the same numbers")


def cmd_unwritable(satcli, d, args):
    done = fresh(d + "/done")
    run(satcli, ["compare"] + args + ["--log-dir", done])
    names = finished_runs(done)
    if not names:
        fail("the compare wrote no result files")
    blocked = fresh(d + "/blocked")
    os.makedirs(blocked)
    for n in names:  # a directory where each result file goes: renaming onto it fails
        os.makedirs(os.path.join(blocked, n))
    p = subprocess.run([satcli, "compare"] + args + ["--log-dir", blocked], capture_output=True, text=True)
    if p.returncode == 0:
        fail("compare succeeded though no result file could be written")
    if "cannot write" not in p.stderr:
        fail("no clear message:\n" + p.stderr)
    left = [f for f in os.listdir(blocked) if f.endswith(".tmp")]
    if left:
        fail(f"temporary files left behind: {left}")
    print(f"compare failed with exit {p.returncode} and left no temporary file")


def losses(path):
    with open(path) as f:
        return [json.loads(l)["train_loss"] for l in f]


def cmd_ablation(satcli, d, args):
    os.makedirs(fresh(d))
    variants = {"none": [], "repeat": [],
                "attacker": ["--attack-backward", "softplus:10"],
                "optimizer": ["--train-backward", "softplus:10"],
                "both": ["--attack-backward", "psoftplus:10", "--train-backward", "psoftplus"]}
    got = {}
    for name, extra in variants.items():
        log = os.path.join(d, name + ".jsonl")
        run(satcli, ["train"] + args + extra + ["--act", "relu", "--log", log,
                                                  "--out", os.path.join(d, name + ".sat")])
        got[name] = losses(log)
    if got["none"] != got["repeat"]:
        fail(f"the same command gave different losses: {got['none']} {got['repeat']}")
    names = ["none", "attacker", "optimizer", "both"]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if got[a] == got[b]:
                fail(f"backward override '{a}' and '{b}' trained alike: {got[a]}")
    print("training losses:", {k: got[k] for k in names})


def cmd_experiments(satcli, tiny, d, root):
    fresh(d)
    env = dict(os.environ, OUT=os.path.join(d, "logs"), SEEDS="0,1,2", JOBS="2", TINY=tiny,
               SATCLI=satcli)
    p = subprocess.run(["bash", os.path.join(root, "examples/experiments/run.sh")], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"run.sh exited {p.returncode}:\n{p.stdout}{p.stderr}")
    doc = os.path.join(d, "experiments.md")
    shutil.copy(os.path.join(root, "docs/experiments.md"), doc)
    p = subprocess.run([sys.executable, os.path.join(root, "examples/experiments/report.py"),
                        env["OUT"], "--doc", doc, "--figures", os.path.join(d, "figures")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"report.py exited {p.returncode}:\n{p.stdout}{p.stderr}")
    with open(doc) as f:
        text = f.read()
    if "No runs in the logs yet" in text:
        fail("a table of experiments.md was left without runs")
    for name in ("robust-vs-steps", "clean-vs-robust", "heldout-per-epoch"):
        if not os.path.getsize(os.path.join(d, "figures", f"experiments-{name}.png")):
            fail(f"figure {name} is empty")
    acts = text.split("<!-- table:activations -->")[1].split("<!-- end table:activations -->")[0]
    rows = [table_cells(acts, a) for a in ("relu", "softplus", "psoftplus (a=10)", "silu", "gelu",
                                           "elu", "celu", "smoothrelu")]
    if any(r[1] != "3" for r in rows):
        fail("the activation table does not have 3 seeds per row")
    # The report's paired interval against sat-cli's own (computed in C from the same runs):
    # report columns clean, PGD-10 (the tiny recipe's first step count), PGD-50 (its last), APGD.
    with open(os.path.join(env["OUT"], "activations/all/compare.md")) as f:
        own = table_cells(f.read(), "silu - relu")[1:]
    mine = table_cells(acts, "silu - relu")[1:]
    spread = 0
    for m, o, what in zip(mine, own, ("clean", "first PGD", "last PGD", "APGD")):
        for a, b in zip(parse_ci(m), parse_ci(o)):
            close(a, b, f"silu - relu {what}")
        spread = max(spread, abs(parse_ci(o)[2] - parse_ci(o)[1]))
    if spread == 0:
        fail("every seed gave the same numbers: the check would not catch a wrong interval")
    ablation = text.split("<!-- table:ablation -->")[1]
    methods = text.split("<!-- table:methods -->")[1]
    if table_cells(ablation, "relu")[2:] != table_cells(methods, "PGD-AT relu")[2:]:
        fail("the ablation's ReLU row is not the methods table's PGD-AT ReLU runs")
    print("experiments: every table filled; the paired intervals agree with sat-cli's")


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "stats":
        cmd_stats(rest[0])
    elif cmd == "experiments":
        cmd_experiments(*rest)
    elif cmd in ("jobs", "resume", "ablation", "unwritable"):
        {"jobs": cmd_jobs, "resume": cmd_resume, "ablation": cmd_ablation,
         "unwritable": cmd_unwritable}[cmd](rest[0], rest[1], rest[2:])
    else:
        fail("unknown check " + cmd)
