#!/usr/bin/python3
"""One PGD-1 training step of every preset, libsat and PyTorch side by side.

    /usr/bin/python3 tests/bench/presets_vs_torch.py [--bench build/tests/bench/preset_memory]
        [--batch 32] [--threads 1] [--only preact-resnet18,resnet50@224]

For each preset (at its usual input, the ImageNet networks also at 64x64) it runs
preset_memory and tests/bench/torch_bench.py one after the other, each in its own process
so that each process's peak resident size is its own, and prints one JSON line per side,
then a markdown table: parameters, the timed step of each side (libsat: the second step;
PyTorch: the step after one warm-up), their ratio and both peak RSS. The same work on
both sides: Linf PGD-1 from a random start with batch norm in inference mode during the
attack (preset_memory's radius and step are 4/255, torch_bench's 8/255 and 2/255; the
passes are the same), then SGD with momentum on the adversarial batch; 10 classes, ReLU
(SiLU for efficientnet-b0, its default).

Times are about the CPU they ran on and only mean something on an otherwise idle machine;
the script prints the CPU model and libsat's kernel path with them.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# (preset, input size): the CIFAR networks at 32x32, the ImageNet ones at 64x64 and 224x224
CASES = [("preact-resnet18", 32), ("wrn-16-4", 32), ("wrn-28-10", 32), ("wrn-34-10", 32),
         ("resnet50", 64), ("resnext50-32x4d", 64), ("efficientnet-b0", 64),
         ("efficientnet-b0", 224), ("resnet50", 224)]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("presets_vs_torch: %s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr))
    return p


def libsat_side(a, model, size, act):
    p = run([a.bench, "--model", model, "--size", str(size), "--classes", "10",
             "--batch", str(a.batch), "--steps", "1", "--act", act, "--threads", str(a.threads)])
    lines = json_lines(p.stdout)
    steps = [l["value"] for l in lines if l.get("metric") == "step_s"]
    summary = [l for l in lines if "peak_rss_mib" in l][-1]
    kernels = [l for l in p.stderr.splitlines() if "GEMMs on" in l]
    path = kernels[0].split("GEMMs on", 1)[1].split(";")[0].strip() if kernels else "?"
    return {"impl": "libsat", "params": summary["params"], "step_s": steps[-1],
            "peak_rss_mib": summary["peak_rss_mib"], "planned_arena_mib": summary["planned_arena_mib"],
            "kernel_path": path}


def torch_side(a, model, size, act):
    p = run(["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), "--model", model,
             "--size", str(size), "--act", act, "--threads", str(a.threads), "--batch", str(a.batch),
             "--reps", "1", "--metrics", "pgd1"])
    lines = {l["metric"]: l["value"] for l in json_lines(p.stdout)}
    return {"impl": "torch", "step_s": lines["pgd1_ms"] / 1e3, "peak_rss_mib": lines["peak_rss_mb"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "tests", "bench", "preset_memory"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated PRESET@SIZE (default: all)")
    a = ap.parse_args()
    cases = CASES
    if a.only:
        wanted = set(a.only.split(","))
        cases = [c for c in CASES if "%s@%d" % c in wanted]
        if not cases:
            ap.error("--only matches none of " + ", ".join("%s@%d" % c for c in CASES))

    print("# CPU: %s; %d thread(s), batch %d, PGD-1 step" % (cpu_model(), a.threads, a.batch), flush=True)
    rows = []
    for model, size in cases:
        act = "silu" if model == "efficientnet-b0" else "relu"
        lib = libsat_side(a, model, size, act)
        ref = torch_side(a, model, size, act)
        for side in (lib, ref):
            print(json.dumps(dict(side, model=model, size=size, act=act, batch=a.batch,
                                  threads=a.threads)), flush=True)
        rows.append((model, size, act, lib, ref))

    print("\n| preset | input | act | parameters | libsat step s | PyTorch step s | libsat / PyTorch "
          "| peak RSS MiB libsat / PyTorch | planned arena MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, size, act, lib, ref in rows:
        print("| %s | 3x%dx%d | %s | %s | %.2f | %.2f | **%.2f** | %.0f / %.0f | %.0f |" % (
            model, size, size, act, format(lib["params"], ","), lib["step_s"], ref["step_s"],
            lib["step_s"] / ref["step_s"], lib["peak_rss_mib"], ref["peak_rss_mib"],
            lib["planned_arena_mib"]))
    print("\nlibsat kernel path: %s" % rows[0][3]["kernel_path"] if rows else "")


if __name__ == "__main__":
    main()
