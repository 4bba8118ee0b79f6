#!/usr/bin/env bash
# clang-tidy (the checks in .clang-tidy) over our own C++: every tracked .cc
# (no generated code is tracked, and there is no third-party source), with
# the headers of common/, services/ and tests/ they include. One test case per
# .cc; a finding in a header fails each .cc that includes it.
#
#   tests/checks/clang_tidy.sh [-o results.xml] [-j JOBS] [FILE.cc...]
#
# Compiles as Bazel does: -std=c++17, the workspace root and the generated
# proto headers' include roots (bazel-bin/proto, bazel-bin/common/server; the
# `includes = ["."]` of their cc_librarys) on the path, system headers from
# /usr/include. Builds the codegen genrules first. JOBS defaults to 2.
# Exits non-zero on any finding, or when clang-tidy is missing (./pocketmail
# installs it).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/checks/junit.sh
. tests/checks/junit.sh

XML_OUT="" JOBS=2
while (($#)); do
  case "$1" in
    -o) XML_OUT=$2; shift 2 ;;
    -j) JOBS=$2; shift 2 ;;
    -*) echo "usage: $0 [-o results.xml] [-j JOBS] [FILE.cc...]" >&2; exit 2 ;;
    *) break ;;
  esac
done
junit_init clang-tidy
TIDY=${CLANG_TIDY:-clang-tidy}

files=("$@")
if ((${#files[@]} == 0)); then mapfile -t files < <(git ls-files '*.cc'); fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if ! command -v "$TIDY" >/dev/null 2>&1; then
  junit_fail clang-tidy 0 "$TIDY is not installed (apt-get install clang-tidy)"
  junit_write "$XML_OUT"
  exit 1
fi
t0=$(junit_now)
codegen=$(bazel query 'kind(genrule, //proto/... + //common/...)' 2>"$scratch/query.log")
# shellcheck disable=SC2086  # one target a word
if ! bazel build $codegen >"$scratch/build.log" 2>&1; then
  cat "$scratch/query.log" >>"$scratch/build.log"
  junit_fail codegen "$(junit_since "$t0")" "bazel build of the generated headers failed" "$scratch/build.log"
  junit_write "$XML_OUT"
  exit 1
fi
bin=$(bazel info bazel-bin 2>/dev/null)
export TIDY scratch
export TIDY_FLAGS="-std=c++17 -x c++ -I. -I$bin/proto -I$bin/common/server"

# Runs one file (argument: INDEX FILE); writes $scratch/INDEX.{log,rc,time}.
tidy_one() {
  local t0 rc
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086  # TIDY_FLAGS is a word list
  "$TIDY" --quiet "$2" -- $TIDY_FLAGS >"$scratch/$1.log" 2>&1
  rc=$?
  # A finding is a warning or error line; "N warnings generated." is not.
  grep -q -E ': (warning|error): ' "$scratch/$1.log" && rc=1
  echo "$rc" >"$scratch/$1.rc"
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }' >"$scratch/$1.time"
}
export -f tidy_one
for i in "${!files[@]}"; do printf '%s\0%s\0' "$i" "${files[$i]}"; done |
  xargs -0 -n 2 -P "$JOBS" bash -c 'tidy_one "$@"' _

for i in "${!files[@]}"; do
  secs=$(cat "$scratch/$i.time" 2>/dev/null || echo 0)
  if [ "$(cat "$scratch/$i.rc" 2>/dev/null)" = 0 ]; then
    junit_pass "${files[$i]}" "$secs"
  else
    grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$scratch/$i.log" >"$scratch/$i.findings"
    junit_fail "${files[$i]}" "$secs" "clang-tidy findings" "$scratch/$i.findings"
  fi
done
echo "# clang-tidy: ${#files[@]} files in $(junit_since "$t0") s with $JOBS jobs"
junit_write "$XML_OUT"
! junit_failed
