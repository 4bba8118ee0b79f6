#include "services/fetcher/fetcher_service.h"

namespace pocketmail::fetcher {

grpc::Status FetcherService::DrainNow(grpc::ServerContext*, const v1::DrainNowRequest* request,
                                      v1::DrainNowResponse* response) {
  *response->mutable_pass() = scheduler_.DrainNow(request->wait());
  return grpc::Status::OK;
}

grpc::Status FetcherService::Status(grpc::ServerContext*, const v1::StatusRequest*,
                                    v1::StatusResponse* response) {
  *response = scheduler_.Status();
  return grpc::Status::OK;
}

}  // namespace pocketmail::fetcher
