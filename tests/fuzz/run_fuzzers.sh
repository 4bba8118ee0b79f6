#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang-14 (ASan + UBSan) and
# runs each for a bounded time over a scratch copy of its checked-in corpus.
#
#   tests/fuzz/run_fuzzers.sh [--update-corpus] [--only NAME[,NAME...]] [--build-only]
#                             [seconds_per_target]        (default 60)
#
# Prints one line per target:
#   fuzz: target=<name> runs=<N> seconds=<S> crashes=<0|1>
# and, for a crash, where the reproducer and the log are. Exits non-zero when
# any target crashed (or failed to build).
#
# The sources under test are compiled directly (not through Bazel: switching
# Bazel's compiler would rebuild everything) into $FUZZ_BUILD_DIR (default
# .bazel/fuzz, git-ignored), incrementally. --update-corpus merges inputs that
# found new coverage into tests/fuzz/corpus/<name>/ (libFuzzer -merge=1);
# without it the checked-in corpus is never written to.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO" || exit 2

ALL_TARGETS=(listing_xml rfc2047 smtp_reply address router_rules)

seconds=60
update_corpus=0
build_only=0
targets=("${ALL_TARGETS[@]}")
while (($#)); do
  case "$1" in
    --update-corpus) update_corpus=1 ;;
    --build-only) build_only=1 ;;
    --only) shift; IFS=, read -r -a targets <<<"${1:-}" ;;
    --only=*) IFS=, read -r -a targets <<<"${1#--only=}" ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*|'') echo "run_fuzzers: bad argument: $1" >&2; exit 2 ;;
    *) seconds="$1" ;;
  esac
  shift
done
for t in "${targets[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "run_fuzzers: unknown target $t" >&2; exit 2; }
done

CXX="${CXX:-clang++-14}"
BUILD="${FUZZ_BUILD_DIR:-$REPO/.bazel/fuzz}"
JOBS="${FUZZ_JOBS:-$(nproc)}"
command -v "$CXX" >/dev/null || { echo "run_fuzzers: $CXX not found (apt-get install clang-14)" >&2; exit 2; }

# ---------------------------------------------------------------- what to build
# The repo sources each target links; generated sources live under $BUILD/gen.
GEN_ROUTER_PB="$BUILD/gen/pocketmail/router/v1/router.pb.cc"
declare -A SRCS=(
  [listing_xml]="common/s3/listing_parser.cc common/s3/xml_tree.cc common/s3/uri_encode.cc"
  [rfc2047]="common/mime/rfc2047.cc common/mime/charset.cc"
  [smtp_reply]="common/smtp/reply.cc common/smtp/address.cc common/smtp/utf8.cc"
  [address]="common/mail/address.cc common/mail/punycode.cc common/mail/utf8.cc"
  [router_rules]="services/router/recipient_router.cc services/router/account_source.cc
                  services/router/command_runner.cc common/mail/address.cc
                  common/mail/punycode.cc common/mail/utf8.cc common/log/log.cc $GEN_ROUTER_PB"
)
declare -A LIBS=(
  [listing_xml]="-lexpat"
  [rfc2047]=""
  [smtp_reply]=""
  [address]=""
  [router_rules]="-lprotobuf -pthread"
)

# The abseil libraries Bazel links (bazel/system_libs.BUILD), so both builds agree.
mapfile -t ABSL_LIBS < <(grep -o '"-labsl_[a-z0-9_]*"' bazel/system_libs.BUILD | tr -d '"' | awk '!seen[$0]++')

# shellcheck disable=SC2054  # the commas are clang's, not array separators
CXXFLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer
          -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
          -I. -I"$BUILD/gen" -I/usr/include)
# shellcheck disable=SC2054
LINKFLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

mkdir -p "$BUILD"/{obj,bin,gen,work,artifacts,logs}

# Objects depend on the flags: start over when they change.
flags_now="$CXX ${CXXFLAGS[*]}"
if [[ "$(cat "$BUILD/obj/.flags" 2>/dev/null)" != "$flags_now" ]]; then
  rm -rf "$BUILD/obj"; mkdir -p "$BUILD/obj"; printf '%s' "$flags_now" >"$BUILD/obj/.flags"
fi

obj_of() {  # source path -> object path
  local rel="${1#"$BUILD"/}"
  echo "$BUILD/obj/${rel%.cc}.o"
}

stale() {  # object path: true when missing or older than a file it was built from
  local obj="$1" dep
  [[ -f "$obj" && -f "$obj.d" ]] || return 0
  # shellcheck disable=SC2013  # a .d file is whitespace-separated paths
  for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$obj.d"); do
    [[ -e "$dep" && ! "$dep" -nt "$obj" ]] || return 0
  done
  return 1
}

compile() {  # source object
  mkdir -p "$(dirname "$2")"
  if ! "$CXX" "${CXXFLAGS[@]}" -MMD -MF "$2.d" -c "$1" -o "$2" 2>"$2.log"; then
    cat "$2.log" >&2
    touch "$BUILD/obj/.failed"
    return 1
  fi
}

build() {
  rm -f "$BUILD/obj/.failed"
  if [[ " ${targets[*]} " == *" router_rules "* ]]; then
    local proto=proto/pocketmail/router/v1/router.proto
    if [[ ! -f "$GEN_ROUTER_PB" || "$proto" -nt "$GEN_ROUTER_PB" ]]; then
      /usr/bin/protoc -Iproto --cpp_out="$BUILD/gen" "$proto" || return 1
    fi
  fi
  local t src obj running=0
  local -A queued=()
  for t in "${targets[@]}"; do
    for src in ${SRCS[$t]} "tests/fuzz/${t}_fuzzer.cc"; do
      obj="$(obj_of "$src")"
      [[ -n "${queued[$obj]:-}" ]] && continue
      queued[$obj]=1
      stale "$obj" || continue
      if ((running >= JOBS)); then wait -n; running=$((running - 1)); fi
      echo "run_fuzzers: compiling $src" >&2
      compile "$src" "$obj" &
      running=$((running + 1))
    done
  done
  wait
  [[ -e "$BUILD/obj/.failed" ]] && return 1
  for t in "${targets[@]}"; do
    local objs=() bin="$BUILD/bin/${t}_fuzzer" relink=0
    for src in ${SRCS[$t]} "tests/fuzz/${t}_fuzzer.cc"; do
      obj="$(obj_of "$src")"
      objs+=("$obj")
      [[ "$obj" -nt "$bin" ]] && relink=1
    done
    [[ -x "$bin" && $relink == 0 ]] && continue
    echo "run_fuzzers: linking ${t}_fuzzer" >&2
    # shellcheck disable=SC2086  # LIBS entries are word lists
    "$CXX" "${LINKFLAGS[@]}" "${objs[@]}" -o "$bin" ${LIBS[$t]} "${ABSL_LIBS[@]}" || return 1
  done
}

if ! build; then
  echo "run_fuzzers: build failed" >&2
  exit 1
fi
((build_only)) && exit 0

# ------------------------------------------------------------------------ run
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]] && command -v llvm-symbolizer-14 >/dev/null; then
  ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer-14)"
  export ASAN_SYMBOLIZER_PATH
fi

status=0
for t in "${targets[@]}"; do
  bin="$BUILD/bin/${t}_fuzzer"
  seeds="tests/fuzz/corpus/$t"
  work="$BUILD/work/$t"
  artifacts="$BUILD/artifacts/$t/"
  log="$BUILD/logs/$t.log"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  cp -r "$seeds" "$work/corpus"  # libFuzzer writes new inputs here, not into the repo
  args=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1
        -artifact_prefix="$artifacts")
  [[ -f "tests/fuzz/$t.dict" ]] && args+=(-dict="tests/fuzz/$t.dict")

  start=$SECONDS
  "$bin" "${args[@]}" "$work/corpus" >"$log" 2>&1
  rc=$?
  elapsed=$((SECONDS - start))

  runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  [[ -n "$runs" ]] || runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
  [[ -n "$runs" ]] || runs="$(sed -n 's/^#\([0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n 1)"
  crashed=0
  ((rc != 0)) && crashed=1
  echo "fuzz: target=$t runs=${runs:-0} seconds=$elapsed crashes=$crashed"
  if ((crashed)); then
    status=1
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    echo "fuzz: target=$t exit=$rc artifact=${artifact:-none} log=$log"
    grep -m 1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz property violated' "$log" |
      sed "s/^/fuzz: target=$t /"
    echo "fuzz: reproduce: $bin ${artifact:-<artifact>}; keep it: cp ${artifact:-<artifact>} tests/fuzz/crashes/$t/"
  elif ((update_corpus)); then
    before=$(find "$seeds" -type f | wc -l)
    "$bin" -merge=1 -timeout=5 -rss_limit_mb=1024 "$seeds" "$work/corpus" >>"$log" 2>&1 ||
      { echo "fuzz: target=$t corpus merge failed (see $log)"; status=1; }
    after=$(find "$seeds" -type f | wc -l)
    echo "fuzz: target=$t corpus $seeds: $before -> $after files"
  fi
done
exit "$status"
