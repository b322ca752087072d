#!/usr/bin/python3
"""Runs sat_bench and torch_bench.py interleaved and prints the ratios libsat / PyTorch.

    /usr/bin/python3 tests/bench/compare.py [--bench build-perf/tests/bench/sat_bench]
        [--model all] [--act all] [--threads 1,2] [--batch 128] [--reps 5] [--repeats 3]
        [--metrics train,pgd1,pgdk,attack] [--no-ref] [--markdown FILE] [--jsonl FILE]
        [--kernel-path blis-zen3 [--no-direct] --torch-isa avx2] [--checkpointing]

For every configuration (model, activation, threads) and every repeat, one libsat process
and one PyTorch process run back to back (libsat first on even repeats, PyTorch first on
odd ones), so that load from other programs hits both alike. Each process reports medians
over --reps calls; the table shows the median over --repeats processes.

--kernel-path runs libsat on another CPU's kernels (SAT_KERNEL_PATH: e.g. blis-zen3 is what
an AVX2-only AMD CPU runs, with the AVX2 direct convolutions; --no-direct turns those off,
as before they existed) and --torch-isa caps PyTorch's
(ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA), so that both sides run AVX2 only on an
AVX-512 machine. The table names the CPU and the kernels; the JSON lines also hold every
layer's kernels (sat_bench's kernel_paths). --checkpointing runs libsat with activation
checkpointing (less memory, about one more forward per backward); PyTorch runs as it is.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def direct_name(v):
    """sat_bench's direct_conv: the kernels' level ("avx512", "avx2", "off"); true/false in older lines."""
    if isinstance(v, bool) or v is None:
        return "on" if v else "off"
    return v


def run(cmd, env=None):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["metric"]: r["value"] for r in rows}


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(ROOT, "build-perf", "tests", "bench", "sat_bench"))
    ap.add_argument("--model", default="all")
    ap.add_argument("--act", default="all")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--metrics", help="time only these of train,pgd1,pgdk,attack (both sides)")
    ap.add_argument("--no-ref", action="store_true", help="skip libsat's GEMM reference timings")
    ap.add_argument("--checkpointing", action="store_true",
                    help="libsat with activation checkpointing (PyTorch as it is)")
    ap.add_argument("--markdown", help="also write the table as Markdown here")
    ap.add_argument("--jsonl", help="append every raw measurement here")
    ap.add_argument("--kernel-path", help="libsat on this GEMM path, with the direct convolutions and "
                    "activation loops of its CPU kind (SAT_KERNEL_PATH, e.g. blis-zen3)")
    ap.add_argument("--no-direct", action="store_true", help="with --kernel-path: direct convolutions off")
    ap.add_argument("--torch-isa", choices=["avx2", "avx512"], help="cap PyTorch's vector instructions")
    ap.add_argument("--load", nargs="+", metavar="FILE",
                    help="run nothing: build the table from --jsonl files of earlier runs (later files win "
                         "for a configuration they contain)")
    a = ap.parse_args()

    models = ["madry-cnn", "resnet20"] if a.model == "all" else a.model.split(",")
    acts = ["relu", "silu"] if a.act == "all" else a.act.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    common = ["--batch", str(a.batch), "--reps", str(a.reps)] + (["--metrics", a.metrics] if a.metrics else [])
    sat_env = {"SAT_KERNEL_PATH": a.kernel_path} if a.kernel_path else {}
    if a.kernel_path and a.no_direct:
        sat_env["SAT_DIRECT_CONV"] = "0"
    torch_env = ({"ATEN_CPU_CAPABILITY": a.torch_isa, "ONEDNN_MAX_CPU_ISA": "AVX2" if a.torch_isa == "avx2"
                  else "AVX512_CORE"} if a.torch_isa else {})
    raw = {}
    log = open(a.jsonl, "a") if a.jsonl and not a.load else None
    if a.load:
        loaded = {}
        for path in a.load:
            per_file = {}
            for line in open(path):
                r = json.loads(line)
                key = (r["model"], r["act"], r["threads"])
                if r["model"] in models and r["act"] in acts and r["threads"] in threads:
                    per_file.setdefault(key, {"libsat": [], "torch": []})[r["impl"]].append(r["metrics"])
            for key, v in per_file.items():
                if v["libsat"] and v["torch"]:
                    loaded[key] = v
        for key in sorted(loaded, key=lambda k: (models.index(k[0]), acts.index(k[1]), k[2])):
            raw[key] = loaded[key]
    for model in (models if not a.load else []):
        for act in acts:
            for t in threads:
                key = (model, act, t)
                raw[key] = {"libsat": [], "torch": []}
                sat_cmd = ([a.bench, "--single", "--model", model, "--act", act, "--threads", str(t)] + common +
                           (["--no-ref"] if a.no_ref else []) + (["--checkpointing"] if a.checkpointing else []))
                torch_cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), "--model", model,
                             "--act", act, "--threads", str(t)] + common
                for r in range(a.repeats):
                    order = [("libsat", sat_cmd, sat_env), ("torch", torch_cmd, torch_env)]
                    if r % 2:
                        order.reverse()
                    for impl, cmd, env in order:
                        res = run(cmd, env)
                        raw[key][impl].append(res)
                        if log:
                            log.write(json.dumps({"impl": impl, "model": model, "act": act, "threads": t,
                                                  "batch": a.batch, "repeat": r, "env": env,
                                                  "metrics": res}) + "\n")
                            log.flush()
                        print(f"# {impl:6s} {model} {act} {t}t repeat {r}: pgdk {res['pgdk_ms']:.1f} ms",
                              file=sys.stderr, flush=True)

    def med(key, impl, metric):
        vals = [r[metric] for r in raw[key][impl] if metric in r]
        return statistics.median(vals) if vals else float("nan")

    head = ("| model | act | thr | train ms sat / torch | PGD-1 ms sat / torch | PGD-k ms sat / torch | "
            "PGD-k ratio | attack img/s sat / torch | RSS MB sat / torch | SiLU/ReLU PGD-k (sat) | "
            "2t speed-up PGD-k (sat) | RSS ratio | step % of FMA peak sat / torch | step GF/s | "
            "BLIS GF/s (shapes) | libsat GEMM GF/s (shapes) | eff |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (model, act, t) in raw:
        key = (model, act, t)
        g = lambda impl, m: med(key, impl, m)
        ratio = g("libsat", "pgdk_ms") / g("torch", "pgdk_ms")
        relu_key = (model, "relu", t)
        silu_rel = (g("libsat", "pgdk_ms") / med(relu_key, "libsat", "pgdk_ms")) if relu_key in raw else float("nan")
        one_key = (model, act, 1)
        speedup = (med(one_key, "libsat", "pgdk_ms") / g("libsat", "pgdk_ms")) if one_key in raw else float("nan")
        gf = g("libsat", "pgdk_gflops")
        flops = gf * g("libsat", "pgdk_ms")
        blis_gf = flops / g("libsat", "blis_pgdk_ms")
        sat_gf = flops / g("libsat", "satgemm_pgdk_ms")
        rss_ratio = g("libsat", "peak_rss_mb") / g("torch", "peak_rss_mb")
        peak_pct = g("libsat", "pgdk_peak_pct")
        torch_pct = peak_pct * g("libsat", "pgdk_ms") / g("torch", "pgdk_ms")  # same FLOPs, its own time
        k = g("libsat", "pgdk_steps")
        k = int(k) if k == k else 0  # NaN: the PGD-k step was not timed
        lines.append(
            f"| {model} | {act} | {t} | {g('libsat','train_ms'):.1f} / {g('torch','train_ms'):.1f} | "
            f"{g('libsat','pgd1_ms'):.1f} / {g('torch','pgd1_ms'):.1f} | "
            f"{g('libsat','pgdk_ms'):.1f} / {g('torch','pgdk_ms'):.1f} (k={k}) | **{ratio:.2f}** | "
            f"{g('libsat','attack_img_s'):.0f} / {g('torch','attack_img_s'):.0f} | "
            f"{g('libsat','peak_rss_mb'):.0f} / {g('torch','peak_rss_mb'):.0f} | {silu_rel:.2f} | {speedup:.2f} | "
            f"{rss_ratio:.2f} | {peak_pct:.0f}% / {torch_pct:.0f}% | {gf:.1f} | {blis_gf:.1f} | {sat_gf:.1f} | {100 * gf / sat_gf:.0f}% |")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n_rep = statistics.median([len(v["libsat"]) for v in raw.values()]) if raw else 0
    title = (f"libsat / PyTorch {stamp}, {cpu_model()}, batch {a.batch}, medians of {n_rep:g} interleaved "
             f"processes per implementation x {a.reps} steps each")
    text = title + "\n\n" + "\n".join(lines) + "\n"
    # What ran: the CPU, BLIS's configuration and libsat's kernels, and the FMA peaks.
    for t in threads:
        paths = [r["kernel_paths"] for key in raw if key[2] == t for r in raw[key]["libsat"] if "kernel_paths" in r]
        peaks = [(r.get("fma512_peak_gflops"), r.get("fma256_peak_gflops"))
                 for key in raw if key[2] == t for r in raw[key]["libsat"]]
        if paths:
            p = paths[0]
            text += (f"\n{t} thread(s): CPU {p['cpu']}; BLIS picks {p['blis_arch']}; libsat GEMMs on {p.get('gemm')}, "
                     f"direct convolutions {direct_name(p.get('direct_conv'))}, activation loops "
                     f"{p.get('activation_loops')}")
        peaks = [x for x in peaks if x[0] is not None]
        if peaks:
            text += (f"; measured FMA peak {statistics.median(x[0] for x in peaks):.0f} GFLOP/s (512-bit), "
                     f"{statistics.median(x[1] for x in peaks):.0f} (256-bit)\n")
    if sat_env or torch_env:
        text += f"\nenvironment: libsat {sat_env or 'default'}, PyTorch {torch_env or 'default'}\n"
    print(text)
    # Square reference GFLOP/s (1024^3) per thread count: stock BLIS and libsat's GEMM.
    for t in threads:
        for metric, label in (("blis_1024_gflops", "stock bli_sgemm"), ("satgemm_1024_gflops", "libsat GEMM")):
            vals = [r.get(metric) for key in raw if key[2] == t for r in raw[key]["libsat"]]
            vals = [v for v in vals if v is not None]
            if vals:
                line = f"{label} 1024^3, {t} thread(s): {statistics.median(vals):.1f} GFLOP/s"
                print(line)
                text += "\n" + line + "\n"
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    if log:
        log.close()


if __name__ == "__main__":
    main()
