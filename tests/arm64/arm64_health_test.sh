#!/usr/bin/env bash
# The phone's arm64 binaries, as docs/INSTALL.md builds them (optimized and
# stripped), start and serve under qemu-aarch64-static.
#
# Builds `bazel build --config=aarch64 -c opt --strip=always --linkopt=-s
# //services/...` (one test case: a failed cross build is a failure, never a
# skip). --strip=always alone only links with -Wl,-S (debug sections), which
# leaves .symtab in; --linkopt=-s strips that too. Then, per binary (the four
# services, pocketmaild and pocketmailctl), one `binary-NAME` case: readelf says
# it is a 64-bit AArch64 ELF executable with no .symtab and no .debug* section,
# and it comes from an `-opt` output directory (bazel-out/aarch64-opt.../bin:
# Bazel names that directory after the compilation mode, so the build used
# -c opt). Then for each of the four services and pocketmaild (the four in one
# process): starts it alone under qemu with the minimal configuration it needs,
# waits for grpc.health.v1.Health/Check on its unix socket to say SERVING,
# sends SIGTERM and expects exit 0. `pocketmailctl --help` must run and exit 0.
# One test case per binary for each check (skipped, not run on stale binaries,
# when the build failed).
#
# QEMU_LD_PREFIX stays unset on purpose: pointing it at /usr/aarch64-linux-gnu
# mixes that loader with libc6:arm64's libc and threaded programs hang in
# pthread_create (docs/BUILDING.md). The binaries' interpreter,
# /lib/ld-linux-aarch64.so.1, comes from libc6:arm64.
#
# Not a Bazel test (it needs another Bazel configuration); ./pocketmail test runs
# it. Prints TAP-style `ok`/`not ok` lines and writes JUnit XML (one <testcase>
# each) for tests/test_summary.py. Exits non-zero on any failure.
#
#   tests/arm64/arm64_health_test.sh [-o results.xml] [--no-build] [--bin-dir DIR]
#
# --no-build skips the build; --bin-dir defaults to `bazel info` of the same
# flags' bazel-bin (not the racy .bazel/aarch64-bin symlink). A --bin-dir that
# is not an -opt output directory fails the binary-NAME cases.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)

XML_OUT="" BUILD=1 BIN_DIR=""
while (($#)); do
  case "$1" in
    -o) XML_OUT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    *) echo "usage: $0 [-o results.xml] [--no-build] [--bin-dir DIR]" >&2; exit 2 ;;
  esac
done

# The phone's build (docs/INSTALL.md): the aarch64 toolchain, optimized, stripped.
BUILD_FLAGS=(--config=aarch64 -c opt --strip=always --linkopt=-s)
BINARIES=(ledger router injector fetcher pocketmaild pocketmailctl)
QEMU=${PM_QEMU:-qemu-aarch64-static}
PY=/usr/bin/python3
INSPECT="$ROOT/tests/reflection/grpc_inspect.py"
START_TIMEOUT_S=${PM_ARM64_START_TIMEOUT:-60}   # emulated startup is slow on 2 cores
STOP_TIMEOUT_S=${PM_ARM64_STOP_TIMEOUT:-30}

SCRATCH=$(mktemp -d /tmp/pm-arm-XXXX)   # short: socket paths must stay < 108 bytes
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so the EXIT trap reaps the services

# --- results: TAP lines on stdout, JUnit XML on request --------------------------

N=0 FAILED=0 SKIPPED=0 CASES=""
xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' | tr -d '\000-\010\013\014\016-\037'; }
pass() {  # NAME SECONDS
  N=$((N + 1)); echo "ok $N - arm64 $1"
  CASES+="  <testcase classname=\"arm64\" name=\"$1\" time=\"$2\"/>"$'\n'
}
fail() {  # NAME SECONDS MESSAGE [LOGFILE]
  N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - arm64 $1: $3"
  local detail="$3"
  if [ -n "${4:-}" ] && [ -f "$4" ]; then
    detail+=$'\n'"--- log (tail) ---"$'\n'"$(tail -n 40 "$4")"
    tail -n 20 "$4" | sed 's/^/#   /'
  fi
  CASES+="  <testcase classname=\"arm64\" name=\"$1\" time=\"$2\"><failure message=\"$(printf '%s' "$3" | xml_escape)\">$(printf '%s' "$detail" | xml_escape)</failure></testcase>"$'\n'
}
skip() {  # NAME REASON
  N=$((N + 1)); SKIPPED=$((SKIPPED + 1)); echo "ok $N - arm64 $1 # SKIP $2"
  CASES+="  <testcase classname=\"arm64\" name=\"$1\" time=\"0\"><skipped message=\"$(printf '%s' "$2" | xml_escape)\"/></testcase>"$'\n'
}
write_xml() {
  [ -n "$XML_OUT" ] || return 0
  { echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuites><testsuite name=\"arm64_health_test\" tests=\"$N\" failures=\"$FAILED\" skipped=\"$SKIPPED\">"
    printf '%s' "$CASES"
    echo '</testsuite></testsuites>'; } >"$XML_OUT"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- the cross build ---------------------------------------------------------------

BUILD_OK=1
if ((BUILD)); then
  t0=$(now)
  if bazel build "${BUILD_FLAGS[@]}" //services/... >"$SCRATCH/build.log" 2>&1; then
    pass build "$(since "$t0")"
  else
    BUILD_OK=0
    fail build "$(since "$t0")" "bazel build ${BUILD_FLAGS[*]} //services/... failed" "$SCRATCH/build.log"
  fi
fi
if [ -z "$BIN_DIR" ]; then
  BIN_DIR=$(bazel info "${BUILD_FLAGS[@]}" bazel-bin 2>/dev/null) || BIN_DIR="$ROOT/.bazel/aarch64-bin"
fi

# --- what the phone gets: an aarch64 ELF, stripped, from the -c opt tree ---------------

check_binary() {
  local name=$1 bin t0 real hdr sections bad="" log="$SCRATCH/binary-$1.log"; t0=$(now)
  bin="$BIN_DIR/services/$name/$name"
  if ! [ -x "$bin" ]; then fail "binary-$name" "$(since "$t0")" "$bin: no such binary"; return; fi
  if ! command -v readelf >/dev/null 2>&1; then fail "binary-$name" "$(since "$t0")" "readelf (binutils) not installed"; return; fi
  real=$(readlink -f "$bin")
  hdr=$(readelf -h "$bin" 2>&1) sections=$(readelf -S -W "$bin" 2>&1)
  { echo "path: $real"; grep -E '^ *(Class|Machine|Type):' <<<"$hdr" || echo "$hdr"
    echo "sections: $(grep -oE '\] \.[^ ]+' <<<"$sections" | cut -c3- | tr '\n' ' ')"; } >"$log"
  grep -Eq '^ *Class: +ELF64$' <<<"$hdr" || bad+="; not ELF64"
  grep -Eq '^ *Machine: +AArch64$' <<<"$hdr" || bad+="; not AArch64"
  grep -Eq '^ *Type: +(EXEC|DYN) ' <<<"$hdr" || bad+="; not an executable"
  grep -Eq '\] \.symtab ' <<<"$sections" && bad+="; has .symtab (not stripped)"
  grep -Eq '\] \.z?debug[_.a-z]* ' <<<"$sections" && bad+="; has .debug sections"
  # bazel-out/<cpu>-<compilation mode><platform suffix>/bin/services/...
  [[ $real == */bazel-out/*-opt*/bin/services/* ]] || bad+="; not from a -c opt output directory ($real)"
  if [ -n "$bad" ]; then
    fail "binary-$name" "$(since "$t0")" "${bad#; }" "$log"
  else
    pass "binary-$name" "$(since "$t0")"
  fi
}

# --- one service under qemu ------------------------------------------------------------

# Just enough configuration for NAME to start without its peers (as in
# tests/reflection/reflection_test.py), one per line as NAME=VALUE.
minimal_env() {
  local name=$1 state=$2
  case "$name" in
    ledger) echo "POCKETMAIL_STATE_DIR=$state" ;;
    router)
      echo "MAIL_DOMAIN=example.org"
      # Literal \n: the shell running MAIL_ACCOUNTS_CMD has printf expand them.
      printf '%s\n' "MAIL_ACCOUNTS_CMD=printf 'alice@example.org\\ninbox@example.org\\n'" ;;
    injector)
      echo "MAIL_INJECT_HOST=127.0.0.1"
      echo "MAIL_INJECT_PORT=9"  # discard: never dialled by a health check
      echo "INJECT_USER=u"
      echo "INJECT_PASS=p"
      echo "MAIL_HOSTNAME=test" ;;
    fetcher)
      echo "MAIL_DOMAIN=example.org"
      echo "R2_BUCKET=mail"
      echo "R2_ENDPOINT=https://127.0.0.1:9"  # discard port: listing fails fast
      echo "R2_ACCESS_KEY_ID=x"
      echo "R2_SECRET_ACCESS_KEY=y"
      echo "MAIL_POLL=3600"
      echo "POCKETMAIL_STATE_DIR=$state" ;;
    pocketmaild)  # the four in one process: their settings together
      local each
      for each in ledger router injector fetcher; do minimal_env "$each" "$state"; done | sort -u ;;
  esac
}

check_service() {
  local name=$1 bin="$BIN_DIR/services/$1/$1" t0; t0=$(now)
  local dir="$SCRATCH/$name" log="$SCRATCH/$name.log"
  # pocketmaild serves the four services' sockets; the fetcher's opens with the rest.
  local run="$dir/run" sock="$dir/run/$name.sock"
  [ "$name" = pocketmaild ] && sock="$dir/run/fetcher.sock"
  if ! [ -x "$bin" ]; then fail "$name" "$(since "$t0")" "$bin: no such binary"; return; fi
  mkdir -p "$run" && chmod 700 "$run"

  # A clean environment: nothing from the developer's shell (MAIL_*, R2_*, ...)
  # and no QEMU_LD_PREFIX.
  local envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$dir" POCKETMAIL_RUNTIME_DIR="$run")
  local line
  while IFS= read -r line; do envs+=("$line"); done < <(minimal_env "$name" "$dir/state")
  (cd "$dir" && exec env -i "${envs[@]}" "$QEMU" "$bin") </dev/null >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")

  local status="" deadline=$((SECONDS + START_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"; local rc=$?
      fail "$name" "$(since "$t0")" "exited with $rc before serving" "$log"; return
    fi
    if [ -S "$sock" ]; then
      status=$("$PY" "$INSPECT" -max-time 2 "unix:$sock" health 2>&1 | tail -1)
      [ "$status" = SERVING ] && break
    fi
    sleep 0.2
  done
  if [ "$status" != SERVING ]; then
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    fail "$name" "$(since "$t0")" "not SERVING on $sock after ${START_TIMEOUT_S}s (last: ${status:-no socket})" "$log"
    return
  fi

  kill -TERM "$pid"
  local stop_deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < stop_deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    fail "$name" "$(since "$t0")" "still running ${STOP_TIMEOUT_S}s after SIGTERM" "$log"; return
  fi
  wait "$pid"; local rc=$?
  if [ "$rc" != 0 ]; then
    fail "$name" "$(since "$t0")" "SERVING, but exited $rc on SIGTERM (want 0)" "$log"; return
  fi
  pass "$name" "$(since "$t0")"
}

check_ctl() {
  local bin="$BIN_DIR/services/pocketmailctl/pocketmailctl" t0; t0=$(now)
  local log="$SCRATCH/pocketmailctl.log"
  if ! [ -x "$bin" ]; then fail pocketmailctl "$(since "$t0")" "$bin: no such binary"; return; fi
  env -i PATH=/usr/bin:/bin timeout 60 "$QEMU" "$bin" --help >"$log" 2>&1
  local rc=$?
  if [ "$rc" != 0 ]; then
    fail pocketmailctl "$(since "$t0")" "--help exited $rc (want 0)" "$log"
  elif ! grep -q '^usage: pocketmailctl' "$log"; then
    fail pocketmailctl "$(since "$t0")" "--help printed no usage line" "$log"
  else
    pass pocketmailctl "$(since "$t0")"
  fi
}

if ((!BUILD_OK)); then
  # The failed build is the one failure; the last good binaries prove nothing.
  for b in "${BINARIES[@]}"; do skip "binary-$b" "the arm64 build failed"; done
  for b in "${BINARIES[@]}"; do skip "$b" "the arm64 build failed"; done
else
  for b in "${BINARIES[@]}"; do check_binary "$b"; done
  if ! command -v "$QEMU" >/dev/null 2>&1; then
    for b in "${BINARIES[@]}"; do fail "$b" 0 "$QEMU not installed"; done
  else
    for b in ledger router injector fetcher pocketmaild; do check_service "$b"; done
    check_ctl
  fi
fi

echo "1..$N"
echo "# arm64: $((N - FAILED - SKIPPED)) passed, $FAILED failed$( ((SKIPPED)) && echo ", $SKIPPED skipped")"
write_xml
((FAILED == 0))
