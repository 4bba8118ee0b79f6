#include "services/pocketmaild/direct_clients.h"

#include "absl/time/clock.h"

namespace pocketmail::pocketmaild {
namespace {

namespace ledgerpb = ::pocketmail::ledger::v1;
namespace routerpb = ::pocketmail::router::v1;
namespace injectorpb = ::pocketmail::injector::v1;

class DirectLedgerCalls : public fetcher::LedgerCalls {
 public:
  explicit DirectLedgerCalls(ledger::LedgerCore& core) : core_(core) {}

  absl::StatusOr<ledgerpb::ApplyResponse> Apply(const ledgerpb::ApplyRequest& request) override {
    return core_.Apply(request);
  }
  absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& request) override {
    return core_.Begin(request);
  }
  absl::StatusOr<ledgerpb::AdvanceResponse> Advance(
      const ledgerpb::AdvanceRequest& request) override {
    return core_.Advance(request);
  }
  absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& request) override {
    return core_.AcquireLease(request);
  }
  absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request) override {
    return core_.ReleaseLease(request);
  }

 private:
  ledger::LedgerCore& core_;
};

class DirectRouter : public fetcher::RouterClient {
 public:
  explicit DirectRouter(router::RouterCore& core) : core_(core) {}

  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    routerpb::ResolveRequest request;
    request.set_address(address);
    return core_.Resolve(request);
  }

 private:
  router::RouterCore& core_;
};

class DirectInjector : public fetcher::InjectorClient {
 public:
  explicit DirectInjector(injector::InjectorCore& core) : core_(core) {}

  fetcher::InjectResult Inject(const injectorpb::Envelope& envelope,
                               absl::string_view body) override {
    const absl::Time deadline = absl::Now() + fetcher::InjectCallBudget(body.size());
    absl::StatusOr<injectorpb::InjectResponse> reply = core_.Inject(envelope, body, deadline);
    // The whole buffer is the core's from the start: always handed over.
    fetcher::InjectResult result;
    if (reply.ok()) {
      result.reply = *std::move(reply);
    } else {
      result.call = reply.status();
    }
    return result;
  }

  absl::StatusOr<injectorpb::ProbeResponse> Probe(const std::string& key,
                                                  const std::string& mailbox) override {
    injectorpb::ProbeRequest request;
    request.set_key(key);
    request.set_mailbox(mailbox);
    // The gRPC client's deadline: a hung IMAP server must not hold a worker.
    return core_.Probe(request, absl::Now() + fetcher::kProbeCallBudget);
  }

 private:
  injector::InjectorCore& core_;
};

}  // namespace

std::unique_ptr<fetcher::LedgerClient> DirectLedgerClient(ledger::LedgerCore& core) {
  return fetcher::MakeLedgerClient(std::make_unique<DirectLedgerCalls>(core));
}

std::unique_ptr<fetcher::RouterClient> DirectRouterClient(router::RouterCore& core) {
  return std::make_unique<DirectRouter>(core);
}

std::unique_ptr<fetcher::InjectorClient> DirectInjectorClient(injector::InjectorCore& core) {
  return std::make_unique<DirectInjector>(core);
}

}  // namespace pocketmail::pocketmaild
