# shellcheck shell=bash
# Sourced by the check scripts in tests/checks/: one result per checked file
# (or target), printed as TAP-style `ok`/`not ok` lines (a failure's output
# follows as `#   ` lines) and, with -o FILE, written as JUnit XML for
# tests/test_summary.py, one <testcase> each.
#
#   junit_init SUITE          before the first result
#   junit_pass NAME SECONDS
#   junit_fail NAME SECONDS MESSAGE [LOGFILE]
#   junit_write FILE          no-op when FILE is empty
#   junit_failed              true when any case failed

JUNIT_SUITE="" JUNIT_N=0 JUNIT_FAILED=0 JUNIT_CASES=""

junit_init() { JUNIT_SUITE=$1; }

junit_xml_escape() {
  sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' | tr -d '\000-\010\013\014\016-\037'
}

junit_pass() {
  JUNIT_N=$((JUNIT_N + 1))
  echo "ok $JUNIT_N - $JUNIT_SUITE $1"
  JUNIT_CASES+="  <testcase classname=\"$JUNIT_SUITE\" name=\"$(printf '%s' "$1" | junit_xml_escape)\" time=\"$2\"/>"$'\n'
}

junit_fail() {
  JUNIT_N=$((JUNIT_N + 1)) JUNIT_FAILED=$((JUNIT_FAILED + 1))
  echo "not ok $JUNIT_N - $JUNIT_SUITE $1: $3"
  local detail=$3
  if [ -n "${4:-}" ] && [ -s "$4" ]; then
    # The whole finding list in the XML; the first lines on the terminal.
    detail+=$'\n'"$(head -n 400 "$4")"
    head -n 60 "$4" | sed 's/^/#   /'
  fi
  JUNIT_CASES+="  <testcase classname=\"$JUNIT_SUITE\" name=\"$(printf '%s' "$1" | junit_xml_escape)\" time=\"$2\"><failure message=\"$(printf '%s' "$3" | junit_xml_escape)\">$(printf '%s' "$detail" | junit_xml_escape)</failure></testcase>"$'\n'
}

junit_write() {
  [ -n "$1" ] || return 0
  { echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuites><testsuite name=\"$JUNIT_SUITE\" tests=\"$JUNIT_N\" failures=\"$JUNIT_FAILED\">"
    printf '%s' "$JUNIT_CASES"
    echo '</testsuite></testsuites>'; } >"$1"
}

junit_failed() { ((JUNIT_FAILED > 0)); }

junit_now() { date +%s.%N; }
junit_since() { awk -v a="$1" -v b="$(junit_now)" 'BEGIN { printf "%.1f", b - a }'; }
