#!/usr/bin/env bash
# The unit tests once more under AddressSanitizer + UndefinedBehaviorSanitizer:
# `bazel test --config=asan //common/... //services/...` (the packages' own
# tests; the integration suites under tests/ stay out, they are too slow under
# ASan). One test case per Bazel target; a target that fails to build, times
# out or reports a sanitizer error fails its case, with the tail of its
# test.log (the sanitizer's report) in the XML.
#
#   tests/checks/asan_unit_tests.sh [-o results.xml] [BAZEL_ARG...]
#
# BAZEL_ARGs go to bazel test (./pocketmail passes the peers' --test_env).
# --symlink_prefix=/ leaves the .bazel/ symlinks on the fastbuild tree, which
# tests/test_summary.py reads after this run.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/checks/junit.sh
. tests/checks/junit.sh

XML_OUT=""
if [ "${1:-}" = -o ]; then XML_OUT=$2; shift 2; fi
junit_init asan
PATTERNS=(//common/... //services/...)
FLAGS=(--config=asan --symlink_prefix=/)

log=$(mktemp) tail_log=$(mktemp)
trap 'rm -f "$log" "$tail_log"' EXIT
t0=$(junit_now)
bazel test "${FLAGS[@]}" --keep_going "$@" "${PATTERNS[@]}" >"$log" 2>&1
bazel_rc=$?
echo "# bazel test ${FLAGS[*]} ${PATTERNS[*]}: exit $bazel_rc in $(junit_since "$t0") s"
testlogs=$(bazel info "${FLAGS[@]}" bazel-testlogs 2>/dev/null)

# `//pkg:name   PASSED in 1.2s`, `//pkg:name   FAILED TO BUILD`, ...
status_re='^(//[^[:space:]:]*:[^[:space:]]+)[[:space:]]+(\(cached\)[[:space:]]+)?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)([[:space:]]+in[[:space:]]+([0-9.]+)s)?'
declare -A seen=()
status_lines=$(grep -E '^//' "$log")
while IFS= read -r line; do
  [[ $line =~ $status_re ]] || continue
  target=${BASH_REMATCH[1]} status=${BASH_REMATCH[3]} secs=${BASH_REMATCH[5]:-0}
  [ -z "${seen[$target]:-}" ] || continue
  seen[$target]=1
  if [ "$status" = PASSED ]; then
    junit_pass "$target" "$secs"
  else
    test_log="$testlogs/${target#//}"; test_log="${test_log/://}/test.log"
    if [ -f "$test_log" ]; then tail -n 80 "$test_log" >"$tail_log"; else grep -E '^ERROR' "$log" | head -n 20 >"$tail_log"; fi
    junit_fail "$target" "$secs" "$status under --config=asan" "$tail_log"
  fi
done <<<"$status_lines"
if ((JUNIT_N == 0)); then  # nothing reported: bazel itself failed
  tail -n 40 "$log" >"$tail_log"
  junit_fail bazel-test "$(junit_since "$t0")" "bazel test --config=asan reported no test (exit $bazel_rc)" "$tail_log"
elif ((bazel_rc != 0)) && ! junit_failed; then
  grep -E '^ERROR' "$log" | head -n 20 >"$tail_log"
  junit_fail bazel-test "$(junit_since "$t0")" "bazel test --config=asan exited $bazel_rc" "$tail_log"
fi
junit_write "$XML_OUT"
! junit_failed
