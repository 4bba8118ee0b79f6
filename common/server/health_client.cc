#include "common/server/health_client.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/generic/generic_stub.h"

namespace pocketmail::server {

absl::StatusOr<Health> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& service, absl::Duration timeout,
                                   const std::string& bearer_token) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (!bearer_token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", bearer_token));
  grpc::health::v1::HealthCheckRequest health_request;
  health_request.set_service(service);
  std::string req = health_request.SerializeAsString();
  grpc::Slice slice(req);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("unreadable health reply");
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  grpc::health::v1::HealthCheckResponse reply;
  if (!reply.ParseFromString(bytes)) return absl::InternalError("unparsable health reply");
  return static_cast<Health>(reply.status());
}

absl::Status WaitUntilServing(const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout) {
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
