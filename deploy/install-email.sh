#!/usr/bin/env bash
# deploy/install-email.sh — the pocketmail email step of the homeserver installer.
#
# Installs Maddy (pinned release) and pocketmaild (the four pocketmail
# services, ledger, router, injector and fetcher, in one process; or the four
# as separate processes) plus pocketmailctl into the Debian userland,
# renders maddy.conf, generates credentials and the gRPC token, provisions the
# Maddy accounts, writes runit run scripts and systemd units, (re)starts what
# changed and ends with a health check. Gated on ENABLE_EMAIL=true; idempotent.
#
# usage: install-email.sh [options] [install [SERVICE] | upgrade SERVICE |
#                                     restart SERVICE | remove SERVICE | health |
#                                     add-mailbox ADDRESS]
#
#   SERVICE is one of: maddy pocketmaild
#   add-mailbox ADDRESS creates a Maddy login and mailbox (password: one line on
#   stdin; kept if the login exists already). The router sees it within
#   seconds through MAIL_ACCOUNTS_WATCH.
#   (with POCKETMAIL_COMBINED=false in the .env: maddy ledger router injector
#   fetcher, four processes; switching either way retires the other layout)
#
# options:
#   --prefix DIR       root everything is installed under (default /)
#   --env FILE         the .env with ENABLE_EMAIL, MAIL_DOMAIN, ... (default ./.env)
#   --bin-dir DIR      where the built binaries are: DIR/<svc>/<svc>
#                      (default .bazel/bin/services next to this repo)
#   --secrets-src DIR  copy mail-r2.env / mail-relay.env from DIR (0600) into the
#                      secrets dir; otherwise they must already be there
#   --copy-libs        also copy the binaries' ldd-discovered shared libraries
#                      (not glibc itself) into <prefix>/opt/pocketmail/lib, for
#                      a userland root that lacks the -dev packages' runtimes
#   --init MODE        how services are (re)started: runit | systemd | direct |
#                      none | auto (default: runit when `sv` and $SVDIR exist,
#                      systemd when PID 1 is systemd and --prefix is /, else direct)
#   --no-health        skip the final health check
#   -h, --help
#
# Test hooks (environment):
#   MADDY_BIN=PATH     install this executable as maddy instead of the pinned
#                      release; no checksum is applied (it is not a release
#                      tarball). Used by deploy/install_test.py with a stand-in.
#   MADDY_TARBALL=PATH use this release tarball instead of downloading it; its
#                      sha256 must match the pin (placeholders are refused).
#   MADDY_ARCH=ARCH    override `uname -m` (x86_64 | aarch64)
#   MADDY_RELEASE_ENV=FILE  read the pin from FILE instead of maddy-release.env
#
# Secrets never go on argv or into logs: passwords reach `maddy creds create`
# on stdin from the printf builtin; services get 0600 env-file paths.

readonly FOUR_SERVICES=(ledger router injector fetcher)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

log() { printf '[install-email] %s\n' "$*" >&2; }
die() { printf '[install-email] ERROR: %s\n' "$*" >&2; exit 1; }

# The comment block at the top of this file.
usage() { sed -n '2,/^[^#]/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# --- arguments ------------------------------------------------------------------
# parse_args ARG...: sets PREFIX ENV_FILE BIN_SRC SECRETS_SRC COPY_LIBS INIT
# DO_HEALTH, and CMD / TARGET (the command and its argument, not yet checked
# against the layout: that needs the .env).
parse_args() {
  PREFIX=/
  ENV_FILE=./.env
  BIN_SRC=""
  SECRETS_SRC=""
  COPY_LIBS=0
  INIT=auto
  DO_HEALTH=1
  local -a args=()
  while (($#)); do
    case $1 in
      --prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
      --prefix=*) PREFIX=${1#*=}; shift ;;
      --env) ENV_FILE=${2:?--env needs a value}; shift 2 ;;
      --env=*) ENV_FILE=${1#*=}; shift ;;
      --bin-dir) BIN_SRC=${2:?--bin-dir needs a value}; shift 2 ;;
      --bin-dir=*) BIN_SRC=${1#*=}; shift ;;
      --secrets-src) SECRETS_SRC=${2:?--secrets-src needs a value}; shift 2 ;;
      --secrets-src=*) SECRETS_SRC=${1#*=}; shift ;;
      --copy-libs) COPY_LIBS=1; shift ;;
      --init) INIT=${2:?--init needs a value}; shift 2 ;;
      --init=*) INIT=${1#*=}; shift ;;
      --no-health) DO_HEALTH=0; shift ;;
      -h|--help) usage; exit 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) args+=("$1"); shift ;;
    esac
  done
  CMD=${args[0]:-install}
  TARGET=${args[1]:-}
  case $CMD in
    install|upgrade|restart|remove|health) ;;
    add-mailbox) [ -n "$TARGET" ] || die "add-mailbox needs an ADDRESS" ;;
    *) die "unknown command $CMD (install, upgrade, restart, remove, health, add-mailbox)" ;;
  esac
  [ -n "$BIN_SRC" ] || BIN_SRC=$(cd "$HERE/.." && pwd)/.bazel/bin/services
}

# Every path ends up inside run scripts and maddy.conf: keep them boring.
safe_path() {
  [[ $1 =~ ^[A-Za-z0-9._/+@:-]+$ ]] || die "path '$1' has characters this installer does not quote (allowed: A-Z a-z 0-9 . _ / + @ : -)"
}

# set_paths PREFIX: where everything goes under PREFIX (readonly afterwards).
set_paths() {
  safe_path "$1"
  P=${1%/}
  readonly P
  readonly BIN_DIR=$P/opt/pocketmail/bin
  readonly LIB_DIR=$P/opt/pocketmail/lib
  readonly CONF_DIR=$P/etc/pocketmail
  readonly SECRETS_DIR=$P/etc/pocketmail/secrets
  readonly STATE_DIR=$P/var/lib/pocketmail
  readonly MADDY_STATE_DIR=$P/var/lib/pocketmail/maddy
  readonly RUNTIME_DIR=$P/run/pocketmail
  readonly MADDY_RUNTIME_DIR=$P/run/pocketmail/maddy
  readonly LOG_DIR=$P/var/log/pocketmail
  readonly SV_DIR=$P/etc/sv
  readonly SYSTEMD_DIR=$P/etc/systemd/system
  readonly TOKEN_FILE=$SECRETS_DIR/grpc-token                  # operator: every gRPC method
  readonly GATEWAY_TOKEN_FILE=$SECRETS_DIR/grpc-gateway-token  # gateway: read-only methods (docs/GRPC.md)
}

# --- the .env (parsed, never sourced) -------------------------------------------
# read_env FILE ARRAY: the services' env-file syntax (ReadEnvFile in
# common/config/settings.cc; install_test.py checks the two agree): lines split
# on LF and trimmed of ASCII whitespace (so CRLF is fine); blank lines and
# lines starting with # skipped; an optional `export `; KEY=VALUE split at the
# first =, key and value trimmed, then one pair of matching quotes stripped
# from the value. A line with no KEY= is refused. Keys that are not shell
# names (which nothing here looks up) are not stored. Values are never evaluated.
read_env() {
  local file=$1 line key val n=0 ws=$' \t\n\v\f\r'
  local -n into=$2
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line=${line#"${line%%[!"$ws"]*}"}; line=${line%"${line##*[!"$ws"]}"}
    [[ -z $line || $line == \#* ]] && continue
    line=${line#export }
    [[ $line == *=* && $line != =* ]] || die "$file:$n: expected KEY=VALUE"
    key=${line%%=*}; val=${line#*=}
    key=${key%"${key##*[!"$ws"]}"}; key=${key#"${key%%[!"$ws"]*}"}
    val=${val#"${val%%[!"$ws"]*}"}
    [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ $val =~ ^\"(.*)\"$ || $val =~ ^\'(.*)\'$ ]]; then val=${BASH_REMATCH[1]}; fi
    # shellcheck disable=SC2034,SC2004  # an associative array, written through the nameref
    into[$key]=$val
  done < "$file"
}

# env_dump FILE: read_env's result as KEY NUL VALUE NUL, in key order (the
# format of //common/config:env_file_dump, for the test that compares them).
env_dump() {
  local -A kv=()
  local key
  read_env "$1" kv
  while IFS= read -r key; do
    [ -n "$key" ] && printf '%s\0%s\0' "$key" "${kv[$key]}"
  done < <(printf '%s\n' "${!kv[@]}" | LC_ALL=C sort)
}

# load_env: the .env into ENVV, then the gate. `remove` still works with
# email disabled (or no .env), so it can be cleaned up.
load_env() {
  declare -gA ENVV=()
  if [ -f "$ENV_FILE" ]; then
    read_env "$ENV_FILE" ENVV
  elif [ "$CMD" != remove ]; then
    die "no .env at $ENV_FILE (use --env FILE)"
  fi
  if [ "${ENVV[ENABLE_EMAIL]:-false}" != true ] && [ "$CMD" != remove ]; then
    log "ENABLE_EMAIL is not true in $ENV_FILE: nothing to do"
    exit 0
  fi
}

env_or() { local v=${ENVV[$1]:-}; printf '%s' "${v:-$2}"; }

# The process layout: pocketmaild (default), all four services in one process
# with each API on its usual socket, or the four as processes of their own
# (docs/ARCHITECTURE.md, "One process or four": on the phone one process costs
# a third of the CPU and RSS). SERVICES are this layout's units, RETIRED the other's,
# ALL_UNITS maddy and SERVICES. Then TARGET is checked against them.
combined_setting() { env_or POCKETMAIL_COMBINED true; }

pick_layout() {
  case $(combined_setting) in
    true) SERVICES=(pocketmaild); RETIRED=("${FOUR_SERVICES[@]}") ;;
    false) SERVICES=("${FOUR_SERVICES[@]}"); RETIRED=(pocketmaild) ;;
    *) die "POCKETMAIL_COMBINED must be true or false" ;;
  esac
  readonly SERVICES RETIRED
  readonly ALL_UNITS=(maddy "${SERVICES[@]}")
  case $CMD in
    upgrade|restart|remove) [ -n "$TARGET" ] || die "$CMD needs a SERVICE (${ALL_UNITS[*]})" ;;
  esac
  if [ -n "$TARGET" ] && [ "$CMD" != add-mailbox ]; then
    # remove also takes the other layout's units
    local -a known=("${ALL_UNITS[@]}")
    [ "$CMD" = remove ] && known+=("${RETIRED[@]}")
    case " ${known[*]} " in *" $TARGET "*) ;; *) die "unknown service $TARGET (${known[*]})" ;; esac
  fi
}

# read_settings: the .env's settings, with their defaults.
read_settings() {
  MAIL_DOMAIN=$(env_or MAIL_DOMAIN "")
  MAIL_HOSTNAME=$(env_or MAIL_HOSTNAME "$MAIL_DOMAIN")
  MAIL_IMAP_PORT=$(env_or MAIL_IMAP_PORT 9143)
  MAIL_INJECT_PORT=$(env_or MAIL_INJECT_PORT 9125)
  MAIL_SUBMISSION_PORT=$(env_or MAIL_SUBMISSION_PORT 9587)
  MAIL_POLL=$(env_or MAIL_POLL 180)
  MAIL_ADMIN_LOCALPART=$(env_or MAIL_ADMIN_LOCALPART admin)
  ALERT_DAYS=$(env_or ALERT_DAYS 3)
  MAIL_ALERT_CMD=$(env_or MAIL_ALERT_CMD "")
  MAIL_USERS_FILE=$(env_or MAIL_USERS_FILE "")
  R2_ENDPOINT=$(env_or R2_ENDPOINT "")
  R2_CA_FILE=$(env_or R2_CA_FILE "")
  # How the injector reaches Maddy: lmtp (a unix socket, the default) or
  # submission (SMTP AUTH on 127.0.0.1:MAIL_INJECT_PORT; refuses sloppy headers).
  MAIL_INJECT_VIA=$(env_or MAIL_INJECT_VIA lmtp)
  MAIL_MAX_MESSAGE_SIZE=$(env_or MAIL_MAX_MESSAGE_SIZE 32M)
}

validate() {
  [[ $MAIL_DOMAIN =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ && $MAIL_DOMAIN == *.* ]] \
    || die "MAIL_DOMAIN must be a domain name (got '${MAIL_DOMAIN}')"
  [[ $MAIL_HOSTNAME =~ ^[A-Za-z0-9.-]+$ ]] || die "MAIL_HOSTNAME must be a host name"
  local p
  for p in MAIL_IMAP_PORT MAIL_INJECT_PORT MAIL_SUBMISSION_PORT; do
    if [[ ! ${!p} =~ ^[0-9]+$ ]] || ((${!p} < 1 || ${!p} > 65535)); then die "$p must be a port number"; fi
  done
  [[ $MAIL_POLL =~ ^[0-9]+$ ]] || die "MAIL_POLL must be a number of seconds"
  [[ $ALERT_DAYS =~ ^[0-9]+$ ]] || die "ALERT_DAYS must be a number of days"
  [[ $MAIL_INJECT_VIA == lmtp || $MAIL_INJECT_VIA == submission ]] \
    || die "MAIL_INJECT_VIA must be lmtp or submission (got '$MAIL_INJECT_VIA')"
  [[ $MAIL_MAX_MESSAGE_SIZE =~ ^[1-9][0-9]*[KMG]?$ ]] \
    || die "MAIL_MAX_MESSAGE_SIZE must be a size like 32M (got '$MAIL_MAX_MESSAGE_SIZE')"
  [[ $MAIL_ADMIN_LOCALPART =~ ^[a-z0-9][a-z0-9._-]*$ ]] || die "MAIL_ADMIN_LOCALPART must be a lowercase local part"
  local v
  for v in "$MAIL_ALERT_CMD" "$MAIL_USERS_FILE" "$R2_ENDPOINT" "$R2_CA_FILE"; do
    [[ $v != *$'\n'* ]] || die "a .env value contains a newline"
  done
}

# --- small file helpers ---------------------------------------------------------
# CHANGED (set by init_state): what this run changed, for the summary and restarts
note_change() { CHANGED+=("$1"); log "updated $1"; }

ensure_dir() {  # ensure_dir DIR MODE
  if [ ! -d "$1" ]; then mkdir -p "$1"; note_change "$1/"; fi
  if [ "$(stat -c %a "$1")" != "${2#0}" ]; then chmod "$2" "$1"; fi
}

# write_atomic DEST MODE < content: write to a temp file beside DEST, then mv.
# An identical file is left untouched (so a re-run changes nothing). Returns 0
# when DEST changed, 1 when it was already up to date.
write_atomic() {
  local dest=$1 mode=$2 tmp
  # Explicit `|| die`: callers use this in `&&` lists, where set -e is off.
  tmp=$(mktemp "$dest.tmp.XXXXXX") || die "cannot create a file next to $dest"
  cat > "$tmp" || { rm -f "$tmp"; die "cannot write $dest"; }
  chmod "$mode" "$tmp" || die "cannot chmod $tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$dest" || die "cannot move $tmp to $dest"
  note_change "$dest"
  return 0
}

install_file() {  # install_file SRC DEST MODE -> 0 changed, 1 unchanged
  [ -r "$1" ] || die "cannot read $1"
  write_atomic "$2" "$3" < "$1"
}

# render TEMPLATE: {{NAME}} -> value of RENDER[NAME] on stdout. Plain string
# substitution, never eval; a value with a newline or a brace is refused, and
# so is a placeholder without a value.
render() {
  local line name val
  for name in "${!RENDER[@]}"; do
    val=${RENDER[$name]}
    [[ $val != *$'\n'* && $val != *'}'* && $val != *'{'* ]] \
      || die "value for {{$name}} contains a newline or a brace"
  done
  while IFS= read -r line || [ -n "$line" ]; do
    while [[ $line =~ \{\{([A-Z0-9_]+)\}\} ]]; do
      name=${BASH_REMATCH[1]}
      [[ -v RENDER[$name] ]] || die "$1: no value for {{$name}}"
      line=${line//"{{$name}}"/"${RENDER[$name]}"}
    done
    printf '%s\n' "$line"
  done < "$1"
}

# --- secrets --------------------------------------------------------------------
gen_secret() {  # N random bytes from /dev/urandom as hex
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# ensure_private_file FILE: exists and is 0600 (the services refuse anything looser)
ensure_private_file() {
  [ -f "$1" ] || return 1
  if [ "$(stat -c %a "$1")" != 600 ]; then chmod 600 "$1"; note_change "$1 (mode 600)"; fi
}

provide_user_secrets() {
  local f
  for f in mail-r2.env mail-relay.env; do
    if [ -n "$SECRETS_SRC" ] && [ -f "$SECRETS_SRC/$f" ]; then
      install_file "$SECRETS_SRC/$f" "$SECRETS_DIR/$f" 600 || true
    fi
    ensure_private_file "$SECRETS_DIR/$f" \
      || die "missing $SECRETS_DIR/$f (see docs/INSTALL.md; or pass --secrets-src DIR)"
  done
  grep -q '^[[:space:]]*\(export \)\{0,1\}RESEND_API_KEY=.' "$SECRETS_DIR/mail-relay.env" \
    || die "$SECRETS_DIR/mail-relay.env has no RESEND_API_KEY"
}

# Generated on first run, reused afterwards (re-read from the 0600 files).
generate_credentials() {
  declare -A old=()
  [ -f "$SECRETS_DIR/mail-inject.env" ] && read_env "$SECRETS_DIR/mail-inject.env" old
  [ -f "$SECRETS_DIR/mail-admin.env" ] && read_env "$SECRETS_DIR/mail-admin.env" old
  INJECT_USER=${old[INJECT_USER]:-pocketmail-inject@$MAIL_DOMAIN}
  INJECT_PASS=${old[INJECT_PASS]:-$(gen_secret 24)}
  INBOX_USER=${old[INBOX_USER]:-inbox@$MAIL_DOMAIN}
  INBOX_PASS=${old[INBOX_PASS]:-$(gen_secret 24)}
  ADMIN_USER=${old[ADMIN_USER]:-$MAIL_ADMIN_LOCALPART@$MAIL_DOMAIN}
  ADMIN_PASS=${old[ADMIN_PASS]:-$(gen_secret 24)}
  printf '# generated by install-email.sh on first run; reused afterwards\nINJECT_USER=%s\nINJECT_PASS=%s\nINBOX_USER=%s\nINBOX_PASS=%s\n' \
    "$INJECT_USER" "$INJECT_PASS" "$INBOX_USER" "$INBOX_PASS" \
    | write_atomic "$SECRETS_DIR/mail-inject.env" 600 || true
  printf '# generated by install-email.sh on first run; reused afterwards\nADMIN_USER=%s\nADMIN_PASS=%s\n' \
    "$ADMIN_USER" "$ADMIN_PASS" \
    | write_atomic "$SECRETS_DIR/mail-admin.env" 600 || true
  ensure_token "$TOKEN_FILE"
  ensure_token "$GATEWAY_TOKEN_FILE"
  # The services refuse to serve TCP with one token in both files.
  if cmp -s "$TOKEN_FILE" "$GATEWAY_TOKEN_FILE"; then
    die "$GATEWAY_TOKEN_FILE holds the same token as $TOKEN_FILE; delete it and re-run to get a new one"
  fi
}

# ensure_token FILE: a bearer token for the TCP listeners, generated once, kept afterwards.
ensure_token() {
  if [ ! -s "$1" ]; then
    gen_secret 32 | write_atomic "$1" 600 || true
  else
    ensure_private_file "$1"
  fi
}

# --- maddy binary ----------------------------------------------------------------
maddy_arch() {
  local a=${MADDY_ARCH:-$(uname -m)}
  case $a in
    x86_64|amd64) echo x86_64 ;;
    aarch64|arm64) echo aarch64 ;;
    *) die "no Maddy release for architecture $a (x86_64 or aarch64 only)" ;;
  esac
}

# Decide where maddy comes from, before anything is written: a placeholder
# checksum fails closed here.
resolve_maddy_source() {
  declare -A rel=()
  local pin=${MADDY_RELEASE_ENV:-$HERE/maddy-release.env}
  [ -f "$pin" ] || die "no Maddy release pin at $pin"
  read_env "$pin" rel
  MADDY_VERSION=${rel[MADDY_VERSION]:-}
  [[ $MADDY_VERSION =~ ^[0-9][0-9A-Za-z.+-]*$ ]] || die "$pin: MADDY_VERSION missing or malformed"
  MADDY_ARCH_NAME=$(maddy_arch)
  local key=MADDY_SHA256_$MADDY_ARCH_NAME
  MADDY_SHA256=${rel[$key]:-}
  MADDY_ASSET=maddy-$MADDY_VERSION-$MADDY_ARCH_NAME-linux-musl.tar.zst
  if [ -n "${MADDY_BIN:-}" ]; then
    [ -x "$MADDY_BIN" ] || die "MADDY_BIN=$MADDY_BIN is not an executable"
    MADDY_SOURCE=override:$MADDY_BIN
    return
  fi
  if [ -x "$BIN_DIR/maddy" ] && [ -f "$STATE_DIR/maddy.release" ] \
     && [ "$(cat "$STATE_DIR/maddy.release")" = "$MADDY_ASSET $MADDY_SHA256" ]; then
    MADDY_SOURCE=installed
    return
  fi
  if [[ ! $MADDY_SHA256 =~ ^[0-9a-f]{64}$ ]]; then
    die "refusing to install Maddy: the sha256 for $MADDY_ASSET in $pin is a placeholder ('$MADDY_SHA256'), so the download could not be verified. Fill in $key from the official release (see the comment in that file), or set MADDY_BIN to a maddy executable you trust."
  fi
  if [ -n "${MADDY_TARBALL:-}" ]; then MADDY_SOURCE=tarball:$MADDY_TARBALL; else MADDY_SOURCE=download; fi
}

install_maddy_binary() {
  local changed=1 work tarball bin
  case $MADDY_SOURCE in
    installed) return 1 ;;
    override:*)
      log "using MADDY_BIN override ${MADDY_SOURCE#override:} (not a release tarball: no checksum applies)"
      install_file "${MADDY_SOURCE#override:}" "$BIN_DIR/maddy" 755 && changed=0
      return $changed ;;
  esac
  work=$(mktemp -d)
  WORKDIRS+=("$work")
  if [ "$MADDY_SOURCE" = download ]; then
    tarball=$work/$MADDY_ASSET
    log "downloading $MADDY_ASSET"
    curl -fsSL --proto '=https' -o "$tarball" \
      "https://github.com/foxcpp/maddy/releases/download/v$MADDY_VERSION/$MADDY_ASSET" \
      || die "download of $MADDY_ASSET failed"
  else
    tarball=${MADDY_SOURCE#tarball:}
  fi
  local got
  got=$(sha256sum "$tarball" | cut -d' ' -f1)
  [ "$got" = "$MADDY_SHA256" ] || die "checksum mismatch for $MADDY_ASSET: got $got, pinned $MADDY_SHA256"
  tar --zstd -xf "$tarball" -C "$work" || die "cannot unpack $MADDY_ASSET (needs zstd)"
  bin=$(find "$work" -type f -name maddy -perm -u+x | head -n1)
  [ -n "$bin" ] || die "$MADDY_ASSET has no maddy executable"
  install_file "$bin" "$BIN_DIR/maddy" 755 && changed=0
  printf '%s %s\n' "$MADDY_ASSET" "$MADDY_SHA256" | write_atomic "$STATE_DIR/maddy.release" 600 || true
  return $changed
}

# --- pocketmail binaries --------------------------------------------------------
install_service_binary() {  # -> 0 changed, 1 unchanged
  local svc=$1 src=$BIN_SRC/$1/$1 changed=1
  [ -x "$src" ] || die "no built $svc at $src (bazel build //services/... first, or --bin-dir)"
  install_file "$src" "$BIN_DIR/$svc" 755 && changed=0
  if ((COPY_LIBS)); then copy_libs "$BIN_DIR/$svc" && changed=0; fi
  return $changed
}

# Shared libraries a binary needs, except glibc's own (libc, libm, ld.so, ...):
# those must match the userland's loader and stay the userland's.
copy_libs() {
  local bin=$1 lib base changed=1
  while read -r lib; do
    base=${lib##*/}
    case $base in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libresolv.so*|libutil.so*) continue ;;
    esac
    install_file "$lib" "$LIB_DIR/$base" 644 && changed=0
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
  return $changed
}

# --- configuration --------------------------------------------------------------
fill_render_vars() {
  RENDER=(
    [MAIL_DOMAIN]=$MAIL_DOMAIN [MAIL_HOSTNAME]=$MAIL_HOSTNAME
    [MAIL_IMAP_PORT]=$MAIL_IMAP_PORT [MAIL_INJECT_PORT]=$MAIL_INJECT_PORT
    [MAIL_SUBMISSION_PORT]=$MAIL_SUBMISSION_PORT [MAIL_MAX_MESSAGE_SIZE]=$MAIL_MAX_MESSAGE_SIZE
    [MADDY_STATE_DIR]=$MADDY_STATE_DIR [MADDY_RUNTIME_DIR]=$MADDY_RUNTIME_DIR
    [BIN_DIR]=$BIN_DIR [LIB_DIR]=$LIB_DIR [CONF_DIR]=$CONF_DIR
    [SECRETS_DIR]=$SECRETS_DIR [LOG_DIR]=$LOG_DIR
  )
}

# Non-secret settings shared by the four services (each ignores the keys it
# does not know). 0600 anyway: the services only accept 0600 env files.
write_settings() {
  {
    printf '# generated by install-email.sh from %s; re-run the installer to change\n' "$ENV_FILE"
    printf 'POCKETMAIL_RUNTIME_DIR=%s\n' "$RUNTIME_DIR"
    printf 'POCKETMAIL_STATE_DIR=%s\n' "$STATE_DIR"
    printf 'POCKETMAIL_TOKEN_FILE=%s\n' "$TOKEN_FILE"
    printf 'POCKETMAIL_GATEWAY_TOKEN_FILE=%s\n' "$GATEWAY_TOKEN_FILE"
    printf 'MAIL_DOMAIN=%s\n' "$MAIL_DOMAIN"
    printf 'MAIL_HOSTNAME=%s\n' "$MAIL_HOSTNAME"
    printf 'MAIL_POLL=%s\n' "$MAIL_POLL"
    printf 'MAIL_ADMIN_LOCALPART=%s\n' "$MAIL_ADMIN_LOCALPART"
    printf 'ALERT_DAYS=%s\n' "$ALERT_DAYS"
    [ -n "$MAIL_ALERT_CMD" ] && printf 'MAIL_ALERT_CMD=%s\n' "$MAIL_ALERT_CMD"
    [ -n "$MAIL_USERS_FILE" ] && printf 'MAIL_USERS_FILE=%s\n' "$MAIL_USERS_FILE"
    [ -n "$R2_ENDPOINT" ] && printf 'R2_ENDPOINT=%s\n' "$R2_ENDPOINT"
    [ -n "$R2_CA_FILE" ] && printf 'R2_CA_FILE=%s\n' "$R2_CA_FILE"
    if [ "$MAIL_INJECT_VIA" = lmtp ]; then
      printf 'MAIL_LMTP_SOCKET=%s\n' "$MADDY_RUNTIME_DIR/lmtp.sock"
    else
      printf 'MAIL_INJECT_HOST=127.0.0.1\n'
      printf 'MAIL_INJECT_PORT=%s\n' "$MAIL_INJECT_PORT"
    fi
    printf 'MAIL_IMAP_HOST=127.0.0.1\n'
    printf 'MAIL_IMAP_PORT=%s\n' "$MAIL_IMAP_PORT"
    printf 'MAIL_ACCOUNTS_CMD=%s --config %s imap-acct list\n' "$BIN_DIR/maddy" "$CONF_DIR/maddy.conf"
    printf 'MAIL_ACCOUNTS_WATCH=%s\n' "$MADDY_STATE_DIR/imapsql.db"
    # The watch sees a new account within seconds; the timed re-read (a run
    # of Maddy's binary, costly under proot) is only the safety net.
    printf 'MAIL_ACCOUNTS_REFRESH_S=3600\n'
  } | write_atomic "$CONF_DIR/pocketmail.env" 600
}

# render_to TEMPLATE DEST MODE: the whole rendering succeeds before DEST is touched
render_to() {
  local content
  content=$(render "$1") || die "cannot render $1"
  printf '%s\n' "$content" | write_atomic "$2" "$3"
}

write_maddy_conf() {
  render_to "$HERE/maddy.conf.tmpl" "$CONF_DIR/maddy.conf" 600
}

# service_render_vars SVC: what the shared templates (run.service.tmpl,
# pocketmail-service.service.tmpl) need for one pocketmail service: what it
# is, what it starts after, and the env files it reads (secrets only for the
# services that use them).
service_render_vars() {
  local svc=$1 what after=network.target f run_files="" unit_files=""
  local -a files=("$CONF_DIR/pocketmail.env")
  case $svc in
    ledger) what="the durable record (SQLite)" ;;
    router) what="recipient -> mailbox"; after+=" pocketmail-maddy.service" ;;
    injector) what="delivery into Maddy"; after+=" pocketmail-maddy.service"
      files+=("$SECRETS_DIR/mail-inject.env" "$SECRETS_DIR/mail-admin.env") ;;
    fetcher) what="R2 poll loop and per-message saga"
      after+=" pocketmail-ledger.service pocketmail-router.service pocketmail-injector.service"
      files+=("$SECRETS_DIR/mail-r2.env") ;;
    pocketmaild) after+=" pocketmail-maddy.service"
      files+=("$SECRETS_DIR/mail-r2.env" "$SECRETS_DIR/mail-inject.env" "$SECRETS_DIR/mail-admin.env") ;;
    *) die "no unit template for $svc" ;;
  esac
  if [ "$svc" = pocketmaild ]; then
    RENDER[DESCRIPTION]="pocketmaild (the four pocketmail services in one process)"
    RENDER[UNIT_DESCRIPTION]="pocketmail (ledger, router, injector and fetcher in one process)"
  else
    RENDER[DESCRIPTION]="pocketmail $svc ($what)"
    RENDER[UNIT_DESCRIPTION]="pocketmail $svc"
  fi
  for f in "${files[@]}"; do
    run_files+=" --env-file='$f'"   # paths passed safe_path: nothing to escape
    unit_files+=" --env-file=$f"
  done
  RENDER[AFTER]=$after
  RENDER[RUN_ENV_FILES]=${run_files# }
  RENDER[UNIT_ENV_FILES]=${unit_files# }
}

# run script, log script and systemd unit of one unit -> 0 changed, 1 unchanged.
# Maddy has its own templates; the pocketmail services share one of each.
write_unit_files() {
  local svc=$1 changed=1 run_tmpl unit_tmpl
  ensure_dir "$SV_DIR/pocketmail-$svc" 0755
  ensure_dir "$SV_DIR/pocketmail-$svc/log" 0755
  ensure_dir "$LOG_DIR/$svc" 0700
  ensure_dir "$SYSTEMD_DIR" 0755
  RENDER[SERVICE]=$svc
  if [ "$svc" = maddy ]; then
    run_tmpl=$HERE/templates/run.maddy
    unit_tmpl=$HERE/templates/pocketmail-maddy.service
  else
    service_render_vars "$svc"
    run_tmpl=$HERE/templates/run.service.tmpl
    unit_tmpl=$HERE/templates/pocketmail-service.service.tmpl
  fi
  render_to "$run_tmpl" "$SV_DIR/pocketmail-$svc/run" 755 && changed=0
  render_to "$HERE/templates/log.run" "$SV_DIR/pocketmail-$svc/log/run" 755 || true
  render_to "$unit_tmpl" "$SYSTEMD_DIR/pocketmail-$svc.service" 644 && changed=0
  return $changed
}

# --- maddy accounts -------------------------------------------------------------
maddy_cmd() { "$BIN_DIR/maddy" --config "$CONF_DIR/maddy.conf" "$@"; }

# maddy_list WHAT: `maddy WHAT list` on stdout; a failure names Maddy's reason.
maddy_list() {
  local err out
  err=$(mktemp) || die "cannot create a temp file"
  if ! out=$(maddy_cmd "$1" list 2>"$err"); then
    out=$(head -c 2000 "$err"); rm -f "$err"
    die "maddy $1 list failed: $out"
  fi
  rm -f "$err"
  printf '%s\n' "$out"
}

listed() {  # listed USER LIST -> usernames are stored lowercased
  grep -Fxqi -- "$1" <<<"$2"
}

# Passwords go to `maddy creds create` on stdin. printf is a bash builtin, so
# the password is in no process's argv at any point.
create_login() {  # create_login USER PASSWORD
  # Maddy prompts on stderr when stdin is no terminal: shown only on failure.
  local out
  out=$(printf '%s\n' "$2" | maddy_cmd creds create "$1" 2>&1 >/dev/null) \
    || die "maddy creds create $1 failed: $out"
  note_change "maddy credentials of $1"
}

create_mailbox() {  # create_mailbox USER
  maddy_cmd imap-acct create "$1" >/dev/null || die "maddy imap-acct create $1 failed"
  note_change "maddy mailbox of $1"
}

provision_accounts() {
  local creds accts user
  creds=$(maddy_list creds) || exit 1
  accts=$(maddy_list imap-acct) || exit 1
  local -A pass=([$INJECT_USER]=$INJECT_PASS [$INBOX_USER]=$INBOX_PASS [$ADMIN_USER]=$ADMIN_PASS)
  for user in "$INJECT_USER" "$INBOX_USER" "$ADMIN_USER"; do
    listed "$user" "$creds" || create_login "$user" "${pass[$user]}"
  done
  # The inject user gets credentials only: no mailbox, so it is not routable.
  for user in "$INBOX_USER" "$ADMIN_USER"; do
    listed "$user" "$accts" || create_mailbox "$user"
  done
}

# add_mailbox ADDRESS: a login (password: one line on stdin) and a mailbox, for
# a person on this homeserver. An existing login keeps its password. Maddy
# stores names lowercased; the address must be in MAIL_DOMAIN.
add_mailbox() {
  local user creds accts pass
  user=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')
  [[ $user =~ ^[a-z0-9][a-z0-9._-]*@([a-z0-9.-]+)$ && ${BASH_REMATCH[1]} == "${MAIL_DOMAIN,,}" ]] \
    || die "add-mailbox: '$1' is not an address in $MAIL_DOMAIN"
  [[ -x $BIN_DIR/maddy && -f $CONF_DIR/maddy.conf ]] || die "Maddy is not installed (run install first)"
  creds=$(maddy_list creds) || exit 1
  accts=$(maddy_list imap-acct) || exit 1
  if listed "$user" "$creds"; then
    log "add-mailbox: $user has a login already; its password is kept"
  else
    IFS= read -r pass || true
    [ -n "$pass" ] || die "add-mailbox: no password on stdin for $user"
    create_login "$user" "$pass"
  fi
  if listed "$user" "$accts"; then log "add-mailbox: $user has a mailbox already"; else create_mailbox "$user"; fi
}

# --- starting and stopping ------------------------------------------------------
pick_init() {
  [ "$INIT" != auto ] && return
  if command -v sv >/dev/null 2>&1 && [ -n "${SVDIR:-}" ]; then INIT=runit
  elif [ "$P" = "" ] && [ -d /run/systemd/system ]; then INIT=systemd
  else INIT=direct
  fi
}

pid_file() { printf '%s/%s.pid' "$RUNTIME_DIR" "$1"; }

# direct mode: the pid file must name a live process running our run script
direct_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # captured, not piped into grep -q: under pipefail an early grep exit would
  # SIGPIPE tr and make a live service look dead
  local cmdline
  cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$BIN_DIR/$1 "* || $cmdline == *"$SV_DIR/pocketmail-$1/run"* ]] || return 1
  printf '%s' "$pid"
}

stop_unit() {
  local svc=$1 pid i
  case $INIT in
    runit) sv down "$SVDIR/pocketmail-$svc" >/dev/null 2>&1 || true ;;
    systemd) systemctl stop "pocketmail-$svc.service" 2>/dev/null || true ;;
    direct)
      if pid=$(direct_pid "$svc"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
      fi
      rm -f "$(pid_file "$svc")" ;;
    none) ;;
  esac
}

start_unit() {
  local svc=$1
  case $INIT in
    runit)
      [ -e "$SVDIR/pocketmail-$svc" ] || ln -s "$SV_DIR/pocketmail-$svc" "$SVDIR/pocketmail-$svc"
      sv restart "$SVDIR/pocketmail-$svc" >/dev/null || sv up "$SVDIR/pocketmail-$svc" ;;
    systemd)
      systemctl daemon-reload
      systemctl enable "pocketmail-$svc.service" >/dev/null 2>&1 || true
      systemctl restart "pocketmail-$svc.service" ;;
    direct)
      stop_unit "$svc"
      # setsid: the service outlives this shell; its output goes to its log dir.
      setsid "$SV_DIR/pocketmail-$svc/run" >>"$LOG_DIR/$svc/current" 2>&1 < /dev/null &
      printf '%s\n' "$!" > "$(pid_file "$svc")" ;;
    none) ;;
  esac
  log "started $svc ($INIT)"
}

is_running() {
  case $INIT in
    direct) direct_pid "$1" >/dev/null ;;
    runit) [[ $(sv status "$SVDIR/pocketmail-$1" 2>/dev/null) == run:* ]] ;;
    systemd) systemctl is-active --quiet "pocketmail-$1.service" ;;
    none) return 0 ;;
  esac
}

# --- health ---------------------------------------------------------------------
# Maddy's IMAP greeting through bash's /dev/tcp (in a subshell: a refused
# connection must not end this script).
imap_ok() {
  local greeting
  greeting=$( { exec 3<>"/dev/tcp/127.0.0.1/$MAIL_IMAP_PORT" && IFS= read -r -t 5 line <&3 && printf '%s' "$line"; } 2>/dev/null ) || return 1
  [[ $greeting == "* OK"* ]]
}

# The sockets a unit serves: its own, or all four for pocketmaild.
sockets_of() {
  if [ "$1" = pocketmaild ]; then printf '%s\n' "${FOUR_SERVICES[@]}"; else printf '%s\n' "$1"; fi
}

# health UNIT...: each pocketmail service serves its socket(s); maddy answers IMAP.
health() {
  local svc ok=1 i want_maddy=0 sock up
  local -a svcs=() served=()
  for svc in "$@"; do
    if [ "$svc" = maddy ]; then want_maddy=1; else svcs+=("$svc"); fi
  done
  for svc in "${svcs[@]}"; do
    for ((i = 0; i < 100; i++)); do
      up=1
      for sock in $(sockets_of "$svc"); do [ -S "$RUNTIME_DIR/$sock.sock" ] || up=0; done
      ((up)) && is_running "$svc" && break
      sleep 0.2
    done
    if ((up)) && is_running "$svc"; then
      log "health: $svc ok ($(sockets_of "$svc" | sed "s#.*#$RUNTIME_DIR/&.sock#" | paste -sd' '))"
      mapfile -t -O "${#served[@]}" served < <(sockets_of "$svc")
    else
      log "health: $svc NOT serving (see $LOG_DIR/$svc/current)"; ok=0
    fi
  done
  svcs=("${served[@]}")  # pocketmailctl reports per service, whichever process serves it
  # With the fetcher up, pocketmailctl asks every service's grpc.health.v1
  # (not when only maddy is checked: there is nothing to ask about).
  local status=""
  if ((${#svcs[@]})) && [ -x "$BIN_DIR/pocketmailctl" ] && [ -S "$RUNTIME_DIR/fetcher.sock" ]; then
    for ((i = 0; i < 10; i++)); do
      status=$(timeout 15 "$BIN_DIR/pocketmailctl" --json --runtime-dir "$RUNTIME_DIR" status 2>/dev/null) && break
      status=""; sleep 0.5
    done
    if [ -z "$status" ]; then
      log "health: pocketmailctl status failed"; ok=0
    else
      for svc in "${svcs[@]}"; do
        if [[ $status != *"\"$svc\":\"SERVING\""* ]]; then
          log "health: $svc is not SERVING according to pocketmailctl status"; ok=0
        fi
      done
      ((ok)) && log "health: pocketmailctl status ok (${svcs[*]} SERVING)"
    fi
  fi
  if ((want_maddy)); then
    for ((i = 0; i < 50; i++)); do imap_ok && break; sleep 0.2; done
    if imap_ok; then log "health: maddy IMAP ok (127.0.0.1:$MAIL_IMAP_PORT)"
    else log "health: maddy IMAP NOT answering on 127.0.0.1:$MAIL_IMAP_PORT (see $LOG_DIR/maddy/current)"; ok=0
    fi
    # The injector's default way in. The run script (and the systemd unit)
    # removes a leftover socket before Maddy starts, so one here is the
    # running Maddy's.
    if [ "$MAIL_INJECT_VIA" = lmtp ]; then
      sock=$MADDY_RUNTIME_DIR/lmtp.sock
      if [ -S "$sock" ]; then log "health: maddy LMTP socket ok ($sock)"
      else log "health: maddy LMTP socket $sock missing (see $LOG_DIR/maddy/current)"; ok=0
      fi
    fi
  fi
  ((ok)) || die "health check failed"
  log "health: all ok"
}

# --- the steps --------------------------------------------------------------------
make_dirs() {
  ensure_dir "$CONF_DIR" 0700
  ensure_dir "$SECRETS_DIR" 0700
  ensure_dir "$BIN_DIR" 0755
  if ((COPY_LIBS)); then ensure_dir "$LIB_DIR" 0755; fi
  ensure_dir "$STATE_DIR" 0700
  ensure_dir "$MADDY_STATE_DIR" 0700
  ensure_dir "$RUNTIME_DIR" 0700
  ensure_dir "$MADDY_RUNTIME_DIR" 0700
  ensure_dir "$LOG_DIR" 0700
  ensure_dir "$SV_DIR" 0755
}

# Shared setup: config, secrets, maddy. Sets CONF_CHANGED / MADDY_CHANGED.
common_setup() {
  validate
  resolve_maddy_source        # fails closed before anything is written
  make_dirs
  local before=${#CHANGED[@]}
  provide_user_secrets
  generate_credentials
  # new or changed secrets: the services must be restarted to read them
  ((${#CHANGED[@]} == before)) || CONF_CHANGED=1
  fill_render_vars
  write_settings && CONF_CHANGED=1
  write_maddy_conf && MADDY_CHANGED=1
  install_maddy_binary && MADDY_CHANGED=1
  if [ -x "$BIN_SRC/pocketmailctl/pocketmailctl" ]; then
    install_file "$BIN_SRC/pocketmailctl/pocketmailctl" "$BIN_DIR/pocketmailctl" 755 || true
    if ((COPY_LIBS)); then copy_libs "$BIN_DIR/pocketmailctl" || true; fi
  fi
  write_unit_files maddy && MADDY_CHANGED=1
  return 0
}

# retire_other_layout: after a switch of POCKETMAIL_COMBINED, the other
# layout's units are stopped and their run files removed (binaries, data and
# logs stay), so the two never compete for the sockets.
retire_other_layout() {
  local svc
  for svc in "${RETIRED[@]}"; do
    [ -d "$SV_DIR/pocketmail-$svc" ] || [ -f "$SYSTEMD_DIR/pocketmail-$svc.service" ] || continue
    stop_unit "$svc"
    if [ "$INIT" = runit ]; then rm -f "$SVDIR/pocketmail-$svc"; fi
    if [ "$INIT" = systemd ]; then systemctl disable "pocketmail-$svc.service" >/dev/null 2>&1 || true; fi
    rm -rf "$SV_DIR/pocketmail-$svc"
    rm -f "$SYSTEMD_DIR/pocketmail-$svc.service"
    note_change "retired $svc (POCKETMAIL_COMBINED=$(combined_setting))"
  done
}

# install_unit SVC [force]: binary + run files; (re)start when something changed
# or it is not running. Returns after starting.
install_unit() {
  local svc=$1 force=${2:-0} changed=$CONF_CHANGED
  if [ "$svc" = maddy ]; then
    changed=$MADDY_CHANGED
  else
    install_service_binary "$svc" && changed=1
    write_unit_files "$svc" && changed=1
  fi
  if ((changed || force)) || ! is_running "$svc"; then start_unit "$svc"; fi
}

# run_command: what CMD asks for, on the parsed options and .env.
run_command() {
  local -a units
  pick_init
  if [ "$INIT" = systemd ] && [ -n "$P" ]; then
    die "--init systemd only with --prefix / (units are written to $SYSTEMD_DIR)"
  fi
  case $CMD in
    install)
      common_setup
      install_unit maddy
      provision_accounts
      retire_other_layout
      if [ -n "$TARGET" ]; then
        [ "$TARGET" = maddy ] || install_unit "$TARGET"
        units=(maddy "$TARGET")
      else
        local svc
        for svc in "${SERVICES[@]}"; do install_unit "$svc"; done
        units=("${ALL_UNITS[@]}")
      fi ;;
    upgrade)
      common_setup
      install_unit "$TARGET" 1
      units=("$TARGET") ;;
    restart)
      validate
      [ -x "$SV_DIR/pocketmail-$TARGET/run" ] || die "$TARGET is not installed"
      start_unit "$TARGET"
      units=("$TARGET") ;;
    remove)
      stop_unit "$TARGET"
      rm -rf "$SV_DIR/pocketmail-$TARGET"
      rm -f "$SYSTEMD_DIR/pocketmail-$TARGET.service" "$BIN_DIR/$TARGET"
      if [ "$TARGET" = maddy ]; then rm -f "$STATE_DIR/maddy.release"; fi
      log "removed $TARGET (its data, secrets and logs are kept)"
      return 0 ;;
    health) validate; health "${ALL_UNITS[@]}"; return 0 ;;
    add-mailbox) validate; add_mailbox "$TARGET"; return 0 ;;
  esac
  if ((DO_HEALTH)) && [ "$INIT" != none ]; then health "${units[@]}"; fi
  if ((${#CHANGED[@]})); then log "done: ${#CHANGED[@]} change(s)"; else log "done: nothing changed"; fi
}

# The mutable state of one run.
init_state() {
  WORKDIRS=()    # temp dirs, removed at exit
  CHANGED=()     # what this run changed, for the summary and for restarts
  declare -gA RENDER=()
  INJECT_USER="" INJECT_PASS="" INBOX_USER="" INBOX_PASS="" ADMIN_USER="" ADMIN_PASS=""
  MADDY_SOURCE=""   # "override:PATH" | "tarball:PATH" | "download" | "installed"
  CONF_CHANGED=0 MADDY_CHANGED=0
}

main() {
  set -euo pipefail
  shopt -s lastpipe   # `... | write_atomic` runs write_atomic in this shell
  umask 077
  init_state
  trap 'rm -rf "${WORKDIRS[@]}"' EXIT
  parse_args "$@"
  set_paths "$PREFIX"
  load_env
  pick_layout
  read_settings
  run_command
}

# Sourcing this file (the tests do) only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
