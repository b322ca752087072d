#!/usr/bin/env bash
# check-abi.sh - the ABI guard of libsat (see docs/abi.md).
#
#   check-abi.sh --lib <libsat.so> --probe <debug twin of libsat.so> --headers <include dir>
#                --baseline <dir with symbols.txt, libsat.abi, suppressions.txt>
#                --work <scratch dir> [--update]
#
# Checks, each of which fails the run:
#   1. the global symbols libsat.so defines (nm -D --defined-only) are exactly symbols.txt
#   2. every exported symbol starts with sat_, every version node with LIBSAT_
#   3. the SONAME is libsat.so.<SAT_VERSION_MAJOR>
#   4. the stack is not executable (GNU_STACK present and not RWE)
#   5. the debug twin (--probe) exports exactly what libsat.so exports
#   6. abidiff of the baseline libsat.abi against an abidw dump of the twin, restricted to
#      types of the public headers, reports no change beyond suppressions.txt (added
#      functions and variables; members appended at the end of struct_size-led structs)
# --update writes symbols.txt and libsat.abi from the library instead of comparing
# (tests/abi/update-baseline.sh is the front end for that).
set -uo pipefail

lib= probe= headers= baseline= work= update=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --lib) lib=$2; shift 2 ;;
    --probe) probe=$2; shift 2 ;;
    --headers) headers=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --update) update=1; shift ;;
    *) echo "check-abi: unknown argument $1" >&2; exit 2 ;;
  esac
done
for v in lib probe headers baseline work; do
  [[ -n ${!v} ]] || { echo "check-abi: --$v is required" >&2; exit 2; }
done
for tool in nm readelf abidw abidiff; do
  command -v $tool >/dev/null || {
    echo "FAIL: $tool is not installed (binutils, abigail-tools; cmake/install-deps.sh)" >&2
    exit 1; }
done
for f in "$lib" "$probe"; do
  [[ -f $f ]] || { echo "FAIL: $f does not exist (build first)" >&2; exit 1; }
done
mkdir -p "$work"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

# Defined dynamic symbols as name@@VERSION, except the version nodes themselves (type A).
exported() { nm -D --defined-only "$1" | awk 'NF == 3 && $2 != "A" { print $3 }' | LC_ALL=C sort; }
version_nodes() { nm -D --defined-only "$1" | awk 'NF == 3 && $2 == "A" { print $3 }' | LC_ALL=C sort; }

# Only what the public headers define and the exported functions reach; no paths,
# locations or DT_NEEDED, so the dump is the same in any checkout and on any machine.
abidw_opts=(--headers-dir "$headers" --drop-private-types --exported-interfaces-only
            --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed
            --type-id-style hash)
src_root=$(cd "$headers/.." && pwd)
dump() {  # dump <elf> <out.abi>
  abidw "${abidw_opts[@]}" "$1" >"$2.tmp" || return 1
  sed "s|path='$src_root/|path='|" "$2.tmp" >"$2" && rm -f "$2.tmp"
}

exported "$lib" >"$work/symbols.txt"
nsyms=$(wc -l <"$work/symbols.txt")

if [[ $update == 1 ]]; then
  [[ $nsyms -gt 0 ]] || { echo "FAIL: $lib exports nothing" >&2; exit 1; }
  cp "$work/symbols.txt" "$baseline/symbols.txt"
  dump "$probe" "$baseline/libsat.abi" || {
    echo "FAIL: abidw $probe" >&2; exit 1; }
  echo "wrote $baseline/symbols.txt ($nsyms symbols) and $baseline/libsat.abi"
  exit 0
fi

echo "== libsat.so: $lib ($nsyms exported symbols)"

# 1. The symbol list.
if diff -u "$baseline/symbols.txt" "$work/symbols.txt" >"$work/symbols.diff"; then
  pass "exported symbols match symbols.txt"
else
  cat "$work/symbols.diff"
  fail "exported symbols differ from tests/abi/symbols.txt ('-' baseline, '+' this build)." \
       "A removal breaks the ABI; an addition is fine once recorded: run tests/abi/update-baseline.sh"
fi

# 2. Prefixes.
bad=$(sed 's/@.*//' "$work/symbols.txt" | grep -v '^sat_' || true)
if [[ -z $bad ]]; then pass "every exported symbol starts with sat_"
else fail "exported symbols without the sat_ prefix:"$'\n'"$bad"; fi
badv=$(version_nodes "$lib" | grep -v '^LIBSAT_' || true)
if [[ -z $(version_nodes "$lib") ]]; then fail "no symbol version node (cmake/libsat.map not applied?)"
elif [[ -n $badv ]]; then fail "version nodes not named LIBSAT_*: $badv"
else pass "version nodes: $(version_nodes "$lib" | tr '\n' ' ')"; fi
unver=$(grep -v '@' "$work/symbols.txt" || true)
[[ -z $unver ]] || fail "symbols without a version: $unver"

# 3. SONAME.
major=$(sed -n 's/^#define SAT_VERSION_MAJOR \([0-9][0-9]*\).*/\1/p' "$headers/sat.h")
soname=$(readelf -dW "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [[ -n $major && $soname == "libsat.so.$major" ]]; then pass "SONAME $soname"
else fail "SONAME is '$soname', expected libsat.so.$major (SAT_VERSION_MAJOR)"; fi

# 4. No executable stack.
stack=$(readelf -lW "$lib" | grep GNU_STACK || true)
if [[ -z $stack ]]; then fail "no GNU_STACK header: the loader would assume an executable stack"
elif [[ $(awk '{ print $7 }' <<<"$stack") == *E* ]]; then fail "executable stack: $stack"
else pass "stack not executable ($(awk '{ print $7 }' <<<"$stack"))"; fi

# 5. The debug twin is the same library.
exported "$probe" >"$work/probe-symbols.txt"
if diff -u "$work/symbols.txt" "$work/probe-symbols.txt" >"$work/probe.diff"; then
  pass "debug twin exports the same symbols"
else
  cat "$work/probe.diff"
  fail "the debug twin $probe does not export what libsat.so exports"
fi
probe_soname=$(readelf -dW "$probe" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $probe_soname == "$soname" ]] || fail "debug twin SONAME $probe_soname differs from $soname"

# 6. abidiff against the baseline.
if ! dump "$probe" "$work/libsat.abi"; then
  fail "abidw could not read $probe"
else
  # The dump must describe the functions (with their types), not only ELF symbols:
  # without DWARF abidiff would see no type change at all.
  ndecl=$(grep -c "<function-decl name='sat_" "$work/libsat.abi" || true)
  nfun=$(nm -D --defined-only "$probe" | awk '$2 == "T"' | wc -l)
  if [[ $ndecl -lt $nfun || $nfun -eq 0 ]]; then
    fail "abidw dump describes $ndecl of $nfun functions (no debug info in the twin?)"
  else
    pass "abidw dump describes all $nfun functions"
  fi
  abidiff --suppressions "$baseline/suppressions.txt" --no-show-locs --harmless \
    "$baseline/libsat.abi" "$work/libsat.abi" >"$work/abidiff.txt" 2>&1
  rc=$?
  if [[ $rc -eq 0 ]]; then
    pass "abidiff: no ABI change beyond the allowed ones"
    grep -E 'Functions changes summary|Variables changes summary|added' "$work/abidiff.txt" | sed 's/^/      /' || true
  else
    cat "$work/abidiff.txt"
    what=()
    (( rc & 1 )) && what+=("abidiff error")
    (( rc & 2 )) && what+=("usage error")
    (( rc & 4 )) && what+=("ABI change")
    (( rc & 8 )) && what+=("INCOMPATIBLE ABI change")
    fail "abidiff exit $rc (${what[*]}) against tests/abi/libsat.abi." \
         "Within a major version only additions are allowed (docs/abi.md)."
  fi
fi

if [[ $failures -gt 0 ]]; then
  echo "ABI check: $failures check(s) failed" >&2
  exit 1
fi
echo "ABI check passed: $nsyms exported symbols, SONAME $soname"
