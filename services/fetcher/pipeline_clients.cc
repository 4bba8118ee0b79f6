#include "services/fetcher/pipeline_clients.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace pocketmail::fetcher {
namespace {

constexpr auto kControlDeadline = std::chrono::seconds(15);

void SetDeadline(grpc::ClientContext* ctx, std::chrono::milliseconds d) {
  ctx->set_deadline(std::chrono::system_clock::now() + d);
}

class GrpcLedgerClient : public LedgerClient {
 public:
  explicit GrpcLedgerClient(std::shared_ptr<grpc::Channel> ch) : stub_(ledgerpb::Ledger::NewStub(ch)) {}

  absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& request) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    ledgerpb::BeginResponse response;
    grpc::Status s = stub_->Begin(&ctx, request, &response);
    if (!s.ok()) return FromGrpc(s);
    return response;
  }

  absl::StatusOr<ledgerpb::Message> Advance(const ledgerpb::AdvanceRequest& request) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    ledgerpb::AdvanceResponse response;
    grpc::Status s = stub_->Advance(&ctx, request, &response);
    if (!s.ok()) return FromGrpc(s);
    return response.message();
  }

  absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& request) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    ledgerpb::AcquireLeaseResponse response;
    grpc::Status s = stub_->AcquireLease(&ctx, request, &response);
    if (!s.ok()) return FromGrpc(s);
    return response;
  }

  absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    ledgerpb::ReleaseLeaseResponse response;
    return FromGrpc(stub_->ReleaseLease(&ctx, request, &response));
  }

 private:
  std::unique_ptr<ledgerpb::Ledger::Stub> stub_;
};

class GrpcRouterClient : public RouterClient {
 public:
  explicit GrpcRouterClient(std::shared_ptr<grpc::Channel> ch) : stub_(routerpb::Router::NewStub(ch)) {}

  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    routerpb::ResolveRequest request;
    request.set_address(address);
    routerpb::ResolveResponse response;
    grpc::Status s = stub_->Resolve(&ctx, request, &response);
    if (!s.ok()) return FromGrpc(s);
    return response;
  }

 private:
  std::unique_ptr<routerpb::Router::Stub> stub_;
};

class GrpcInjectorClient : public InjectorClient {
 public:
  explicit GrpcInjectorClient(std::shared_ptr<grpc::Channel> ch)
      : stub_(injectorpb::Injector::NewStub(ch)) {}

  absl::StatusOr<injectorpb::InjectResponse> Inject(const injectorpb::Envelope& envelope,
                                                    absl::string_view body) override {
    grpc::ClientContext ctx;
    // A 25 MiB message over loopback takes well under a second; the budget
    // covers a slow Maddy (SQLite busy, fsync) without letting a hung peer
    // hold a worker forever.
    SetDeadline(&ctx, std::chrono::seconds(120) +
                          std::chrono::seconds(10 * (body.size() >> 20)));
    injectorpb::InjectResponse response;
    auto writer = stub_->Inject(&ctx, &response);
    injectorpb::InjectRequest first;
    *first.mutable_envelope() = envelope;
    bool ok = writer->Write(first);
    for (size_t off = 0; ok && off < body.size(); off += kChunkBytes) {
      injectorpb::InjectRequest chunk;
      chunk.set_chunk(std::string(body.substr(off, std::min(kChunkBytes, body.size() - off))));
      ok = writer->Write(chunk);
    }
    // The injector sends the final "." only after it has seen our half-close,
    // so if the stream broke before WritesDone went through, nothing can have
    // been delivered: that failure is plainly temporary, not ambiguous.
    const bool handed_over = ok && writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok() && !handed_over) {
      injectorpb::InjectResponse not_sent;
      not_sent.set_outcome(injectorpb::OUTCOME_CLASS_TEMPORARY);
      not_sent.set_stage(injectorpb::STAGE_CONNECT);
      not_sent.set_detail(absl::StrCat("injector unreachable before the message was handed over: ",
                                       s.error_message()));
      return not_sent;
    }
    if (!s.ok()) return FromGrpc(s);
    return response;
  }

  absl::StatusOr<injectorpb::ProbeResponse> Probe(const std::string& key,
                                                  const std::string& mailbox) override {
    grpc::ClientContext ctx;
    // IMAP SEARCH HEADER scans the whole folder; allow for a big INBOX.
    SetDeadline(&ctx, std::chrono::seconds(60));
    injectorpb::ProbeRequest request;
    request.set_key(key);
    request.set_mailbox(mailbox);
    injectorpb::ProbeResponse response;
    grpc::Status s = stub_->Probe(&ctx, request, &response);
    if (!s.ok()) return FromGrpc(s);
    return response;
  }

 private:
  std::unique_ptr<injectorpb::Injector::Stub> stub_;
};

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::unique_ptr<LedgerClient> MakeGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcLedgerClient>(std::move(channel));
}
std::unique_ptr<RouterClient> MakeGrpcRouterClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcRouterClient>(std::move(channel));
}
std::unique_ptr<InjectorClient> MakeGrpcInjectorClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcInjectorClient>(std::move(channel));
}

}  // namespace pocketmail::fetcher
