#!/usr/bin/python3
"""A fault-injecting TCP proxy for tests: latency, resets, black holes, cuts.

Run with Debian's /usr/bin/python3 (standard library only):

  fault_proxy.py --target-port N [--target-host 127.0.0.1] [--port 0]

Listens on 127.0.0.1 (port 0: the kernel picks), forwards every connection to
the target, and prints `READY port=N control_port=M` on stdout. Bytes pass
through untouched, so TLS does too: a client that connects to 127.0.0.1 still
verifies the target's certificate. SIGTERM or SIGINT stops it with status 0.

Control port (line protocol on 127.0.0.1:control_port, like the SMTP peer's):
  SET key=value ...   -> OK          knobs, all default 0 (off):
      latency_ms=N      hold every chunk, each direction, until it arrived + N ms;
                        each direction is a FIFO, so a stream is delayed, not
                        throttled (the "mobile" profile of TEST-PEERS.md).
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
  RESET               -> OK          every knob off, buckets emptied (black-holed
                                     connections stay until their client leaves)
  STATS               -> OK connections=N resets=N blackholes=N cuts=N faults=N
                           active=N bytes_up=N bytes_down=N
An exchange starts each time the client sends after the target has answered
(or first sends at all): for HTTP/1.1 with keep-alive, one per request; for
SMTP, one per command (or pipelined group). Percentages are deterministic, as
in the SMTP peer: each opportunity adds P to that knob's bucket and the fault
fires whenever the bucket reaches 100 (P=25: every 4th). faults counts faults
that actually happened (a cut armed on an answer that never came is not one).
"""

import argparse
import asyncio
import signal
import socket
import struct
import sys

CHUNK = 65536


class Knobs:
    DEFAULTS = {"latency_ms": 0.0, "reset_pct": 0.0, "reset_where": "any",
                "blackhole_pct": 0.0, "blackhole_where": "accept",
                "cut_pct": 0.0, "cut_after_bytes": 1024}
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
        if key in ("latency_ms", "cut_after_bytes") and parsed < 0:
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
              "bytes_up", "bytes_down")

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
                    queue.put_nowait((loop.time() + self.knobs.latency_ms / 1000.0, data))
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
    def __init__(self, target_host, target_port):
        self.target_host = target_host
        self.target_port = target_port
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


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target-host", default="127.0.0.1")
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()

    proxy = Proxy(args.target_host, args.target_port)
    server = await asyncio.start_server(proxy.serve_client, host="127.0.0.1", port=args.port,
                                        backlog=512)
    control = await asyncio.start_server(proxy.control_client, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    control_port = control.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"READY port={port} control_port={control_port}", flush=True)
    await stop.wait()
    server.close()
    control.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
