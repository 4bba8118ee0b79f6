// The fetcher's view of the other three services. Each is a small interface
// in absl::Status terms, so the saga can be unit-tested with fakes; the
// production implementations are thin gRPC clients over the services' unix
// sockets (below), or direct calls into the services' cores when all run in
// one process (services/pocketmaild/direct_clients.h).
//
// Every gRPC call has a deadline. A gRPC failure comes back as an
// absl::Status with the same code, so UNAVAILABLE / DEADLINE_EXCEEDED mean
// "try again later".
#ifndef POCKETMAIL_SERVICES_FETCHER_PIPELINE_CLIENTS_H_
#define POCKETMAIL_SERVICES_FETCHER_PIPELINE_CLIENTS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "pocketmail/injector/v1/injector.grpc.pb.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "pocketmail/router/v1/router.grpc.pb.h"

namespace pocketmail::fetcher {

namespace ledgerpb = ::pocketmail::ledger::v1;
namespace routerpb = ::pocketmail::router::v1;
namespace injectorpb = ::pocketmail::injector::v1;

class LedgerClient {
 public:
  virtual ~LedgerClient() = default;
  virtual absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& request) = 0;
  virtual absl::StatusOr<ledgerpb::Message> Advance(const ledgerpb::AdvanceRequest& request) = 0;
  virtual absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& request) = 0;
  virtual absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request) = 0;
};

class RouterClient {
 public:
  virtual ~RouterClient() = default;
  virtual absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) = 0;
};

// One Inject call as the fetcher saw it: the injector's answer, or how the
// call failed. What that means for the message is decided in outcome.h.
struct InjectResult {
  absl::Status call;                 // OK: the injector answered with `reply`
  injectorpb::InjectResponse reply;  // the SMTP outcome, when `call` is OK
  // For a failed call: whether the whole message and its end reached the
  // injector (only then can it have been delivered).
  bool handed_over = true;
};

// How long one call may take, whichever way the fetcher reaches the
// injector. A 25 MiB message over loopback takes well under a second; the
// budget covers a slow Maddy (SQLite busy, fsync) without letting a hung peer
// hold a worker forever. IMAP SEARCH HEADER scans the whole folder, so the
// probe allows for a big INBOX.
inline absl::Duration InjectCallBudget(size_t body_bytes) {
  return absl::Seconds(120 + 10 * static_cast<int64_t>(body_bytes >> 20));
}
constexpr absl::Duration kProbeCallBudget = absl::Seconds(60);

class InjectorClient {
 public:
  virtual ~InjectorClient() = default;
  // Streams `body` in chunks of at most `kChunkBytes`.
  virtual InjectResult Inject(const injectorpb::Envelope& envelope, absl::string_view body) = 0;
  // Is the message carrying trace header `key` already in `mailbox`?
  virtual absl::StatusOr<injectorpb::ProbeResponse> Probe(const std::string& key,
                                                          const std::string& mailbox) = 0;
  static constexpr size_t kChunkBytes = 1 << 20;
};

// How a ledger client reaches the ledger, one method per RPC it makes: gRPC
// over the ledger's socket, or direct calls into the ledger's core
// (ledger::LedgerCore) when both run in one process (services/pocketmaild).
class LedgerCalls {
 public:
  virtual ~LedgerCalls() = default;
  virtual absl::StatusOr<ledgerpb::ApplyResponse> Apply(const ledgerpb::ApplyRequest& request) = 0;
  virtual absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& request) = 0;
  virtual absl::StatusOr<ledgerpb::AdvanceResponse> Advance(
      const ledgerpb::AdvanceRequest& request) = 0;
  virtual absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& request) = 0;
  virtual absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request) = 0;
};

// Group commit over `calls`: Begin/Advance calls that arrive while an Apply
// is in flight go out together in the next one, each caller getting its own
// result. A ledger without Apply (UNIMPLEMENTED) gets single calls.
std::unique_ptr<LedgerClient> MakeLedgerClient(std::unique_ptr<LedgerCalls> calls);
// MakeLedgerClient over gRPC on `channel`.
std::unique_ptr<LedgerClient> MakeGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel);
std::unique_ptr<RouterClient> MakeGrpcRouterClient(std::shared_ptr<grpc::Channel> channel);
// Reuses a successful answer for the same address for `ttl` (errors are never
// cached). A backlog is mostly a few recipients, and each answer would
// otherwise cost a round trip per message. The router's own account list is
// refreshed every few minutes, so a few seconds here add no real staleness;
// a mailbox that vanished meanwhile is refused by Maddy at RCPT. ttl 0 turns
// the cache off. Thread-safe; answers expire on `clock` (not owned).
std::unique_ptr<RouterClient> MakeCachingRouterClient(std::unique_ptr<RouterClient> inner,
                                                      absl::Duration ttl,
                                                      Clock* clock = RealClock::Get());
std::unique_ptr<InjectorClient> MakeGrpcInjectorClient(std::shared_ptr<grpc::Channel> channel);

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_PIPELINE_CLIENTS_H_
