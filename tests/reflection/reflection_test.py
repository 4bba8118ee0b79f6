#!/usr/bin/python3
"""Each pocketmail service, started alone, is usable the way grpcurl uses it.

For every service: server reflection lists it next to grpc.health.v1.Health and
grpc.reflection.v1alpha.ServerReflection, describes every RPC of its proto, and
a read-only call built purely from the reflected descriptors returns the
expected content. The optional TCP listener (ledger) requires the bearer token
on every call, reflection included, and a token file readable by others keeps
the service from starting. Every service must exit 0 on SIGTERM.

Run by Bazel (`bazel test //tests/reflection/...`), which puts the service
binaries in the runfiles; outside Bazel, set PM_SERVICES_BIN_DIR to a dir with
<name>/<name> binaries (e.g. .bazel/bin/services). Writes JUnit XML to
$XML_OUTPUT_FILE, one <testcase> per test method.
"""
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import grpc_inspect  # noqa: E402

# The runfiles root under Bazel, the checkout otherwise: tests/reflection/ is two down.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


# --- locating and running the service binaries --------------------------------

def binary_path(name):
    candidates = []
    srcdir, workspace = os.environ.get("TEST_SRCDIR"), os.environ.get("TEST_WORKSPACE", "pocketmail")
    if srcdir:
        candidates.append(os.path.join(srcdir, workspace, "services", name, name))
    if os.environ.get("PM_SERVICES_BIN_DIR"):
        candidates.append(os.path.join(os.environ["PM_SERVICES_BIN_DIR"], name, name))
    candidates.append(os.path.join(ROOT, ".bazel", "bin", "services", name, name))
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


class ProtoRpc:
    def __init__(self, name, client_streaming, input_type, server_streaming, output_type):
        self.name = name
        self.client_streaming = client_streaming
        self.input_type = input_type
        self.server_streaming = server_streaming
        self.output_type = output_type

    def describe_line(self):
        """The line grpcurl's describe prints for this rpc."""
        req = ("stream " if self.client_streaming else "") + "." + self.input_type
        resp = ("stream " if self.server_streaming else "") + "." + self.output_type
        return f"rpc {self.name} ( {req} ) returns ( {resp} );"


def proto_service(name):
    """(full service name, [ProtoRpc]) read from proto/pocketmail/<name>/v1/<name>.proto.

    The expectations come from the contract itself, so a new rpc that the
    binary does not serve (or vice versa) fails the describe test.
    """
    path = os.path.join(ROOT, "proto", "pocketmail", name, "v1", f"{name}.proto")
    with open(path) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    package = re.search(r"\bpackage\s+([\w.]+)\s*;", text).group(1)
    services = re.findall(r"\bservice\s+(\w+)\s*\{(.*?)\}", text, flags=re.S)
    if len(services) != 1:
        raise AssertionError(f"{path}: expected one service, found {len(services)}")
    service, body = services[0]

    def qualify(t):
        return t.lstrip(".") if "." in t else f"{package}.{t}"

    rpcs = [ProtoRpc(m[0], bool(m[1]), qualify(m[2]), bool(m[3]), qualify(m[4]))
            for m in re.findall(r"\brpc\s+(\w+)\s*\(\s*(stream\s+)?([\w.]+)\s*\)\s*returns\s*"
                                r"\(\s*(stream\s+)?([\w.]+)\s*\)", body)]
    return f"{package}.{service}", rpcs


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_listening(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def minimal_env(name, scratch):
    """Just enough configuration for `name` to start without its peers."""
    if name == "ledger":
        return {"POCKETMAIL_STATE_DIR": os.path.join(scratch, "state")}
    if name == "router":
        return {
            "MAIL_DOMAIN": "example.org",
            "MAIL_ACCOUNTS_CMD": "printf 'alice@example.org\\ninbox@example.org\\n'",
        }
    if name == "injector":
        return {
            "MAIL_INJECT_HOST": "127.0.0.1",
            "MAIL_INJECT_PORT": str(free_port()),  # nothing listens: never dialled by these tests
            "INJECT_USER": "u",
            "INJECT_PASS": "p",
            "MAIL_HOSTNAME": "test",
        }
    if name == "pocketmaild":  # all four in one process: one environment for all
        env = {}
        for each in ("ledger", "router", "injector", "fetcher"):
            env.update(minimal_env(each, scratch))
        return env
    if name == "fetcher":
        return {
            "MAIL_DOMAIN": "example.org",
            "R2_BUCKET": "mail",
            "R2_ENDPOINT": "https://127.0.0.1:9",  # discard port: listing fails fast
            "R2_ACCESS_KEY_ID": "x",
            "R2_SECRET_ACCESS_KEY": "y",
            "MAIL_POLL": "3600",
            "POCKETMAIL_STATE_DIR": os.path.join(scratch, "state"),  # lock file, alert sentinels
        }
    raise ValueError(name)


# Settings a developer's shell may carry that must not leak into the service.
_INHERITED_PREFIXES = ("POCKETMAIL_", "MAIL_", "R2_", "INJECT_", "FETCH_", "XDG_RUNTIME_DIR",
                       "ROUTER_", "LEDGER_", "KEEP_PROCESSED_COPY", "RETRY_", "ONESHOT", "WAKE_")


class ServiceProcess:
    """One service binary, alone, on `<scratch>/run/<name>.sock`."""

    def __init__(self, name, scratch, extra_env=None):
        self.name = name
        self.binary = binary_path(name)
        self.scratch = scratch
        self.runtime_dir = os.path.join(scratch, "run")
        # pocketmaild listens on the four services' sockets, not one of its own.
        sock = "ledger" if name == "pocketmaild" else name
        self.socket_path = os.path.join(self.runtime_dir, f"{sock}.sock")
        self.target = "unix:" + self.socket_path
        self.log_path = os.path.join(scratch, f"{name}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        env["POCKETMAIL_RUNTIME_DIR"] = self.runtime_dir
        env.update(minimal_env(name, scratch))
        env.update(extra_env or {})
        self.env = env
        self.proc = None

    def start(self):
        if self.binary is None:
            raise unittest.SkipTest(f"//services/{self.name} binary not found")
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.scratch)
        return self

    def log(self, tail=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return "(no log)"

    def wait_serving(self, timeout=START_TIMEOUT_S):
        """Polls grpc.health.v1.Health/Check on the unix socket until SERVING."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before serving; "
                                     f"log:\n{self.log()}")
            if os.path.exists(self.socket_path):
                try:
                    last = grpc_inspect.health_check(self.target, timeout=1.0)
                    if last == "SERVING":
                        return
                except grpc.RpcError as e:
                    last = f"{e.code().name}: {e.details()}"
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not SERVING after {timeout}s (last: {last}); log:\n{self.log()}")

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def save_log(test, service):
    """Keeps the service log among Bazel's undeclared test outputs."""
    out = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    if out and os.path.exists(service.log_path):
        shutil.copyfile(service.log_path, os.path.join(out, f"{test.id()}.{service.name}.log"))


def make_scratch(test):
    # Short on purpose: the unix socket path must stay under 108 bytes, and
    # Bazel's TEST_TMPDIR is far longer than that.
    d = tempfile.mkdtemp(prefix="pm-refl-", dir="/tmp")
    test.addCleanup(shutil.rmtree, d, True)
    return d


# --- the shared grpcurl-style checks, one running service per test -------------

class ServiceReflectionCase(unittest.TestCase):
    """Starts SERVICE alone in setUp; tearDown sends SIGTERM and expects exit 0."""

    SERVICE = None            # "ledger"
    SERVICE_NAME = None       # "pocketmail.ledger.v1.Ledger"
    EXTRA_ENV = {}

    def setUp(self):
        self.scratch = make_scratch(self)
        self.service = ServiceProcess(self.SERVICE, self.scratch, dict(self.EXTRA_ENV))
        self.service.start()
        self.addCleanup(self.service.kill)
        self.addCleanup(save_log, self, self.service)
        self.service.wait_serving()
        self._inspectors = []
        self.inspector = self.open_inspector(self.service.target)

    def open_inspector(self, target, headers=(), descriptors_from=None):
        insp = grpc_inspect.Inspector(target, headers, descriptors_from=descriptors_from)
        self._inspectors.append(insp)
        return insp

    def tearDown(self):
        # Close our channels first: an idle Python channel does not act on the
        # server's GOAWAY, which would hold up the server's shutdown for seconds.
        for insp in self._inspectors:
            insp.close()
        rc = self.service.stop()
        self.assertEqual(rc, 0, f"{self.SERVICE} did not exit 0 on SIGTERM (rc={rc}); "
                                f"log:\n{self.service.log()}")

    def call(self, method, request="{}", **kwargs):
        responses = self.inspector.call(method, request, emit_defaults=True, **kwargs)
        self.assertEqual(len(responses), 1, responses)
        return responses[0]


class CommonChecks:
    """What grpcurl does first with any service: list, describe, health."""

    def test_list_names_the_service_health_and_reflection(self):
        self.assertEqual(self.inspector.list_services(),
                         sorted([self.SERVICE_NAME, HEALTH, REFLECTION]))

    def test_describe_names_every_rpc_of_the_proto(self):
        full_name, rpcs = proto_service(self.SERVICE)
        self.assertEqual(full_name, self.SERVICE_NAME)
        self.assertEqual(self.inspector.list_methods(self.SERVICE_NAME),
                         [f"{self.SERVICE_NAME}.{r.name}" for r in rpcs])
        text = self.inspector.describe(self.SERVICE_NAME)
        self.assertTrue(text.startswith(f"{self.SERVICE_NAME} is a service:\n"), text)
        for r in rpcs:  # request/response types and streaming flags as declared
            self.assertIn(f"  {r.describe_line()}\n", text)

    def test_health_check_reports_serving(self):
        self.assertEqual(grpc_inspect.health_check(self.service.target), "SERVING")

    def test_health_service_is_described_and_called_through_reflection(self):
        # What `grpcurl ... grpc.health.v1.Health/Check` does: resolve the
        # listed service's descriptor by reflection, then call it. gRPC C++'s
        # built-in health service is upb-based, so its descriptors are not in
        # the generated pool reflection reads unless the binary links a
        # protobuf-generated health.pb.cc (grpc/grpc#36665).
        self.assertIn("rpc Check ( .grpc.health.v1.HealthCheckRequest ) returns "
                      "( .grpc.health.v1.HealthCheckResponse );", self.inspector.describe(HEALTH))
        self.assertEqual(self.call(f"{HEALTH}/Check", '{"service": ""}'), {"status": "SERVING"})


class LedgerReflectionTest(CommonChecks, ServiceReflectionCase):
    SERVICE = "ledger"
    SERVICE_NAME = "pocketmail.ledger.v1.Ledger"
    KEY = "pending/0f3a9c-alice@example.org.eml"

    def begin(self):
        return self.call(f"{self.SERVICE_NAME}/Begin", {
            "key": self.KEY, "recipient": "alice+x@example.org", "sender": "bob@example.net",
            "sizeBytes": "1234", "sha256": "ab" * 32, "receivedMs": "1700000000000",
            "subject": "hello",
        })

    def test_describe_reports_watch_deliveries_as_server_streaming(self):
        info = self.inspector.method(f"{self.SERVICE_NAME}/WatchDeliveries")
        self.assertTrue(info.server_streaming)
        self.assertFalse(info.client_streaming)
        self.assertIn("rpc WatchDeliveries ( .pocketmail.ledger.v1.WatchDeliveriesRequest ) "
                      "returns ( stream .pocketmail.ledger.v1.DeliveryEvent );",
                      self.inspector.describe(self.SERVICE_NAME))

    def test_stats_on_a_fresh_ledger_counts_nothing(self):
        stats = self.call(f"{self.SERVICE_NAME}/Stats", "{}")
        self.assertEqual(stats["total"], "0")
        self.assertEqual(stats["oldestUnfinishedMs"], "0")
        self.assertTrue(all(c["count"] == "0" for c in stats["byState"]), stats)

    def test_begin_then_get_returns_the_recorded_message(self):
        begun = self.begin()
        self.assertTrue(begun["created"], begun)
        self.assertEqual(begun["message"]["state"], "STATE_PENDING")
        got = self.call(f"{self.SERVICE_NAME}/Get", {"key": self.KEY})["message"]
        self.assertEqual(got["key"], self.KEY)
        self.assertEqual(got["state"], "STATE_PENDING")
        self.assertEqual(got["recipient"], "alice+x@example.org")
        self.assertEqual(got["sender"], "bob@example.net")
        self.assertEqual(got["sizeBytes"], "1234")
        self.assertEqual(got["sha256"], "ab" * 32)
        self.assertEqual(got["subject"], "hello")
        self.assertNotEqual(got["firstSeenMs"], "0")

    def test_begin_of_a_known_key_returns_the_existing_row(self):
        self.begin()
        again = self.begin()
        self.assertFalse(again["created"], again)
        self.assertEqual(again["message"]["key"], self.KEY)

    def test_stats_counts_a_begun_message_as_pending(self):
        self.begin()
        stats = self.call(f"{self.SERVICE_NAME}/Stats", "{}")
        self.assertEqual(stats["total"], "1")
        counts = {c["state"]: c["count"] for c in stats["byState"]}
        self.assertEqual(counts.get("STATE_PENDING"), "1", stats)

    def test_get_of_an_unknown_key_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(f"{self.SERVICE_NAME}/Get", {"key": "pending/never-seen.eml"})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)


class RouterReflectionTest(CommonChecks, ServiceReflectionCase):
    SERVICE = "router"
    SERVICE_NAME = "pocketmail.router.v1.Router"

    def test_resolve_routes_a_subaddress_to_its_base_mailbox(self):
        r = self.call(f"{self.SERVICE_NAME}/Resolve", {"address": "alice+x@example.org"})
        self.assertEqual(r["mailbox"], "alice@example.org")
        self.assertEqual(r["rule"], "RULE_SUBADDRESS")
        self.assertFalse(r["listStale"])

    def test_list_mailboxes_returns_the_account_command_output(self):
        r = self.call(f"{self.SERVICE_NAME}/ListMailboxes", "{}")
        self.assertEqual(r["mailboxes"], ["alice@example.org", "inbox@example.org"])
        self.assertEqual(r["source"], "ACCOUNT_SOURCE_LIVE")

    def test_resolve_of_a_foreign_domain_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(f"{self.SERVICE_NAME}/Resolve", {"address": "alice@elsewhere.test"})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


class InjectorReflectionTest(CommonChecks, ServiceReflectionCase):
    SERVICE = "injector"
    SERVICE_NAME = "pocketmail.injector.v1.Injector"

    def test_describe_reports_inject_as_client_streaming(self):
        info = self.inspector.method(f"{self.SERVICE_NAME}/Inject")
        self.assertTrue(info.client_streaming)
        self.assertFalse(info.server_streaming)
        self.assertIn("rpc Inject ( stream .pocketmail.injector.v1.InjectRequest ) "
                      "returns ( .pocketmail.injector.v1.InjectResponse );",
                      self.inspector.describe(f"{self.SERVICE_NAME}.Inject"))

    def test_describe_inject_request_shows_the_envelope_or_chunk_oneof(self):
        text = self.inspector.describe("pocketmail.injector.v1.InjectRequest")
        self.assertIn("oneof part {", text)
        self.assertIn(".pocketmail.injector.v1.Envelope envelope = 1;", text)
        self.assertIn("bytes chunk = 2;", text)


class FetcherReflectionTest(CommonChecks, ServiceReflectionCase):
    SERVICE = "fetcher"
    SERVICE_NAME = "pocketmail.fetcher.v1.Fetcher"

    def test_status_reports_the_failed_startup_pass(self):
        # The first pass runs at start-up; the bucket endpoint refuses, so it
        # ends with a listing error and the next pass is MAIL_POLL away.
        deadline = time.monotonic() + 30
        while True:
            status = self.call(f"{self.SERVICE_NAME}/Status", "{}")
            if status["lastPass"]["finishedMs"] != "0" and status["nextPassMs"] != "0":
                break
            self.assertLess(time.monotonic(), deadline, f"no finished pass: {status}")
            time.sleep(0.2)
        now_ms = int(time.time() * 1000)
        self.assertGreaterEqual(int(status["passesTotal"]), 1)
        self.assertGreaterEqual(int(status["passErrorsTotal"]), 1)
        self.assertTrue(status["lastPass"]["error"].startswith("list pending/"), status)
        self.assertTrue(status["recentErrors"], status)
        self.assertEqual(status["inFlight"], 0)
        self.assertEqual(status["pendingCount"], 0)
        self.assertGreater(int(status["nextPassMs"]), now_ms + 3000 * 1000, status)


class CombinedReflectionTest(ServiceReflectionCase):
    """pocketmaild: each of the four sockets lists, describes and answers all
    four APIs, so grpcurl and the gateway work against it unchanged."""
    SERVICE = "pocketmaild"
    ALL = ["pocketmail.fetcher.v1.Fetcher", "pocketmail.injector.v1.Injector",
           "pocketmail.ledger.v1.Ledger", "pocketmail.router.v1.Router"]

    def setUp(self):
        super().setUp()
        self.targets = {n: "unix:" + os.path.join(self.service.runtime_dir, f"{n}.sock")
                        for n in ("ledger", "router", "injector", "fetcher")}

    def test_every_socket_serves_all_four_apis_and_health(self):
        for name, target in self.targets.items():
            insp = self.open_inspector(target)
            self.assertEqual(insp.list_services(), sorted(self.ALL + [HEALTH, REFLECTION]), name)
            self.assertEqual(grpc_inspect.health_check(target), "SERVING", name)
            for svc in ("ledger", "router", "injector", "fetcher"):
                full_name, rpcs = proto_service(svc)
                self.assertEqual(insp.list_methods(full_name), [f"{full_name}.{r.name}" for r in rpcs], name)

    def test_each_api_answers_on_its_own_socket(self):
        ledger = self.open_inspector(self.targets["ledger"])
        stats = ledger.call("pocketmail.ledger.v1.Ledger/Stats", "{}", emit_defaults=True)
        self.assertEqual(stats[0]["total"], "0")
        router = self.open_inspector(self.targets["router"])
        route = router.call("pocketmail.router.v1.Router/Resolve", '{"address": "Alice+x@example.org"}')
        self.assertEqual(route[0]["mailbox"], "alice@example.org")


# --- the TCP listener and its bearer token (ledger) ----------------------------

class LedgerTcpTokenTest(ServiceReflectionCase):
    SERVICE = "ledger"
    STATS = "pocketmail.ledger.v1.Ledger/Stats"

    def setUp(self):
        scratch = make_scratch(self)
        self.token = secrets.token_hex(16)
        self.token_file = os.path.join(scratch, "token")
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        self.port = free_port()
        self.tcp = f"127.0.0.1:{self.port}"
        self.EXTRA_ENV = {"POCKETMAIL_LEDGER_TCP": self.tcp, "POCKETMAIL_TOKEN_FILE": self.token_file}
        super().setUp()

    def tcp_inspector(self, headers=(), reflect=True):
        return self.open_inspector(self.tcp, headers,
                                   descriptors_from=None if reflect else self.inspector)

    def assertUnauthenticated(self, fn):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED, cm.exception.details())

    def test_reflection_list_over_tcp_without_token_is_unauthenticated(self):
        self.assertUnauthenticated(lambda: self.tcp_inspector().list_services())

    def test_unary_call_over_tcp_without_token_is_unauthenticated(self):
        # Descriptors come from the unix socket, so the TCP call itself is tested.
        insp = self.tcp_inspector(reflect=False)
        self.assertUnauthenticated(lambda: insp.call(self.STATS, "{}"))

    def test_unary_call_over_tcp_with_a_wrong_token_is_unauthenticated(self):
        insp = self.tcp_inspector([f"authorization: Bearer {secrets.token_hex(16)}"], reflect=False)
        self.assertUnauthenticated(lambda: insp.call(self.STATS, "{}"))

    def test_token_without_the_bearer_scheme_is_unauthenticated(self):
        insp = self.tcp_inspector([f"authorization: {self.token}"], reflect=False)
        self.assertUnauthenticated(lambda: insp.call(self.STATS, "{}"))

    def test_health_over_tcp_without_token_is_unauthenticated(self):
        self.assertUnauthenticated(lambda: grpc_inspect.health_check(self.tcp, timeout=5))

    def test_list_and_call_over_tcp_with_the_right_token_work(self):
        insp = self.tcp_inspector([f"authorization: Bearer {self.token}"])
        self.assertIn("pocketmail.ledger.v1.Ledger", insp.list_services())
        self.assertEqual(insp.call(self.STATS, "{}", emit_defaults=True)[0]["total"], "0")

    def test_unix_socket_needs_no_token_while_tcp_is_on(self):
        self.assertEqual(self.call(self.STATS, "{}")["total"], "0")


class LedgerTokenFileTest(unittest.TestCase):
    """Misconfigured TCP must stop the service from starting at all."""

    def start_expecting_refusal(self, token_mode):
        scratch = make_scratch(self)
        port = free_port()
        env = {"POCKETMAIL_LEDGER_TCP": f"127.0.0.1:{port}"}
        if token_mode is not None:
            token_file = os.path.join(scratch, "token")
            with open(token_file, "w") as f:
                f.write(secrets.token_hex(16) + "\n")
            os.chmod(token_file, token_mode)
            env["POCKETMAIL_TOKEN_FILE"] = token_file
        svc = ServiceProcess("ledger", scratch, env).start()
        self.addCleanup(svc.kill)
        self.addCleanup(save_log, self, svc)
        rc = svc.wait_exit(START_TIMEOUT_S)
        self.assertIsNotNone(rc, f"ledger kept running; log:\n{svc.log()}")
        self.assertNotEqual(rc, 0, f"ledger exited 0; log:\n{svc.log()}")
        self.assertFalse(port_is_listening(port))

    def test_token_file_readable_by_others_refuses_to_start(self):
        self.start_expecting_refusal(0o644)

    def test_tcp_without_a_token_file_refuses_to_start(self):
        self.start_expecting_refusal(None)


# --- running, with one JUnit <testcase> per test method -------------------------

class JUnitResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = {}  # test id → dict(start, time, failures, skipped)
        self.order = []

    def _case(self, test):
        tid = test.id()
        if tid not in self.cases:
            self.cases[tid] = {"start": time.monotonic(), "time": 0.0, "failures": [], "skipped": None}
            self.order.append(tid)
        return self.cases[tid]

    def startTest(self, test):
        self._case(test)["start"] = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        case = self._case(test)
        case["time"] = time.monotonic() - case["start"]
        super().stopTest(test)

    def addFailure(self, test, err):
        self._case(test)["failures"].append(("failure", self._exc_info_to_string(err, test)))
        super().addFailure(test, err)

    def addError(self, test, err):
        # setUpClass/module errors arrive with a placeholder "test"
        self._case(test)["failures"].append(("error", self._exc_info_to_string(err, test)))
        super().addError(test, err)

    def addSkip(self, test, reason):
        self._case(test)["skipped"] = reason
        super().addSkip(test, reason)


def write_junit(result, path, elapsed):
    failed = sum(1 for c in result.cases.values() if c["failures"])
    skipped = sum(1 for c in result.cases.values() if c["skipped"] is not None and not c["failures"])
    suites = ET.Element("testsuites", tests=str(len(result.order)), failures=str(failed),
                        errors="0", time=f"{elapsed:.3f}")
    suite = ET.SubElement(suites, "testsuite", name="tests/reflection/reflection_test",
                          tests=str(len(result.order)), failures=str(failed), errors="0",
                          skipped=str(skipped), time=f"{elapsed:.3f}")
    for tid in result.order:
        c = result.cases[tid]
        classname, _, name = tid.rpartition(".")
        classname = classname.replace("__main__", "reflection_test", 1)
        tc = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{c['time']:.3f}")
        for kind, text in c["failures"]:
            first = text.strip().splitlines()[-1] if text.strip() else kind
            f = ET.SubElement(tc, "failure", message=first[:500], type=kind)
            f.text = text
        if c["skipped"] is not None and not c["failures"]:
            ET.SubElement(tc, "skipped", message=c["skipped"])
    tmp = path + ".tmp"
    ET.ElementTree(suites).write(tmp, encoding="UTF-8", xml_declaration=True)
    os.replace(tmp, path)


def main():
    loader = unittest.TestLoader()
    argv = sys.argv[1:]
    if argv:  # names like RouterReflectionTest or LedgerReflectionTest.test_x
        suite = loader.loadTestsFromNames(argv, sys.modules[__name__])
    else:
        suite = loader.loadTestsFromModule(sys.modules[__name__])
    # Bazel's sharding/filter env: honour TESTBRIDGE_TEST_ONLY (--test_filter).
    only = os.environ.get("TESTBRIDGE_TEST_ONLY")
    if only:
        suite = unittest.TestSuite(t for t in _flatten(suite) if only in t.id())
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=JUnitResult)
    started = time.monotonic()
    try:
        result = runner.run(suite)
    except Exception:  # the runner itself broke: still leave a failing report
        traceback.print_exc()
        return 1
    if os.environ.get("XML_OUTPUT_FILE"):
        write_junit(result, os.environ["XML_OUTPUT_FILE"], time.monotonic() - started)
    return 0 if result.wasSuccessful() else 1


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


if __name__ == "__main__":
    sys.exit(main())
