#!/usr/bin/env bash
# Runs shellcheck over every tracked shell script: ./pocketmail, .ci/run, deploy/,
# tests/, docs/ (*.sh, or a #!...sh/bash first line). One test case per file.
# deploy/templates/ are shell once rendered: their {{NAME}} placeholders are
# replaced by a plain word and the result is checked.
#
#   tests/checks/shellcheck.sh [-o results.xml] [FILE...]
#
# Exits non-zero when any file has a finding (any severity) or shellcheck is
# missing (./pocketmail installs it).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/checks/junit.sh
. tests/checks/junit.sh

XML_OUT=""
if [ "${1:-}" = -o ]; then XML_OUT=$2; shift 2; fi
junit_init shellcheck

is_shell() {
  case "$1" in
    *.sh|*.bash) return 0 ;;
  esac
  head -n 1 "$1" 2>/dev/null | grep -Eq '^#!.*(/|env )(ba|da)?sh\b'
}

files=("$@")
if ((${#files[@]} == 0)); then
  while IFS= read -r f; do
    [ -f "$f" ] && [ ! -L "$f" ] && is_shell "$f" && files+=("$f")
  done < <(git ls-files)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! command -v shellcheck >/dev/null 2>&1; then
  junit_fail shellcheck 0 "shellcheck is not installed (apt-get install shellcheck)"
  junit_write "$XML_OUT"
  exit 1
fi
check() {
  case "$1" in
    deploy/templates/*) sed -E 's/\{\{[A-Z_]+\}\}/placeholder/g' "$1" | shellcheck -x - ;;
    *) shellcheck -x "$1" ;;
  esac
}
for f in "${files[@]}"; do
  t0=$(junit_now)
  if check "$f" >"$log" 2>&1; then
    junit_pass "$f" "$(junit_since "$t0")"
  else
    junit_fail "$f" "$(junit_since "$t0")" "shellcheck findings" "$log"
  fi
done
junit_write "$XML_OUT"
! junit_failed
