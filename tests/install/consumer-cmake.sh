#!/usr/bin/env bash
# Builds and runs tests/install/consumer against the staged install with find_package.
# usage: consumer-cmake.sh <cmake> <stage> <consumer-src> <work-dir> <version> <c-compiler>
set -euo pipefail
cmake_bin=$1 stage=$2 src=$3 work=$4 version=$5 cc=$6
rm -rf "$work"
mkdir -p "$work"

# The installed package must not point back into the source or build tree (for example
# the lib/ include directory the unit tests use).
src_root=$(cd "$src/../../.." && pwd)
if grep -rn -e "$src_root/lib" -e "$src_root/include" "$stage"/lib*/cmake "$stage"/lib*/pkgconfig \
     "$stage"/lib/*/cmake "$stage"/lib/*/pkgconfig 2>/dev/null; then
  echo "FAIL: installed package files refer to the source tree" >&2
  exit 1
fi

common=(-DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$stage"
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
        -DCMAKE_BUILD_TYPE=Release)

# 1. A version of another major must be refused (libsatConfigVersion.cmake, SameMajorVersion).
major=${version%%.*}
if "$cmake_bin" -S "$src" -B "$work/wrong-major" "${common[@]}" \
     -DSAT_REQUIRED_VERSION=$((major + 1)).0 >"$work/wrong-major.log" 2>&1; then
  echo "FAIL: find_package(libsat $((major + 1)).0) accepted version $version" >&2
  exit 1
fi
echo "find_package(libsat $((major + 1)).0) refused, as it must be"

# 2. The real build.
"$cmake_bin" -S "$src" -B "$work/b" "${common[@]}" -DSAT_REQUIRED_VERSION="$version" \
  | tee "$work/configure.log"
grep -q "libsat $version from $stage/" "$work/configure.log" || {
  echo "FAIL: libsat was not found in the staged install $stage" >&2; exit 1; }
"$cmake_bin" --build "$work/b" -j2

# The shared consumer must load libsat.so from the stage (RUNPATH set by CMake).
exes=(consumer_shared)
if [[ -n $(find "$stage" -name libsat.a -print -quit) ]]; then
  exes+=(consumer_static)   # libsat::sat_static exists when libsat.a was installed
fi
for exe in "${exes[@]}"; do
  [[ -x $work/b/$exe ]] || { echo "FAIL: $exe was not built" >&2; exit 1; }
done
# (Output captured first: `ldd | grep -q` under pipefail fails when grep exits early.)
deps=$(ldd "$work/b/consumer_shared")
if ! grep -q "libsat.so.$major => $stage/" <<<"$deps"; then
  echo "$deps" >&2
  echo "FAIL: consumer_shared does not load libsat.so.$major from the stage" >&2
  exit 1
fi
if [[ ${#exes[@]} -gt 1 ]] && grep -q 'NEEDED.*libsat' <<<"$(readelf -d "$work/b/consumer_static")"; then
  echo "FAIL: consumer_static depends on the shared libsat" >&2
  exit 1
fi
for exe in "${exes[@]}"; do
  echo "== $exe"
  "$work/b/$exe"
done
