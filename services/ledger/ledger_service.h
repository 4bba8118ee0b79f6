// The Ledger service (pocketmail.ledger.v1.Ledger) over a LedgerStore: its
// core, LedgerCore, in plain absl::Status terms, and LedgerServiceImpl, the
// gRPC service, a thin adapter over the core plus the WatchDeliveries stream.
// The combined binary (services/pocketmaild) calls the core directly.
//
// Requests are validated before they reach the store (INVALID_ARGUMENT):
// keys must be non-empty, at most 1024 bytes, valid UTF-8 without control
// characters; states must be known values; delivery paths in range; page sizes
// non-negative.
//
// WatchDeliveries replays deliveries with seq > since_seq (when since_seq > 0;
// 0 means "from now on"; a since_seq beyond the latest seq, e.g. from before
// the database was recreated, means "from now on" too), then streams new ones
// as they commit, filtered by
// mailbox, until the client cancels or Shutdown() is called. A stream never
// sleeps longer than `watch_poll` between checks, so it cannot hold up a
// server shutdown.
//
// Thread-safe. The store is not owned and must outlive the core and the service.
#ifndef POCKETMAIL_SERVICES_LEDGER_LEDGER_SERVICE_H_
#define POCKETMAIL_SERVICES_LEDGER_LEDGER_SERVICE_H_

#include <atomic>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "services/ledger/ledger_store.h"

namespace pocketmail::ledger {

inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr int kMaxApplyOps = 256;

struct LedgerServiceOptions {
  absl::Duration watch_poll = absl::Milliseconds(250);
  int watch_batch = 100;  // rows read per replay query
};

// What each unary RPC does. Store failures that are not the caller's fault
// are logged here.
class LedgerCore {
 public:
  explicit LedgerCore(LedgerStore* store) : store_(store) {}

  absl::StatusOr<v1::BeginResponse> Begin(const v1::BeginRequest& request);
  absl::StatusOr<v1::AdvanceResponse> Advance(const v1::AdvanceRequest& request);
  absl::StatusOr<v1::ApplyResponse> Apply(const v1::ApplyRequest& request);
  absl::StatusOr<v1::GetResponse> Get(const v1::GetRequest& request);
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request);
  absl::StatusOr<v1::StatsResponse> Stats(const v1::StatsRequest& request);
  absl::StatusOr<v1::AcquireLeaseResponse> AcquireLease(const v1::AcquireLeaseRequest& request);
  absl::Status ReleaseLease(const v1::ReleaseLeaseRequest& request);

 private:
  LedgerStore* const store_;
};

class LedgerServiceImpl final : public v1::Ledger::Service {
 public:
  explicit LedgerServiceImpl(LedgerStore* store, LedgerServiceOptions options = {});

  LedgerCore& core() { return core_; }

  grpc::Status Begin(grpc::ServerContext* context, const v1::BeginRequest* request,
                     v1::BeginResponse* response) override;
  grpc::Status Advance(grpc::ServerContext* context, const v1::AdvanceRequest* request,
                       v1::AdvanceResponse* response) override;
  grpc::Status Apply(grpc::ServerContext* context, const v1::ApplyRequest* request,
                     v1::ApplyResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListRequest* request,
                    v1::ListResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const v1::StatsRequest* request,
                     v1::StatsResponse* response) override;
  grpc::Status AcquireLease(grpc::ServerContext* context, const v1::AcquireLeaseRequest* request,
                            v1::AcquireLeaseResponse* response) override;
  grpc::Status ReleaseLease(grpc::ServerContext* context, const v1::ReleaseLeaseRequest* request,
                            v1::ReleaseLeaseResponse* response) override;
  grpc::Status WatchDeliveries(grpc::ServerContext* context,
                               const v1::WatchDeliveriesRequest* request,
                               grpc::ServerWriter<v1::DeliveryEvent>* writer) override;

  // Ends open WatchDeliveries streams (UNAVAILABLE) within one watch_poll.
  // Call before shutting the gRPC server down.
  void Shutdown();

 private:
  LedgerStore* const store_;
  LedgerCore core_;
  const LedgerServiceOptions options_;
  std::atomic<bool> shutting_down_{false};
};

// Request checks shared by Begin/Advance and Apply's ops. Exposed for tests.
absl::Status ValidateKey(const std::string& key);
absl::Status ValidateBegin(const v1::BeginRequest& request);
absl::Status ValidateAdvance(const v1::AdvanceRequest& request);

}  // namespace pocketmail::ledger

#endif  // POCKETMAIL_SERVICES_LEDGER_LEDGER_SERVICE_H_
