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

What differs from stock `moto_server`, and why (see shared/docs/TEST-PEERS.md):
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
  * With --count-requests, `GET /__peer/stats` (unsigned) returns
    {"LIST":n,"GET":n,"COPY":n,"DELETE":n,"PUT":n,"HEAD":n}.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading

from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
import werkzeug.serving

STATS_PATH = "/__peer/stats"
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


class RequestCounter:
    KINDS = ("LIST", "GET", "COPY", "DELETE", "PUT", "HEAD")

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {kind: 0 for kind in self.KINDS}

    def count(self, environ):
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        object_request = path.strip("/").count("/") >= 1
        if method == "GET":
            kind = "GET" if object_request else "LIST"
        elif method == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" in environ:
            kind = "COPY"
        elif method in ("PUT", "DELETE", "HEAD"):
            kind = method
        else:
            return
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self):
        with self._lock:
            return dict(self._counts)


class PeerApp:
    """WSGI middleware around moto: stats endpoint, counters, body draining."""

    def __init__(self, moto_app, counter):
        self._moto = moto_app
        self._counter = counter

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == STATS_PATH:
            if self._counter is None:
                start_response("404 Not Found", [("Content-Length", "0")])
                return [b""]
            body = json.dumps(self._counter.snapshot()).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if self._counter is not None:
            self._counter.count(environ)
        if "HTTP_AUTHORIZATION" not in environ:
            # moto would fail with a 500 on a missing Authorization header; S3
            # answers an anonymous request to a private bucket with 403.
            body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                    b"<Message>Anonymous access is not allowed</Message></Error>")
            start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                             ("Content-Length", str(len(body)))])
            self._drain_request_body(environ, _CountingInput(environ["wsgi.input"]))
            return [body]
        reader = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = reader
        try:
            result = self._moto(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            self._drain_request_body(environ, reader)
        except BaseException:
            environ["pocketmail.must_close"] = True
            raise
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
    app = PeerApp(DomainDispatcherApplication(create_backend_app), counter)
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
