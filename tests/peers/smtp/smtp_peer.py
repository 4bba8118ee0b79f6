#!/usr/bin/python3
"""SMTP test peer: a stand-in for Maddy's authenticated inject endpoint.

Run with Debian's /usr/bin/python3 (python3-aiosmtpd 1.4.3):

  smtp_peer.py --credentials FILE --mailboxes FILE --maildir DIR
               [--max-size BYTES] [--tls-cert PEM --tls-key PEM]
               [--lmtp-socket PATH] [--auth-mechanisms PLAIN,LOGIN]

Prints `READY port=N control_port=M` on stdout once listening on 127.0.0.1.

Behaves like Maddy's submission endpoint where the injector cares:
  * AUTH PLAIN/LOGIN is required: no AUTH -> 530 5.7.0, bad password -> 535 5.7.8.
    Credentials come from a 0600 file with `USER=...` / `PASS=...` lines.
  * Known mailboxes are listed one per line in --mailboxes (full addresses,
    compared case-insensitively); anything else -> `501 5.1.1` at RCPT.
  * No From header, or an unparsable address header -> `554 5.6.0`.
  * Over --max-size (default 32 MiB) -> `552 5.3.4` (at MAIL when SIZE= says so,
    else after DATA).
  * The null sender `MAIL FROM:<>` is accepted (stock aiosmtpd refuses it).
  * Advertises SIZE, 8BITMIME, SMTPUTF8, PIPELINING, AUTH, and STARTTLS when
    --tls-cert/--tls-key are given.
  * --lmtp-socket additionally serves LMTP (LHLO, no AUTH) on a unix socket.

Delivery: each accepted message is written Maildir-style to
  <maildir>/<lowercased full recipient address>/new/<unique>
(written under tmp/ first, then renamed), prefixed with
`Return-Path: <sender>` and `Delivered-To: rcpt` like Maddy.

Control port (line protocol on 127.0.0.1:control_port, one command per line):
  SET key=value ...   -> OK        knobs, all default 0:
      fail_pct=P        reply fail_code to P% of transactions (deterministic:
                        every transaction adds P to a bucket; >= 100 fires)
      fail_code=451     451 (default) or 421 (421 also closes the connection)
      fail_stage=data   where the fault fires: mail | rcpt | data (after ".")
      drop_pct=P        after ".", close the connection without replying
      drop_delivers=1   whether a dropped transaction is delivered first (default 1)
      hold_s=N          wait N seconds (float) before replying to "."
  RESET               -> OK        all knobs back to defaults
  ADD_MAILBOX addr    -> OK        accept mail for a new mailbox from now on
  STATS               -> OK connections=N auth_ok=N auth_failed=N mail=N
                           rcpt=N data=N delivered=N faults=N drops=N tls=N
"""

import argparse
import asyncio
import logging
import email.errors
import email.headerregistry
import os
import re
import signal
import socket
import ssl
import sys
import time
import warnings

warnings.filterwarnings("ignore")  # aiosmtpd warns about AUTH without TLS
logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

from aiosmtpd.lmtp import LMTP  # noqa: E402
from aiosmtpd.smtp import SMTP, AuthResult  # noqa: E402

NULL_SENDER_SENTINEL = "null-sender@pocketmail.invalid"
ADDRESS_HEADERS = (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")
MIB = 1 << 20


class Faults:
    DEFAULTS = {"fail_pct": 0.0, "fail_code": 451, "fail_stage": "data",
                "drop_pct": 0.0, "drop_delivers": 1, "hold_s": 0.0}

    def __init__(self):
        self.reset()

    def reset(self):
        self.__dict__.update(self.DEFAULTS)
        self.fail_bucket = 0.0
        self.drop_bucket = 0.0

    def set(self, key, value):
        if key not in self.DEFAULTS:
            raise ValueError(f"unknown knob {key}")
        kind = type(self.DEFAULTS[key])
        setattr(self, key, kind(value) if kind is not str else value)

    def fire_fail(self, stage):
        if stage != self.fail_stage or self.fail_pct <= 0:
            return False
        self.fail_bucket += self.fail_pct
        if self.fail_bucket >= 100:
            self.fail_bucket -= 100
            return True
        return False

    def fire_drop(self):
        if self.drop_pct <= 0:
            return False
        self.drop_bucket += self.drop_pct
        if self.drop_bucket >= 100:
            self.drop_bucket -= 100
            return True
        return False


class Stats:
    FIELDS = ("connections", "auth_ok", "auth_failed", "mail", "rcpt", "data",
              "delivered", "faults", "drops", "tls")

    def __init__(self):
        for f in self.FIELDS:
            setattr(self, f, 0)

    def line(self):
        return " ".join(f"{f}={getattr(self, f)}" for f in self.FIELDS)


def read_credentials(path):
    if os.stat(path).st_mode & 0o077:
        raise SystemExit(f"{path}: must not be group/other-accessible")
    creds = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            creds[key.strip()] = value
    return creds["USER"].encode(), creds["PASS"].encode()


def header_block(content):
    end = content.find(b"\r\n\r\n")
    head = content if end < 0 else content[:end + 2]
    # Unfold, then split into (lowercased name, value) pairs.
    head = re.sub(rb"\r\n[ \t]", b" ", head)
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon:
            yield name.strip().lower(), value.strip()


def message_problem(content):
    """Maddy-like header checks; returns None or a reason."""
    saw_from = False
    for name, value in header_block(content):
        if name not in ADDRESS_HEADERS:
            continue
        saw_from = saw_from or name == b"from"
        text = value.decode("utf-8", errors="surrogateescape")
        try:
            parsed = email.headerregistry.HeaderRegistry()(name.decode(), text)
        except (email.errors.HeaderParseError, IndexError, ValueError):
            return f"cannot parse {name.decode()} header"
        bad = [d for d in parsed.defects
               if isinstance(d, (email.errors.InvalidHeaderDefect,
                                 email.errors.HeaderParseError))]
        if bad or (name == b"from" and not parsed.addresses):
            return f"cannot parse {name.decode()} header"
    return None if saw_from else "missing From header"


class Handler:
    def __init__(self, args, mailboxes, stats, faults):
        self.args = args
        self.mailboxes = mailboxes
        self.stats = stats
        self.faults = faults
        self.counter = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = []
        for r in responses:
            if r.startswith("250-SIZE"):
                r = f"250-SIZE {self.args.max_size}"
            if r == "250 HELP":
                out.append("250-PIPELINING")
            out.append(r)
        return out

    def handle_STARTTLS(self, server, session, envelope):
        self.stats.tls += 1
        return True

    def _fault(self, server, stage):
        if not self.faults.fire_fail(stage):
            return None
        self.stats.faults += 1
        if self.faults.fail_code == 421:
            server.loop.call_soon(server.transport.close)
            return "421 4.3.0 Service shutting down (injected fault)"
        return f"{self.faults.fail_code} 4.3.0 Temporary failure (injected fault)"

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.stats.mail += 1
        fault = self._fault(server, "mail")
        if fault:
            return fault
        envelope.mail_from = "<>" if address == NULL_SENDER_SENTINEL else address
        envelope.mail_options.extend(options)
        return "250 2.0.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        self.stats.rcpt += 1
        fault = self._fault(server, "rcpt")
        if fault:
            return fault
        if address.lower() not in self.mailboxes:
            return "501 5.1.1 User does not exist"
        envelope.rcpt_tos.append(address)
        return "250 2.0.0 OK"

    async def handle_DATA(self, server, session, envelope):
        self.stats.data += 1
        content = envelope.original_content
        if len(content) > self.args.max_size:
            return "552 5.3.4 Message size exceeds the limit"
        problem = message_problem(content)
        if problem:
            return f"554 5.6.0 Malformed message: {problem}"
        fault = self._fault(server, "data")
        if fault:
            return fault
        if self.faults.fire_drop():
            self.stats.drops += 1
            if self.faults.drop_delivers:
                self.deliver(envelope, content)
            server.transport.abort()
            # connection_lost() cancels this coroutine; no reply is ever sent.
            await asyncio.sleep(3600)
        unique = self.deliver(envelope, content)
        if self.faults.hold_s > 0:
            await asyncio.sleep(self.faults.hold_s)
        return f"250 2.0.0 OK: queued as {unique}"

    def deliver(self, envelope, content):
        sender = "" if envelope.mail_from == "<>" else envelope.mail_from
        unique = None
        for rcpt in envelope.rcpt_tos:
            self.counter += 1
            unique = f"{time.time():.6f}.P{os.getpid()}Q{self.counter}.peer"
            box = os.path.join(self.args.maildir, rcpt.lower())
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(box, sub), exist_ok=True)
            prefix = (f"Return-Path: <{sender}>\r\nDelivered-To: {rcpt}\r\n"
                      ).encode("utf-8", errors="surrogateescape")
            tmp = os.path.join(box, "tmp", unique)
            with open(tmp, "wb") as f:
                f.write(prefix)
                f.write(content)
            os.rename(tmp, os.path.join(box, "new", unique))
            self.stats.delivered += 1
        return unique


def make_protocol(base, stats, max_size):
    class PeerProtocol(base):
        line_length_limit = 4096  # go-smtp (Maddy) tolerates long lines too

        def connection_made(self, transport):
            if self._original_transport is None:  # not the post-STARTTLS call
                stats.connections += 1
            super().connection_made(transport)

        async def smtp_MAIL(self, arg):
            if arg:
                m = re.match(r"(?i)FROM:\s*<>(.*)$", arg)
                if m:
                    arg = f"FROM:<{NULL_SENDER_SENTINEL}>{m.group(1)}"
                size = re.search(r"(?i)\bSIZE=(\d+)", arg)
                if (size and int(size.group(1)) > max_size and self.session.authenticated):
                    return await self.push("552 5.3.4 Message size exceeds the limit")
            await super().smtp_MAIL(arg)

    return PeerProtocol


async def control_client(reader, writer, stats, faults, mailboxes):
    while True:
        line = await reader.readline()
        if not line:
            break
        words = line.decode("utf-8", errors="replace").split()
        reply = "ERR empty"
        try:
            if words and words[0].upper() == "STATS":
                reply = "OK " + stats.line()
            elif words and words[0].upper() == "RESET":
                faults.reset()
                reply = "OK"
            elif words and words[0].upper() == "ADD_MAILBOX" and len(words) == 2:
                mailboxes.add(words[1].lower())  # like provisioning a Maddy account
                reply = "OK"
            elif words and words[0].upper() == "SET":
                for kv in words[1:]:
                    k, _, v = kv.partition("=")
                    faults.set(k, v)
                reply = "OK"
            elif words:
                reply = "ERR unknown command"
        except ValueError as e:
            reply = f"ERR {e}"
        writer.write((reply + "\n").encode())
        await writer.drain()
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--credentials", required=True)
    p.add_argument("--mailboxes", required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--max-size", type=int, default=32 * MIB)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--lmtp-socket")
    p.add_argument("--hostname", default="peer.pocketmail.test")
    p.add_argument("--auth-mechanisms", default="PLAIN,LOGIN",
                   help="comma-separated subset of PLAIN,LOGIN to offer")
    args = p.parse_args()

    user, password = read_credentials(args.credentials)
    with open(args.mailboxes, encoding="utf-8") as f:
        mailboxes = {ln.strip().lower() for ln in f if ln.strip()}
    os.makedirs(args.maildir, exist_ok=True)
    stats, faults = Stats(), Faults()
    handler = Handler(args, mailboxes, stats, faults)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user and auth_data.password == password
        if ok:
            stats.auth_ok += 1
        else:
            stats.auth_failed += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    offered = {m.strip().upper() for m in args.auth_mechanisms.split(",")}
    excluded = [m for m in ("PLAIN", "LOGIN") if m not in offered]
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    # aiosmtpd bounds DATA with data_size_limit; keep it well above --max-size
    # so the Maddy-like 552 5.3.4 check in handle_DATA is the one that fires.
    common = dict(data_size_limit=max(2 * args.max_size, args.max_size + MIB),
                  enable_SMTPUTF8=True, hostname=args.hostname, timeout=300)
    smtp_cls = make_protocol(SMTP, stats, args.max_size)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: smtp_cls(handler, tls_context=tls_context, auth_required=True,
                         auth_require_tls=False, authenticator=authenticator,
                         auth_exclude_mechanism=excluded, **common),
        host="127.0.0.1", port=0)
    for s in server.sockets:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = server.sockets[0].getsockname()[1]
    control = await asyncio.start_server(
        lambda r, w: control_client(r, w, stats, faults, mailboxes), host="127.0.0.1", port=0)
    control_port = control.sockets[0].getsockname()[1]
    if args.lmtp_socket:
        lmtp_cls = make_protocol(LMTP, stats, args.max_size)
        await loop.create_unix_server(lambda: lmtp_cls(handler, **common),
                                      path=args.lmtp_socket)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"READY port={port} control_port={control_port}", flush=True)
    await stop.wait()
    server.close()
    control.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
