#include "common/server/health_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/grpc_status.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace pocketmail::server {

absl::StatusOr<Health> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& service, absl::Duration timeout,
                                   const std::string& bearer_token) {
  // The sync stub: a callback-API call would start gRPC's "nexting" threads
  // in the caller's process (see health_service.h).
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (!bearer_token.empty())
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", bearer_token));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse reply;
  grpc::Status status = stub->Check(&ctx, request, &reply);
  if (!status.ok()) return FromGrpcStatus(status);
  return static_cast<Health>(reply.status());
}

absl::Status WaitUntilServing(const std::shared_ptr<grpc::Channel>& channel,
                              absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::DeadlineExceededError("not serving yet");
  while (absl::Now() < deadline) {
    auto h = CheckHealth(channel, "", absl::Milliseconds(500));
    if (h.ok() && *h == Health::kServing) return absl::OkStatus();
    if (!h.ok()) last = h.status();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("service not SERVING in time: ", last.message()));
}

}  // namespace pocketmail::server
