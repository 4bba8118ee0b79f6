#!/usr/bin/python3
r"""A fault-injecting TCP/unix proxy for tests: latency, resets, black holes, cuts.

Run with Debian's /usr/bin/python3 (standard library only):

  fault_proxy.py (--target-port N [--target-host 127.0.0.1] | --target-unix PATH)
                 [--port 0 | --listen-unix PATH]

Listens on 127.0.0.1 (port 0: the kernel picks), forwards every connection to
the target, and prints `READY port=N control_port=M` on stdout. Bytes pass
through untouched, so TLS does too: a client that connects to 127.0.0.1 still
verifies the target's certificate. SIGTERM or SIGINT stops it with status 0.

Unix sockets, for peers that only speak on one (Maddy's LMTP endpoint):
--target-unix PATH forwards to a unix stream socket instead of host:port, and
--listen-unix PATH listens on one instead of on a TCP port (each side is
chosen on its own). The READY line then says `socket=PATH` in place of
`port=N`; the control port stays TCP on 127.0.0.1. The listening socket is
bound under umask 0177, so it is mode 0600 from its first moment (only our
uid can connect; put it in a dir the caller owns as well). A socket already at
PATH is taken as a stale one from a proxy that was SIGKILLed and replaced;
anything else there (a file, a dir) is an error rather than deleted. On
SIGTERM/SIGINT the socket is removed, unless it is no longer ours (replaced
in the meantime). A unix socket has no RST: where a knob resets, the peer gets
a plain close (ECONNRESET only if the proxy left bytes of it unread).

Control port (line protocol on 127.0.0.1:control_port, like the SMTP peer's):
  SET key=value ...   -> OK          knobs, all default 0 (off):
      latency_ms=N      hold every chunk, each direction, until it arrived + N ms;
                        each direction is a FIFO, so a stream is delayed, not
                        throttled (the "mobile" profile, docs/TESTING.md "Why these peers").
      reset_pct=P       reset (RST: SO_LINGER 0, then close) this share of
                        opportunities; where they are is reset_where:
      reset_where=any   accept: each new connection, before any byte flows;
                        stream: each exchange (see below), after the request was
                        forwarded and before any of the answer is: the target
                        did the work, the client never hears of it;
                        any: both (default).
      blackhole_pct=P   black-hole this share of opportunities: nothing more is
                        forwarded either way and nothing is closed; what the
                        client sends is read and dropped, until it gives up.
                        Where, like reset_where:
      blackhole_where=accept  accept: each new connection, which then never
                        reaches the target (a TLS client waits in its handshake);
                        stream: each exchange, once the request was forwarded
                        (the answer never comes); any: both.
      cut_pct=P         this share of exchanges has its answer cut: after
      cut_after_bytes=N   N more bytes target->client (default 1024) the proxy
                        closes both sides (a connection lost mid-body).
      hold_after_dot_ms=N  once the client->target stream has carried an
                        SMTP/LMTP end-of-data marker "\r\n.\r\n" (seen across
                        chunk boundaries, and across commands: "DATA\r\n" then
                        ".\r\n" is one), the first target->client chunk that
                        arrives after it is held N ms (on top of latency_ms)
                        before it is forwarded, and the hold is disarmed. That
                        chunk is the answer to the dot, which a server sends only
                        once it has stored the message (with LMTP, one line per
                        recipient: what arrives later queues behind it, FIFO).
                        It opens a window in which the target has delivered and
                        the client has not heard so, to SIGKILL the client in.
                        Nothing else is held. Dot-stuffing keeps the marker out
                        of message bodies; BDAT (CHUNKING) has no marker and is
                        never held.
  RESET               -> OK          every knob off, buckets emptied (black-holed
                                     connections stay until their client leaves)
  STATS               -> OK connections=N resets=N blackholes=N cuts=N faults=N
                           active=N bytes_up=N bytes_down=N holds=N
An exchange starts each time the client sends after the target has answered
(or first sends at all): for HTTP/1.1 with keep-alive, one per request; for
SMTP, one per command (or pipelined group). Percentages are deterministic, as
in the SMTP peer: each opportunity adds P to that knob's bucket and the fault
fires whenever the bucket reaches 100 (P=25: every 4th). faults counts faults
that actually happened (a cut armed on an answer that never came is not one):
resets, blackholes and cuts, which lose something. holds counts answers that
were held; like latency, a hold loses nothing (the answer arrives whole if the
client waits), so holds are not faults, and a test that expects faults=0 still
gets it with hold_after_dot_ms set.
"""

import argparse
import asyncio
import os
import signal
import socket
import stat
import struct
import sys

CHUNK = 65536
END_OF_DATA = b"\r\n.\r\n"  # SMTP/LMTP end of the DATA body (RFC 5321 4.1.1.4)


class Knobs:
    DEFAULTS = {"latency_ms": 0.0, "reset_pct": 0.0, "reset_where": "any",
                "blackhole_pct": 0.0, "blackhole_where": "accept",
                "cut_pct": 0.0, "cut_after_bytes": 1024, "hold_after_dot_ms": 0.0}
    WHERE = ("accept", "stream", "any")

    def __init__(self):
        self.reset()

    def reset(self):
        self.__dict__.update(self.DEFAULTS)
        self.buckets = {"reset": 0.0, "blackhole": 0.0, "cut": 0.0}

    def set(self, key, value):
        if key not in self.DEFAULTS:
            raise ValueError(f"unknown knob {key}")
        kind = type(self.DEFAULTS[key])
        try:
            parsed = kind(value)
        except ValueError:
            raise ValueError(f"bad value for {key}: {value}")
        if key.endswith("_pct") and not 0 <= parsed <= 100:
            raise ValueError(f"{key} must be 0..100")
        if key in ("latency_ms", "cut_after_bytes", "hold_after_dot_ms") and parsed < 0:
            raise ValueError(f"{key} must be >= 0")
        if key.endswith("_where") and parsed not in self.WHERE:
            raise ValueError(f"{key} must be one of {'|'.join(self.WHERE)}")
        setattr(self, key, parsed)

    def fire(self, name):
        pct = getattr(self, f"{name}_pct")
        if pct <= 0:
            return False
        self.buckets[name] += pct
        if self.buckets[name] >= 100:
            self.buckets[name] -= 100
            return True
        return False

    def fire_at(self, name, where):
        if getattr(self, f"{name}_where") not in (where, "any"):
            return False
        return self.fire(name)


class Stats:
    FIELDS = ("connections", "resets", "blackholes", "cuts", "faults", "active",
              "bytes_up", "bytes_down", "holds")

    def __init__(self):
        for f in self.FIELDS:
            setattr(self, f, 0)

    def fault(self, kind):
        setattr(self, kind, getattr(self, kind) + 1)
        self.faults += 1

    def line(self):
        return " ".join(f"{f}={getattr(self, f)}" for f in self.FIELDS)


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def rst(writer):
    """Closes with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Connection:
    """One proxied connection: two FIFO pumps and the per-exchange faults."""

    def __init__(self, proxy, client_reader, client_writer):
        self.proxy = proxy
        self.knobs = proxy.knobs
        self.stats = proxy.stats
        self.c_reader, self.c_writer = client_reader, client_writer
        self.u_reader = self.u_writer = None
        self.answered = True       # the target has answered since the client last sent
        self.reset_armed = False   # RST before the next byte of the answer
        self.stall_armed = False   # black-hole from the next byte of the answer on
        self.cut_left = None       # bytes of answer still allowed through, when armed
        self.up_tail = b""         # last len(END_OF_DATA)-1 bytes sent to the target
        self.hold_s = None         # hold the next chunk of answer this long, when armed
        self.closed = False
        self.stalled = False

    async def run(self):
        self.stats.connections += 1
        self.stats.active += 1
        nodelay(self.c_writer)
        try:
            if self.knobs.fire_at("reset", "accept"):
                self.stats.fault("resets")
                rst(self.c_writer)
                return
            if self.knobs.fire_at("blackhole", "accept"):
                self.stats.fault("blackholes")
                await self.swallow()
                return
            try:
                if self.proxy.target_unix is not None:
                    self.u_reader, self.u_writer = await asyncio.open_unix_connection(
                        self.proxy.target_unix)
                else:
                    self.u_reader, self.u_writer = await asyncio.open_connection(
                        self.proxy.target_host, self.proxy.target_port)
            except OSError:
                rst(self.c_writer)
                return
            nodelay(self.u_writer)
            await asyncio.gather(self.pump(up=True), self.pump(up=False))
        finally:
            self.stats.active -= 1
            self.close()

    async def swallow(self):
        try:
            while await self.c_reader.read(CHUNK):
                pass
        except (ConnectionError, OSError):
            pass

    def close(self):
        if self.closed:
            return
        self.closed = True
        for w in (self.c_writer, self.u_writer):
            if w is not None:
                w.transport.abort()

    async def pump(self, up):
        """Reads one direction into a FIFO of (release time, chunk) and writes
        each chunk out at its release time; b"" stands for end of stream."""
        reader = self.c_reader if up else self.u_reader
        queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def read_side():
            try:
                while True:
                    data = await reader.read(CHUNK)
                    release = loop.time() + self.knobs.latency_ms / 1000.0
                    if not up and data and self.hold_s is not None:
                        # Read after the dot went to the target: the answer to it.
                        release += self.hold_s
                        self.hold_s = None
                        self.stats.holds += 1
                    queue.put_nowait((release, data))
                    if not data:
                        return
            except (ConnectionError, OSError):
                queue.put_nowait((loop.time(), None))  # reset: give up at once

        async def write_side():
            while True:
                release, data = await queue.get()
                delay = release - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.closed:
                    return
                if data is None:  # the reading side was reset: reset the other one
                    rst(self.u_writer if up else self.c_writer)
                    self.close()
                    return
                if not await (self.forward_up(data) if up else self.forward_down(data)):
                    return

        reading = asyncio.ensure_future(read_side())
        try:
            await write_side()
        finally:
            reading.cancel()

    async def forward_up(self, data):
        """Client -> target. Returns False when this direction is finished."""
        if self.stalled:  # black-holed: swallow until the client closes
            return bool(data)
        if not data:
            try:
                self.u_writer.write_eof()
            except (OSError, RuntimeError):
                pass
            return False
        if self.answered:  # a new exchange: draw its faults
            self.answered = False
            if self.knobs.fire_at("reset", "stream"):
                self.reset_armed = True
            elif self.knobs.fire_at("blackhole", "stream"):
                self.stall_armed = True
            if self.cut_left is None and self.knobs.fire("cut"):
                self.cut_left = self.knobs.cut_after_bytes
        # Armed before the write, so no answer to the dot can be read unheld.
        # Anywhere in the chunk, not only at its end: a pipelining client may
        # send RSET or QUIT right behind the dot.
        seen = self.up_tail + data
        if self.knobs.hold_after_dot_ms > 0 and END_OF_DATA in seen:
            self.hold_s = self.knobs.hold_after_dot_ms / 1000.0
        self.up_tail = seen[-(len(END_OF_DATA) - 1):]
        self.stats.bytes_up += len(data)
        return await self.write(self.u_writer, data)

    async def forward_down(self, data):
        """Target -> client. Returns False when this direction is finished."""
        if not data:
            try:
                self.c_writer.write_eof()
            except (OSError, RuntimeError):
                pass
            return False
        self.answered = True
        if self.reset_armed:
            self.stats.fault("resets")
            rst(self.c_writer)
            self.close()
            return False
        if self.stall_armed:
            self.stats.fault("blackholes")
            self.stall()
            return False
        if self.cut_left is not None:
            if len(data) >= self.cut_left:
                data = data[:self.cut_left]
                self.stats.bytes_down += len(data)
                self.stats.fault("cuts")
                if data:
                    await self.write(self.c_writer, data)
                self.close_gracefully()
                return False
            self.cut_left -= len(data)
        self.stats.bytes_down += len(data)
        return await self.write(self.c_writer, data)

    def stall(self):
        """The target is let go; the client keeps a connection where nothing
        moves any more, until it closes it (the pump reading it then ends)."""
        self.stalled = True
        if self.u_writer is not None:
            self.u_writer.transport.abort()

    def close_gracefully(self):
        """A FIN to the client after what was written (a lost connection
        mid-answer, not a reset), and the target is let go."""
        if self.closed:
            return
        self.closed = True
        self.c_writer.close()
        if self.u_writer is not None:
            self.u_writer.transport.abort()

    async def write(self, writer, data):
        try:
            writer.write(data)
            await writer.drain()
            return True
        except (ConnectionError, OSError):
            self.close()
            return False


class Proxy:
    def __init__(self, target_host, target_port, target_unix):
        self.target_host = target_host
        self.target_port = target_port
        self.target_unix = target_unix  # a path, or None for target_host:target_port
        self.knobs = Knobs()
        self.stats = Stats()

    async def serve_client(self, reader, writer):
        try:
            await Connection(self, reader, writer).run()
        except Exception as e:  # one broken connection must not stop the proxy
            print(f"fault_proxy: connection error: {e!r}", file=sys.stderr)

    async def control_client(self, reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            words = line.decode("utf-8", errors="replace").split()
            reply = "ERR empty"
            try:
                command = words[0].upper() if words else ""
                if command == "STATS":
                    reply = "OK " + self.stats.line()
                elif command == "RESET":
                    self.knobs.reset()
                    reply = "OK"
                elif command == "SET":
                    staged = Knobs()
                    staged.__dict__.update({k: getattr(self.knobs, k) for k in Knobs.DEFAULTS})
                    for kv in words[1:]:
                        k, _, v = kv.partition("=")
                        staged.set(k, v)  # all or nothing: a bad knob changes nothing
                    for k in Knobs.DEFAULTS:
                        setattr(self.knobs, k, getattr(staged, k))
                    reply = "OK"
                elif words:
                    reply = "ERR unknown command"
            except ValueError as e:
                reply = f"ERR {e}"
            writer.write((reply + "\n").encode())
            await writer.drain()
        writer.close()


def bind_unix(path):
    """A listening unix socket at path, mode 0600 from the start (bound under
    umask 0177, not chmod-ed afterwards: no moment where others could connect),
    and the inode of its file. A stale socket at path is replaced; anything else
    there is left alone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise SystemExit(f"fault_proxy: {path} exists and is not a socket")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # single-threaded here: nothing else sees the umask
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    sock.listen(512)
    return sock, os.lstat(path).st_ino  # fstat(sock) would be sockfs's, not the file's


def unlink_if_ours(path, ino):
    """Removes the socket at path unless something else has replaced it."""
    try:
        if os.lstat(path).st_ino == ino:
            os.unlink(path)
    except OSError:
        pass


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-port", type=int)
    target.add_argument("--target-unix", metavar="PATH")
    p.add_argument("--target-host", default="127.0.0.1")
    listen = p.add_mutually_exclusive_group()
    listen.add_argument("--port", type=int, default=0)
    listen.add_argument("--listen-unix", metavar="PATH")
    args = p.parse_args()

    proxy = Proxy(args.target_host, args.target_port, args.target_unix)
    if args.listen_unix is not None:
        sock, ino = bind_unix(args.listen_unix)
        server = await asyncio.start_unix_server(proxy.serve_client, sock=sock)
        where = f"socket={args.listen_unix}"
    else:
        server = await asyncio.start_server(proxy.serve_client, host="127.0.0.1",
                                            port=args.port, backlog=512)
        where = f"port={server.sockets[0].getsockname()[1]}"
    try:
        control = await asyncio.start_server(proxy.control_client, host="127.0.0.1", port=0)
        control_port = control.sockets[0].getsockname()[1]

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print(f"READY {where} control_port={control_port}", flush=True)
        await stop.wait()
        server.close()
        control.close()
    finally:
        if args.listen_unix is not None:
            unlink_if_ours(args.listen_unix, ino)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
