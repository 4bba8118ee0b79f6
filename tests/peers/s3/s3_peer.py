#!/usr/bin/env python3
"""A real S3 test peer: moto's S3 running in-process over HTTPS, SigV4 enforced.

Stands in for Cloudflare R2 in integration tests. Run it with a python that has
moto 5.2.x (the default pyenv `python3` here, not /usr/bin/python3):

    s3_peer.py --dir DIR [--port 0] [--bucket mail] [--count-requests]

It makes DIR, writes a self-signed certificate for 127.0.0.1/localhost there
(cert.pem is also the CA file clients trust), creates an IAM user with an
allow-all policy and an access key, pre-creates the buckets, writes
DIR/creds.env (mode 0600: R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET,
R2_ENDPOINT, R2_CA_FILE) and then prints `READY port=N dir=DIR` on stdout.
SIGTERM or SIGINT stops it with exit status 0. Started again on the same --dir
and --port with S3_PEER_ACCESS_KEY_ID / S3_PEER_SECRET_ACCESS_KEY set (from
creds.env), it comes back with the same certificate and credentials (but empty
buckets: moto keeps everything in memory).

What differs from stock `moto_server`, and why (see docs/TESTING.md, "Why these peers"):
  * Signatures are checked (INITIAL_NO_AUTH_ACTION_COUNT = 0), and against the
    request target exactly as it arrived (werkzeug's RAW_URI): moto otherwise
    re-derives the path from a decoded URL and rejects correctly signed
    requests whose key or query holds `+ = @` or `%2F`.
  * Keep-alive works: the `Connection: close` werkzeug adds to every response
    is dropped, werkzeug's timed post-response drain (which would swallow the
    next request on a kept-alive connection) is disabled, and an unread rest
    of a request body is read here instead, by its exact length.
  * TCP_NODELAY on the sockets (otherwise ~40 ms per request over TLS).
  * The TLS handshake runs in each connection's thread, not in the accept
    loop, so a client that connects and stalls cannot block everyone else.
  * A request without Authorization gets 403 AccessDenied (moto: a 500).
  * `GET /__peer/stats` (unsigned) returns {"FAULTS": n} (faults fired so
    far, see below) and, with --count-requests, the requests served by kind:
    {"LIST":n,"GET":n,"COPY":n,"DELETE":n,"PUT":n,"HEAD":n,"FAULTS":n}.

Fault knobs (for fault tests): `POST /__peer/faults` (unsigned) with a JSON
object replaces the whole fault configuration (`{}` turns every fault off;
`GET /__peer/faults` shows the current one). A bad body gets 400 and changes
nothing. Keys, all optional:
  error_pct     0-100: this share of matching requests gets an S3 error instead
                of an answer, deterministically: every matching request adds
                error_pct to a bucket, and one fires each time it reaches 100
                (20 -> exactly every 5th request).
  error_codes   HTTP statuses to answer with, used in turn (default [500]);
                500 InternalError, 503 ServiceUnavailable, 429 SlowDown, ...
                Each is a proper S3 XML <Error> body.
  error_ops     which requests can fail: subset of LIST GET HEAD COPY DELETE PUT
                (default all).
  deny_keys     object keys whose GET or HEAD (or use as a CopyObject source)
                gets 403 AccessDenied.
  listing       "duplicate": each ListObjectsV2 page repeats its first
                <Contents> entry; "malformed": the page is not well-formed XML;
                "truncated": the page's XML is cut in the middle (the HTTP
                response itself is complete). Applies to every listing.
  latency_ms    wait this long before answering each request.
Error and deny faults fire before signature checks (as a front end would
answer), so unsigned requests see them too. Every error, denial and altered
listing counts as one fault in /__peer/stats.
"""

import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
import werkzeug.serving

STATS_PATH = "/__peer/stats"
FAULTS_PATH = "/__peer/faults"
USER_NAME = "pocketmail-test"
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def make_certificate(directory):
    """A self-signed cert for 127.0.0.1/localhost; kept across restarts in the same dir."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "7", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return cert, key


def provision(buckets):
    """Creates the IAM identity whose key must sign every request, and the buckets."""
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user(region_name="us-east-1", user_name=USER_NAME)
    iam.put_user_policy(USER_NAME, "allow-all", ALLOW_ALL)
    access_key = iam.create_access_key(USER_NAME)
    # A restarted peer keeps the credentials its clients already hold.
    fixed_id = os.environ.get("S3_PEER_ACCESS_KEY_ID")
    fixed_secret = os.environ.get("S3_PEER_SECRET_ACCESS_KEY")
    if fixed_id and fixed_secret:
        iam.access_keys.pop(access_key.physical_resource_id, None)
        access_key.access_key_id = fixed_id
        access_key.secret_access_key = fixed_secret
        iam.access_keys[access_key.physical_resource_id] = access_key
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for bucket in buckets:
        # Created here: CreateBucket signed for region "auto" is refused by moto.
        s3.create_bucket(bucket, region_name="us-east-1")
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on every request is checked
    return access_key.access_key_id, access_key.secret_access_key


def check_signature_against_raw_uri():
    """Makes moto verify the signature over the request target as sent."""
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self, iam_request_cls, resource="*"):
        environ = getattr(getattr(self, "request", None), "environ", None) or {}
        raw_uri = environ.get("RAW_URI")
        if not raw_uri:
            return original(self, iam_request_cls, resource)
        decoded_uri = self.uri
        self.uri = raw_uri
        try:
            return original(self, iam_request_cls, resource)
        finally:
            self.uri = decoded_uri

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate


class _NoDrainSelector:
    """Stands in for werkzeug's post-response drain selector: nothing is ready."""

    def __init__(self):
        pass

    def register(self, *args, **kwargs):
        pass

    def select(self, timeout=None):
        return []

    def close(self):
        pass


class _NoDrainSelectors:
    DefaultSelector = _NoDrainSelector
    EVENT_READ = 1


class KeepAliveHandler(werkzeug.serving.WSGIRequestHandler):
    """werkzeug's handler, minus the forced `Connection: close`."""

    def setup(self):
        self.connection = self.request
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        super().setup()

    _in_wsgi = False

    def run_wsgi(self):
        self._in_wsgi = True
        try:
            super().run_wsgi()
        finally:
            self._in_wsgi = False

    def send_header(self, keyword, value):
        # Only the close werkzeug forces on every WSGI response is dropped; one
        # for a malformed request, or after a body that could not be drained, stays.
        if (keyword.lower() == "connection" and value.lower() == "close" and self._in_wsgi
                and not self.environ.get("pocketmail.must_close")):
            return
        super().send_header(keyword, value)

    def log_request(self, code="-", size="-"):
        if os.environ.get("S3_PEER_VERBOSE"):
            super().log_request(code, size)


class DeferredHandshakeContext(ssl.SSLContext):
    """Accepted sockets handshake on first read, in their own handler thread."""

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, **kwargs):
        return super().wrap_socket(sock, server_side=server_side,
                                   do_handshake_on_connect=False, **kwargs)


def request_kind(environ):
    """LIST, GET, HEAD, COPY, DELETE or PUT; None for anything else."""
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    object_request = path.strip("/").count("/") >= 1
    if method == "GET":
        return "GET" if object_request else "LIST"
    if method == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" in environ:
        return "COPY"
    if method in ("PUT", "DELETE", "HEAD"):
        return method
    if method == "POST" and "delete" in urllib.parse.parse_qs(
            environ.get("QUERY_STRING", ""), keep_blank_values=True):
        return "DELETE"  # DeleteObjects batch
    return None


def object_key(environ):
    """The object key of a path-style request, as sent (percent-decoded), or None."""
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    path = target.split("?", 1)[0].lstrip("/")
    if "/" not in path:
        return None
    return urllib.parse.unquote(path.split("/", 1)[1])


def copy_source_key(environ):
    """The source key of a CopyObject (x-amz-copy-source: [/]bucket/key[?versionId=])."""
    source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
    if not source:
        return None
    path = urllib.parse.unquote(source.split("?", 1)[0]).lstrip("/")
    return path.split("/", 1)[1] if "/" in path else None


class RequestCounter:
    KINDS = ("LIST", "GET", "COPY", "DELETE", "PUT", "HEAD")

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {kind: 0 for kind in self.KINDS}

    def count(self, environ):
        kind = request_kind(environ)
        if kind is None:
            return
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self):
        with self._lock:
            return dict(self._counts)


ERROR_CODES = {
    400: ("Bad Request", "InvalidRequest", "Invalid request (injected fault)."),
    403: ("Forbidden", "AccessDenied", "Access Denied"),
    404: ("Not Found", "NoSuchKey", "The specified key does not exist."),
    408: ("Request Timeout", "RequestTimeout",
          "Your socket connection to the server was not read from or written to "
          "within the timeout period."),
    409: ("Conflict", "OperationAborted",
          "A conflicting conditional operation is currently in progress."),
    412: ("Precondition Failed", "PreconditionFailed",
          "At least one of the pre-conditions you specified did not hold"),
    429: ("Too Many Requests", "SlowDown", "Please reduce your request rate."),
    500: ("Internal Server Error", "InternalError",
          "We encountered an internal error. Please try again."),
    501: ("Not Implemented", "NotImplemented",
          "A header you provided implies functionality that is not implemented"),
    502: ("Bad Gateway", "InternalError", "Bad gateway."),
    503: ("Service Unavailable", "ServiceUnavailable", "Please reduce your request rate."),
    504: ("Gateway Timeout", "InternalError", "Gateway timeout."),
}
FAULT_OPS = ("LIST", "GET", "HEAD", "COPY", "DELETE", "PUT")
LISTING_FAULTS = ("duplicate", "malformed", "truncated")


class FaultConfigError(ValueError):
    pass


class Faults:
    """The fault configuration and its deterministic buckets. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.fired = 0
        self._apply({})

    def _apply(self, config):
        self.config = config
        self.error_pct = float(config.get("error_pct", 0))
        self.error_codes = [int(c) for c in config.get("error_codes", [500])]
        self.error_ops = set(config.get("error_ops", FAULT_OPS))
        self.deny_keys = set(config.get("deny_keys", []))
        self.listing = config.get("listing")
        self.latency_s = float(config.get("latency_ms", 0)) / 1000.0
        self._bucket = 0.0
        self._next_code = 0

    @staticmethod
    def validate(config):
        if not isinstance(config, dict):
            raise FaultConfigError("the fault configuration must be a JSON object")
        known = {"error_pct", "error_codes", "error_ops", "deny_keys", "listing", "latency_ms"}
        unknown = set(config) - known
        if unknown:
            raise FaultConfigError(f"unknown keys: {sorted(unknown)}")

        def number(name, low, high):
            value = config.get(name, low)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not low <= value <= high:
                raise FaultConfigError(f"{name} must be a number in {low}..{high}")

        number("error_pct", 0, 100)
        number("latency_ms", 0, 600000)
        codes = config.get("error_codes", [500])
        if not isinstance(codes, list) or not codes or not all(
                isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 599 for c in codes):
            raise FaultConfigError("error_codes must be a non-empty list of 4xx/5xx statuses")
        ops = config.get("error_ops", list(FAULT_OPS))
        if not isinstance(ops, list) or not all(op in FAULT_OPS for op in ops):
            raise FaultConfigError(f"error_ops must be a list drawn from {list(FAULT_OPS)}")
        keys = config.get("deny_keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise FaultConfigError("deny_keys must be a list of strings")
        if config.get("listing") not in (None,) + LISTING_FAULTS:
            raise FaultConfigError(f"listing must be one of {list(LISTING_FAULTS)}")

    def replace(self, config):
        self.validate(config)
        with self._lock:
            self._apply(config)

    def snapshot(self):
        with self._lock:
            return dict(self.config)

    def latency(self):
        with self._lock:
            return self.latency_s

    def listing_fault(self):
        with self._lock:
            return self.listing

    def count_fault(self):
        with self._lock:
            self.fired += 1

    def fired_count(self):
        with self._lock:
            return self.fired

    def error_for(self, kind):
        """The HTTP status to fail this request with, or None."""
        with self._lock:
            if kind is None or self.error_pct <= 0 or kind not in self.error_ops:
                return None
            self._bucket += self.error_pct
            if self._bucket < 100:
                return None
            self._bucket -= 100
            code = self.error_codes[self._next_code % len(self.error_codes)]
            self._next_code += 1
            self.fired += 1
            return code

    def denies(self, environ, kind):
        with self._lock:
            if not self.deny_keys:
                return False
            if kind in ("GET", "HEAD"):
                key = object_key(environ)
            elif kind == "COPY":
                key = copy_source_key(environ)
            else:
                return False
            if key in self.deny_keys:
                self.fired += 1
                return True
            return False


def error_xml(code, message, resource):
    request_id = uuid.uuid4().hex[:16].upper()
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{}</Code><Message>{}</Message>'
            "<Resource>{}</Resource><RequestId>{}</RequestId></Error>").format(
                code, message, xml_escape(resource), request_id).encode()


def xml_escape(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def alter_listing(body, how):
    """A ListObjectsV2 page made wrong the way `how` says."""
    if how == "duplicate":
        start = body.find(b"<Contents>")
        end = body.find(b"</Contents>", start)
        if start < 0 or end < 0:
            return body
        end += len(b"</Contents>")
        body = body[:end] + body[start:end] + body[end:]
        # Keep the page self-consistent: KeyCount counts the repeated entry too.
        return re.sub(rb"<KeyCount>(\d+)</KeyCount>",
                      lambda m: b"<KeyCount>%d</KeyCount>" % (int(m.group(1)) + 1), body, count=1)
    if how == "malformed":
        # An unclosed tag with a broken attribute right inside the root element.
        root = body.find(b"<ListBucketResult")
        close = body.find(b">", root)
        if root < 0 or close < 0:
            return b"<ListBucketResult <<not xml"
        return body[:close + 1] + b"<Contents attr=>&bogus;<Key>" + body[close + 1:]
    if how == "truncated":
        return body[:len(body) // 2]
    return body


class PeerApp:
    """WSGI middleware around moto: control endpoints, faults, counters, body draining."""

    def __init__(self, moto_app, counter, faults):
        self._moto = moto_app
        self._counter = counter
        self._faults = faults

    @staticmethod
    def _reply(start_response, status, body, content_type="application/json", head=False):
        start_response(status, [("Content-Type", content_type),
                                ("Content-Length", "0" if head else str(len(body)))])
        return [b"" if head else body]

    def _stats(self, environ, start_response):
        stats = self._counter.snapshot() if self._counter is not None else {}
        stats["FAULTS"] = self._faults.fired_count()
        return self._reply(start_response, "200 OK", json.dumps(stats).encode())

    def _fault_control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            return self._reply(start_response, "200 OK",
                               json.dumps(self._faults.snapshot()).encode())
        if method != "POST":
            return self._reply(start_response, "405 Method Not Allowed", b"")
        reader = _CountingInput(environ["wsgi.input"])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = reader.read(length) if length > 0 else b""
            self._faults.replace(json.loads(raw.decode("utf-8")) if raw.strip() else {})
        except (ValueError, UnicodeDecodeError) as e:  # FaultConfigError is a ValueError
            self._drain_request_body(environ, reader)
            return self._reply(start_response, "400 Bad Request",
                               json.dumps({"error": str(e)}).encode())
        return self._reply(start_response, "200 OK",
                           json.dumps(self._faults.snapshot()).encode())

    def _error(self, environ, start_response, status, resource):
        reason, code, message = ERROR_CODES.get(
            status, ("Error", "InternalError" if status >= 500 else "InvalidRequest",
                     "Injected fault."))
        self._drain_request_body(environ, _CountingInput(environ["wsgi.input"]))
        return self._reply(start_response, f"{status} {reason}", error_xml(code, message, resource),
                           content_type="application/xml",
                           head=environ.get("REQUEST_METHOD") == "HEAD")

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        if path == STATS_PATH:
            return self._stats(environ, start_response)
        if path == FAULTS_PATH:
            return self._fault_control(environ, start_response)
        latency = self._faults.latency()
        if latency > 0:
            time.sleep(latency)
        if self._counter is not None:
            self._counter.count(environ)
        kind = request_kind(environ)
        resource = (environ.get("RAW_URI") or path or "/").split("?", 1)[0]
        status = self._faults.error_for(kind)
        if status is not None:
            return self._error(environ, start_response, status, resource)
        if self._faults.denies(environ, kind):
            return self._error(environ, start_response, 403, resource)
        if "HTTP_AUTHORIZATION" not in environ:
            # moto would fail with a 500 on a missing Authorization header; S3
            # answers an anonymous request to a private bucket with 403.
            body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                    b"<Message>Anonymous access is not allowed</Message></Error>")
            start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                             ("Content-Length", str(len(body)))])
            self._drain_request_body(environ, _CountingInput(environ["wsgi.input"]))
            return [body]
        listing_fault = self._faults.listing_fault() if kind == "LIST" else None
        reader = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = reader
        captured = {}

        def capture_response(status_line, headers, exc_info=None):
            captured["status"], captured["headers"] = status_line, headers
            return lambda data: None  # moto never uses write()

        try:
            result = self._moto(environ, capture_response if listing_fault else start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            self._drain_request_body(environ, reader)
        except BaseException:
            environ["pocketmail.must_close"] = True
            raise
        if listing_fault:
            if captured.get("status", "").startswith("200"):
                body = alter_listing(body, listing_fault)
                self._faults.count_fault()
            headers = [(k, v) for k, v in captured.get("headers", [])
                       if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
            start_response(captured.get("status", "500 Internal Server Error"), headers)
        return [body]

    @staticmethod
    def _drain_request_body(environ, reader):
        """Reads what moto left of the request body, so the next request parses."""
        if environ.get("wsgi.input_terminated"):  # chunked: read to its end
            try:
                while reader.read(65536):
                    pass
            except Exception:
                environ["pocketmail.must_close"] = True
            return
        try:
            remaining = int(environ.get("CONTENT_LENGTH") or 0) - reader.consumed
        except ValueError:
            environ["pocketmail.must_close"] = True
            return
        while remaining > 0:
            chunk = reader.read(min(remaining, 1 << 20))
            if not chunk:
                environ["pocketmail.must_close"] = True
                return
            remaining -= len(chunk)


class _CountingInput:
    def __init__(self, stream):
        self._stream = stream
        self.consumed = 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.consumed += len(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self.consumed += len(data)
        return data

    def readlines(self, *args):
        lines = self._stream.readlines(*args)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        return iter(self.readline, b"")


def write_credentials(directory, access_key_id, secret, bucket, port, ca_file):
    path = os.path.join(directory, "creds.env")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"R2_ACCESS_KEY_ID={access_key_id}\n")
        f.write(f"R2_SECRET_ACCESS_KEY={secret}\n")
        f.write(f"R2_BUCKET={bucket}\n")
        f.write(f"R2_ENDPOINT=https://127.0.0.1:{port}\n")
        f.write(f"R2_CA_FILE={ca_file}\n")
    os.chmod(path, 0o600)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where cert, key and creds.env go")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bucket", action="append",
                        help="bucket to pre-create (repeatable; the first goes in creds.env)")
    parser.add_argument("--count-requests", action="store_true")
    args = parser.parse_args()
    buckets = args.bucket or ["pocketmail"]

    os.makedirs(args.dir, mode=0o700, exist_ok=True)
    directory = os.path.abspath(args.dir)
    cert, key = make_certificate(directory)
    access_key_id, secret = provision(buckets)
    check_signature_against_raw_uri()
    werkzeug.serving.selectors = _NoDrainSelectors

    context = DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    counter = RequestCounter() if args.count_requests else None
    app = PeerApp(DomainDispatcherApplication(create_backend_app), counter, Faults())
    server = werkzeug.serving.make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=KeepAliveHandler,
        ssl_context=context)
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = server.socket.getsockname()[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_credentials(directory, access_key_id, secret, buckets[0], port, cert)
    print(f"READY port={port} dir={directory}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
