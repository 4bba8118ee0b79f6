#include "common/server/health_service.h"

#include <algorithm>

#include "absl/time/time.h"

namespace pocketmail::server {
namespace {

using grpc::health::v1::HealthCheckResponse;

// A Watch stream wakes this often only to notice that its client has gone
// (the sync API has no cancellation callback); it costs nothing when no
// stream is open.
constexpr absl::Duration kWatchCancelCheck = absl::Seconds(5);

HealthCheckResponse::ServingStatus StatusOf(bool serving) {
  return serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

}  // namespace

HealthService::HealthService(std::vector<std::string> service_names)
    : names_(std::move(service_names)) {}

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (serving_ == serving) return;
  serving_ = serving;
  ++generation_;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  serving_ = false;
  ++generation_;
}

bool HealthService::Knows(const std::string& name) const {
  return name.empty() || std::find(names_.begin(), names_.end(), name) != names_.end();
}

grpc::Status HealthService::Check(grpc::ServerContext*,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  if (!Knows(request->service()))
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
  absl::MutexLock lock(&mu_);
  response->set_status(StatusOf(serving_));
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  const bool known = Knows(request->service());
  int seen = -1;
  while (!context->IsCancelled()) {
    HealthCheckResponse response;
    {
      absl::MutexLock lock(&mu_);
      auto changed = [this, &seen]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return generation_ != seen; };
      mu_.AwaitWithTimeout(absl::Condition(&changed), kWatchCancelCheck);
      if (seen == generation_) continue;  // timed out: only look at the client again
      seen = generation_;
      if (shutdown_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
      // The protocol: an unknown service is SERVICE_UNKNOWN on a watch, not an error.
      response.set_status(known ? StatusOf(serving_) : HealthCheckResponse::SERVICE_UNKNOWN);
    }
    if (!writer->Write(response)) break;
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch ended");
}

}  // namespace pocketmail::server
