#!/usr/bin/env bash
# measure.sh - the images/s of sat-mpi-pgd with 1 and 2 ranks (one core and one thread per
# rank, PGD-3 training on synthetic data, the first step not timed) and the all-reduce
# cost, the figures of docs/distributed.md. Repeats each run and prints every result; take
# the medians (scaling_model.py does for its table). With `overlap` as the third argument it
# runs 2 ranks x 64 instead, with the gradient all-reduce after the backward (--no-overlap)
# and overlapped with it, alternately.
#
#   examples/mpi/measure.sh [build-dir] [repeats] [overlap]     (default: build 3)
set -euo pipefail
build=${1:-build}
repeats=${2:-3}
compare=${3:-}
runs=("1 128" "2 128" "2 256")
[[ $compare == overlap ]] && runs=("2 128 --no-overlap" "2 128 --overlap")
mpirun="mpirun --allow-run-as-root --oversubscribe --bind-to core"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for spec in "madry-cnn 1,28" "resnet20 3,32"; do
  set -- $spec
  for r in $(seq "$repeats"); do
    for run in "${runs[@]}"; do
      set -- $spec $run
      line=$($mpirun -np "$3" "$build/examples/mpi/sat-mpi-pgd" "$work/m.model" --model "$1" --shape "$2" \
               --examples 2048 --batch "$4" --steps 6 ${5:-} | grep '^timed')
      echo "model=$1 ranks=$3 batch=$4 ${5:+mode=${5#--} }repeat=$r $line"
    done
  done
done
[[ $compare == overlap ]] || $mpirun -np 2 "$build/examples/mpi/sat-mpi-allreduce-bench" --repeats 30
