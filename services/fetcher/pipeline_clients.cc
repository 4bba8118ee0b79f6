#include "services/fetcher/pipeline_clients.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/server/grpc_status.h"

namespace pocketmail::fetcher {
namespace {

constexpr auto kControlDeadline = std::chrono::seconds(15);

void SetDeadline(grpc::ClientContext* ctx, std::chrono::milliseconds d) {
  ctx->set_deadline(std::chrono::system_clock::now() + d);
}

// The ledger's RPCs over gRPC, each with the control deadline.
class GrpcLedgerCalls : public LedgerCalls {
 public:
  explicit GrpcLedgerCalls(std::shared_ptr<grpc::Channel> ch)
      : stub_(ledgerpb::Ledger::NewStub(ch)) {}

  absl::StatusOr<ledgerpb::ApplyResponse> Apply(const ledgerpb::ApplyRequest& request) override {
    return Call(&Stub::Apply, request);
  }
  absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& request) override {
    return Call(&Stub::Begin, request);
  }
  absl::StatusOr<ledgerpb::AdvanceResponse> Advance(
      const ledgerpb::AdvanceRequest& request) override {
    return Call(&Stub::Advance, request);
  }
  absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& request) override {
    return Call(&Stub::AcquireLease, request);
  }
  absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request) override {
    return Call(&Stub::ReleaseLease, request).status();
  }

 private:
  using Stub = ledgerpb::Ledger::Stub;

  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                             Response*),
                                const Request& request) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    Response response;
    grpc::Status s = (stub_.get()->*method)(&ctx, request, &response);
    if (!s.ok()) return server::FromGrpcStatus(s);
    return response;
  }

  std::unique_ptr<Stub> stub_;
};

// Begin and Advance go through group commit: the workers' writes that queue
// up while one Apply is in flight go out together in the next one, so they
// share a round trip and a ledger commit (one fsync) instead of paying one
// each. Nobody waits for a batch to fill: a lone write is sent at once. Each
// caller still returns only once its own write is durable, so the saga's
// ordering (ledger first, then the side effect) is unchanged. A ledger that
// predates Apply answers UNIMPLEMENTED; then writes go one by one.
class BatchingLedgerClient : public LedgerClient {
 public:
  explicit BatchingLedgerClient(std::unique_ptr<LedgerCalls> calls) : calls_(std::move(calls)) {}

  absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& request) override {
    ledgerpb::WriteOp op;
    *op.mutable_begin() = request;
    absl::StatusOr<ledgerpb::WriteResult> result = Write(std::move(op));
    if (!result.ok()) return result.status();
    ledgerpb::BeginResponse response;
    *response.mutable_message() = std::move(*result->mutable_message());
    response.set_created(result->created());
    return response;
  }

  absl::StatusOr<ledgerpb::Message> Advance(const ledgerpb::AdvanceRequest& request) override {
    ledgerpb::WriteOp op;
    *op.mutable_advance() = request;
    absl::StatusOr<ledgerpb::WriteResult> result = Write(std::move(op));
    if (!result.ok()) return result.status();
    return std::move(*result->mutable_message());
  }

  absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& request) override {
    return calls_->AcquireLease(request);
  }

  absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request) override {
    return calls_->ReleaseLease(request);
  }

 private:
  static constexpr int kMaxBatch = 64;

  struct PendingWrite {
    ledgerpb::WriteOp op;
    absl::StatusOr<ledgerpb::WriteResult> result;
    bool done = false;
  };

  absl::StatusOr<ledgerpb::WriteResult> Write(ledgerpb::WriteOp op) {
    if (!use_apply_.load(std::memory_order_relaxed)) return WriteAlone(op);
    PendingWrite mine;
    mine.op = std::move(op);
    absl::MutexLock lock(&mu_);
    queue_.push_back(&mine);
    while (!mine.done) {
      if (sending_) {
        auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return mine.done || !sending_; };
        mu_.Await(absl::Condition(&settled));
        continue;
      }
      // Nobody is sending: this caller sends everything queued so far.
      sending_ = true;
      std::vector<PendingWrite*> batch;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      mu_.Unlock();
      SendBatch(batch);
      mu_.Lock();
      for (PendingWrite* w : batch) w->done = true;
      sending_ = false;
    }
    if (mine.result.status().code() == absl::StatusCode::kUnimplemented &&
        !use_apply_.load(std::memory_order_relaxed)) {
      return WriteAlone(mine.op);  // the ledger has no Apply: this one goes alone
    }
    return std::move(mine.result);
  }

  void SendBatch(const std::vector<PendingWrite*>& batch) {
    ledgerpb::ApplyRequest request;
    for (PendingWrite* w : batch) *request.add_ops() = w->op;
    absl::StatusOr<ledgerpb::ApplyResponse> response = calls_->Apply(request);
    if (absl::IsUnimplemented(response.status())) use_apply_.store(false);
    if (response.ok() && response->results_size() != request.ops_size()) {
      response = absl::InternalError("ledger Apply returned the wrong number of results");
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!response.ok()) {
        batch[i]->result = response.status();
        continue;
      }
      ledgerpb::WriteResult& r = *response->mutable_results(static_cast<int>(i));
      if (r.code() != 0) {
        batch[i]->result = absl::Status(static_cast<absl::StatusCode>(r.code()), r.error());
      } else {
        batch[i]->result = std::move(r);
      }
    }
  }

  absl::StatusOr<ledgerpb::WriteResult> WriteAlone(const ledgerpb::WriteOp& op) {
    ledgerpb::WriteResult result;
    if (op.has_begin()) {
      absl::StatusOr<ledgerpb::BeginResponse> response = calls_->Begin(op.begin());
      if (!response.ok()) return response.status();
      *result.mutable_message() = std::move(*response->mutable_message());
      result.set_created(response->created());
    } else {
      absl::StatusOr<ledgerpb::AdvanceResponse> response = calls_->Advance(op.advance());
      if (!response.ok()) return response.status();
      *result.mutable_message() = std::move(*response->mutable_message());
    }
    return result;
  }

  const std::unique_ptr<LedgerCalls> calls_;
  std::atomic<bool> use_apply_{true};
  absl::Mutex mu_;
  std::deque<PendingWrite*> queue_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
};

class GrpcRouterClient : public RouterClient {
 public:
  explicit GrpcRouterClient(std::shared_ptr<grpc::Channel> ch)
      : stub_(routerpb::Router::NewStub(ch)) {}

  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kControlDeadline);
    routerpb::ResolveRequest request;
    request.set_address(address);
    routerpb::ResolveResponse response;
    grpc::Status s = stub_->Resolve(&ctx, request, &response);
    if (!s.ok()) return server::FromGrpcStatus(s);
    return response;
  }

 private:
  std::unique_ptr<routerpb::Router::Stub> stub_;
};

class CachingRouterClient : public RouterClient {
 public:
  CachingRouterClient(std::unique_ptr<RouterClient> inner, absl::Duration ttl, Clock* clock)
      : inner_(std::move(inner)), ttl_(ttl), clock_(clock) {}

  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    if (ttl_ <= absl::ZeroDuration()) return inner_->Resolve(address);
    const absl::Time now = clock_->Now();
    {
      absl::MutexLock lock(&mu_);
      auto it = cache_.find(address);
      if (it != cache_.end() && now < it->second.expires) return it->second.response;
    }
    absl::StatusOr<routerpb::ResolveResponse> answer = inner_->Resolve(address);
    // A catch-all answer is the one a new mailbox changes: the gateway creates
    // an account and expects its mail at once, so it is never reused.
    if (answer.ok() && answer->rule() != routerpb::RULE_CATCH_ALL) {
      absl::MutexLock lock(&mu_);
      if (cache_.size() >= kMaxEntries) cache_.clear();  // bounded; a refill is cheap
      cache_[address] = Entry{*answer, now + ttl_};
    }
    return answer;
  }

 private:
  static constexpr size_t kMaxEntries = 1024;
  struct Entry {
    routerpb::ResolveResponse response;
    absl::Time expires;
  };
  const std::unique_ptr<RouterClient> inner_;
  const absl::Duration ttl_;
  Clock* const clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
};

class GrpcInjectorClient : public InjectorClient {
 public:
  explicit GrpcInjectorClient(std::shared_ptr<grpc::Channel> ch)
      : stub_(injectorpb::Injector::NewStub(ch)) {}

  InjectResult Inject(const injectorpb::Envelope& envelope, absl::string_view body) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::ToChronoMilliseconds(InjectCallBudget(body.size())));
    InjectResult result;
    // Each blocking stream op is a trip through gRPC's completion queue and
    // usually a thread wake-up. So the call's headers ride with the envelope
    // (corked), and the half-close with the last message (set_last_message): a
    // one-chunk message costs two writes instead of four.
    ctx.set_initial_metadata_corked(true);
    auto writer = stub_->Inject(&ctx, &result.reply);
    const size_t chunks = (body.size() + kChunkBytes - 1) / kChunkBytes;
    auto send = [&writer](const injectorpb::InjectRequest& request, bool last) {
      return writer->Write(request,
                           last ? grpc::WriteOptions().set_last_message() : grpc::WriteOptions());
    };
    injectorpb::InjectRequest first;
    *first.mutable_envelope() = envelope;
    bool ok = send(first, chunks == 0);
    for (size_t i = 0; ok && i < chunks; ++i) {
      const size_t off = i * kChunkBytes;
      injectorpb::InjectRequest chunk;
      chunk.set_chunk(std::string(body.substr(off, std::min(kChunkBytes, body.size() - off))));
      ok = send(chunk, i + 1 == chunks);
    }
    // The last write carries the half-close: the message was handed over
    // only if it went through.
    result.handed_over = ok;
    result.call = server::FromGrpcStatus(writer->Finish());
    if (!result.call.ok()) result.reply.Clear();
    return result;
  }

  absl::StatusOr<injectorpb::ProbeResponse> Probe(const std::string& key,
                                                  const std::string& mailbox) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::ToChronoMilliseconds(kProbeCallBudget));
    injectorpb::ProbeRequest request;
    request.set_key(key);
    request.set_mailbox(mailbox);
    injectorpb::ProbeResponse response;
    grpc::Status s = stub_->Probe(&ctx, request, &response);
    if (!s.ok()) return server::FromGrpcStatus(s);
    return response;
  }

 private:
  std::unique_ptr<injectorpb::Injector::Stub> stub_;
};

}  // namespace

std::unique_ptr<LedgerClient> MakeLedgerClient(std::unique_ptr<LedgerCalls> calls) {
  return std::make_unique<BatchingLedgerClient>(std::move(calls));
}

std::unique_ptr<LedgerClient> MakeGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel) {
  return MakeLedgerClient(std::make_unique<GrpcLedgerCalls>(std::move(channel)));
}
std::unique_ptr<RouterClient> MakeGrpcRouterClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcRouterClient>(std::move(channel));
}
std::unique_ptr<RouterClient> MakeCachingRouterClient(std::unique_ptr<RouterClient> inner,
                                                      absl::Duration ttl, Clock* clock) {
  return std::make_unique<CachingRouterClient>(std::move(inner), ttl, clock);
}
std::unique_ptr<InjectorClient> MakeGrpcInjectorClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcInjectorClient>(std::move(channel));
}

}  // namespace pocketmail::fetcher
