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

grpc::Status FetcherService::Replay(grpc::ServerContext*, const v1::ReplayRequest* request,
                                    v1::ReplayResponse* response) {
  switch (request->target_case()) {
    case v1::ReplayRequest::kKey: {
      *response->add_outcomes() = replay_.ReplayOne(request->key());
      bool ok = response->outcomes(0).ok();
      response->set_replayed(ok ? 1 : 0);
      response->set_failed(ok ? 0 : 1);
      break;
    }
    case v1::ReplayRequest::kAllFailed:
      if (!request->all_failed()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "all_failed must be true");
      *response = replay_.ReplayAll();
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name a key or set all_failed");
  }
  if (response->replayed() > 0) scheduler_.Wake();  // deliver them now, not at the next tick
  return grpc::Status::OK;
}

}  // namespace pocketmail::fetcher
