#!/bin/sh
# quickstart.sh - from a fresh checkout to the Smooth Adversarial Training result in about
# ten minutes on two cores:
#   1. installs what is missing (Debian packages),
#   2. builds libsat and sat-cli (Release) into build/,
#   3. trains a small CNN on Fashion-MNIST with PGD adversarial training (Linf eps 0.1)
#      twice, with ReLU and with SiLU, evaluates both under PGD-1/10/20/50 and prints the table,
#   4. writes the logs and plots to build/quickstart/.
# Extra arguments go to `sat-cli compare` (e.g. --acts relu,silu,gelu or --threads 2).
# Environment: BUILD_DIR (default build), OUT_DIR (default $BUILD_DIR/quickstart).
# The full-size recipe is in docs/results.md.
set -eu

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/quickstart}

# --- 1. dependencies ----------------------------------------------------------------------
PACKAGES="build-essential cmake pkg-config libblis-pthread-dev libcmocka-dev zlib1g-dev \
dataset-fashion-mnist python3-matplotlib"
if [ -f cmake/install-deps.sh ]; then
    bash cmake/install-deps.sh
else
    missing=""
    for p in $PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO=sudo
        $SUDO apt-get update
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
    fi
fi

# --- 2. build -----------------------------------------------------------------------------
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target sat-cli

# --- 3. the comparison --------------------------------------------------------------------
# Budget measured on two cores, one thread: about 4 minutes per activation (training and
# evaluation). All 60000 training images (1000 held out for the per-epoch PGD check),
# 8 epochs of PGD-7 adversarial training, evaluation on all 10000 test images.
"$BUILD_DIR/examples/cli/sat-cli" compare \
    --data /usr/share/datasets/fashion-mnist \
    --model small-cnn --acts relu,silu \
    --method pgd --eps 0.1 --steps 7 \
    --epochs 8 --val 1000 \
    --optimizer sgd --lr 0.05 --schedule cosine --warmup 0.5 \
    --pgd-steps 1,10,20,50 --threads 1 --seed 0 \
    --log-dir "$OUT_DIR" "$@"

# --- 4. plots -----------------------------------------------------------------------------
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 examples/plot_logs.py "$OUT_DIR"
else
    echo "python3-matplotlib is not installed: no plots (the tables are in $OUT_DIR)"
fi
