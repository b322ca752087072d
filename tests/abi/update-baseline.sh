#!/usr/bin/env bash
# update-baseline.sh - regenerates tests/abi/symbols.txt and tests/abi/libsat.abi from a
# build of the current tree. For a release, or while the public header is still growing
# (0.x): after adding functions or appending fields to an options struct. Review the
# `git diff tests/abi` before committing: a removed line in symbols.txt, or a changed
# type in libsat.abi, is an ABI break and needs a new major version (docs/abi.md).
#
#   tests/abi/update-baseline.sh [build-dir]     (default: $SAT_BUILD_DIR or build)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-${SAT_BUILD_DIR:-build}}
[[ $build = /* ]] || build=$root/$build
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j2 --target sat sat_abi_probe
lib=$(ls "$build"/libsat.so.*.*.* | head -n1)
probe=$(ls "$build"/tests/abi/probe/libsat.so.*.*.* | head -n1)
args=(--lib "$lib" --probe "$probe" --headers "$root/include" --baseline "$here"
      --work "$build/tests/abi")
bash "$here/check-abi.sh" "${args[@]}" --update
bash "$here/check-abi.sh" "${args[@]}"
echo "Now review and commit: git diff --stat -- tests/abi"
