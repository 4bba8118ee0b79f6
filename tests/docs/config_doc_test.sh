#!/usr/bin/env bash
# docs/CONFIGURATION.md must match what the binaries say about themselves.
set -euo pipefail
ROOT="$TEST_SRCDIR/$TEST_WORKSPACE"
cd "$ROOT"
if ! diff -u docs/CONFIGURATION.md <(docs/gen_config_doc.sh "$ROOT"); then
  echo "docs/CONFIGURATION.md is stale: run docs/gen_config_doc.sh > docs/CONFIGURATION.md" >&2
  exit 1
fi
