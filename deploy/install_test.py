#!/usr/bin/python3
"""deploy/install-email.sh, run for real into temporary prefixes.

Most tests use a stand-in `maddy` (written below): it logs its argv, keeps its
accounts in its state dir, records a sha256 of each password it received on
stdin (never the password), and for `run` binds the LMTP unix socket and the
update-pipe socket from the rendered maddy.conf (refusing a leftover LMTP
socket, as Maddy does) and answers IMAP greetings on its port. The four
pocketmail services are started for real from the generated runit run scripts
(`--init direct`), so the health check at the end of the installer is the real
one.

RealMaddyTest and RealMaddyRestartTest install the real Maddy (PM_MADDY_BIN,
built by tests/peers/maddy/build_maddy.sh; ./pocketmail test passes it) and
load the rendered maddy.conf into it. Without PM_MADDY_BIN they fail, they do
not skip.

Run by Bazel (`bazel test //deploy:install_test`), which puts the binaries in
the runfiles; outside Bazel set PM_SERVICES_BIN_DIR (default
.bazel/bin/services). Writes JUnit XML to $XML_OUTPUT_FILE, one <testcase> per
test method.
"""
import hashlib
import imaplib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INSTALLER = os.path.join(HERE, "install-email.sh")
SERVICES = ["ledger", "router", "injector", "fetcher"]
UNITS = ["maddy"] + SERVICES


def services_bin_dir():
    srcdir = os.environ.get("TEST_SRCDIR")
    candidates = []
    if srcdir:
        candidates.append(os.path.join(srcdir, os.environ.get("TEST_WORKSPACE", "pocketmail"), "services"))
    if os.environ.get("PM_SERVICES_BIN_DIR"):
        candidates.append(os.environ["PM_SERVICES_BIN_DIR"])
    candidates.append(os.path.join(ROOT, ".bazel", "bin", "services"))
    for c in candidates:
        if os.access(os.path.join(c, "ledger", "ledger"), os.X_OK):
            return c
    raise RuntimeError("no built services; bazel build //services/... or set PM_SERVICES_BIN_DIR")


FAKE_MADDY = r'''#!/bin/bash
# Stand-in for maddy: `--config PATH` then a subcommand, like the real one.
set -euo pipefail
conf=""
if [ "${1:-}" = --config ]; then conf=$2; shift 2; fi
[ -f "$conf" ] || { echo "fake maddy: no config" >&2; exit 2; }
state=$(awk '$1 == "state_dir" {print $2}' "$conf")
mkdir -p "$state"
# one line per invocation: the argv, exactly as received
printf '%s\n' "$*" >> "$state/fake-maddy-argv.log"
for f in creds accts; do [ -e "$state/$f" ] || : > "$state/$f"; done
case "${1:-} ${2:-}" in
  "creds list") cut -d' ' -f1 "$state/creds" ;;
  "creds create")
    IFS= read -r pass || true
    [ -n "$pass" ] || { echo "no password on stdin" >&2; exit 1; }
    printf '%s %s %s\n' "$3" "$(printf '%s' "$pass" | sha256sum | cut -d' ' -f1)" "${#pass}" >> "$state/creds" ;;
  "imap-acct list") cat "$state/accts" ;;
  "imap-acct create") printf '%s\n' "$3" >> "$state/accts" ;;
  "run ")
    port=$(sed -n 's/^imap tcp:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$conf")
    lmtp=$(sed -n 's/^lmtp unix:\/\/\([^ ]*\) .*/\1/p' "$conf")
    rundir=$(awk '$1 == "runtime_dir" {print $2}' "$conf")
    printf 'run: RESEND_API_KEY length %s\n' "${#RESEND_API_KEY}" >> "$state/fake-maddy-argv.log"
    # exec -a: keep argv[0] = this maddy, as the real server's would be
    exec -a "$0" /usr/bin/python3 -c '
import socket, sys
# Like Maddy: a leftover LMTP socket keeps it from starting; a leftover
# update-pipe socket is logged and the server runs without the pipe. Neither
# is removed at exit (the run script has to).
unix = []
for path, fatal in ((sys.argv[2], True), (sys.argv[3] + "/sql-fake.sock", False)):
    u = socket.socket(socket.AF_UNIX)
    try:
        u.bind(path)
    except OSError as e:
        if fatal:
            sys.exit(f"lmtp: listen unix {path}: bind: {e.strerror}")
        print(f"imap: failed to initialize updates pipe: listen unix {path}: {e.strerror}", file=sys.stderr, flush=True)
        continue
    u.listen(16); unix.append(u)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"* OK fake maddy ready\r\n")
    except OSError as e:  # a client that hung up early must not end the server
        print("fake maddy:", e, file=sys.stderr, flush=True)
    c.close()
' "$port" "$lmtp" "$rundir" ;;
  *) echo "fake maddy: unsupported $*" >&2; exit 2 ;;
esac
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def read_env_file(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def real_maddy_bin():
    """PM_MADDY_BIN, or a failure that says how to get it (never a skip)."""
    path = os.environ.get("PM_MADDY_BIN", "")
    if not path:
        raise AssertionError(
            "PM_MADDY_BIN is not set: the real-Maddy installer tests need it. Build Maddy with "
            "tests/peers/maddy/build_maddy.sh and pass --test_env=PM_MADDY_BIN=<its output> "
            "(./pocketmail test does both)")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"PM_MADDY_BIN={path} is not an executable")
    return path


class Box:
    """A temporary prefix with an .env, user secrets and the stand-in maddy."""

    # layout: what POCKETMAIL_COMBINED the .env says; None leaves it out (the
    # installer's default, pocketmaild). Most tests take "false", the four
    # processes, since they drive one service at a time (upgrade ledger, ...).
    def __init__(self, enable="true", extra_env="", maddy=None, combined="false"):
        self.root = tempfile.mkdtemp(prefix="pm-", dir="/tmp")  # short: unix socket paths
        self.prefix = os.path.join(self.root, "p")
        self.inputs = os.path.join(self.root, "in")
        os.makedirs(self.inputs)
        self.imap_port, self.inject_port, self.sub_port = free_ports(3)
        self.r2_secret = "r2SECRET" + os.urandom(8).hex()
        self.resend_key = "re_RESEND" + os.urandom(8).hex()
        self.env_file = os.path.join(self.inputs, ".env")
        layout_line = "" if combined is None else f"POCKETMAIL_COMBINED={combined}\n"
        self.write(self.env_file, f"""# test .env
ENABLE_EMAIL={enable}
MAIL_DOMAIN=example.test
MAIL_HOSTNAME=mx.example.test
MAIL_IMAP_PORT={self.imap_port}
MAIL_INJECT_PORT={self.inject_port}
MAIL_SUBMISSION_PORT={self.sub_port}
MAIL_POLL=3600
MAIL_ADMIN_LOCALPART=admin
MAIL_ALERT_CMD="echo alert >/dev/null"
ALERT_DAYS=3
R2_ENDPOINT=https://127.0.0.1:9
{layout_line}{extra_env}""")
        self.secrets_src = os.path.join(self.inputs, "secrets")
        os.makedirs(self.secrets_src, mode=0o700)
        self.write(os.path.join(self.secrets_src, "mail-r2.env"),
                   f"R2_ACCOUNT_ID=acct\nR2_ACCESS_KEY_ID=AKIDtest\nR2_SECRET_ACCESS_KEY={self.r2_secret}\nR2_BUCKET=mail\n")
        self.write(os.path.join(self.secrets_src, "mail-relay.env"), f"RESEND_API_KEY={self.resend_key}\n")
        self.fake_maddy = os.path.join(self.inputs, "maddy")
        self.write(self.fake_maddy, FAKE_MADDY, 0o755)
        self.maddy_bin = maddy or self.fake_maddy  # what MADDY_BIN installs
        self.outputs = []

    @staticmethod
    def write(path, text, mode=0o600):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def p(self, *parts):
        return os.path.join(self.prefix, *parts)

    def run(self, *args, maddy_bin=True, extra=None, check=True, stdin=None):
        env = dict(os.environ)
        env.pop("MADDY_BIN", None)
        if maddy_bin:
            env["MADDY_BIN"] = self.maddy_bin
        env.update(extra or {})
        cmd = ["bash", INSTALLER, "--prefix", self.prefix, "--env", self.env_file,
               "--bin-dir", services_bin_dir(), "--secrets-src", self.secrets_src,
               "--init", "direct", *args]
        r = subprocess.run(cmd, env=env, input=stdin if stdin is not None else "",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180)
        self.outputs.append(r.stdout + r.stderr)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
        return r

    def pid(self, unit):
        try:
            with open(self.p("run", "pocketmail", f"{unit}.pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def settings(self):
        return read_env_file(self.p("etc", "pocketmail", "pocketmail.env"))

    def credentials(self):
        out = {}
        for name in ("mail-inject.env", "mail-admin.env"):
            out.update(read_env_file(self.p("etc", "pocketmail", "secrets", name)))
        return out

    def maddy(self, *args):
        """The installed maddy on the rendered config (stdout, or an AssertionError)."""
        r = subprocess.run([self.p("opt", "pocketmail", "bin", "maddy"), "--config",
                            self.p("etc", "pocketmail", "maddy.conf"), *args],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"maddy {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r.stdout

    def maddy_log(self):
        path = self.p("var", "log", "pocketmail", "maddy", "current")
        return open(path, errors="replace").read() if os.path.exists(path) else ""

    def secrets(self):
        """Every secret value the install knows about."""
        vals = [self.r2_secret, self.resend_key]
        for name in ("mail-inject.env", "mail-admin.env"):
            path = self.p("etc", "pocketmail", "secrets", name)
            if os.path.exists(path):
                for line in open(path):
                    k, _, v = line.strip().partition("=")
                    if k.endswith("_PASS"):
                        vals.append(v)
        for name in ("grpc-token", "grpc-gateway-token"):
            tok = self.p("etc", "pocketmail", "secrets", name)
            if os.path.exists(tok):
                vals.append(open(tok).read().strip())
        return [v for v in vals if v]

    def tree_digest(self):
        """path, mode and content of everything the installer owns (not logs,
        pid files, sockets or the ledger's own database)."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.prefix):
            rel = os.path.relpath(dirpath, self.prefix)
            if rel.startswith(("var/log", "run/")) or rel == "run":
                continue
            out[rel + "/"] = oct(os.stat(dirpath).st_mode)
            for name in filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if name.startswith("ledger.db") or stat.S_ISSOCK(st.st_mode) or name.endswith(".lock") \
                        or name == "fake-maddy-argv.log":
                    continue
                digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
                out[os.path.join(rel, name)] = (oct(st.st_mode), st.st_mtime_ns, digest)
        return out

    def cleanup(self):
        self.stop_all()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop_all(self):
        for unit in UNITS + ["pocketmaild"]:
            pid = self.pid(unit)
            if pid:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for unit in UNITS + ["pocketmaild"]:
            pid = self.pid(unit)
            while pid and time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
            else:
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class InstalledTest(unittest.TestCase):
    """One full install, then a second run, in one prefix."""

    @classmethod
    def setUpClass(cls):
        cls.box = Box()
        cls.first = cls.box.run()
        cls.pids_after_first = {u: cls.box.pid(u) for u in UNITS}
        cls.digest_before = cls.box.tree_digest()
        cls.second = cls.box.run()
        cls.digest_after = cls.box.tree_digest()
        cls.pids_after_second = {u: cls.box.pid(u) for u in UNITS}

    @classmethod
    def tearDownClass(cls):
        cls.box.cleanup()

    def test_first_run_ends_with_a_passing_health_check(self):
        out = self.first.stderr
        for svc in SERVICES:
            self.assertIn(f"health: {svc} ok", out)
        self.assertIn("health: maddy IMAP ok", out)
        self.assertIn("health: pocketmailctl status ok (ledger router injector fetcher SERVING)", out)
        self.assertIn("health: all ok", out)

    def test_run_scripts_start_every_service(self):
        bin_dir = self.box.p("opt", "pocketmail", "bin")
        for svc in SERVICES:
            self.assertTrue(stat.S_ISSOCK(os.stat(self.box.p("run", "pocketmail", f"{svc}.sock")).st_mode), svc)
            pid = self.box.pid(svc)
            self.assertIsNotNone(pid, svc)
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            self.assertEqual(argv[0].decode(), os.path.join(bin_dir, svc))
            self.assertTrue(all(a.startswith(b"--env-file=") for a in argv[1:] if a), argv)

    def test_secrets_and_private_dirs_have_tight_modes(self):
        b = self.box
        for name in ("mail-r2.env", "mail-relay.env", "mail-inject.env", "mail-admin.env", "grpc-token",
                     "grpc-gateway-token"):
            self.assertEqual(mode(b.p("etc", "pocketmail", "secrets", name)), 0o600, name)
        for f in ("pocketmail.env", "maddy.conf"):
            self.assertEqual(mode(b.p("etc", "pocketmail", f)), 0o600, f)
        for d in (("etc", "pocketmail"), ("etc", "pocketmail", "secrets"), ("var", "lib", "pocketmail"),
                  ("var", "lib", "pocketmail", "maddy"), ("run", "pocketmail"), ("var", "log", "pocketmail")):
            self.assertEqual(mode(b.p(*d)), 0o700, "/".join(d))
        token = open(b.p("etc", "pocketmail", "secrets", "grpc-token")).read().strip()
        self.assertRegex(token, r"^[0-9a-f]{64}$")

    def test_operator_and_gateway_tokens_differ_and_pocketmail_env_names_both(self):
        b = self.box
        operator = b.p("etc", "pocketmail", "secrets", "grpc-token")
        gateway = b.p("etc", "pocketmail", "secrets", "grpc-gateway-token")
        for path in (operator, gateway):
            self.assertEqual(mode(path), 0o600, path)
            self.assertRegex(open(path).read().strip(), r"^[0-9a-f]{64}$", path)
        self.assertNotEqual(open(operator).read(), open(gateway).read())
        self.assertEqual(b.settings()["POCKETMAIL_TOKEN_FILE"], operator)
        self.assertEqual(b.settings()["POCKETMAIL_GATEWAY_TOKEN_FILE"], gateway)

    def test_generated_credentials_are_complete(self):
        inject = open(self.box.p("etc", "pocketmail", "secrets", "mail-inject.env")).read()
        admin = open(self.box.p("etc", "pocketmail", "secrets", "mail-admin.env")).read()
        self.assertRegex(inject, r"INJECT_USER=pocketmail-inject@example\.test\nINJECT_PASS=[0-9a-f]{48}\n")
        self.assertRegex(inject, r"INBOX_USER=inbox@example\.test\nINBOX_PASS=[0-9a-f]{48}\n")
        self.assertRegex(admin, r"ADMIN_USER=admin@example\.test\nADMIN_PASS=[0-9a-f]{48}\n")

    def test_accounts_provisioned_with_the_password_on_stdin(self):
        state = self.box.p("var", "lib", "pocketmail", "maddy")
        creds = {l.split()[0]: l.split()[1] for l in open(os.path.join(state, "creds"))}
        env = {}
        for name in ("mail-inject.env", "mail-admin.env"):
            for line in open(self.box.p("etc", "pocketmail", "secrets", name)):
                k, _, v = line.strip().partition("=")
                env[k] = v
        for who in ("INJECT", "INBOX", "ADMIN"):
            self.assertEqual(creds[env[f"{who}_USER"]], hashlib.sha256(env[f"{who}_PASS"].encode()).hexdigest(), who)
        accts = open(os.path.join(state, "accts")).read().split()
        self.assertEqual(sorted(accts), ["admin@example.test", "inbox@example.test"])  # inject: creds only
        # the second run created nothing again
        self.assertEqual(len(open(os.path.join(state, "creds")).readlines()), 3)

    def test_no_secret_in_any_argv_log_output_or_generated_script(self):
        b = self.box
        secrets = b.secrets()
        self.assertGreaterEqual(len(secrets), 6)
        haystacks = {"installer output": "\n".join(b.outputs)}
        haystacks["maddy argv log"] = open(b.p("var", "lib", "pocketmail", "maddy", "fake-maddy-argv.log")).read()
        scan_dirs = [b.p("etc", "sv"), b.p("etc", "systemd"), b.p("var", "log")]
        for d in scan_dirs:
            for dirpath, _, files in os.walk(d):
                for f in files:
                    path = os.path.join(dirpath, f)
                    haystacks[path] = open(path, errors="replace").read()
        for name in ("pocketmail.env", "maddy.conf"):
            haystacks[name] = open(b.p("etc", "pocketmail", name)).read()
        for unit in UNITS:
            pid = b.pid(unit)
            if pid:
                haystacks[f"argv of {unit}"] = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        for where, text in haystacks.items():
            for s in secrets:
                self.assertNotIn(s, text, f"a secret appears in {where}")
        # but maddy did get the relay key in its environment
        self.assertIn(f"run: RESEND_API_KEY length {len(b.resend_key)}", haystacks["maddy argv log"])

    def test_maddy_conf_is_rendered_and_loopback_only(self):
        conf = open(self.box.p("etc", "pocketmail", "maddy.conf")).read()
        self.assertNotIn("{{", conf)
        live = "\n".join(l for l in conf.splitlines() if not l.lstrip().startswith("#"))
        listeners = re.findall(r"^\s*(submission|imap|smtp|lmtp)\s+(\S+)", live, re.M)
        self.assertEqual(sorted(listeners), sorted([
            ("lmtp", f"unix://{self.box.p('run', 'pocketmail', 'maddy', 'lmtp.sock')}"),
            ("submission", f"tcp://127.0.0.1:{self.box.inject_port}"),
            ("imap", f"tcp://127.0.0.1:{self.box.imap_port}"),
            ("submission", f"tcp://127.0.0.1:{self.box.sub_port}")]))
        self.assertIn("targets tcp://smtp.resend.com:587", live)
        self.assertRegex(live, r"target\.smtp resend \{\n\s*targets tcp://smtp\.resend\.com:587\n\s*starttls yes\n")
        self.assertNotIn("require_tls", live)  # ignored by Maddy 0.8
        self.assertIn("auth plain resend {env:RESEND_API_KEY}", live)
        self.assertIn("hostname mx.example.test", live)
        self.assertIn(f"runtime_dir {self.box.p('run', 'pocketmail', 'maddy')}", live)
        # the default size limit on both inject endpoints (LMTP and submission)
        self.assertEqual(re.findall(r"^\s*max_message_size (\S+)$", live, re.M), ["32M", "32M"])
        self.assertEqual(len(re.findall(r"^\s*smtp_max_line_length \d+$", live, re.M)), 2)
        self.assertEqual(live.count("{"), live.count("}"))

    def test_pocketmail_env_points_the_injector_at_the_lmtp_socket(self):
        b = self.box
        self.assertEqual(b.settings(), {
            "POCKETMAIL_RUNTIME_DIR": b.p("run", "pocketmail"),
            "POCKETMAIL_STATE_DIR": b.p("var", "lib", "pocketmail"),
            "POCKETMAIL_TOKEN_FILE": b.p("etc", "pocketmail", "secrets", "grpc-token"),
            "POCKETMAIL_GATEWAY_TOKEN_FILE": b.p("etc", "pocketmail", "secrets", "grpc-gateway-token"),
            "MAIL_DOMAIN": "example.test",
            "MAIL_HOSTNAME": "mx.example.test",
            "MAIL_POLL": "3600",
            "MAIL_ADMIN_LOCALPART": "admin",
            "ALERT_DAYS": "3",
            "MAIL_ALERT_CMD": "echo alert >/dev/null",
            "R2_ENDPOINT": "https://127.0.0.1:9",
            # MAIL_INJECT_VIA unset: LMTP, so no MAIL_INJECT_HOST/PORT
            "MAIL_LMTP_SOCKET": b.p("run", "pocketmail", "maddy", "lmtp.sock"),
            "MAIL_IMAP_HOST": "127.0.0.1",
            "MAIL_IMAP_PORT": str(b.imap_port),
            "MAIL_ACCOUNTS_CMD": f"{b.p('opt', 'pocketmail', 'bin', 'maddy')} --config "
                                 f"{b.p('etc', 'pocketmail', 'maddy.conf')} imap-acct list",
            "MAIL_ACCOUNTS_WATCH": b.p("var", "lib", "pocketmail", "maddy", "imapsql.db"),
            "MAIL_ACCOUNTS_REFRESH_S": "3600",
        })
        # and what the fake maddy bound is where pocketmail.env says
        self.assertTrue(stat.S_ISSOCK(os.stat(b.settings()["MAIL_LMTP_SOCKET"]).st_mode))
        self.assertEqual(mode(b.p("run", "pocketmail", "maddy")), 0o700)
        self.assertIn(f"health: maddy LMTP socket ok ({b.settings()['MAIL_LMTP_SOCKET']})", self.first.stderr)

    def test_second_run_changes_nothing(self):
        self.assertEqual(self.digest_before, self.digest_after)
        self.assertIn("done: nothing changed", self.second.stderr)
        self.assertEqual(self.pids_after_first, self.pids_after_second, "a service was restarted")
        self.assertIn("health: all ok", self.second.stderr)


class PerServiceTest(unittest.TestCase):
    """Each service can be restarted, upgraded, removed and installed on its own."""

    @classmethod
    def setUpClass(cls):
        cls.box = Box()
        cls.box.run()

    @classmethod
    def tearDownClass(cls):
        cls.box.cleanup()

    def test_remove_then_install_one_service(self):
        b = self.box
        others = {s: b.pid(s) for s in ("ledger", "injector", "fetcher", "maddy")}
        b.run("remove", "router")
        self.assertFalse(os.path.exists(b.p("etc", "sv", "pocketmail-router")))
        self.assertFalse(os.path.exists(b.p("etc", "systemd", "system", "pocketmail-router.service")))
        self.assertFalse(os.path.exists(b.p("opt", "pocketmail", "bin", "router")))
        self.assertIsNone(b.pid("router"))
        self.assertEqual(others, {s: b.pid(s) for s in others}, "remove touched another service")
        r = b.run("install", "router")
        self.assertIn("health: router ok", r.stderr)
        self.assertIsNotNone(b.pid("router"))
        self.assertEqual(others, {s: b.pid(s) for s in others}, "install router touched another service")

    def test_restart_one_service(self):
        b = self.box
        before, ledger = b.pid("injector"), b.pid("ledger")
        r = b.run("restart", "injector")
        self.assertIn("health: injector ok", r.stderr)
        self.assertNotEqual(before, b.pid("injector"))
        self.assertEqual(ledger, b.pid("ledger"))

    def test_upgrade_one_service_restarts_it(self):
        b = self.box
        before = b.pid("ledger")
        r = b.run("upgrade", "ledger")
        self.assertIn("health: ledger ok", r.stderr)
        self.assertNotEqual(before, b.pid("ledger"))


class GateAndFailClosedTest(unittest.TestCase):
    def box(self, **kw):
        b = Box(**kw)
        self.addCleanup(b.cleanup)
        return b

    def test_enable_email_false_is_a_no_op(self):
        b = self.box(enable="false")
        r = b.run()
        self.assertIn("ENABLE_EMAIL is not true", r.stderr)
        self.assertFalse(os.path.exists(b.prefix), "something was created")

    def test_enable_email_missing_is_a_no_op(self):
        b = self.box(enable="")
        b.run()
        self.assertFalse(os.path.exists(b.prefix))

    def test_a_command_without_its_service_names_the_units(self):
        b = self.box()
        for cmd in ("upgrade", "restart", "remove"):
            r = b.run(cmd, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f"{cmd} needs a SERVICE (maddy ledger router injector fetcher)", r.stderr)
        self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

    def test_a_malformed_env_line_is_refused_before_anything_is_written(self):
        b = self.box(extra_env="MAIL_POLL 60\n")
        r = b.run(check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"\.env:\d+: expected KEY=VALUE")
        self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

    def test_placeholder_checksum_fails_closed(self):
        b = self.box()
        r = b.run(maddy_bin=False, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing to install Maddy", r.stderr)
        self.assertIn("placeholder", r.stderr)
        self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

    def test_the_shipped_pin_names_a_release_with_both_assets_and_fails_closed(self):
        pin = read_env_file(os.path.join(HERE, "maddy-release.env"))
        version = pin["MADDY_VERSION"]
        # 0.8.2 is the first release with an aarch64 asset (the phone's)
        self.assertGreaterEqual(tuple(int(x) for x in version.split(".")), (0, 8, 2), version)
        for arch in ("x86_64", "aarch64"):
            with self.subTest(arch=arch):
                sha = pin[f"MADDY_SHA256_{arch}"]
                asset = f"maddy-{version}-{arch}-linux-musl.tar.zst"
                if re.fullmatch(r"[0-9a-f]{64}", sha):
                    continue  # filled in by hand: nothing to refuse
                self.assertTrue(sha.startswith("PLACEHOLDER"), sha)
                self.assertIn(asset, sha)  # the placeholder says which file to hash
                b = self.box()
                # a tarball at hand does not bypass the pin either
                fake_tarball = os.path.join(b.root, asset)
                open(fake_tarball, "wb").close()
                r = b.run(maddy_bin=False, check=False, extra={"MADDY_ARCH": arch, "MADDY_TARBALL": fake_tarball})
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"refusing to install Maddy: the sha256 for {asset}", r.stderr)
                self.assertIn(f"MADDY_SHA256_{arch}", r.stderr)
                self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

    def test_a_gateway_token_equal_to_the_operator_token_is_refused(self):
        b = self.box()
        b.run()
        operator = b.p("etc", "pocketmail", "secrets", "grpc-token")
        with open(b.p("etc", "pocketmail", "secrets", "grpc-gateway-token"), "w") as gateway:
            gateway.write(open(operator).read())
        r = b.run(check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("grpc-gateway-token holds the same token as", r.stderr)

    def test_bad_mail_inject_via_is_refused_before_anything_is_written(self):
        b = self.box(extra_env="MAIL_INJECT_VIA=smtp\n")
        r = b.run(check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("MAIL_INJECT_VIA must be lmtp or submission (got 'smtp')", r.stderr)
        self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

    def test_bad_mail_max_message_size_is_refused_before_anything_is_written(self):
        for bad in ("32MB", "0", "-1", "1T", "32 M", "32M}"):
            with self.subTest(value=bad):
                b = self.box(extra_env=f"MAIL_MAX_MESSAGE_SIZE={bad}\n")
                r = b.run(check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"MAIL_MAX_MESSAGE_SIZE must be a size like 32M (got '{bad}')", r.stderr)
                self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

    def test_mail_inject_via_submission_writes_inject_host_and_port(self):
        b = self.box(extra_env="MAIL_INJECT_VIA=submission\nMAIL_MAX_MESSAGE_SIZE=25M\n")
        b.run("--init", "none", "install", "ledger")
        settings = b.settings()
        self.assertEqual(settings["MAIL_INJECT_HOST"], "127.0.0.1")
        self.assertEqual(settings["MAIL_INJECT_PORT"], str(b.inject_port))
        self.assertNotIn("MAIL_LMTP_SOCKET", settings)
        conf = open(b.p("etc", "pocketmail", "maddy.conf")).read()
        self.assertEqual(re.findall(r"^\s*max_message_size (\S+)$", conf, re.M), ["25M", "25M"])
        # and back to the default: the socket again, no TCP inject settings
        Box.write(b.env_file, open(b.env_file).read().replace("MAIL_INJECT_VIA=submission\n", ""))
        b.run("--init", "none", "install", "ledger")
        settings = b.settings()
        self.assertEqual(settings["MAIL_LMTP_SOCKET"], b.p("run", "pocketmail", "maddy", "lmtp.sock"))
        self.assertNotIn("MAIL_INJECT_HOST", settings)
        self.assertNotIn("MAIL_INJECT_PORT", settings)

    def _release(self, b, sha):
        """A release tarball holding the stand-in maddy, and a pin for it."""
        ver, arch = "9.9.9", "x86_64"
        top = os.path.join(b.root, "rel", f"maddy-{ver}-{arch}-linux-musl")
        os.makedirs(top)
        shutil.copy(b.fake_maddy, os.path.join(top, "maddy"))
        tarball = os.path.join(b.root, f"maddy-{ver}-{arch}-linux-musl.tar.zst")
        subprocess.run(["tar", "--zstd", "-cf", tarball, "-C", os.path.dirname(top), os.path.basename(top)], check=True)
        real = hashlib.sha256(open(tarball, "rb").read()).hexdigest()
        pin = os.path.join(b.root, "pin.env")
        b.write(pin, f"MADDY_VERSION={ver}\nMADDY_SHA256_x86_64={sha or real}\nMADDY_SHA256_aarch64=PLACEHOLDER\n")
        return {"MADDY_RELEASE_ENV": pin, "MADDY_TARBALL": tarball, "MADDY_ARCH": "x86_64"}

    def test_release_tarball_with_the_pinned_checksum_is_installed_once(self):
        b = self.box()
        hooks = self._release(b, None)
        b.run("--init", "none", "install", "ledger", maddy_bin=False, extra=hooks)
        self.assertEqual(open(b.p("opt", "pocketmail", "bin", "maddy")).read(), open(b.fake_maddy).read())
        self.assertTrue(open(b.p("var", "lib", "pocketmail", "maddy.release")).read().startswith(
            "maddy-9.9.9-x86_64-linux-musl.tar.zst "))
        r = b.run("--init", "none", "install", "ledger", maddy_bin=False, extra=hooks)
        self.assertIn("done: nothing changed", r.stderr)

    def test_release_tarball_with_another_checksum_is_refused(self):
        b = self.box()
        hooks = self._release(b, "0" * 64)
        r = b.run("--init", "none", maddy_bin=False, extra=hooks, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("checksum mismatch", r.stderr)
        self.assertFalse(os.path.exists(b.p("opt", "pocketmail", "bin", "maddy")))

    def test_hostile_env_value_is_refused(self):
        b = self.box(extra_env="MAIL_HOSTNAME=mx}.example.test\n")
        r = b.run(check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("MAIL_HOSTNAME", r.stderr)

    def test_copy_libs_brings_the_runtime_libraries_but_not_glibc(self):
        b = self.box()
        b.run("--copy-libs", "--init", "none", "install", "ledger")
        lib = b.p("opt", "pocketmail", "lib")
        libs = os.listdir(lib)
        self.assertTrue(any(l.startswith("libsqlite3.so") for l in libs), libs)
        self.assertFalse(any(l.startswith(("libc.so", "ld-linux")) for l in libs), libs)
        ldd = subprocess.run(["ldd", b.p("opt", "pocketmail", "bin", "ledger")], env={"LD_LIBRARY_PATH": lib},
                             stdout=subprocess.PIPE, text=True).stdout
        self.assertRegex(ldd, r"libsqlite3\.so\S* => " + re.escape(lib))
        self.assertNotIn("not found", ldd)


class CombinedLayoutTest(unittest.TestCase):
    """By default (no POCKETMAIL_COMBINED) the installer runs pocketmaild, the
    four services in one process; POCKETMAIL_COMBINED=false runs the four
    instead and retires it, and true brings it back."""

    def test_one_process_by_default_serves_all_four_sockets_and_false_retires_it(self):
        b = Box(combined=None)
        try:
            out = b.run().stderr
            self.assertIn("health: pocketmaild ok", out)
            self.assertIn("health: pocketmailctl status ok (ledger router injector fetcher SERVING)", out)
            pid = b.pid("pocketmaild")
            self.assertIsNotNone(pid)
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            self.assertEqual(argv[0].decode(), b.p("opt", "pocketmail", "bin", "pocketmaild"))
            self.assertTrue(all(a.startswith(b"--env-file=") for a in argv[1:] if a), argv)
            for svc in SERVICES:
                self.assertTrue(stat.S_ISSOCK(os.stat(b.p("run", "pocketmail", f"{svc}.sock")).st_mode), svc)
                self.assertIsNone(b.pid(svc), svc)
                self.assertFalse(os.path.exists(b.p("etc", "sv", f"pocketmail-{svc}")), svc)
            self.assertIn("nothing changed", b.run().stderr)  # idempotent in this layout too

            Box.write(b.env_file, open(b.env_file).read() + "POCKETMAIL_COMBINED=false\n")
            out = b.run().stderr
            self.assertIn("retired pocketmaild (POCKETMAIL_COMBINED=false)", out)
            self.assertIn("health: pocketmailctl status ok (ledger router injector fetcher SERVING)", out)
            self.assertIsNone(b.pid("pocketmaild"))
            self.assertFalse(os.path.exists(b.p("etc", "sv", "pocketmail-pocketmaild")))
            for svc in SERVICES:
                self.assertIsNotNone(b.pid(svc), svc)

            Box.write(b.env_file, open(b.env_file).read().replace("POCKETMAIL_COMBINED=false", "POCKETMAIL_COMBINED=true"))
            out = b.run().stderr
            for svc in SERVICES:
                self.assertIn(f"retired {svc} (POCKETMAIL_COMBINED=true)", out)
                self.assertIsNone(b.pid(svc), svc)
            self.assertIsNotNone(b.pid("pocketmaild"))
            self.assertIn("health: pocketmailctl status ok (ledger router injector fetcher SERVING)", out)
        finally:
            b.cleanup()

    def test_a_bad_value_is_refused(self):
        b = Box(combined="yes")
        try:
            r = b.run(check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("POCKETMAIL_COMBINED must be true or false", r.stderr)
        finally:
            b.cleanup()


class AddMailboxTest(unittest.TestCase):
    """`install-email.sh add-mailbox ADDRESS`, the password on stdin."""

    @classmethod
    def setUpClass(cls):
        cls.box = Box()
        cls.box.run("--init", "none", "install", "maddy")
        cls.state = cls.box.p("var", "lib", "pocketmail", "maddy")

    @classmethod
    def tearDownClass(cls):
        cls.box.cleanup()

    def creds(self):
        return [l.split() for l in open(os.path.join(self.state, "creds"))]

    def accts(self):
        return open(os.path.join(self.state, "accts")).read().split()

    def argv_log(self):
        return open(os.path.join(self.state, "fake-maddy-argv.log")).read()

    def test_the_password_goes_on_stdin_never_on_argv(self):
        b, pw = self.box, "alicePW" + os.urandom(8).hex()
        r = b.run("add-mailbox", "Alice@Example.TEST", stdin=pw + "\n")
        self.assertIn("maddy credentials of alice@example.test", r.stderr)
        self.assertIn(["alice@example.test", hashlib.sha256(pw.encode()).hexdigest(), str(len(pw))], self.creds())
        self.assertIn("alice@example.test", self.accts())
        log = self.argv_log()
        self.assertIn("creds create alice@example.test\n", log)
        self.assertIn("imap-acct create alice@example.test\n", log)
        for where, text in (("the fake maddy's argv log", log), ("installer output", r.stdout + r.stderr),
                            ("pocketmail.env", open(b.p("etc", "pocketmail", "pocketmail.env")).read())):
            self.assertNotIn(pw, text, f"the password appears in {where}")

    def test_an_existing_login_keeps_its_password(self):
        b = self.box
        first, second = "bobPW" + os.urandom(8).hex(), "bobOTHER" + os.urandom(8).hex()
        b.run("add-mailbox", "bob@example.test", stdin=first + "\n")
        r = b.run("add-mailbox", "bob@example.test", stdin=second + "\n")
        self.assertIn("add-mailbox: bob@example.test has a login already; its password is kept", r.stderr)
        self.assertIn("add-mailbox: bob@example.test has a mailbox already", r.stderr)
        bob = [c for c in self.creds() if c[0] == "bob@example.test"]
        self.assertEqual(bob, [["bob@example.test", hashlib.sha256(first.encode()).hexdigest(), str(len(first))]])
        self.assertEqual(self.accts().count("bob@example.test"), 1)
        self.assertNotIn(second, self.argv_log())

    def test_a_login_without_a_mailbox_gets_one_and_keeps_its_password(self):
        b = self.box
        pw = "carolPW" + os.urandom(8).hex()
        b.run("add-mailbox", "carol@example.test", stdin=pw + "\n")
        # the mailbox is lost (say, created by hand and deleted); the login stays
        accts = [a for a in self.accts() if a != "carol@example.test"]
        Box.write(os.path.join(self.state, "accts"), "".join(a + "\n" for a in accts))
        r = b.run("add-mailbox", "carol@example.test")  # no password needed now
        self.assertIn("maddy mailbox of carol@example.test", r.stderr)
        self.assertIn("carol@example.test", self.accts())
        self.assertEqual(len([c for c in self.creds() if c[0] == "carol@example.test"]), 1)

    def test_an_address_outside_mail_domain_is_refused(self):
        b = self.box
        for address in ("dave@other.test", "dave@sub.example.test", "dave@example.test.evil", "dave", "@example.test",
                        "da ve@example.test", "_dave@example.test", "dave@example.test/x"):
            with self.subTest(address=address):
                creds, log = self.creds(), self.argv_log()
                r = b.run("add-mailbox", address, stdin="pw12345678\n", check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"add-mailbox: '{address}' is not an address in example.test", r.stderr)
                self.assertEqual(creds, self.creds())
                self.assertEqual(log, self.argv_log(), "maddy was run")

    def test_no_password_on_stdin_is_refused(self):
        r = self.box.run("add-mailbox", "erin@example.test", stdin="", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("add-mailbox: no password on stdin for erin@example.test", r.stderr)
        self.assertNotIn("erin@example.test", [c[0] for c in self.creds()])
        self.assertNotIn("erin@example.test", self.accts())

    def test_needs_an_address(self):
        r = self.box.run("add-mailbox", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("add-mailbox needs an ADDRESS", r.stderr)


def bind_stale_socket(path):
    """A socket file nobody listens on, as a SIGKILLed server leaves behind."""
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()


class StaleSocketTest(unittest.TestCase):
    """Maddy (and the stand-in) neither removes its sockets after a crash nor
    starts with a leftover LMTP socket: the run script and the systemd unit
    clear them first."""

    def box(self):
        b = Box()
        self.addCleanup(b.cleanup)
        return b

    def test_the_run_script_removes_stale_sockets_so_restart_brings_maddy_back(self):
        b = self.box()
        b.run("install", "maddy")
        rundir = b.p("run", "pocketmail", "maddy")
        lmtp, pipe = os.path.join(rundir, "lmtp.sock"), os.path.join(rundir, "sql-fake.sock")
        old = b.pid("maddy")
        os.kill(old, signal.SIGKILL)
        wait_gone(old)
        for path in (lmtp, pipe):
            self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode), f"{path}: the crash left no socket")
        # the stand-in, like Maddy, does not start over a leftover LMTP socket
        r = subprocess.run([b.p("opt", "pocketmail", "bin", "maddy"), "--config", b.p("etc", "pocketmail", "maddy.conf"),
                            "run"], env=dict(os.environ, RESEND_API_KEY="x"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Address already in use", r.stderr)
        offset = len(b.maddy_log())
        os.chmod(rundir, 0o755)  # and the dir is put back to 0700
        r = b.run("restart", "maddy")
        self.assertIn("health: maddy IMAP ok", r.stderr)
        self.assertIn(f"health: maddy LMTP socket ok ({lmtp})", r.stderr)
        self.assertNotIn("pocketmailctl", r.stderr)  # only maddy was restarted: nothing to ask
        self.assertNotEqual(old, b.pid("maddy"))
        self.assertEqual(b.maddy_log()[offset:], "", "the restarted maddy complained")
        self.assertEqual(mode(rundir), 0o700)

    def test_the_systemd_unit_clears_the_same_sockets_before_starting(self):
        b = self.box()
        b.run("--init", "none", "install", "maddy")
        unit = open(b.p("etc", "systemd", "system", "pocketmail-maddy.service")).read()
        pre = re.findall(r"^ExecStartPre=(.*)$", unit, re.M)
        self.assertEqual(len(pre), 1, unit)
        rundir = b.p("run", "pocketmail", "maddy")
        for name in ("lmtp.sock", "sql-0123abcd.sock"):
            bind_stale_socket(os.path.join(rundir, name))
        keep = os.path.join(rundir, "not-a-socket-of-maddy")
        open(keep, "w").close()
        os.chmod(rundir, 0o755)
        # systemd splits the line with shell-like quoting; these paths have no
        # % or $, so shlex splits it the same way
        argv = shlex.split(pre[0])
        self.assertEqual(argv[:2], ["/bin/sh", "-c"])
        subprocess.run(argv, check=True, timeout=30)
        self.assertEqual(os.listdir(rundir), ["not-a-socket-of-maddy"])
        self.assertEqual(mode(rundir), 0o700)
        shutil.rmtree(rundir)  # a tmpfs emptied at boot
        subprocess.run(argv, check=True, timeout=30)
        self.assertEqual(mode(rundir), 0o700)


def wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} is still alive")


# --- the real Maddy ---------------------------------------------------------------

def read_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            break
        buf += c
    return buf.decode(errors="replace").rstrip("\r\n")


def lmtp_hello(path):
    """(greeting, the LHLO reply's lines) from the LMTP server on a unix socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        greeting = read_line(s)
        s.sendall(b"LHLO x\r\n")
        reply = [read_line(s)]
        while re.match(r"^\d{3}-", reply[-1]):
            reply.append(read_line(s))
        s.sendall(b"QUIT\r\n")
        read_line(s)
    return greeting, reply


def imap_greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return read_line(s)


def remote_addresses(pid):
    """The remote address of every TCP/UDP socket the process holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    out = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            hexaddr = fields[2].split(":")[0]
            raw = bytes.fromhex(hexaddr)
            # /proc/net prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            out.append((table, ipaddress.ip_address(raw)))
    return out


def is_local(addr):
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified


# A config problem Maddy reports at start, or anything it logs at warning or
# error level; the only expected remark is "TLS is disabled" on the IMAP
# endpoint (tls off: loopback only).
MADDY_COMPLAINT = re.compile(r"error|fail|unused|unknown|deprecat|warn|invalid|cannot|refus", re.I)


def runfile(*parts):
    """A built file: from the Bazel runfiles, else from .bazel/bin."""
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        path = os.path.join(srcdir, os.environ.get("TEST_WORKSPACE", "pocketmail"), *parts)
        if os.path.exists(path):
            return path
    return os.path.join(ROOT, ".bazel", "bin", *parts)


def sourced(script, *args):
    """Runs bash `script` after sourcing the installer (which defines its
    functions and runs nothing): its stdout, stderr and exit code."""
    # $0 is bash, as when a shell sources it (with $0 = the file, main would run)
    r = subprocess.run(["bash", "-c", f'i=$1; shift; source "$i" --prefix /nonexistent install\n{script}',
                        "bash", INSTALLER, *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.stdout, r.stderr.decode(errors="replace"), r.returncode


class SourcedInstallerTest(unittest.TestCase):
    """The installer's functions, called one at a time from a shell that
    sourced it."""

    def test_sourcing_runs_nothing_and_defines_the_steps(self):
        out, err, code = sourced('declare -F main parse_args set_paths read_env render write_unit_files')
        self.assertEqual(code, 0, err)
        self.assertEqual(err, "")
        self.assertEqual(out.decode().split(), ["main", "parse_args", "set_paths", "read_env", "render",
                                                "write_unit_files"])
        self.assertFalse(os.path.exists("/nonexistent"))

    def test_one_service_template_renders_the_injectors_run_script(self):
        out, err, code = sourced('set -euo pipefail; init_state; set_paths "$1"\n'
                                 'RENDER=([BIN_DIR]=$BIN_DIR [LIB_DIR]=$LIB_DIR [SERVICE]=injector)\n'
                                 'service_render_vars injector\n'
                                 'render "$HERE/templates/run.service.tmpl"', "/opt/x")
        self.assertEqual(code, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[1], "# pocketmail injector (delivery into Maddy) — runit run script, generated by")
        self.assertEqual(lines[-1], "exec '/opt/x/opt/pocketmail/bin/injector' "
                         "--env-file='/opt/x/etc/pocketmail/pocketmail.env' "
                         "--env-file='/opt/x/etc/pocketmail/secrets/mail-inject.env' "
                         "--env-file='/opt/x/etc/pocketmail/secrets/mail-admin.env'")


# Env files both parsers are fed: the installer's read_env (bash) and the
# services' ReadEnvFile (C++, through //common/config:env_file_dump). None
# means both must refuse the file.
ENV_CASES = {
    "plain": "A=1\nB=two words\n",
    "double and single quotes": "A=\"x y\"\nB='x y'\nC=\"it's\"\nD='say \"hi\"'\n",
    "one pair of quotes only": "A=\"\"x\"\"\nB=\"a\"b\"\nC='x\"\n",
    "an unmatched quote is kept": "A=\"open\nB=close'\nC=\"\n",
    "comments": "# top\n  # indented\nA=1 # not a comment\nB=#x\n#C=3\n",
    "export": "export A=1\nexport  B=2\n  export C=\"3\"\nexportD=4\n",
    "spaces around =": "A = 1\nB= 2\nC =3\n\tD\t=\t4\t\nE = \" padded \" \n",
    "empty values": "A=\nB=\"\"\nC=''\nD=   \n",
    "CRLF": "A=1\r\nB=\"q\"\r\nC=\r\n# c\r\n\r\nD=x y\r\n",
    "# and = inside a value": "A=a#b\nB=x=y=z\nC=\"p#q=r\"\nD==\n",
    "duplicate keys: the last wins": "A=1\nA=2\nB=x\nexport B=\"y\"\n",
    "no newline at the end": "A=1\nB=2",
    "blank and whitespace-only lines": "\n   \n\t\nA=1\n \n",
    "a line without = is refused": "A=1\nnonsense\n",
    "a line starting with = is refused": "A=1\n=x\n",
    "export alone is refused": "export\n",
}


def cpp_env(path):
    r = subprocess.run([runfile("common", "config", "env_file_dump"), path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return None if r.returncode else r.stdout


def bash_env(path):
    out, _, code = sourced('env_dump "$1"', path)
    return None if code else out


def pairs(dump):
    if dump is None:
        return None
    fields = dump.split(b"\0")[:-1]
    return dict(zip(fields[0::2], fields[1::2]))


class EnvParsersAgreeTest(unittest.TestCase):
    """The installer parses the .env in bash, the services their env files in
    C++: one syntax, so the same file means the same to both."""

    def test_the_installer_and_the_services_read_each_file_alike(self):
        d = tempfile.mkdtemp(prefix="pm-env-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        for name, text in ENV_CASES.items():
            with self.subTest(name):
                path = os.path.join(d, "case.env")
                with open(path, "wb") as f:
                    f.write(text.encode())
                os.chmod(path, 0o600)  # ReadEnvFile refuses looser files
                cpp, sh = pairs(cpp_env(path)), pairs(bash_env(path))
                self.assertEqual(sh, cpp, f"{name}: bash {sh} vs C++ {cpp}")
                if "refused" in name:
                    self.assertIsNone(cpp)
                else:
                    self.assertIsNotNone(cpp)

    def test_the_values_are_the_documented_ones(self):
        expected = {
            "spaces around =": {"A": "1", "B": "2", "C": "3", "D": "4", "E": " padded "},
            "CRLF": {"A": "1", "B": "q", "C": "", "D": "x y"},
            "comments": {"A": "1 # not a comment", "B": "#x"},
            "export": {"A": "1", "B": "2", "C": "3", "exportD": "4"},
            "# and = inside a value": {"A": "a#b", "B": "x=y=z", "C": "p#q=r", "D": "="},
            "duplicate keys: the last wins": {"A": "2", "B": "y"},
        }
        d = tempfile.mkdtemp(prefix="pm-env-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        for name, want in expected.items():
            with self.subTest(name):
                path = os.path.join(d, "case.env")
                with open(path, "wb") as f:
                    f.write(ENV_CASES[name].encode())
                os.chmod(path, 0o600)
                got = {k.decode(): v.decode() for k, v in pairs(bash_env(path)).items()}
                self.assertEqual(got, want)


class RealMaddyTest(unittest.TestCase):
    """The installer with MADDY_BIN=$PM_MADDY_BIN: the rendered maddy.conf is
    loaded into the real Maddy, which the installer's own health check (and
    then these tests) talk to."""

    @classmethod
    def setUpClass(cls):
        cls.box = Box(maddy=real_maddy_bin(), combined=None)  # the default layout
        try:
            cls.install = cls.box.run()
            cls.alice_pw = "alicePW" + os.urandom(12).hex()
            cls.add = cls.box.run("add-mailbox", "alice@example.test", stdin=cls.alice_pw + "\n")
            # before the tests' own logins (one of them with a wrong password)
            cls.startup_log = cls.box.maddy_log()
        except BaseException:
            print("maddy log:\n" + cls.box.maddy_log(), file=sys.stderr)
            cls.box.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.box.cleanup()

    def test_the_installers_health_check_passes_on_real_maddy(self):
        out = self.install.stderr
        self.assertIn(f"health: maddy IMAP ok (127.0.0.1:{self.box.imap_port})", out)
        self.assertIn("health: maddy LMTP socket ok", out)
        self.assertIn("health: pocketmailctl status ok (ledger router injector fetcher SERVING)", out)
        self.assertIn("health: all ok", out)

    def test_maddy_runs_the_rendered_config_and_reports_no_problem(self):
        b = self.box
        pid = b.pid("maddy")
        self.assertIsNotNone(pid)
        argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
        self.assertEqual(argv[:4], [b.p("opt", "pocketmail", "bin", "maddy"), "--config",
                                    b.p("etc", "pocketmail", "maddy.conf"), "run"])
        self.assertEqual(open(b.p("opt", "pocketmail", "bin", "maddy"), "rb").read(),
                         open(b.maddy_bin, "rb").read(), "not the real maddy")
        log = self.startup_log
        for endpoint in (f"lmtp: listening on unix://{b.settings()['MAIL_LMTP_SOCKET']}",
                         f"submission: listening on tcp://127.0.0.1:{b.inject_port}",
                         f"imap: listening on tcp://127.0.0.1:{b.imap_port}",
                         f"submission: listening on tcp://127.0.0.1:{b.sub_port}"):
            self.assertIn(endpoint, log)
        complaints = [l for l in log.splitlines() if MADDY_COMPLAINT.search(l)]
        self.assertEqual(complaints, [], log)
        for s in b.secrets() + [self.alice_pw]:
            self.assertNotIn(s, log, "a secret in maddy's log")

    def test_imap_greets_and_the_generated_inbox_login_works(self):
        b = self.box
        self.assertTrue(imap_greeting(b.imap_port).startswith("* OK"))
        creds = b.credentials()
        with imaplib.IMAP4("127.0.0.1", b.imap_port, timeout=10) as m:
            self.assertEqual(m.login(creds["INBOX_USER"], creds["INBOX_PASS"])[0], "OK")
            self.assertEqual(m.select("INBOX")[0], "OK")
        with imaplib.IMAP4("127.0.0.1", b.imap_port, timeout=10) as m:
            with self.assertRaises(imaplib.IMAP4.error):
                m.login(creds["INBOX_USER"], creds["INBOX_PASS"] + "x")

    def test_lmtp_answers_on_the_socket_pocketmail_env_names(self):
        b = self.box
        path = b.settings()["MAIL_LMTP_SOCKET"]
        self.assertLess(len(path.encode()), 108)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        self.assertEqual(mode(os.path.dirname(path)), 0o700)
        greeting, reply = lmtp_hello(path)
        self.assertRegex(greeting, r"^220 mx\.example\.test ")
        self.assertTrue(reply[-1].startswith("250 "), reply)
        self.assertTrue(all(l.startswith("250") for l in reply), reply)
        self.assertIn("250-SIZE 33554432", reply)  # MAIL_MAX_MESSAGE_SIZE's default, 32M
        self.assertNotIn("AUTH", " ".join(reply))  # only the injector can reach this socket

    def test_maddy_lists_the_provisioned_logins_and_mailboxes(self):
        creds = self.box.maddy("creds", "list").split()
        accts = self.box.maddy("imap-acct", "list").split()
        self.assertEqual(sorted(creds), ["admin@example.test", "alice@example.test", "inbox@example.test",
                                         "pocketmail-inject@example.test"])
        # the inject login has no mailbox: it is not routable
        self.assertEqual(sorted(accts), ["admin@example.test", "alice@example.test", "inbox@example.test"])

    def test_add_mailbox_creates_a_working_login_and_keeps_an_existing_password(self):
        b = self.box
        self.assertIn("maddy mailbox of alice@example.test", self.add.stderr)
        with imaplib.IMAP4("127.0.0.1", b.imap_port, timeout=10) as m:
            self.assertEqual(m.login("alice@example.test", self.alice_pw)[0], "OK")
        other = "other" + os.urandom(8).hex()
        r = b.run("add-mailbox", "alice@example.test", stdin=other + "\n")
        self.assertIn("add-mailbox: alice@example.test has a login already; its password is kept", r.stderr)
        with imaplib.IMAP4("127.0.0.1", b.imap_port, timeout=10) as m:
            self.assertEqual(m.login("alice@example.test", self.alice_pw)[0], "OK")
        with imaplib.IMAP4("127.0.0.1", b.imap_port, timeout=10) as m:
            with self.assertRaises(imaplib.IMAP4.error):
                m.login("alice@example.test", other)

    def test_the_relay_block_parses_and_nothing_connects_outside(self):
        b = self.box
        conf = open(b.p("etc", "pocketmail", "maddy.conf")).read()
        self.assertRegex(conf, r"\ntarget\.smtp resend \{\n\s*targets tcp://smtp\.resend\.com:587\n\s*starttls yes\n")
        self.assertIn("deliver_to &resend", conf)  # used, or Maddy would refuse the config
        pid = b.pid("maddy")
        # Maddy started with the block (the tests above); the relay is only for
        # non-local recipients, and no mail is sent, so every socket Maddy
        # holds is a loopback listener or connection.
        for _ in range(5):
            addrs = remote_addresses(pid)
            self.assertTrue(addrs, "no TCP listeners found for maddy")
            self.assertEqual([a for a in addrs if not is_local(a[1])], [], addrs)
            time.sleep(0.2)
        self.assertNotIn("resend.com", b.maddy_log())


class RealMaddyRestartTest(unittest.TestCase):
    """SIGKILL of the real Maddy, then `install-email.sh restart maddy`."""

    def test_restart_after_sigkill_brings_real_maddy_back(self):
        b = Box(maddy=real_maddy_bin())
        self.addCleanup(b.cleanup)
        try:
            b.run("install", "maddy")
            rundir = b.p("run", "pocketmail", "maddy")
            lmtp = b.settings()["MAIL_LMTP_SOCKET"]
            self.assertEqual(lmtp, os.path.join(rundir, "lmtp.sock"))
            old = b.pid("maddy")
            os.kill(old, signal.SIGKILL)
            wait_gone(old)
            left = sorted(os.listdir(rundir))
            self.assertIn("lmtp.sock", left)  # Maddy left its sockets behind
            self.assertTrue(any(re.fullmatch(r"sql-[0-9a-f]+\.sock", n) for n in left), left)
            with socket.socket(socket.AF_UNIX) as s, self.assertRaises(ConnectionRefusedError):
                s.connect(lmtp)
            offset = len(b.maddy_log())
            r = b.run("restart", "maddy")
            self.assertIn("health: maddy IMAP ok", r.stderr)
            self.assertIn(f"health: maddy LMTP socket ok ({lmtp})", r.stderr)
            self.assertIn("health: all ok", r.stderr)
            new = b.pid("maddy")
            self.assertNotIn(new, (None, old))
            log = b.maddy_log()[offset:]
            self.assertIn(f"lmtp: listening on unix://{lmtp}", log)
            # a leftover update-pipe socket would be "failed to initialize updates pipe"
            self.assertEqual([l for l in log.splitlines() if MADDY_COMPLAINT.search(l)], [], log)
            greeting, reply = lmtp_hello(lmtp)
            self.assertTrue(greeting.startswith("220 "), greeting)
            self.assertTrue(reply[-1].startswith("250 "), reply)
            creds = b.credentials()
            with imaplib.IMAP4("127.0.0.1", b.imap_port, timeout=10) as m:
                self.assertEqual(m.login(creds["INBOX_USER"], creds["INBOX_PASS"])[0], "OK")
            self.assertEqual(mode(rundir), 0o700)
        except BaseException:
            print("maddy log:\n" + b.maddy_log(), file=sys.stderr)
            raise


# --- JUnit XML, one <testcase> per method ---------------------------------------

class JUnitResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cases, self.order, self._t0 = {}, [], {}

    def _case(self, test):
        tid = test.id()
        if tid not in self.cases:
            self.cases[tid] = {"time": 0.0, "failures": [], "skipped": None}
            self.order.append(tid)
        return self.cases[tid]

    def startTest(self, test):
        self._t0[test.id()] = time.monotonic()
        self._case(test)
        super().startTest(test)

    def stopTest(self, test):
        self._case(test)["time"] = time.monotonic() - self._t0.get(test.id(), time.monotonic())
        super().stopTest(test)

    def addFailure(self, test, err):
        self._case(test)["failures"].append(("failure", self._exc_info_to_string(err, test)))
        super().addFailure(test, err)

    def addError(self, test, err):
        self._case(test)["failures"].append(("error", self._exc_info_to_string(err, test)))
        super().addError(test, err)

    def addSkip(self, test, reason):
        self._case(test)["skipped"] = reason
        super().addSkip(test, reason)


def write_junit(result, path, elapsed):
    failed = sum(1 for c in result.cases.values() if c["failures"])
    root = ET.Element("testsuites", tests=str(len(result.order)), failures=str(failed), time=f"{elapsed:.3f}")
    suite = ET.SubElement(root, "testsuite", name="deploy/install_test", tests=str(len(result.order)),
                          failures=str(failed), errors="0", time=f"{elapsed:.3f}")
    for tid in result.order:
        c = result.cases[tid]
        classname, _, name = tid.rpartition(".")
        tc = ET.SubElement(suite, "testcase", classname=classname.replace("__main__", "install_test"),
                           name=name, time=f"{c['time']:.3f}")
        for kind, text in c["failures"]:
            lines = text.strip().splitlines()
            ET.SubElement(tc, "failure", message=(lines[-1] if lines else kind)[:500], type=kind).text = text
        if c["skipped"] is not None and not c["failures"]:
            ET.SubElement(tc, "skipped", message=c["skipped"])
    ET.ElementTree(root).write(path + ".tmp", encoding="UTF-8", xml_declaration=True)
    os.replace(path + ".tmp", path)


def main():
    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    suite = loader.loadTestsFromNames(sys.argv[1:], module) if sys.argv[1:] else loader.loadTestsFromModule(module)
    only = os.environ.get("TESTBRIDGE_TEST_ONLY")
    if only:
        flat = []
        stack = [suite]
        while stack:
            s = stack.pop()
            for t in s:
                (stack.append(t) if isinstance(t, unittest.TestSuite) else flat.append(t))
        suite = unittest.TestSuite(t for t in flat if only in t.id())
    started = time.monotonic()
    try:
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=JUnitResult).run(suite)
    except Exception:
        traceback.print_exc()
        return 1
    if os.environ.get("XML_OUTPUT_FILE"):
        write_junit(result, os.environ["XML_OUTPUT_FILE"], time.monotonic() - started)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
