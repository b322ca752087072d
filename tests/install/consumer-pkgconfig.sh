#!/usr/bin/env bash
# Builds and runs tests/install/consumer/main.c against the staged install with pkg-config.
# usage: consumer-pkgconfig.sh <shared|static> <stage> <libdir> <consumer-src> <work-dir> <c-compiler>
#   shared: cc main.c $(pkg-config --cflags --libs libsat), run with LD_LIBRARY_PATH
#   static: cc -static main.c $(pkg-config --static --cflags --libs libsat): a fully static
#           program, so every dependency libsat.a has must be in Libs.private
set -euo pipefail
mode=$1 stage=$2 libdir=$3 src=$4 work=$5 cc=$6
rm -rf "$work"
mkdir -p "$work"
command -v pkg-config >/dev/null || { echo "FAIL: pkg-config not installed" >&2; exit 1; }

export PKG_CONFIG_PATH=$stage/$libdir/pkgconfig
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
pkg-config --exists --print-errors libsat
pkg-config --validate libsat 2>/dev/null || true
echo "libsat.pc: version $(pkg-config --modversion libsat), prefix $(pkg-config --variable=prefix libsat)"
[[ $(pkg-config --variable=prefix libsat) == "$stage" ]] || {
  echo "FAIL: libsat.pc prefix is not the staged prefix $stage" >&2; exit 1; }
[[ $(pkg-config --variable=libdir libsat) == "$stage/$libdir" ]] || {
  echo "FAIL: libsat.pc libdir is not $stage/$libdir" >&2; exit 1; }

case $mode in
shared)
  # shellcheck disable=SC2046
  set -x
  "$cc" -std=c99 -Wall -Wextra -Werror -o "$work/consumer_pc" "$src/main.c" \
    $(pkg-config --cflags --libs libsat) -lm
  set +x
  # (Output captured first: `ldd | grep -q` under pipefail fails when grep exits early.)
  deps=$(LD_LIBRARY_PATH=$stage/$libdir ldd "$work/consumer_pc")
  if ! grep -q "libsat.so.* => $stage/" <<<"$deps"; then
    echo "$deps" >&2
    echo "FAIL: consumer_pc does not load libsat from the stage" >&2
    exit 1
  fi
  LD_LIBRARY_PATH=$stage/$libdir "$work/consumer_pc"
  ;;
static)
  set -x
  # shellcheck disable=SC2046
  "$cc" -std=c99 -Wall -Wextra -Werror -static -o "$work/consumer_pc_static" "$src/main.c" \
    $(pkg-config --static --cflags --libs libsat)
  set +x
  if grep -q NEEDED <<<"$(readelf -d "$work/consumer_pc_static" 2>&1)"; then
    readelf -d "$work/consumer_pc_static" >&2
    echo "FAIL: consumer_pc_static is not a static program" >&2
    exit 1
  fi
  # No LD_LIBRARY_PATH: nothing is loaded at run time.
  env -u LD_LIBRARY_PATH "$work/consumer_pc_static"
  ;;
*) echo "usage: $0 shared|static ..." >&2; exit 2 ;;
esac
