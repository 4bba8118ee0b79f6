#include "services/ledger/ledger_service.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/mail/utf8.h"
#include "common/server/grpc_status.h"
#include "services/ledger/state_machine.h"

namespace pocketmail::ledger {
namespace {

constexpr size_t kMaxMailboxBytes = 512;

using server::ToGrpcResponse;
using server::ToGrpcStatus;

absl::Status ValidateMailboxFilter(const std::string& mailbox) {
  if (mailbox.size() > kMaxMailboxBytes || !mail::IsValidUtf8(mailbox)) {
    return absl::InvalidArgumentError("mailbox filter is not a valid mailbox name");
  }
  return absl::OkStatus();
}

// Logs store failures that are not the caller's fault; those are the ones an
// operator needs to see (disk full, database busy, corruption).
absl::Status Reply(const absl::Status& status, const char* method) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      break;
    default:
      log::Warn("store call failed", {{"method", method},
                                      {"code", absl::StatusCodeToString(status.code())},
                                      {"error", std::string(status.message())}});
  }
  return status;
}

}  // namespace

absl::Status ValidateKey(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("key is longer than ", kMaxKeyBytes, " bytes"));
  }
  for (char c : key) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F)
      return absl::InvalidArgumentError("key contains a control character");
  }
  if (!mail::IsValidUtf8(key)) return absl::InvalidArgumentError("key is not valid UTF-8");
  return absl::OkStatus();
}

absl::Status ValidateBegin(const v1::BeginRequest& request) {
  if (absl::Status st = ValidateKey(request.key()); !st.ok()) return st;
  if (request.size_bytes() < 0) return absl::InvalidArgumentError("size_bytes is negative");
  return absl::OkStatus();
}

absl::Status ValidateAdvance(const v1::AdvanceRequest& request) {
  if (absl::Status st = ValidateKey(request.key()); !st.ok()) return st;
  if (!IsKnownState(request.from_state()) || !IsKnownState(request.to_state())) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_state and to_state must be known states; got ",
                     StateName(request.from_state()), " → ", StateName(request.to_state())));
  }
  if (!v1::DeliveryPath_IsValid(request.delivery_path())) {
    return absl::InvalidArgumentError("unknown delivery_path");
  }
  if (request.mailbox().size() > kMaxMailboxBytes) {
    return absl::InvalidArgumentError("mailbox is too long");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::BeginResponse> LedgerCore::Begin(const v1::BeginRequest& request) {
  if (absl::Status st = ValidateBegin(request); !st.ok()) return st;
  absl::StatusOr<LedgerStore::BeginResult> result = store_->Begin(request);
  if (!result.ok()) return Reply(result.status(), "Begin");
  v1::BeginResponse response;
  *response.mutable_message() = std::move(result->message);
  response.set_created(result->created);
  return response;
}

absl::StatusOr<v1::AdvanceResponse> LedgerCore::Advance(const v1::AdvanceRequest& request) {
  if (absl::Status st = ValidateAdvance(request); !st.ok()) return st;
  absl::StatusOr<v1::Message> message = store_->Advance(request);
  if (!message.ok()) return Reply(message.status(), "Advance");
  v1::AdvanceResponse response;
  *response.mutable_message() = *std::move(message);
  return response;
}

absl::StatusOr<v1::ApplyResponse> LedgerCore::Apply(const v1::ApplyRequest& request) {
  if (request.ops_size() > kMaxApplyOps) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxApplyOps, " ops per Apply; got ", request.ops_size()));
  }
  // Ops that fail validation get their error here and never reach the store;
  // the rest go in one batch, and their results are put back in order.
  v1::ApplyResponse response;
  v1::ApplyRequest valid;
  std::vector<int> valid_index;
  for (int i = 0; i < request.ops_size(); ++i) {
    const v1::WriteOp& op = request.ops(i);
    v1::WriteResult* result = response.add_results();
    absl::Status st = op.has_begin()     ? ValidateBegin(op.begin())
                      : op.has_advance() ? ValidateAdvance(op.advance())
                                         : absl::InvalidArgumentError("empty write op");
    if (!st.ok()) {
      result->set_code(static_cast<int>(st.code()));
      result->set_error(std::string(st.message()));
      continue;
    }
    *valid.add_ops() = op;
    valid_index.push_back(i);
  }
  if (valid.ops_size() == 0) return response;
  absl::StatusOr<v1::ApplyResponse> applied = store_->Apply(valid);
  if (!applied.ok()) return Reply(applied.status(), "Apply");
  for (size_t j = 0; j < valid_index.size(); ++j) {
    const v1::WriteResult& result = applied->results(static_cast<int>(j));
    if (result.code() != 0) (void)Reply(WriteResultStatus(result), "Apply");
    *response.mutable_results(valid_index[j]) = result;
  }
  return response;
}

absl::StatusOr<v1::GetResponse> LedgerCore::Get(const v1::GetRequest& request) {
  if (absl::Status st = ValidateKey(request.key()); !st.ok()) return st;
  absl::StatusOr<v1::Message> message = store_->Get(request.key());
  if (!message.ok()) return Reply(message.status(), "Get");
  v1::GetResponse response;
  *response.mutable_message() = *std::move(message);
  return response;
}

absl::StatusOr<v1::ListResponse> LedgerCore::List(const v1::ListRequest& request) {
  if (absl::Status st = ValidateMailboxFilter(request.mailbox()); !st.ok()) return st;
  if (request.since_ms() < 0 || request.until_ms() < 0) {
    return absl::InvalidArgumentError("since_ms and until_ms must not be negative");
  }
  // The store validates states, page size and the page token.
  absl::StatusOr<v1::ListResponse> result = store_->List(request);
  if (!result.ok()) return Reply(result.status(), "List");
  return result;
}

absl::StatusOr<v1::StatsResponse> LedgerCore::Stats(const v1::StatsRequest& request) {
  if (absl::Status st = ValidateMailboxFilter(request.mailbox()); !st.ok()) return st;
  absl::StatusOr<v1::StatsResponse> result = store_->Stats(request.mailbox());
  if (!result.ok()) return Reply(result.status(), "Stats");
  return result;
}

absl::StatusOr<v1::AcquireLeaseResponse> LedgerCore::AcquireLease(
    const v1::AcquireLeaseRequest& request) {
  absl::StatusOr<v1::AcquireLeaseResponse> result = store_->AcquireLease(request);
  if (!result.ok()) return Reply(result.status(), "AcquireLease");
  return result;
}

absl::Status LedgerCore::ReleaseLease(const v1::ReleaseLeaseRequest& request) {
  return store_->ReleaseLease(request.name(), request.holder());
}

LedgerServiceImpl::LedgerServiceImpl(LedgerStore* store, LedgerServiceOptions options)
    : store_(store), core_(store), options_(options) {}

void LedgerServiceImpl::Shutdown() { shutting_down_ = true; }

grpc::Status LedgerServiceImpl::Begin(grpc::ServerContext*, const v1::BeginRequest* request,
                                      v1::BeginResponse* response) {
  return ToGrpcResponse(core_.Begin(*request), response);
}

grpc::Status LedgerServiceImpl::Advance(grpc::ServerContext*, const v1::AdvanceRequest* request,
                                        v1::AdvanceResponse* response) {
  return ToGrpcResponse(core_.Advance(*request), response);
}

grpc::Status LedgerServiceImpl::Apply(grpc::ServerContext*, const v1::ApplyRequest* request,
                                      v1::ApplyResponse* response) {
  return ToGrpcResponse(core_.Apply(*request), response);
}

grpc::Status LedgerServiceImpl::Get(grpc::ServerContext*, const v1::GetRequest* request,
                                    v1::GetResponse* response) {
  return ToGrpcResponse(core_.Get(*request), response);
}

grpc::Status LedgerServiceImpl::List(grpc::ServerContext*, const v1::ListRequest* request,
                                     v1::ListResponse* response) {
  return ToGrpcResponse(core_.List(*request), response);
}

grpc::Status LedgerServiceImpl::Stats(grpc::ServerContext*, const v1::StatsRequest* request,
                                      v1::StatsResponse* response) {
  return ToGrpcResponse(core_.Stats(*request), response);
}

grpc::Status LedgerServiceImpl::AcquireLease(grpc::ServerContext*,
                                             const v1::AcquireLeaseRequest* request,
                                             v1::AcquireLeaseResponse* response) {
  return ToGrpcResponse(core_.AcquireLease(*request), response);
}

grpc::Status LedgerServiceImpl::ReleaseLease(grpc::ServerContext*,
                                             const v1::ReleaseLeaseRequest* request,
                                             v1::ReleaseLeaseResponse*) {
  return ToGrpcStatus(core_.ReleaseLease(*request));
}

grpc::Status LedgerServiceImpl::WatchDeliveries(grpc::ServerContext* context,
                                                const v1::WatchDeliveriesRequest* request,
                                                grpc::ServerWriter<v1::DeliveryEvent>* writer) {
  if (absl::Status st = ValidateMailboxFilter(request->mailbox()); !st.ok())
    return ToGrpcStatus(st);
  if (request->since_seq() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("since_seq must not be negative"));
  }
  // Everything with seq <= cursor has been sent (or filtered out). A since_seq
  // beyond the latest (the client saw a previous ledger.db) is clamped, so new
  // deliveries still reach it.
  const int64_t latest_at_start = store_->LatestDeliverySeq();
  int64_t cursor =
      request->since_seq() > 0 ? std::min(request->since_seq(), latest_at_start) : latest_at_start;
  const int batch = std::max(1, options_.watch_batch);
  while (true) {
    if (context->IsCancelled())
      return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    if (shutting_down_)
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "ledger is shutting down");
    const int64_t latest = store_->LatestDeliverySeq();
    if (latest <= cursor) {
      store_->WaitForDeliveryAfter(cursor, options_.watch_poll);
      continue;
    }
    absl::StatusOr<std::vector<v1::Message>> rows =
        store_->DeliveriesAfter(cursor, request->mailbox(), batch);
    if (!rows.ok()) return ToGrpcStatus(Reply(rows.status(), "WatchDeliveries"));
    for (v1::Message& row : *rows) {
      v1::DeliveryEvent event;
      *event.mutable_message() = std::move(row);
      const int64_t seq = event.message().seq();
      if (!writer->Write(event)) return grpc::Status(grpc::StatusCode::CANCELLED, "stream closed");
      cursor = seq;
    }
    // A short batch means every match up to `latest` (read before the query)
    // has been sent; deliveries after it carry larger seqs.
    if (static_cast<int>(rows->size()) < batch) cursor = std::max(cursor, latest);
  }
}

}  // namespace pocketmail::ledger
