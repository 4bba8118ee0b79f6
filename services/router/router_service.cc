#include "services/router/router_service.h"

#include <string>

#include "common/log/log.h"
#include "common/server/grpc_status.h"

namespace pocketmail::router {
namespace {

// 0 (left out) while nothing was ever read, not a date in 292 million BC.
int64_t RefreshedMs(const MailboxListing& listing) {
  if (listing.refreshed == absl::InfinitePast()) return 0;
  return absl::ToUnixMillis(listing.refreshed);
}

}  // namespace

absl::StatusOr<v1::ResolveResponse> RouterCore::Resolve(const v1::ResolveRequest& request) {
  absl::StatusOr<Resolution> resolution = router_->Resolve(request.address());
  if (!resolution.ok()) {
    if (resolution.status().code() == absl::StatusCode::kUnavailable) {
      log::Warn("deferring a recipient", {{"address", request.address()},
                                          {"error", std::string(resolution.status().message())}});
    }
    return resolution.status();
  }
  v1::ResolveResponse response;
  response.set_mailbox(resolution->mailbox);
  response.set_rule(resolution->rule);
  response.set_explanation(resolution->explanation);
  response.set_list_stale(resolution->list_stale);
  log::Debug("resolved", {{"address", request.address()},
                          {"mailbox", resolution->mailbox},
                          {"rule", v1::Rule_Name(resolution->rule)}});
  return response;
}

absl::StatusOr<v1::ListMailboxesResponse> RouterCore::ListMailboxes(
    const v1::ListMailboxesRequest&) {
  absl::StatusOr<MailboxListing> listing = router_->ListMailboxes();
  if (!listing.ok()) return listing.status();
  v1::ListMailboxesResponse response;
  for (const std::string& mailbox : listing->mailboxes) response.add_mailboxes(mailbox);
  response.set_source(listing->source);
  response.set_refreshed_ms(RefreshedMs(*listing));
  response.set_last_error(listing->last_error);
  response.set_version(listing->version);
  return response;
}

absl::StatusOr<v1::RefreshResponse> RouterCore::Refresh(const v1::RefreshRequest&) {
  absl::StatusOr<MailboxListing> listing = router_->RefreshNow();
  if (!listing.ok()) {
    log::Warn("refresh on request failed; keeping the last good list",
              {{"error", std::string(listing.status().message())}});
    return listing.status();
  }
  v1::RefreshResponse response;
  response.set_mailbox_count(static_cast<int64_t>(listing->mailboxes.size()));
  response.set_version(listing->version);
  response.set_refreshed_ms(RefreshedMs(*listing));
  response.set_source(listing->source);
  log::Info("account list refreshed on request",
            {{"mailboxes", static_cast<long long>(listing->mailboxes.size())},
             {"version", listing->version}});
  return response;
}

grpc::Status RouterServiceImpl::Resolve(grpc::ServerContext*, const v1::ResolveRequest* request,
                                        v1::ResolveResponse* response) {
  return server::ToGrpcResponse(core_.Resolve(*request), response);
}

grpc::Status RouterServiceImpl::ListMailboxes(grpc::ServerContext*,
                                              const v1::ListMailboxesRequest* request,
                                              v1::ListMailboxesResponse* response) {
  return server::ToGrpcResponse(core_.ListMailboxes(*request), response);
}

grpc::Status RouterServiceImpl::Refresh(grpc::ServerContext*, const v1::RefreshRequest* request,
                                        v1::RefreshResponse* response) {
  return server::ToGrpcResponse(core_.Refresh(*request), response);
}

}  // namespace pocketmail::router
