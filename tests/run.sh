#!/usr/bin/env bash
# tests/run.sh - the whole test suite, as CI runs it:
#   installs missing packages (cmake/install-deps.sh), configures a Release build in
#   build/ (or $SAT_BUILD_DIR) with warnings as errors, builds with -j2, runs every ctest
#   test one at a time, and lists the kernel paths the tests covered on this CPU.
# Exits with ctest's status; a test that did not run (disabled, skipped, missing fixture)
# is a failure too, and so is a test group left out because a tool is missing.
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

# -Werror: a warning fails CI (the option is off for users, whose compilers may warn more).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSAT_WERROR=ON
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
# Which kernel paths the bit-identity and gradient tests covered on this CPU
# (tests/kernel_paths.h): every BLIS configuration it can execute, the library's own
# micro-kernel, the direct convolutions.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "tests/run.sh: kernel paths tested on this CPU (${cpu:-unknown}):"
covered=$(grep -h '^kernel paths covered by' "$build/Testing/Temporary/LastTest.log" 2>/dev/null || true)
if [[ -z $covered ]]; then
  echo "tests/run.sh: no test reported the kernel paths it covered" >&2
  [[ $status -ne 0 ]] || status=1
else
  sed 's/^kernel paths covered by /  /' <<<"$covered"
fi
echo "tests/run.sh: ctest status $status, $(( $(date +%s) - start )) s in total"
exit "$status"
