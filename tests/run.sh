#!/usr/bin/env bash
# tests/run.sh - the whole test suite, as CI runs it:
#   installs missing packages (cmake/install-deps.sh), configures a Release build in
#   build/ (or $SAT_BUILD_DIR), builds with -j2 and runs every ctest test, one at a time.
# Exits with ctest's status; a test that did not run (disabled, skipped, missing fixture)
# is a failure too.
#
#   bash tests/run.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${SAT_BUILD_DIR:-build}
jobs=2
start=$(date +%s)

bash cmake/install-deps.sh
# A Rust toolchain installed with rustup lives in ~/.cargo/bin.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
  export PATH=${HOME:-/root}/.cargo/bin:$PATH
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$jobs"

log=$build/ctest-output.log
set +e
# One test at a time: several tests run BLIS with 2 threads, whose threads spin-wait for
# each other, and two such tests sharing 2 cores slow each other down many times over.
ctest --test-dir "$build" --output-on-failure -j1 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# ctest exits 0 when tests are skipped or disabled; this suite must run them all.
notrun_re='^ *[0-9]+/[0-9]+ +Test +#[0-9]+: .*\*\*\*(Not Run|Skipped)|^The following tests did not run:'
if grep -E -q "$notrun_re" "$log"; then
  echo "tests/run.sh: some tests did not run (a skipped test is a failure here):" >&2
  grep -E "$notrun_re" "$log" >&2
  [[ $status -ne 0 ]] || status=1
fi
if ! grep -E -q '^[0-9]+% tests passed, [0-9]+ tests? failed out of [1-9]' "$log"; then
  echo "tests/run.sh: ctest ran no test" >&2
  [[ $status -ne 0 ]] || status=1
fi
echo "tests/run.sh: ctest status $status, $(( $(date +%s) - start )) s in total"
exit "$status"
