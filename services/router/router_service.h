// The Router gRPC service (pocketmail.router.v1.Router) over a RecipientRouter.
// Thread-safe; the router is not owned and must outlive the service.
#ifndef POCKETMAIL_SERVICES_ROUTER_ROUTER_SERVICE_H_
#define POCKETMAIL_SERVICES_ROUTER_ROUTER_SERVICE_H_

#include "pocketmail/router/v1/router.grpc.pb.h"
#include "services/router/recipient_router.h"

namespace pocketmail::router {

class RouterServiceImpl final : public v1::Router::Service {
 public:
  explicit RouterServiceImpl(RecipientRouter* router) : router_(router) {}

  grpc::Status Resolve(grpc::ServerContext* context, const v1::ResolveRequest* request,
                       v1::ResolveResponse* response) override;
  grpc::Status ListMailboxes(grpc::ServerContext* context, const v1::ListMailboxesRequest* request,
                             v1::ListMailboxesResponse* response) override;
  grpc::Status Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                       v1::RefreshResponse* response) override;

 private:
  RecipientRouter* const router_;
};

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_ROUTER_SERVICE_H_
