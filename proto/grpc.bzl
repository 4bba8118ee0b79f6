"""cc_grpc_contract: protoc + grpc_cpp_plugin over one .proto, then a cc_library."""

def cc_grpc_contract(name, proto):
    base = proto[:-len(".proto")]
    outs = [base + ext for ext in [".pb.h", ".pb.cc", ".grpc.pb.h", ".grpc.pb.cc"]]
    native.genrule(
        name = name + "_codegen",
        srcs = [proto],
        outs = outs,
        cmd = ("/usr/bin/protoc -Iproto --cpp_out=$(GENDIR)/proto --grpc_out=$(GENDIR)/proto " +
               "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin $(location %s)") % proto,
    )
    native.cc_library(
        name = name + "_cc_grpc",
        srcs = [base + ".pb.cc", base + ".grpc.pb.cc"],
        hdrs = [base + ".pb.h", base + ".grpc.pb.h"],
        includes = ["."],
        deps = ["@system_libs//:grpc++"],
    )
