#!/usr/bin/env bash
# interrupt.sh SAT_CLI DATA_DIR WORK_DIR - `sat-cli train` stopped by a signal, then resumed,
# ends with the same files, byte for byte, as a run that was never interrupted.
#
#   1. A reference run of 3 epochs, never interrupted.
#   2. SIGINT once the first epoch is done (its line in the output: the checkpoint is
#      written): the program finishes the step it is in, writes the checkpoint, says so
#      and exits with 5; the same command with --resume finishes the run.
#   3. SIGTERM, and SIGINT as soon as the program says it is stopping: it either finishes
#      the shutdown (exit code 5) or dies of the second signal at once (130), possibly in
#      the middle of writing the checkpoint; either way the files on disk are whole and
#      --resume finishes the run.
# The model file and the final checkpoint of 2 and 3 must equal those of 1. The run has no
# validation split, so the model file is the model after the last step.
set -euo pipefail
cli=$1 data=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# Job control: background jobs of a script would otherwise ignore SIGINT.
set -m
# 40 steps per epoch of a few milliseconds each: the signal nearly always comes mid-epoch.
# A small learning rate keeps the loss above 0 (the tiny set is easy), so every step
# changes the weights.
train=("$cli" train --data "$data" --model small-cnn --eps 0.3 --steps 20 --epochs 3 --batch 10
       --val 0 --threads 1 --lr 0.002)

fail() { echo "FAIL: $*" >&2; exit 1; }

"${train[@]}" --out ref.sat --checkpoint ref.ckpt > ref.log 2>&1 || { cat ref.log; fail "reference run"; }

# Starts run $1 in the background, waits until its first epoch is done, sends the signal
# $2 and, once the program says it is stopping, the signal $3 if given; leaves the exit
# code in $rc.
interrupt() {
  local name=$1
  shift
  "${train[@]}" --out "$name.sat" --checkpoint "$name.ckpt" > "$name.log" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 3000; i++)); do
    grep -q '^epoch 1/3' "$name.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  grep -q '^epoch 1/3' "$name.log" || { cat "$name.log"; fail "$name: no epoch line"; }
  kill -s "$1" "$pid"
  if [[ $# -gt 1 ]]; then
    for ((i = 0; i < 3000; i++)); do
      grep -q 'stopping after the current step' "$name.log" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.001
    done
    kill -s "$2" "$pid" 2>/dev/null || true
  fi
  set +e
  wait "$pid"
  rc=$?
  set -e
  echo "--- $name: signals $*, exit code $rc"
  cat "$name.log"
}

# Resumes run $1 and compares its files with the reference.
resume_and_compare() {
  local name=$1
  "${train[@]}" --out "$name.sat" --checkpoint "$name.ckpt" --resume > "$name-resume.log" 2>&1 ||
    { cat "$name-resume.log"; fail "$name: resume"; }
  cat "$name-resume.log"
  grep -q 'resuming from' "$name-resume.log" || fail "$name: did not resume"
  grep -q '^epoch 3/3' "$name-resume.log" || fail "$name: the resumed run did not finish"
  cmp ref.sat "$name.sat" || fail "$name: the model file differs from the uninterrupted run's"
  cmp ref.ckpt "$name.ckpt" || fail "$name: the checkpoint differs from the uninterrupted run's"
  if ls | grep -q 'sat-tmp'; then fail "$name: temporary files left: $(ls | grep sat-tmp)"; fi
  echo "$name: resumed run equals the uninterrupted one"
}

interrupt int INT
[[ $rc -eq 5 ]] || fail "int: exit code $rc, expected 5"
grep -Eq 'interrupted by SIGINT: stopped after (step [0-9]+ of 40 in epoch [23]|epoch [12]); checkpoint saved to int.ckpt' int.log ||
  fail "int: no message saying where it stopped"
resume_and_compare int

interrupt twice TERM INT
[[ $rc -eq 5 || $rc -eq 130 ]] || fail "twice: exit code $rc, expected 5 or 130"
if [[ $rc -eq 5 ]]; then
  grep -q 'interrupted by SIGTERM' twice.log || fail "twice: no message"
fi
resume_and_compare twice
