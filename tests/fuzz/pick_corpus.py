#!/usr/bin/env python3
"""pick_corpus.py - picks a few inputs of a grown libFuzzer corpus for the committed one.

libFuzzer's -merge=1 keeps every input with a feature the others lack: hundreds of files
after an hour, each costing CI its mutations in fuzz_replay_<target>. This reads the
merge's control file and greedily takes the inputs that add the most coverage edges (then
features) beyond the committed corpus, up to COUNT, and copies them to DIR as
grown-<sha1 prefix>. docs/testing.md ("The long run") shows the merge command.

    pick_corpus.py CONTROL_FILE DIR [COUNT]
"""
import hashlib
import os
import shutil
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    control, out_dir = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) == 4 else 25
    lines = open(control).read().split("\n")
    n, n_committed = int(lines[0]), int(lines[1])
    files = lines[2:2 + n]
    features, edges = {}, {}
    for line in lines[2 + n:]:
        f = line.split()
        if f and f[0] in ("FT", "COV"):
            (features if f[0] == "FT" else edges)[int(f[1])] = set(map(int, f[2:]))
    have_e, have_f = set(), set()
    for i in range(n_committed):  # the committed corpus comes first in the merge
        have_e |= edges.get(i, set())
        have_f |= features.get(i, set())
    candidates = [i for i in range(n_committed, n) if i in features]

    def gain(i):
        return (len(edges.get(i, set()) - have_e), len(features[i] - have_f), -os.path.getsize(files[i]))

    chosen = []
    while candidates and len(chosen) < count:
        best = max(candidates, key=gain)
        new_e, new_f, _ = gain(best)
        if new_e == 0 and new_f < 5:  # the rest adds little: stop early
            break
        candidates.remove(best)
        chosen.append(best)
        have_e |= edges.get(best, set())
        have_f |= features[best]
        data = open(files[best], "rb").read()
        shutil.copy(files[best], os.path.join(out_dir, "grown-" + hashlib.sha1(data).hexdigest()[:10]))
        print(f"{files[best]}: {len(data)} bytes, +{new_e} edges, +{new_f} features")
    all_e = set().union(*edges.values()) if edges else set()
    all_f = set().union(*features.values()) if features else set()
    print(f"{len(chosen)} inputs picked: {len(have_e)} of {len(all_e)} edges, {len(have_f)} of {len(all_f)} features")


if __name__ == "__main__":
    main()
