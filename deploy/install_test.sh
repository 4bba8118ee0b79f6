#!/bin/sh
# Runs install_test.py (the installer, for real, in temporary prefixes).
set -eu
if [ -n "${TEST_SRCDIR:-}" ]; then
  here="$TEST_SRCDIR/${TEST_WORKSPACE:-pocketmail}/deploy"
else
  here="$(cd "$(dirname "$0")" && pwd)"
fi
exec /usr/bin/python3 -B "$here/install_test.py" "$@"
