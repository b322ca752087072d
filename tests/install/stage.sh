#!/usr/bin/env bash
# Stages an install of the build tree into <build>/stage (fixture `staged_install`).
# usage: stage.sh <cmake> <build-dir>
set -euo pipefail
cmake_bin=$1 build=$2
stage=$build/stage
rm -rf "$stage"
"$cmake_bin" --install "$build" --prefix "$stage"
# The tree must be complete: later tests (consumers, Python, Rust) rely on it.
for f in include/sat.h; do
  [[ -f $stage/$f ]] || { echo "stage: missing $f" >&2; exit 1; }
done
