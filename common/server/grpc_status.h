// absl::Status <-> grpc::Status (and a call's deadline): our code speaks
// absl::Status and absl::Time, and only the gRPC adapters (services'
// *_service.cc, the fetcher's clients) convert.
// absl and gRPC share the canonical code numbering (google.rpc.Code), so the
// code and the message carry over unchanged.
#ifndef POCKETMAIL_COMMON_SERVER_GRPC_STATUS_H_
#define POCKETMAIL_COMMON_SERVER_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace pocketmail::server {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// The caller's deadline, or InfiniteFuture when it set none.
inline absl::Time DeadlineOf(const grpc::ServerContext& context) {
  if (context.deadline() == std::chrono::system_clock::time_point::max())
    return absl::InfiniteFuture();
  return absl::FromChrono(context.deadline());
}

// A gRPC handler's tail: on success moves the value into *response.
template <typename T>
grpc::Status ToGrpcResponse(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace pocketmail::server

#endif  // POCKETMAIL_COMMON_SERVER_GRPC_STATUS_H_
