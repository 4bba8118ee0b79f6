#!/bin/sh
# Runs reflection_test.py with Debian's python3 (python3-grpcio, python3-grpc-tools).
set -eu
if [ -n "${TEST_SRCDIR:-}" ]; then
  here="$TEST_SRCDIR/${TEST_WORKSPACE:-pocketmail}/tests/reflection"
else
  here="$(cd "$(dirname "$0")" && pwd)"
fi
exec /usr/bin/python3 -B "$here/reflection_test.py" "$@"
