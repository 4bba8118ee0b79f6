#!/usr/bin/python3
"""deploy/install-email.sh, run for real into temporary prefixes.

A stand-in `maddy` (written below) logs its argv, keeps its accounts in its
state dir, records a sha256 of each password it received on stdin (never the
password), and for `run` answers IMAP greetings on the port from the rendered
maddy.conf. The four pocketmail services are started for real from the
generated runit run scripts (`--init direct`), so the health check at the end
of the installer is the real one.

Run by Bazel (`bazel test //deploy:install_test`), which puts the binaries in
the runfiles; outside Bazel set PM_SERVICES_BIN_DIR (default
.bazel/bin/services). Writes JUnit XML to $XML_OUTPUT_FILE, one <testcase> per
test method.
"""
import hashlib
import os
import re
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
    printf 'run: RESEND_API_KEY length %s\n' "${#RESEND_API_KEY}" >> "$state/fake-maddy-argv.log"
    # exec -a: keep argv[0] = this maddy, as the real server's would be
    exec -a "$0" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"* OK fake maddy ready\r\n")
    except OSError as e:  # a client that hung up early must not end the server
        print("fake maddy:", e, file=sys.stderr, flush=True)
    c.close()
' "$port" ;;
  *) echo "fake maddy: unsupported $*" >&2; exit 2 ;;
esac
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Box:
    """A temporary prefix with an .env, user secrets and the stand-in maddy."""

    def __init__(self, enable="true", extra_env=""):
        self.root = tempfile.mkdtemp(prefix="pm-", dir="/tmp")  # short: unix socket paths
        self.prefix = os.path.join(self.root, "p")
        self.inputs = os.path.join(self.root, "in")
        os.makedirs(self.inputs)
        self.imap_port, self.inject_port, self.sub_port = free_port(), free_port(), free_port()
        self.r2_secret = "r2SECRET" + os.urandom(8).hex()
        self.resend_key = "re_RESEND" + os.urandom(8).hex()
        self.env_file = os.path.join(self.inputs, ".env")
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
{extra_env}""")
        self.secrets_src = os.path.join(self.inputs, "secrets")
        os.makedirs(self.secrets_src, mode=0o700)
        self.write(os.path.join(self.secrets_src, "mail-r2.env"),
                   f"R2_ACCOUNT_ID=acct\nR2_ACCESS_KEY_ID=AKIDtest\nR2_SECRET_ACCESS_KEY={self.r2_secret}\nR2_BUCKET=mail\n")
        self.write(os.path.join(self.secrets_src, "mail-relay.env"), f"RESEND_API_KEY={self.resend_key}\n")
        self.fake_maddy = os.path.join(self.inputs, "maddy")
        self.write(self.fake_maddy, FAKE_MADDY, 0o755)
        self.outputs = []

    @staticmethod
    def write(path, text, mode=0o600):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def p(self, *parts):
        return os.path.join(self.prefix, *parts)

    def run(self, *args, maddy_bin=True, extra=None, check=True):
        env = dict(os.environ)
        env.pop("MADDY_BIN", None)
        if maddy_bin:
            env["MADDY_BIN"] = self.fake_maddy
        env.update(extra or {})
        cmd = ["bash", INSTALLER, "--prefix", self.prefix, "--env", self.env_file,
               "--bin-dir", services_bin_dir(), "--secrets-src", self.secrets_src,
               "--init", "direct", *args]
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=180)
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
        tok = self.p("etc", "pocketmail", "secrets", "grpc-token")
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
        for name in ("mail-r2.env", "mail-relay.env", "mail-inject.env", "mail-admin.env", "grpc-token"):
            self.assertEqual(mode(b.p("etc", "pocketmail", "secrets", name)), 0o600, name)
        for f in ("pocketmail.env", "maddy.conf"):
            self.assertEqual(mode(b.p("etc", "pocketmail", f)), 0o600, f)
        for d in (("etc", "pocketmail"), ("etc", "pocketmail", "secrets"), ("var", "lib", "pocketmail"),
                  ("var", "lib", "pocketmail", "maddy"), ("run", "pocketmail"), ("var", "log", "pocketmail")):
            self.assertEqual(mode(b.p(*d)), 0o700, "/".join(d))
        token = open(b.p("etc", "pocketmail", "secrets", "grpc-token")).read().strip()
        self.assertRegex(token, r"^[0-9a-f]{64}$")

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
            ("submission", f"tcp://127.0.0.1:{self.box.inject_port}"),
            ("imap", f"tcp://127.0.0.1:{self.box.imap_port}"),
            ("submission", f"tcp://127.0.0.1:{self.box.sub_port}")]))
        self.assertIn("targets tcp://smtp.resend.com:587", live)
        self.assertIn("require_tls yes", live)
        self.assertIn("auth plain resend {env:RESEND_API_KEY}", live)
        self.assertIn("hostname mx.example.test", live)
        self.assertEqual(live.count("{"), live.count("}"))

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

    def test_placeholder_checksum_fails_closed(self):
        b = self.box()
        r = b.run(maddy_bin=False, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing to install Maddy", r.stderr)
        self.assertIn("placeholder", r.stderr)
        self.assertFalse(os.path.exists(b.prefix), "it wrote files before failing")

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
    """POCKETMAIL_COMBINED=true runs pocketmaild (the four services in one
    process) instead of the four; switching back retires it, and vice versa."""

    def test_one_process_serves_all_four_sockets_and_switching_back_retires_it(self):
        b = Box(extra_env="POCKETMAIL_COMBINED=true\n")
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

            Box.write(b.env_file, open(b.env_file).read().replace("POCKETMAIL_COMBINED=true", "POCKETMAIL_COMBINED=false"))
            out = b.run().stderr
            self.assertIn("retired pocketmaild", out)
            self.assertIn("health: pocketmailctl status ok (ledger router injector fetcher SERVING)", out)
            self.assertIsNone(b.pid("pocketmaild"))
            self.assertFalse(os.path.exists(b.p("etc", "sv", "pocketmail-pocketmaild")))
            for svc in SERVICES:
                self.assertIsNotNone(b.pid(svc), svc)
        finally:
            b.cleanup()

    def test_a_bad_value_is_refused(self):
        b = Box(extra_env="POCKETMAIL_COMBINED=yes\n")
        try:
            r = b.run(check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("POCKETMAIL_COMBINED must be true or false", r.stderr)
        finally:
            b.cleanup()


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
