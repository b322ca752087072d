#!/usr/bin/env bash
# tests/long-run.sh - the long run of docs/testing.md, by hand (not part of CI):
#   1. every libFuzzer target for a given time (a clang build of its own),
#   2. the kill -9 test with many kills,
#   3. the unit tests under valgrind, forced onto the portable kernel paths.
# Everything runs under the idle scheduler (chrt --idle 0, nice 19), so it takes only CPU
# time nothing else wants: on a shared machine the wall time is much longer than the CPU
# time, which is what the summary reports.
#
#   bash tests/long-run.sh [--fuzz-seconds N] [--fuzz-parallel P] [--kills N]
#                          [--valgrind-tests "test_io_roundtrip test_dataset ..."]
#                          [--only fuzz|kill|valgrind] [--work DIR]
#
# Defaults: 3600 s of wall time per fuzz target, one target at a time; 1000 kills; the
# valgrind tests listed below, in order of value. Build directories: build/ (Release,
# as CI) and build-fuzz/ (clang, ASan + UBSan, libFuzzer), or $SAT_BUILD_DIR and
# $SAT_FUZZ_BUILD_DIR. Results go to DIR (default long-run/): a log per step and
# summary.txt. Exits non-zero when any step found something.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${SAT_BUILD_DIR:-build}
fuzz_build=${SAT_FUZZ_BUILD_DIR:-build-fuzz}
fuzz_seconds=3600
fuzz_parallel=1
kills=1000
only=""
work=long-run
# Every unit test program, those that check memory handling most first (docs/testing.md,
# "Valgrind"); test_kernel_choice runs before them, and test_activations is left out (its
# long double reference is computed in 64 bits under valgrind).
valgrind_tests="test_io_roundtrip test_io_damaged test_io_save_failure test_checkpoint test_optim_checkpoint
  test_dataset test_alloc_fail test_hostile_args test_null_args test_regress_fuzz test_destroy_children
  test_exec test_train test_attack test_eval test_model_api
  test_io_kill test_onnx_import test_onnx_export test_onnx_roundtrip test_callback_model test_concurrency
  test_exec_threads test_pool test_sync_bn test_grad_ready test_progress test_layer_info test_constants
  test_optim test_optim_control test_model_init test_train_split test_train_robust test_attack_loss
  test_attack_opts test_attack_apgd test_attack_fab test_attack_square test_autoattack test_kernels_grad
  test_gemm test_model_grad test_presets"
while [[ $# -gt 0 ]]; do
  case $1 in
    --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
    --fuzz-parallel) fuzz_parallel=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --valgrind-tests) valgrind_tests=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) sed -n '2,19p' "$0" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
work=$(cd "$work" && pwd)
summary=$work/summary.txt
idle=(chrt --idle 0 nice -n 19)
status=0
note() { echo "$*" | tee -a "$summary"; }
note "long run $(date -u '+%Y-%m-%d %H:%M UTC') on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

# CPU seconds (user + system) from a /usr/bin/time -v report.
cpu_seconds() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.0f", s}' "$1"; }

run_fuzz() {
  local t=$1 dir=$work/fuzz/$t
  mkdir -p "$dir/corpus"
  cp -n tests/fuzz/corpus/"$t"/* "$dir/corpus/" # a scratch copy: libFuzzer adds to it
  set +e
  /usr/bin/time -v -o "$dir/time.txt" "${idle[@]}" "$fuzz_build/tests/fuzz/sat_fuzz_$t" "$dir/corpus" \
    -max_total_time="$fuzz_seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$dir/" -print_final_stats=1 > "$dir/log.txt" 2>&1
  local rc=$?
  set -e
  local execs cov
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$dir/log.txt")
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$dir/log.txt" | tail -n 1)
  local found="no findings"
  if [[ $rc -ne 0 ]]; then found="FINDING (exit $rc, see $dir/log.txt and $dir/crash-* / oom-* / timeout-*)"; fi
  note "fuzz $t: $(cpu_seconds "$dir/time.txt") CPU s, ${execs:-?} executions, ${cov:-cov ?}, $found"
  return "$rc"
}

if [[ -z $only || $only == fuzz ]]; then
  if [[ ! -d $fuzz_build ]]; then
    "${idle[@]}" cmake -S . -B "$fuzz_build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAT_SANITIZE=address,undefined \
      "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" \
      -DSAT_FUZZ_LIBFUZZER=ON -DSAT_BUILD_EXAMPLES=OFF -DSAT_BUILD_BENCH=OFF
  fi
  targets="model_load model_spec dataset checkpoint"
  "${idle[@]}" cmake --build "$fuzz_build" -j2 --target $(printf 'sat_fuzz_%s ' $targets)
  pids=()
  for t in $targets; do
    run_fuzz "$t" & pids+=($!)
    if [[ ${#pids[@]} -ge $fuzz_parallel ]]; then
      for p in "${pids[@]}"; do wait "$p" || status=1; done
      pids=()
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
fi

if [[ -z $only || $only == kill || $only == valgrind ]]; then
  "${idle[@]}" cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSAT_WERROR=ON > /dev/null
  "${idle[@]}" cmake --build "$build" -j2
fi

if [[ -z $only || $only == kill ]]; then
  start=$(date +%s)
  if "${idle[@]}" "$build/tests/test_io_kill" --kills "$kills" --seed 1 > "$work/kill.txt" 2>&1; then
    note "kill -9 test: $kills kills survived ($(( $(date +%s) - start )) s)"
  else
    note "kill -9 test: FAILED, see $work/kill.txt"; status=1
  fi
fi

if [[ -z $only || $only == valgrind ]]; then
  mkdir -p "$work/valgrind"
  # Leaks that count: definite and indirect. BLIS's process-wide memory pool stays
  # allocated at exit ("possibly lost"), as documented, and is not listed.
  vg=(valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect
      --errors-for-leak-kinds=definite,indirect)
  # The tests' deadlock watchdogs (tu_set_watchdog) count wall time: valgrind needs more.
  export SAT_TEST_WATCHDOG_SCALE=50
  # The portable paths: valgrind reports no AVX-512, so the library must not pick it.
  out=$work/valgrind/test_kernel_choice.txt
  if ! "${idle[@]}" "${vg[@]}" "$build/tests/test_kernel_choice" > "$out" 2>&1 ||
     ! grep -q 'AVX-512 reported: no' "$out"; then
    note "valgrind: the kernel choice under valgrind is not the portable one, see $out"; exit 1
  fi
  note "valgrind: $(grep -m1 'kernel choice:' "$out")"
  for t in $valgrind_tests; do
    out=$work/valgrind/$t.txt
    /usr/bin/time -v -o "$out.time" "${idle[@]}" "${vg[@]}" "$build/tests/$t" > "$out" 2>&1 && rc=0 || rc=$?
    errors=$(grep -c '^==[0-9]*== ' "$out" || true)
    result="0 errors, no leaks"
    if [[ $rc -ne 0 ]]; then result="FAILED (exit $rc, $errors valgrind lines, see $out)"; status=1; fi
    note "valgrind $t: $result, $(cpu_seconds "$out.time") CPU s"
  done
fi
exit "$status"
