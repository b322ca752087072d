#!/usr/bin/env bash
# run.sh - reruns the experiments of docs/experiments.md: the paper's comparisons at small
# scale on Fashion-MNIST (Linf eps 0.1), every cell over several seeds.
#
#   bash examples/experiments/run.sh [EXPERIMENT ...]
#
# EXPERIMENT is any of activations ablation capacity methods overfitting (default: all,
# in that order). Each one is one or more `sat-cli compare` runs whose logs go to
# $OUT/<experiment>/<part>/ (default OUT=build/experiments); the same command resumes
# an interrupted experiment, reusing finished runs. The wall-clock time of every part is
# appended to $OUT/<experiment>/wallclock.tsv. Then
#   /usr/bin/python3 examples/experiments/report.py $OUT
# rebuilds the tables and figures of docs/experiments.md from the logs.
#
# Environment:
#   OUT     where the logs go (default build/experiments)
#   SEEDS   comma-separated seeds (default 0,1,2)
#   JOBS    trainings run at once, one thread each (default: the number of cores)
#   SATCLI  the sat-cli program (default build/examples/cli/sat-cli; built if missing)
#   TINY    a directory of tiny IDX data: every budget shrinks to a few seconds, to test
#           these scripts (the numbers mean nothing then)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$root/build/experiments}
SEEDS=${SEEDS:-0,1,2}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 1)}
SATCLI=${SATCLI:-$root/build/examples/cli/sat-cli}
TINY=${TINY:-}

if [[ ! -x $SATCLI ]]; then
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build" -j2 --target sat-cli
fi

# The quick start's recipe (README.md, docs/results.md): all 60000 training images with
# 1000 held out for the per-epoch PGD check, 8 epochs of PGD-7, SGD with a cosine
# schedule; evaluation with PGD-10, PGD-50 and APGD-CE + APGD-T on the first 2000 test
# images. APGD on all 10000 would cost more than the training (about 150 s a run against
# 150 s), and the 69 runs of all experiments have to fit an afternoon on 2 cores.
data=(--data /usr/share/datasets/fashion-mnist --val 1000)
budget=(--epochs 8 --steps 7)
evaluation=(--pgd-steps 10,50 --apgd --test-limit 2000)
# The other tables compare training variants on the same images with PGD only: APGD costs
# as much as a quarter of a run, and the activation table has it for ReLU and SiLU.
pgd_evaluation=(--pgd-steps 10,50 --test-limit 2000)
# The capacity comparison runs madry-cnn (25 times small-cnn's arithmetic), so both sizes
# get a smaller budget there: a sixth of the training set, 2 epochs, and evaluation with
# PGD only on the first 1000 test images (a madry-cnn run still takes about 3 minutes
# with two running at once).
capacity_budget=(--train-limit 10000 --epochs 2 --steps 7)
# The ablation, the training methods and the overfitting check vary the training, not the
# network: they share a sixth of the activation table's budget (the first 20000 training
# images, 1000 of them held out, 4 epochs) and their own PGD-AT ReLU and SiLU runs at that
# budget, so that the whole set fits an afternoon.
short_budget=(--train-limit 20000 --epochs 4 --steps 7)
capacity_evaluation=(--pgd-steps 10,50 --test-limit 1000)
eps=0.1
if [[ -n $TINY ]]; then
  eps=0.5  # on the tiny set, eps 0.1 leaves every accuracy at 100%: nothing to compare
  data=(--data "$TINY" --val 80 --batch 50)
  budget=(--epochs 1 --steps 2)
  evaluation=(--pgd-steps 2,5 --apgd --apgd-steps 5)
  capacity_budget=(--epochs 1 --steps 2)
  capacity_evaluation=("${evaluation[@]}")
  pgd_evaluation=("${evaluation[@]}")
  short_budget=("${budget[@]}")
fi
common=(--eps "$eps" --optimizer sgd --lr 0.05 --schedule cosine --warmup 0.5 --threads 1
        --seeds "$SEEDS" --jobs "$JOBS" --quiet)

# part EXPERIMENT PART ARGS...: one compare into $OUT/EXPERIMENT/PART, timed.
part() {
  local experiment=$1 name=$2
  shift 2
  local dir=$OUT/$experiment/$name
  mkdir -p "$dir"
  echo "== $experiment/$name: sat-cli compare $*"
  local start
  start=$(date +%s)
  "$SATCLI" compare --log-dir "$dir" "$@"
  printf '%s\t%d\t%s\n' "$name" $(( $(date +%s) - start )) "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    >>"$OUT/$experiment/wallclock.tsv"
}

activations() {  # the paper's Table 2 at small scale
  part activations all "${data[@]}" "${budget[@]}" "${evaluation[@]}" "${common[@]}" \
    --model small-cnn --method pgd --acts relu,softplus,psoftplus,silu,gelu,elu,celu,smoothrelu
}

short_baseline() {  # PGD-AT with ReLU and SiLU at the short budget (read back once run)
  part short baseline "${data[@]}" "${short_budget[@]}" "${pgd_evaluation[@]}" "${common[@]}" \
    --model small-cnn --method pgd --acts relu,silu
}

ablation() {  # the paper's Table 1: a ReLU forward with parametric Softplus's derivative
  short_baseline  # the table's ReLU and SiLU rows
  local recipe=("${data[@]}" "${short_budget[@]}" "${pgd_evaluation[@]}" "${common[@]}"
                --model small-cnn --method pgd --acts relu)
  part ablation attacker "${recipe[@]}" --attack-backward psoftplus:10
  part ablation optimizer "${recipe[@]}" --train-backward psoftplus:10
  part ablation both "${recipe[@]}" --attack-backward psoftplus:10 --train-backward psoftplus:10
}

capacity() {  # does the ReLU/SiLU gap move with the model's size?
  local recipe=("${data[@]}" "${capacity_budget[@]}" "${capacity_evaluation[@]}" "${common[@]}"
                --method pgd --acts relu,silu)
  part capacity small-cnn "${recipe[@]}" --model small-cnn
  part capacity madry-cnn "${recipe[@]}" --model madry-cnn
}

methods() {  # PGD-AT (the short baseline's runs), Fast-AT, Free-AT, TRADES
  short_baseline
  local recipe=("${data[@]}" "${short_budget[@]}" "${pgd_evaluation[@]}" "${common[@]}"
                --model small-cnn --acts relu,silu)
  part methods fast "${recipe[@]}" --method fast
  part methods free "${recipe[@]}" --method free
  part methods trades "${recipe[@]}" --method trades
}

overfitting() {  # Fast-AT at a radius where catastrophic overfitting is known to occur
  local recipe=("${data[@]}" "${short_budget[@]}" "${pgd_evaluation[@]}" "${common[@]}"
                --model small-cnn --acts relu,silu --method fast)
  # The default step of Fast-AT (1.25 eps) at eps 0.3: the regime of Wong et al.'s
  # failures on MNIST. The log records whether the guard saw held-out PGD accuracy collapse.
  part overfitting eps0.3 "${recipe[@]}" --eps 0.3
}

experiments=("$@")
[[ ${#experiments[@]} -gt 0 ]] || experiments=(activations ablation capacity methods overfitting)
for e in "${experiments[@]}"; do
  case $e in
    activations|ablation|capacity|methods|overfitting) "$e" ;;
    *) echo "run.sh: unknown experiment '$e' (known: activations ablation capacity methods overfitting)" >&2
       exit 2 ;;
  esac
done
echo "logs in $OUT; tables and figures: /usr/bin/python3 examples/experiments/report.py $OUT"
