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
mkdir -p "$cache"

# Maddy 0.8 needs Go >= 1.23; Debian 12 ships 1.19. Without a new enough `go`
# on PATH, the Go toolchain itself comes from the module proxy, where it is
# published as the module golang.org/toolchain (what `go` does for
# GOTOOLCHAIN), into the cache beside the binaries.
go_ok() { "$1" version 2>/dev/null | grep -Eq 'go1\.(2[3-9]|[3-9][0-9])'; }
GO=$(command -v go || true)
if [ -z "$GO" ] || ! go_ok "$GO"; then
  toolchain=1.23.4
  case $(uname -m) in x86_64) goarch=amd64 ;; aarch64) goarch=arm64 ;; *) echo "build_maddy: no Go toolchain for $(uname -m)" >&2; exit 1 ;; esac
  gocache=${cache%/*}/go-$toolchain
  GO=$gocache/go/bin/go
  if ! go_ok "$GO"; then
    echo "build_maddy: fetching Go $toolchain from the Go module proxy (Go >= 1.23 not on PATH)" >&2
    proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}
    rm -rf "$gocache" && mkdir -p "$gocache"
    zip=$gocache/toolchain.zip
    curl -fsSL --proto '=https' -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$toolchain.linux-$goarch.zip" \
      || { echo "build_maddy: cannot download the Go toolchain" >&2; exit 1; }
    /usr/bin/python3 -m zipfile -e "$zip" "$gocache/unpacked"
    mv "$gocache/unpacked/golang.org/toolchain@v0.0.1-go$toolchain.linux-$goarch" "$gocache/go"
    rm -rf "$zip" "$gocache/unpacked"
    chmod -R a+x "$gocache/go/bin" "$gocache/go/pkg/tool"  # zip entries carry no modes
    go_ok "$GO" || { echo "build_maddy: the fetched Go toolchain does not run" >&2; exit 1; }
  fi
fi
echo "build_maddy: building Maddy $version from the Go module proxy (once; a few minutes)" >&2
# GOTOOLCHAIN=local: build with the installed Go, never fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=1
moddir=$(cd "$cache" && "$GO" mod download -json "github.com/foxcpp/maddy@v$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$moddir" ] || { echo "build_maddy: go mod download of maddy v$version failed" >&2; exit 1; }
tmp=$(mktemp "$cache/maddy.build.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(cd "$moddir" && "$GO" build -trimpath -ldflags "-X github.com/foxcpp/maddy.Version=$version" -o "$tmp" ./cmd/maddy) >&2
chmod 755 "$tmp"
"$tmp" version | grep -q "^$version " || { echo "build_maddy: built binary does not report $version" >&2; exit 1; }
mv -f "$tmp" "$bin"
trap - EXIT
printf '%s\n' "$bin"
