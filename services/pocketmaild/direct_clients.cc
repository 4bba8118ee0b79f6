#include "services/pocketmaild/direct_clients.h"

#include "absl/time/clock.h"

namespace pocketmail::pocketmaild {
namespace {

namespace ledgerpb = ::pocketmail::ledger::v1;
namespace routerpb = ::pocketmail::router::v1;
namespace injectorpb = ::pocketmail::injector::v1;

// A sync handler only reads its ServerContext for a deadline or cancellation
// (none of these do); a default one stands for "no deadline, not cancelled".
class DirectLedgerCalls : public fetcher::LedgerCalls {
 public:
  explicit DirectLedgerCalls(ledger::LedgerServiceImpl& service) : service_(service) {}

  grpc::Status Apply(const ledgerpb::ApplyRequest& request, ledgerpb::ApplyResponse* response) override {
    return Call(&Service::Apply, request, response);
  }
  grpc::Status Begin(const ledgerpb::BeginRequest& request, ledgerpb::BeginResponse* response) override {
    return Call(&Service::Begin, request, response);
  }
  grpc::Status Advance(const ledgerpb::AdvanceRequest& request, ledgerpb::AdvanceResponse* response) override {
    return Call(&Service::Advance, request, response);
  }
  grpc::Status AcquireLease(const ledgerpb::AcquireLeaseRequest& request,
                            ledgerpb::AcquireLeaseResponse* response) override {
    return Call(&Service::AcquireLease, request, response);
  }
  grpc::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& request,
                            ledgerpb::ReleaseLeaseResponse* response) override {
    return Call(&Service::ReleaseLease, request, response);
  }

 private:
  using Service = ledger::LedgerServiceImpl;

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (Service::*method)(grpc::ServerContext*, const Request*, Response*),
                    const Request& request, Response* response) {
    grpc::ServerContext ctx;
    return (service_.*method)(&ctx, &request, response);
  }

  Service& service_;
};

class DirectRouter : public fetcher::RouterClient {
 public:
  explicit DirectRouter(router::RouterServiceImpl& service) : service_(service) {}

  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    grpc::ServerContext ctx;
    routerpb::ResolveRequest request;
    request.set_address(address);
    routerpb::ResolveResponse response;
    grpc::Status s = service_.Resolve(&ctx, &request, &response);
    if (!s.ok()) return fetcher::FromGrpc(s);
    return response;
  }

 private:
  router::RouterServiceImpl& service_;
};

class DirectInjector : public fetcher::InjectorClient {
 public:
  explicit DirectInjector(injector::InjectorServiceImpl& service) : service_(service) {}

  fetcher::InjectResult Inject(const injectorpb::Envelope& envelope, absl::string_view body) override {
    // The same budget the gRPC client gives a call (pipeline_clients.cc).
    const absl::Time deadline = absl::Now() + absl::Seconds(120 + 10 * (body.size() >> 20));
    absl::StatusOr<injectorpb::InjectResponse> reply = service_.InjectBuffer(envelope, body, deadline);
    // The whole buffer is the service's from the start: always handed over.
    fetcher::InjectResult result;
    if (reply.ok()) {
      result.reply = *std::move(reply);
    } else {
      result.call = reply.status();
    }
    return result;
  }

  absl::StatusOr<injectorpb::ProbeResponse> Probe(const std::string& key, const std::string& mailbox) override {
    grpc::ServerContext ctx;
    injectorpb::ProbeRequest request;
    request.set_key(key);
    request.set_mailbox(mailbox);
    injectorpb::ProbeResponse response;
    grpc::Status s = service_.Probe(&ctx, &request, &response);
    if (!s.ok()) return fetcher::FromGrpc(s);
    return response;
  }

 private:
  injector::InjectorServiceImpl& service_;
};

}  // namespace

std::unique_ptr<fetcher::LedgerClient> DirectLedgerClient(ledger::LedgerServiceImpl& service) {
  return fetcher::MakeLedgerClient(std::make_unique<DirectLedgerCalls>(service));
}

std::unique_ptr<fetcher::RouterClient> DirectRouterClient(router::RouterServiceImpl& service) {
  return std::make_unique<DirectRouter>(service);
}

std::unique_ptr<fetcher::InjectorClient> DirectInjectorClient(injector::InjectorServiceImpl& service) {
  return std::make_unique<DirectInjector>(service);
}

}  // namespace pocketmail::pocketmaild
