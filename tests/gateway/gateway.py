#!/usr/bin/python3
"""A webmail/auth gateway's side of pocketmail, in Python with grpcio.

This is how docs/GATEWAY.md says a gateway talks to the services: over
127.0.0.1 TCP with its own token (the read-only "gateway" scope), stubs
generated from proto/ with grpc_tools.protoc, Debian's python3-grpcio. The
gateway-e2e test drives it; each subcommand prints tab-separated lines that
the test reads.

  gateway.py --proto-dir proto --token-file T --ledger 127.0.0.1:P watch --out events.tsv
  gateway.py ... --router ADDR provision carol@example.org --maddy BIN --maddy-config CONF [--refresh]
  gateway.py ... --router ADDR resolve carol@example.org
  gateway.py ... --ledger ADDR list --mailbox carol@example.org --page-size 40
  gateway.py ... --ledger ADDR stats [--mailbox M]
  gateway.py ... (all four addresses) scope-check --operator-token-file O

Secrets never travel on argv: tokens are read from their 0600 files and the
new mailbox's password from stdin.
"""
import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc

PROTOS = {
    "ledger": "pocketmail/ledger/v1/ledger.proto",
    "router": "pocketmail/router/v1/router.proto",
    "fetcher": "pocketmail/fetcher/v1/fetcher.proto",
    "injector": "pocketmail/injector/v1/injector.proto",
}
CALL_TIMEOUT_S = 10.0


def load_stubs(proto_dir):
    """Compiles the contracts once into a temp dir; returns {name: (pb2, pb2_grpc)}."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="pm-gateway-stubs-")
    rc = protoc.main(["grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}",
                      f"--grpc_python_out={out}"] + [os.path.join(proto_dir, p) for p in PROTOS.values()])
    if rc != 0:
        raise SystemExit(f"grpc_tools.protoc failed (exit {rc})")
    sys.path.insert(0, out)
    stubs = {}
    for name, path in PROTOS.items():
        module = path[:-len(".proto")].replace("/", ".")
        stubs[name] = (importlib.import_module(module + "_pb2"), importlib.import_module(module + "_pb2_grpc"))
    shutil.rmtree(out, ignore_errors=True)  # the modules are loaded
    return stubs


def read_token(path):
    with open(path, encoding="ascii") as f:
        return f.read().strip()


class Gateway:
    """Channels and stubs for the services the gateway was given addresses of."""

    def __init__(self, args):
        self.stubs = load_stubs(args.proto_dir)
        self.token = read_token(args.token_file) if args.token_file else ""
        self.addresses = {name: getattr(args, name) for name in PROTOS if getattr(args, name)}

    def metadata(self, token=None):
        token = self.token if token is None else token
        return [("authorization", f"Bearer {token}")] if token else []

    def stub(self, service):
        pb2, pb2_grpc = self.stubs[service]
        channel = grpc.insecure_channel(self.addresses[service])
        return pb2, getattr(pb2_grpc, service.capitalize() + "Stub")(channel)


def clean(text):
    return str(text).replace("\t", " ").replace("\n", " ")


def message_line(m):
    """One ledger row as the test reads it (the fields a gateway shows)."""
    return "\t".join(clean(v) for v in (m.seq, m.key, m.state, m.mailbox, m.recipient, m.sender, m.sha256,
                                        m.received_ms, m.delivered_ms, m.subject))


def cmd_watch(gw, args):
    """WatchDeliveries for ever, resuming from the last seq after any break."""
    pb2, ledger = gw.stub("ledger")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    last_seq = args.since_seq
    reconnects = 0
    with open(args.out, "a", encoding="utf-8") as out:
        while not stop:
            try:
                stream = ledger.WatchDeliveries(pb2.WatchDeliveriesRequest(since_seq=last_seq),
                                                metadata=gw.metadata())
                for event in stream:
                    received_ms = int(time.time() * 1000)
                    out.write(f"event\t{received_ms}\t{message_line(event.message)}\n")
                    out.flush()
                    last_seq = event.message.seq
                    if stop:
                        break
            except grpc.RpcError as e:
                # The ledger restarted or is down: what a gateway does is wait
                # a moment and resume from the last seq it saw.
                reconnects += 1
                out.write(f"reconnect\t{int(time.time() * 1000)}\t{e.code().name}\t{last_seq}\n")
                out.flush()
                time.sleep(0.2)
    return 0


def cmd_provision(gw, args):
    """Just-in-time mailbox: Maddy login + IMAP account, then (optionally) Refresh."""
    password = sys.stdin.readline().rstrip("\n")
    base = [args.maddy, "--config", args.maddy_config]
    for verb, stdin in (("creds", password + "\n"), ("imap-acct", None)):
        done = subprocess.run(base + [verb, "create", args.address], input=stdin, text=True,
                              capture_output=True, timeout=60)
        if done.returncode != 0:
            print(f"error\tmaddy {verb} create: {clean(done.stderr.strip())}")
            return 1
    print(f"created\t{args.address}\t{int(time.time() * 1000)}")
    if args.refresh:
        pb2, router = gw.stub("router")
        r = router.Refresh(pb2.RefreshRequest(), metadata=gw.metadata(), timeout=CALL_TIMEOUT_S)
        print(f"refreshed\t{r.mailbox_count}\t{r.version}\t{int(time.time() * 1000)}")
    return 0


def cmd_resolve(gw, args):
    pb2, router = gw.stub("router")
    r = router.Resolve(pb2.ResolveRequest(address=args.address), metadata=gw.metadata(), timeout=CALL_TIMEOUT_S)
    print(f"resolved\t{r.mailbox}\t{pb2.Rule.Name(r.rule)}")
    return 0


def cmd_list(gw, args):
    """Pages through List with the server's page tokens."""
    pb2, ledger = gw.stub("ledger")
    token, pages = "", 0
    while True:
        r = ledger.List(pb2.ListRequest(mailbox=args.mailbox, page_size=args.page_size, page_token=token),
                        metadata=gw.metadata(), timeout=CALL_TIMEOUT_S)
        pages += 1
        for m in r.messages:
            print(f"row\t{message_line(m)}")
        token = r.next_page_token
        if not token:
            break
    print(f"pages\t{pages}")
    return 0


def cmd_stats(gw, args):
    pb2, ledger = gw.stub("ledger")
    r = ledger.Stats(pb2.StatsRequest(mailbox=args.mailbox), metadata=gw.metadata(), timeout=CALL_TIMEOUT_S)
    for c in r.by_state:
        print(f"state\t{pb2.State.Name(c.state)}\t{c.count}")
    print(f"total\t{r.total}")
    print(f"delivered_last_hour\t{r.delivered_last_hour}")
    return 0


def scope_calls(gw):
    """(service, method, is_write, call(metadata)) for every RPC of the four services."""
    ledger_pb2, ledger = gw.stub("ledger")
    router_pb2, router = gw.stub("router")
    fetcher_pb2, fetcher = gw.stub("fetcher")
    injector_pb2, injector = gw.stub("injector")
    probe_key = "pending/gateway-scope-check.eml"

    def watch_one(md):
        # A stream only reports its status once read; a short deadline ends it.
        try:
            for _ in ledger.WatchDeliveries(ledger_pb2.WatchDeliveriesRequest(), metadata=md, timeout=0.5):
                break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise

    def inject(md):
        return injector.Inject(iter([injector_pb2.InjectRequest()]), metadata=md, timeout=CALL_TIMEOUT_S)

    t = CALL_TIMEOUT_S
    return [
        ("ledger", "Begin", True, lambda md: ledger.Begin(ledger_pb2.BeginRequest(key=probe_key), metadata=md, timeout=t)),
        ("ledger", "Advance", True, lambda md: ledger.Advance(ledger_pb2.AdvanceRequest(
            key=probe_key, from_state=ledger_pb2.STATE_PENDING, to_state=ledger_pb2.STATE_DEAD_LETTERING),
            metadata=md, timeout=t)),
        ("ledger", "Apply", True, lambda md: ledger.Apply(ledger_pb2.ApplyRequest(), metadata=md, timeout=t)),
        ("ledger", "AcquireLease", True, lambda md: ledger.AcquireLease(ledger_pb2.AcquireLeaseRequest(
            name="gateway-scope-check", holder="gateway", ttl_ms=1000), metadata=md, timeout=t)),
        ("ledger", "ReleaseLease", True, lambda md: ledger.ReleaseLease(ledger_pb2.ReleaseLeaseRequest(
            name="gateway-scope-check", holder="gateway"), metadata=md, timeout=t)),
        ("fetcher", "DrainNow", True, lambda md: fetcher.DrainNow(fetcher_pb2.DrainNowRequest(), metadata=md, timeout=t)),
        ("fetcher", "Replay", True, lambda md: fetcher.Replay(fetcher_pb2.ReplayRequest(key="failed/none.eml"),
                                                               metadata=md, timeout=t)),
        ("fetcher", "ListBucket", True, lambda md: fetcher.ListBucket(fetcher_pb2.ListBucketRequest(limit=1),
                                                                       metadata=md, timeout=t)),
        ("injector", "Inject", True, inject),
        ("injector", "Probe", True, lambda md: injector.Probe(injector_pb2.ProbeRequest(
            key=probe_key, mailbox="inbox@example.org"), metadata=md, timeout=t)),
        ("ledger", "Get", False, lambda md: ledger.Get(ledger_pb2.GetRequest(key=probe_key), metadata=md, timeout=t)),
        ("ledger", "List", False, lambda md: ledger.List(ledger_pb2.ListRequest(page_size=1), metadata=md, timeout=t)),
        ("ledger", "Stats", False, lambda md: ledger.Stats(ledger_pb2.StatsRequest(), metadata=md, timeout=t)),
        ("ledger", "WatchDeliveries", False, watch_one),
        ("router", "Resolve", False, lambda md: router.Resolve(router_pb2.ResolveRequest(address="x@example.org"),
                                                                metadata=md, timeout=t)),
        ("router", "ListMailboxes", False, lambda md: router.ListMailboxes(router_pb2.ListMailboxesRequest(),
                                                                            metadata=md, timeout=t)),
        ("router", "Refresh", False, lambda md: router.Refresh(router_pb2.RefreshRequest(), metadata=md, timeout=t)),
        ("fetcher", "Status", False, lambda md: fetcher.Status(fetcher_pb2.StatusRequest(), metadata=md, timeout=t)),
    ]


def code_of(call, md):
    try:
        call(md)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def cmd_scope_check(gw, args):
    """Every RPC with the gateway token, without a token, and with the operator's."""
    operator = read_token(args.operator_token_file)
    # Passing the auth check is all a read needs to show: NOT_FOUND for a key
    # that does not exist is the service answering.
    authorised = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                  grpc.StatusCode.FAILED_PRECONDITION}
    for service, method, is_write, call in scope_calls(gw):
        as_gateway = code_of(call, gw.metadata())
        anonymous = code_of(call, [])
        as_operator = code_of(call, gw.metadata(operator)) if not is_write or method in (
            "AcquireLease", "ReleaseLease", "Get") else None
        print("\t".join([
            "rpc", f"{service}.{method}", "write" if is_write else "read", as_gateway.name, anonymous.name,
            "-" if as_operator is None else ("authorised" if as_operator in authorised else as_operator.name),
        ]))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proto-dir", required=True, help="directory holding pocketmail/<svc>/v1/*.proto")
    p.add_argument("--token-file", help="0600 file with the gateway's bearer token")
    for name in PROTOS:
        p.add_argument(f"--{name}", default="", help=f"{name} address, 127.0.0.1:PORT")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("watch")
    w.add_argument("--out", required=True)
    w.add_argument("--since-seq", type=int, default=0)
    v = sub.add_parser("provision")
    v.add_argument("address")
    v.add_argument("--maddy", required=True)
    v.add_argument("--maddy-config", required=True)
    v.add_argument("--refresh", action="store_true")
    r = sub.add_parser("resolve")
    r.add_argument("address")
    li = sub.add_parser("list")
    li.add_argument("--mailbox", default="")
    li.add_argument("--page-size", type=int, default=100)
    st = sub.add_parser("stats")
    st.add_argument("--mailbox", default="")
    sc = sub.add_parser("scope-check")
    sc.add_argument("--operator-token-file", required=True)
    args = p.parse_args()
    gw = Gateway(args)
    handler = {"watch": cmd_watch, "provision": cmd_provision, "resolve": cmd_resolve, "list": cmd_list,
               "stats": cmd_stats, "scope-check": cmd_scope_check}[args.cmd]
    try:
        return handler(gw, args)
    except grpc.RpcError as e:
        print(f"error\t{e.code().name}\t{clean(e.details())}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
