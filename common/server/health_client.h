// A client for grpc.health.v1.Health/Check. Debian's gRPC ships no stub for
// it, so the call goes through the generic stub with the messages from
// health.proto (compiled in BUILD.bazel). Used by tests, the demo and
// pocketmailctl to wait for a service to come up.
#ifndef POCKETMAIL_COMMON_SERVER_HEALTH_CLIENT_H_
#define POCKETMAIL_COMMON_SERVER_HEALTH_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace pocketmail::server {

enum class Health { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// One Health/Check call for `service` ("" = the whole server).
absl::StatusOr<Health> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& service = "",
                                   absl::Duration timeout = absl::Seconds(2),
                                   const std::string& bearer_token = "");

// Polls until SERVING or `timeout`; returns the last error on timeout.
absl::Status WaitUntilServing(const std::shared_ptr<grpc::Channel>& channel,
                              absl::Duration timeout = absl::Seconds(10));

}  // namespace pocketmail::server

#endif  // POCKETMAIL_COMMON_SERVER_HEALTH_CLIENT_H_
