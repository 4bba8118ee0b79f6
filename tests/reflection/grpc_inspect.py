#!/usr/bin/python3
"""A small grpcurl stand-in built on server reflection (Debian python3-grpcio).

grpcurl is not packaged for Debian 12. This does what grpcurl does with a server
that serves grpc.reflection.v1alpha (gRPC 1.51):

  grpc_inspect.py -unix -plaintext $RUNTIME/ledger.sock list
  grpc_inspect.py unix:$RUNTIME/ledger.sock list pocketmail.ledger.v1.Ledger
  grpc_inspect.py unix:$RUNTIME/ledger.sock describe pocketmail.ledger.v1.Ledger
  grpc_inspect.py unix:$RUNTIME/ledger.sock call pocketmail.ledger.v1.Ledger/Stats '{}'
  grpc_inspect.py -d '{"key":"k"}' unix:$RUNTIME/ledger.sock pocketmail.ledger.v1.Ledger/Get
  grpc_inspect.py -token-file $POCKETMAIL_TOKEN_FILE 127.0.0.1:7001 list
  grpc_inspect.py unix:$RUNTIME/ledger.sock health

Nothing is compiled ahead of time: the reflection and health stubs are generated
at first use with grpc_tools.protoc from /usr/share/grpc-proto (under renamed
files, since a top-level `grpc/` directory would shadow the grpc package), and
request/response classes are built from the FileDescriptorProtos the server
sends. As a library, see Inspector and health_check(); failed RPCs raise
grpc.RpcError, so callers can branch on .code().
"""
import argparse
import atexit
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import json_format
from google.protobuf import message_factory

GRPC_PROTO_ROOT = os.environ.get("GRPC_PROTO_ROOT", "/usr/share/grpc-proto")
# Source proto (relative to GRPC_PROTO_ROOT) → module base name it is compiled to.
_STUB_PROTOS = {
    "reflection": ("grpc/reflection/v1alpha/reflection.proto", "pm_inspect_reflection_v1alpha"),
    "health": ("grpc/health/v1/health.proto", "pm_inspect_health_v1"),
}
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
DEFAULT_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 16 << 20

_stub_lock = threading.Lock()
_stub_dir = None
_stub_modules = {}


def _stubs(kind):
    """Returns (pb2, pb2_grpc) for "reflection" or "health", generating them once."""
    global _stub_dir
    with _stub_lock:
        if kind in _stub_modules:
            return _stub_modules[kind]
        from grpc_tools import protoc  # imported lazily: it is only needed once

        if _stub_dir is None:
            _stub_dir = tempfile.mkdtemp(prefix="pm-inspect-stubs-")
            atexit.register(shutil.rmtree, _stub_dir, True)
            sys.path.insert(0, _stub_dir)
        source, base = _STUB_PROTOS[kind]
        src_path = os.path.join(GRPC_PROTO_ROOT, source)
        if not os.path.exists(src_path):
            raise RuntimeError(f"{src_path} not found (Debian package grpc-proto)")
        shutil.copyfile(src_path, os.path.join(_stub_dir, base + ".proto"))
        rc = protoc.main([
            "grpc_tools.protoc",
            f"-I{_stub_dir}",
            f"--python_out={_stub_dir}",
            f"--grpc_python_out={_stub_dir}",
            os.path.join(_stub_dir, base + ".proto"),
        ])
        if rc != 0:
            raise RuntimeError(f"grpc_tools.protoc failed on {src_path} (exit {rc})")
        importlib.invalidate_caches()
        mods = (importlib.import_module(base + "_pb2"), importlib.import_module(base + "_pb2_grpc"))
        _stub_modules[kind] = mods
        return mods


def make_channel(target):
    """A plaintext channel: `unix:/path`, `unix:///path`, or `host:port`.

    The TCP listener of a pocketmail service uses gRPC local credentials, which
    put nothing on the wire, so plaintext is what grpcurl -plaintext speaks too.
    """
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    return grpc.insecure_channel(target, options=options)


def normalize_target(target, unix=False):
    if unix and not target.startswith("unix:"):
        return "unix:" + target
    return target


def parse_headers(headers):
    """['authorization: Bearer x', ...] → [('authorization', 'Bearer x'), ...]."""
    out = []
    for h in headers or ():
        if isinstance(h, tuple):
            out.append((h[0].lower(), h[1]))
            continue
        if ":" not in h:
            raise ValueError(f"header {h!r} is not 'name: value'")
        name, value = h.split(":", 1)
        out.append((name.strip().lower(), value.strip()))
    return out


def health_check(target, service="", headers=(), timeout=DEFAULT_TIMEOUT_S):
    """grpc.health.v1.Health/Check through the generated stub; returns the status name."""
    pb2, pb2_grpc = _stubs("health")
    channel = make_channel(target)
    try:
        stub = pb2_grpc.HealthStub(channel)
        resp = stub.Check(pb2.HealthCheckRequest(service=service), timeout=timeout,
                          metadata=parse_headers(headers))
        return pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    finally:
        channel.close()


class SymbolError(KeyError):
    """A symbol or method the server does not know (or that has the wrong kind)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class ReflectionError(Exception):
    """The server answered a reflection request with an error_response."""

    def __init__(self, code, message):
        super().__init__(f"{grpc_code_name(code)}: {message}")
        self.code = code
        self.message = message


def grpc_code_name(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.name
    return str(number)


def _message_class(desc, factory):
    get = getattr(message_factory, "GetMessageClass", None)
    if get is not None:  # protobuf >= 4.22
        return get(desc)
    return factory.GetPrototype(desc)


def _json_of(msg, emit_defaults=False, indent=2):
    kwargs = {"indent": indent}
    if emit_defaults:
        try:
            return json_format.MessageToJson(msg, including_default_value_fields=True, **kwargs)
        except TypeError:  # protobuf >= 26 renamed it
            return json_format.MessageToJson(msg, always_print_fields_with_no_presence=True, **kwargs)
    return json_format.MessageToJson(msg, **kwargs)


def _dict_of(msg, emit_defaults=False):
    return json.loads(_json_of(msg, emit_defaults=emit_defaults, indent=None))


def split_json_stream(text):
    """'{..} {..}' or '{..}\n{..}' → list of JSON texts (grpcurl's -d for streams)."""
    text = (text or "").strip()
    if not text:
        return ["{}"]
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, end = decoder.raw_decode(text, pos)
        out.append(json.dumps(obj))
        pos = end
    return out


class MethodInfo:
    """One RPC, with its dynamically built request/response classes."""

    def __init__(self, desc, proto, request_class, response_class):
        self.descriptor = desc
        self.proto = proto  # MethodDescriptorProto: carries the streaming flags
        self.full_name = desc.full_name
        self.path = f"/{desc.containing_service.full_name}/{desc.name}"
        self.request_class = request_class
        self.response_class = response_class
        self.client_streaming = bool(proto.client_streaming)
        self.server_streaming = bool(proto.server_streaming)


class Inspector:
    """grpcurl's list / describe / call against one target, via reflection.

    `headers` go on every RPC, reflection included (grpcurl -H). Descriptors
    fetched from the server are kept in a private DescriptorPool; pass
    `descriptors_from=<another Inspector>` to reuse its pool instead of
    reflecting (like grpcurl -protoset), e.g. to call a TCP port without a token.
    Not thread-safe.
    """

    def __init__(self, target, headers=(), timeout=DEFAULT_TIMEOUT_S, descriptors_from=None):
        self.target = target
        self.metadata = parse_headers(headers)
        self.timeout = timeout
        self.channel = make_channel(target)
        self._reflect_from = descriptors_from
        if descriptors_from is not None:
            self.pool = descriptors_from.pool
            self._files = descriptors_from._files
            self._factory = descriptors_from._factory
        else:
            self.pool = descriptor_pool.DescriptorPool()
            self._files = {}  # name → FileDescriptorProto, once added to the pool
            self._factory = message_factory.MessageFactory(self.pool)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- raw reflection -------------------------------------------------------

    def _reflect(self, **request_fields):
        pb2, pb2_grpc = _stubs("reflection")
        stub = pb2_grpc.ServerReflectionStub(self.channel)
        request = pb2.ServerReflectionRequest(**request_fields)
        responses = stub.ServerReflectionInfo(iter([request]), timeout=self.timeout,
                                              metadata=self.metadata)
        response = None
        for r in responses:  # one request → one response, then the server ends the stream
            response = r
        if response is None:
            raise ReflectionError(grpc.StatusCode.UNKNOWN.value[0], "no reflection response")
        if response.WhichOneof("message_response") == "error_response":
            raise ReflectionError(response.error_response.error_code,
                                  response.error_response.error_message)
        return response

    def list_services(self):
        """Registered service names, sorted (grpcurl `list`)."""
        response = self._reflect(list_services="")
        return sorted(s.name for s in response.list_services_response.service)

    def _add_file_protos(self, serialized_files):
        protos = {}
        for raw in serialized_files:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
            protos[fdp.name] = fdp
        # Dependencies the server left out (it may skip ones sent earlier on a
        # stream; we open a new stream per request, so ask for any still missing).
        pending = [d for p in protos.values() for d in p.dependency]
        while pending:
            dep = pending.pop()
            if dep in protos or dep in self._files:
                continue
            resp = self._reflect(file_by_filename=dep)
            for raw in resp.file_descriptor_response.file_descriptor_proto:
                fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
                if fdp.name not in protos:
                    protos[fdp.name] = fdp
                    pending.extend(fdp.dependency)

        def add(name, stack=()):
            if name in self._files:
                return
            if name in stack:
                raise RuntimeError(f"import cycle through {name}")
            fdp = protos[name]
            for dep in fdp.dependency:
                add(dep, stack + (name,))
            self.pool.AddSerializedFile(fdp.SerializeToString())
            self._files[name] = fdp

        for name in protos:
            add(name)

    def load_symbol(self, symbol):
        """Makes `symbol` (and its file's imports) known to the pool."""
        symbol = symbol.lstrip(".")
        if self._find_any(symbol) is not None:
            return
        if self._reflect_from is not None:
            self._reflect_from.load_symbol(symbol)  # same pool: reflect over its channel
            return
        response = self._reflect(file_containing_symbol=symbol)
        self._add_file_protos(response.file_descriptor_response.file_descriptor_proto)

    def _find_any(self, symbol):
        """(kind, descriptor) for a loaded symbol, or None."""
        lookups = (
            ("service", self.pool.FindServiceByName),
            ("message", self.pool.FindMessageTypeByName),
            ("enum", self.pool.FindEnumTypeByName),
        )
        for kind, find in lookups:
            try:
                return kind, find(symbol)
            except KeyError:
                pass
        if "." in symbol:
            parent, leaf = symbol.rsplit(".", 1)
            try:
                svc = self.pool.FindServiceByName(parent)
            except KeyError:
                svc = None
            if svc is not None and leaf in svc.methods_by_name:
                return "method", svc.methods_by_name[leaf]
            try:
                enum = self.pool.FindEnumTypeByName(parent)
            except KeyError:
                enum = None
            if enum is not None and leaf in enum.values_by_name:
                return "enum value", enum.values_by_name[leaf]
            try:
                msg = self.pool.FindMessageTypeByName(parent)
            except KeyError:
                msg = None
            if msg is not None and leaf in msg.fields_by_name:
                return "field", msg.fields_by_name[leaf]
        return None

    def lookup(self, symbol):
        """(kind, descriptor), reflecting as needed; KeyError when unknown."""
        symbol = symbol.lstrip(".")
        found = self._find_any(symbol)
        if found is None:
            try:
                self.load_symbol(symbol)
            except ReflectionError as e:
                if e.code == grpc.StatusCode.NOT_FOUND.value[0]:
                    raise SymbolError(f"symbol not found: {symbol}") from e
                raise
            found = self._find_any(symbol)
        if found is None:
            raise SymbolError(f"symbol not found: {symbol}")
        return found

    def list_methods(self, service):
        """Full method names of `service`, in declaration order (grpcurl `list SERVICE`)."""
        kind, desc = self.lookup(service)
        if kind != "service":
            raise SymbolError(f"{service} is a {kind}, not a service")
        return [m.full_name for m in desc.methods]

    # --- describe -------------------------------------------------------------

    def service_proto(self, service):
        kind, desc = self.lookup(service)
        if kind != "service":
            raise SymbolError(f"{service} is a {kind}, not a service")
        proto = descriptor_pb2.ServiceDescriptorProto()
        desc.CopyToProto(proto)
        return proto

    def method(self, name):
        """MethodInfo for 'pkg.Service/Method' or 'pkg.Service.Method'."""
        name = name.lstrip("/")
        if "/" in name:
            service, leaf = name.split("/", 1)
        elif "." in name:
            service, leaf = name.rsplit(".", 1)
        else:
            raise SymbolError(f"{name!r} is not a fully-qualified method name")
        kind, svc = self.lookup(service)
        if kind != "service":
            raise SymbolError(f"{service} is a {kind}, not a service")
        if leaf not in svc.methods_by_name:
            raise SymbolError(f"service {service} has no method {leaf}")
        desc = svc.methods_by_name[leaf]
        proto = descriptor_pb2.MethodDescriptorProto()
        desc.CopyToProto(proto)
        return MethodInfo(desc, proto,
                          _message_class(desc.input_type, self._factory),
                          _message_class(desc.output_type, self._factory))

    def describe(self, symbol=None):
        """grpcurl `describe`: '<symbol> is a <kind>:' followed by its definition.

        Without a symbol, describes every service the server lists.
        """
        if symbol is None:
            return "\n".join(self.describe(s) for s in self.list_services())
        kind, desc = self.lookup(symbol)
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{desc.full_name} is {article} {kind}:\n{self._render(kind, desc)}\n"

    def _render(self, kind, desc):
        if kind == "service":
            proto = descriptor_pb2.ServiceDescriptorProto()
            desc.CopyToProto(proto)
            return render_service(proto)
        if kind == "method":
            proto = descriptor_pb2.MethodDescriptorProto()
            desc.CopyToProto(proto)
            return render_method(proto)
        if kind == "message":
            proto = descriptor_pb2.DescriptorProto()
            desc.CopyToProto(proto)
            return render_message(proto, self._syntax_of(desc))
        if kind == "enum":
            proto = descriptor_pb2.EnumDescriptorProto()
            desc.CopyToProto(proto)
            return render_enum(proto)
        if kind == "enum value":
            return f"{desc.name} = {desc.number};"
        if kind == "field":
            parent = descriptor_pb2.DescriptorProto()
            desc.containing_type.CopyToProto(parent)
            fp = next(f for f in parent.field if f.name == desc.name)
            return render_field(fp, parent, self._syntax_of(desc.containing_type)) + ";"
        raise SymbolError(kind)

    def _syntax_of(self, desc):
        fdp = self._files.get(desc.file.name)
        return (fdp.syntax if fdp is not None else "") or "proto2"

    # --- call -----------------------------------------------------------------

    def call(self, method, request_json="{}", headers=None, emit_defaults=False):
        """Invokes `method` with request(s) parsed from JSON; returns list of dicts.

        The request is JSON text, a dict, or a list of dicts. Unary methods take one JSON object and return a one-element list. For
        client streaming, pass several objects ('{..} {..}'); for server
        streaming, every response is returned. `headers` (when not None)
        replace the Inspector's headers for this RPC only.
        """
        info = self.method(method)
        return [_dict_of(m, emit_defaults) for m in self.invoke(info, request_json, headers)]

    def invoke(self, info, request_json="{}", headers=None):
        """Like call(), but returns the response messages themselves."""
        if isinstance(request_json, str):
            texts = split_json_stream(request_json)
        elif isinstance(request_json, dict):
            texts = [json.dumps(request_json)]
        else:  # a list of dicts, for client streaming
            texts = [json.dumps(r) for r in request_json]
        requests = []
        for text in texts:
            msg = info.request_class()
            json_format.Parse(text, msg)
            requests.append(msg)
        if not info.client_streaming and len(requests) != 1:
            raise ValueError(f"{info.full_name} takes exactly one request message, got {len(requests)}")
        metadata = self.metadata if headers is None else parse_headers(headers)
        kwargs = {"timeout": self.timeout, "metadata": metadata}
        ser, de = info.request_class.SerializeToString, info.response_class.FromString
        if info.client_streaming and info.server_streaming:
            rpc = self.channel.stream_stream(info.path, request_serializer=ser, response_deserializer=de)
            return list(rpc(iter(requests), **kwargs))
        if info.client_streaming:
            rpc = self.channel.stream_unary(info.path, request_serializer=ser, response_deserializer=de)
            return [rpc(iter(requests), **kwargs)]
        if info.server_streaming:
            rpc = self.channel.unary_stream(info.path, request_serializer=ser, response_deserializer=de)
            return list(rpc(requests[0], **kwargs))
        rpc = self.channel.unary_unary(info.path, request_serializer=ser, response_deserializer=de)
        return [rpc(requests[0], **kwargs)]


# --- .proto-style rendering (the shape grpcurl's describe prints) -------------

_SCALAR_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}


def _type_name(fp):
    return _SCALAR_NAMES.get(fp.type) or fp.type_name


def render_method(mp, indent=""):
    req = ("stream " if mp.client_streaming else "") + mp.input_type
    resp = ("stream " if mp.server_streaming else "") + mp.output_type
    return f"{indent}rpc {mp.name} ( {req} ) returns ( {resp} );"


def render_service(sp):
    lines = [f"service {sp.name} {{"]
    lines += [render_method(m, "  ") for m in sp.method]
    lines.append("}")
    return "\n".join(lines)


def render_enum(ep, indent=""):
    lines = [f"{indent}enum {ep.name} {{"]
    lines += [f"{indent}  {v.name} = {v.number};" for v in ep.value]
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def render_field(fp, parent, syntax):
    F = descriptor_pb2.FieldDescriptorProto
    map_entry = None
    if fp.type == F.TYPE_MESSAGE and fp.label == F.LABEL_REPEATED:
        leaf = fp.type_name.rsplit(".", 1)[-1]
        for nested in parent.nested_type:
            if nested.name == leaf and nested.options.map_entry:
                map_entry = nested
    if map_entry is not None:
        key, value = map_entry.field[0], map_entry.field[1]
        return f"map<{_type_name(key)}, {_type_name(value)}> {fp.name} = {fp.number}"
    label = ""
    if fp.label == F.LABEL_REPEATED:
        label = "repeated "
    elif fp.label == F.LABEL_REQUIRED:
        label = "required "
    elif syntax == "proto2" or fp.proto3_optional:
        label = "optional "
    return f"{label}{_type_name(fp)} {fp.name} = {fp.number}"


def render_message(dp, syntax="proto3", indent=""):
    lines = [f"{indent}message {dp.name} {{"]
    inner = indent + "  "
    for nested in dp.nested_type:
        if not nested.options.map_entry:
            lines.append(render_message(nested, syntax, inner))
    for ep in dp.enum_type:
        lines.append(render_enum(ep, inner))
    emitted_oneofs = set()
    for fp in dp.field:
        real_oneof = fp.HasField("oneof_index") and not fp.proto3_optional
        if not real_oneof:
            lines.append(f"{inner}{render_field(fp, dp, syntax)};")
            continue
        if fp.oneof_index in emitted_oneofs:
            continue
        emitted_oneofs.add(fp.oneof_index)
        lines.append(f"{inner}oneof {dp.oneof_decl[fp.oneof_index].name} {{")
        for member in dp.field:
            if member.HasField("oneof_index") and member.oneof_index == fp.oneof_index:
                lines.append(f"{inner}  {render_field(member, dp, syntax)};")
        lines.append(f"{inner}}}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


# --- CLI ----------------------------------------------------------------------

def _print_rpc_error(err):
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    name = "".join(p.capitalize() for p in code.name.split("_"))
    print(f"ERROR:\n  Code: {name}\n  Message: {details}", file=sys.stderr)
    return 64 + code.value[0]  # grpcurl's exit status for a failed RPC


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="grpc_inspect.py",
        description="grpcurl-style list/describe/call over gRPC server reflection.",
        epilog="Verbs: list [SERVICE] | describe [SYMBOL] | call METHOD [JSON] | health [SERVICE] "
               "| METHOD (grpcurl style, request from -d).")
    ap.add_argument("-H", "--header", "-rpc-header", action="append", default=[],
                    help="'name: value' sent with every RPC (repeatable), e.g. "
                         "'authorization: Bearer TOKEN'")
    ap.add_argument("-token-file", "--token-file", default=None,
                    help="send 'authorization: Bearer <file contents>' (keeps the token off argv)")
    ap.add_argument("-expand-headers", "--expand-headers", action="store_true",
                    help="expand ${NAME} in -H values from the environment (as grpcurl does)")
    ap.add_argument("-d", "--data", "-data", default=None,
                    help="request JSON ('@' reads stdin); several objects for client streaming")
    ap.add_argument("-unix", "--unix", action="store_true", help="the target is a unix socket path")
    ap.add_argument("-plaintext", "--plaintext", action="store_true",
                    help="accepted for grpcurl compatibility (always plaintext)")
    ap.add_argument("-emit-defaults", "--emit-defaults", action="store_true",
                    help="print fields that hold their default value")
    ap.add_argument("-max-time", "--max-time", type=float, default=DEFAULT_TIMEOUT_S,
                    help="seconds per RPC (default %(default)s)")
    ap.add_argument("target", help="unix:/path/x.sock, 127.0.0.1:PORT, or a path with -unix")
    ap.add_argument("verb", nargs="?", default="list")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args(argv)

    target = normalize_target(a.target, a.unix)
    if a.expand_headers:
        a.header = [re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), h)
                    for h in a.header]
    if a.token_file:
        with open(a.token_file) as f:
            a.header.append("authorization: Bearer " + f.read().strip())
    try:
        if a.verb == "health":
            print(health_check(target, a.args[0] if a.args else "", a.header, a.max_time))
            return 0
        with Inspector(target, a.header, a.max_time) as insp:
            if a.verb == "list":
                names = insp.list_methods(a.args[0]) if a.args else insp.list_services()
                print("\n".join(names))
                return 0
            if a.verb == "describe":
                symbols = a.args or [None]
                for s in symbols:
                    print(insp.describe(s), end="")
                return 0
            if a.verb == "call":
                if not a.args:
                    ap.error("call needs METHOD")
                method, data = a.args[0], (a.args[1] if len(a.args) > 1 else a.data)
            else:  # grpcurl style: `grpcurl -d '{...}' ADDRESS pkg.Svc/Method`
                method, data = a.verb, a.data
            if data == "@":
                data = sys.stdin.read()
            info = insp.method(method)
            for resp in insp.invoke(info, data if data is not None else "{}"):
                print(_json_of(resp, a.emit_defaults))
            return 0
    except grpc.RpcError as e:
        return _print_rpc_error(e)
    except (ReflectionError, SymbolError, ValueError, json_format.ParseError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
