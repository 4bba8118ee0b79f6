#include "common/server/health_client.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"

namespace pocketmail::server {
namespace {

// HealthCheckRequest { string service = 1; }
std::string EncodeRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0a);
  // Service names are short; a one-byte length suffices (refuse longer).
  out.push_back(static_cast<char>(service.size()));
  out += service;
  return out;
}

}  // namespace

absl::StatusOr<Health> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& service, absl::Duration timeout,
                                   const std::string& bearer_token) {
  if (service.size() > 127) return absl::InvalidArgumentError("service name too long");
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (!bearer_token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", bearer_token));
  std::string req = EncodeRequest(service);
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
  // HealthCheckResponse { ServingStatus status = 1; } — absent means UNKNOWN (0).
  if (bytes.size() >= 2 && bytes[0] == 0x08) return static_cast<Health>(bytes[1]);
  return Health::kUnknown;
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
