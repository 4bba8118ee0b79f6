// The Router service (pocketmail.router.v1.Router) over a RecipientRouter:
// its core, RouterCore, in plain absl::Status terms, and RouterServiceImpl,
// the gRPC service, a thin adapter over it. The combined binary
// (services/pocketmaild) calls the core directly.
// Thread-safe; the router is not owned and must outlive both.
#ifndef POCKETMAIL_SERVICES_ROUTER_ROUTER_SERVICE_H_
#define POCKETMAIL_SERVICES_ROUTER_ROUTER_SERVICE_H_

#include "absl/status/statusor.h"
#include "pocketmail/router/v1/router.grpc.pb.h"
#include "services/router/recipient_router.h"

namespace pocketmail::router {

// What each RPC does, with its log lines.
class RouterCore {
 public:
  explicit RouterCore(RecipientRouter* router) : router_(router) {}

  absl::StatusOr<v1::ResolveResponse> Resolve(const v1::ResolveRequest& request);
  absl::StatusOr<v1::ListMailboxesResponse> ListMailboxes(const v1::ListMailboxesRequest& request);
  absl::StatusOr<v1::RefreshResponse> Refresh(const v1::RefreshRequest& request);

 private:
  RecipientRouter* const router_;
};

class RouterServiceImpl final : public v1::Router::Service {
 public:
  explicit RouterServiceImpl(RecipientRouter* router) : core_(router) {}

  RouterCore& core() { return core_; }

  grpc::Status Resolve(grpc::ServerContext* context, const v1::ResolveRequest* request,
                       v1::ResolveResponse* response) override;
  grpc::Status ListMailboxes(grpc::ServerContext* context, const v1::ListMailboxesRequest* request,
                             v1::ListMailboxesResponse* response) override;
  grpc::Status Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                       v1::RefreshResponse* response) override;

 private:
  RouterCore core_;
};

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_ROUTER_SERVICE_H_
