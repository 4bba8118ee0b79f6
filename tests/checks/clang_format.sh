#!/usr/bin/env bash
# clang-format --dry-run -Werror (.clang-format) over our own C/C++: every
# tracked .cc and .h (no generated code is tracked). One test case per file;
# a failing case lists the first lines clang-format would change.
#
#   tests/checks/clang_format.sh [-o results.xml] [FILE...]
#
# To reformat instead: clang-format -i $(git ls-files '*.cc' '*.h')
# Exits non-zero when a file differs, or when clang-format is missing.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/checks/junit.sh
. tests/checks/junit.sh

XML_OUT=""
if [ "${1:-}" = -o ]; then XML_OUT=$2; shift 2; fi
junit_init clang-format
FORMAT=${CLANG_FORMAT:-clang-format}

files=("$@")
if ((${#files[@]} == 0)); then mapfile -t files < <(git ls-files '*.c' '*.cc' '*.h'); fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! command -v "$FORMAT" >/dev/null 2>&1; then
  junit_fail clang-format 0 "$FORMAT is not installed (apt-get install clang-format)"
  junit_write "$XML_OUT"
  exit 1
fi
for f in "${files[@]}"; do
  t0=$(junit_now)
  if "$FORMAT" --style=file --dry-run -Werror "$f" >"$log" 2>&1; then
    junit_pass "$f" "$(junit_since "$t0")"
  else
    junit_fail "$f" "$(junit_since "$t0")" "not formatted as .clang-format says" "$log"
  fi
done
junit_write "$XML_OUT"
! junit_failed
