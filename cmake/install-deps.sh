#!/usr/bin/env bash
# install-deps.sh - installs (Debian/Ubuntu, apt-get) every package libsat's build, tests,
# examples and bindings need. Does nothing when everything is already there. Runs apt-get
# as root, or through sudo when not root.
#
#   bash cmake/install-deps.sh
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # compiler, build, pkg-config for libsat.pc and cmocka
  libblis-pthread-dev                # GEMM (multithreaded BLIS)
  libcmocka-dev                      # unit tests
  zlib1g-dev                         # gzip-compressed IDX files
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev  # ONNX import/export: C code generated from onnx.proto
  libonnx-testdata python3-onnx      # ONNX's own backend test cases; onnx.checker on exported files
  abigail-tools                      # abidw/abidiff: tests/abi
  dataset-fashion-mnist              # real data for the examples and experiments
  python3-numpy python3-pytest       # Python binding and its tests
  python3-torch                      # reference implementation the tests compare against
  python3-matplotlib                 # figures in the experiment reports
  valgrind                           # memory checks
  clang libclang-rt-14-dev           # ThreadSanitizer build of the multi-threaded tests
  doxygen                            # the reference manual (target docs)
  python3-venv python3-setuptools python3-wheel  # pip install of the Python package into a venv
  python3-mypy                       # the Python package's type hints are checked
  librust-pkg-config-dev             # the Rust binding's build script (offline crate)
  libopenmpi-dev openmpi-bin         # data parallelism: examples/mpi and its 2-rank test
)
# Rust binding: keep a toolchain installed outside Debian (rustup's ~/.cargo/bin) if any.
if ! command -v cargo >/dev/null 2>&1 && [[ ! -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
  packages+=(cargo rustc)
fi

command -v dpkg-query >/dev/null 2>&1 || {
  echo "install-deps: not a Debian-based system; install by hand: ${packages[*]}" >&2
  exit 1; }

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: missing ${missing[*]}, and not root and no sudo" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
