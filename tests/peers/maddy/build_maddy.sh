#!/usr/bin/env bash
# Builds Maddy from the Go module proxy, once per version, into a cache outside
# the repo, and prints the binary's path on stdout.
#
#   tests/peers/maddy/build_maddy.sh [VERSION]     (default: 0.8.1)
#
# Cache: ${POCKETMAIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketmail}/maddy/<VERSION>/maddy
# A binary there is reused; otherwise the module is downloaded (`go mod
# download`) and built inside its own module directory, so Maddy's own go.mod
# and go.sum, replace directives included, decide every dependency. (A scratch
# module that merely requires Maddy would ignore those replaces and fail to
# compile.) The build lands in a temp file that is renamed into place, so an
# interrupted build is never taken for a finished one.
#
# Test peer only: nothing of Maddy's is committed to this repo. The phone's
# Maddy is a pinned release tarball (deploy/maddy-release.env).
set -euo pipefail
version=${1:-0.8.1}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build_maddy: bad version '$version'" >&2; exit 2; }
cache=${POCKETMAIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketmail}/maddy/$version
bin=$cache/maddy
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "^$version "; then
  printf '%s\n' "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "build_maddy: Go is not installed (needed to build the Maddy test peer)" >&2; exit 1; }
mkdir -p "$cache"
echo "build_maddy: building Maddy $version from the Go module proxy (once; a few minutes)" >&2
# GOTOOLCHAIN=local: build with the installed Go, never fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=1
moddir=$(cd "$cache" && go mod download -json "github.com/foxcpp/maddy@v$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$moddir" ] || { echo "build_maddy: go mod download of maddy v$version failed" >&2; exit 1; }
tmp=$(mktemp "$cache/maddy.build.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(cd "$moddir" && go build -trimpath -ldflags "-X github.com/foxcpp/maddy.Version=$version" -o "$tmp" ./cmd/maddy) >&2
chmod 755 "$tmp"
"$tmp" version | grep -q "^$version " || { echo "build_maddy: built binary does not report $version" >&2; exit 1; }
mv -f "$tmp" "$bin"
trap - EXIT
printf '%s\n' "$bin"
