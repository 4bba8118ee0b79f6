#include "services/fetcher/fetcher_service.h"

#include <algorithm>

#include "common/server/grpc_status.h"
#include "services/fetcher/object_key.h"

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
      if (!request->all_failed())
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "all_failed must be true");
      *response = replay_.ReplayAll();
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name a key or set all_failed");
  }
  if (response->replayed() > 0) scheduler_.Wake();  // deliver them now, not at the next tick
  return grpc::Status::OK;
}

grpc::Status FetcherService::ListBucket(grpc::ServerContext* context,
                                        const v1::ListBucketRequest* request,
                                        v1::ListBucketResponse* response) {
  std::string prefix;
  switch (request->area()) {
    case v1::BUCKET_AREA_PENDING:
      prefix = std::string(kPendingPrefix);
      break;
    case v1::BUCKET_AREA_PROCESSED:
      prefix = std::string(kProcessedPrefix);
      break;
    case v1::BUCKET_AREA_FAILED:
      prefix = std::string(kFailedPrefix);
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "area must be pending, processed or failed");
  }
  int limit = request->limit() <= 0 ? 1000 : std::min(request->limit(), 10000);
  std::vector<s3::ObjectSummary> all;
  std::string token;
  do {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    auto page = store_.ListObjectsV2(prefix, token, 1000);
    if (!page.ok()) return server::ToGrpcStatus(page.status());
    for (auto& o : page->objects) all.push_back(std::move(o));
    token = page->truncated ? page->next_continuation_token : "";
  } while (!token.empty() && static_cast<int>(all.size()) <= limit * 4);
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.last_modified < b.last_modified; });
  response->set_truncated(static_cast<int>(all.size()) > limit || !token.empty());
  if (static_cast<int>(all.size()) > limit) all.resize(limit);
  for (const auto& o : all) {
    v1::BucketObject* out = response->add_objects();
    out->set_key(o.key);
    out->set_size_bytes(o.size);
    out->set_last_modified_ms(absl::ToUnixMillis(o.last_modified));
    if (request->with_metadata()) {
      auto head = store_.HeadObject(o.key);
      if (head.ok()) {
        out->set_recipient(head->metadata["to"]);
        out->set_reason(head->metadata["reason"]);
      }
    }
  }
  return grpc::Status::OK;
}

}  // namespace pocketmail::fetcher
