#include "services/injector/injector_service.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/imap/response.h"
#include "common/log/log.h"
#include "common/mail/utf8.h"
#include "common/server/grpc_status.h"
#include "common/smtp/address.h"

namespace pocketmail::injector {

// Where the body comes from: the rest of a gRPC stream, or (in the combined
// binary) a buffer. next() points `piece` at the next bytes (valid until the
// following call) and answers false at the end; an error means the caller
// broke the contract, and the message is abandoned.
struct BodySource {
  std::function<absl::StatusOr<bool>(absl::string_view* piece)> next;
  std::function<bool()> cancelled;
  absl::Time deadline = absl::InfiniteFuture();
};

namespace {

constexpr size_t kMaxDetailBytes = 512;

absl::Status ValidateEnvelope(const v1::Envelope& env) {
  if (absl::Status s = smtp::ValidateTraceKey(env.key()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("envelope.key: ", s.message()));
  }
  if (absl::Status s = smtp::ValidateEnvelopeAddress(env.mail_from(), /*allow_empty=*/true);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("envelope.mail_from: ", s.message()));
  }
  if (absl::Status s = smtp::ValidateEnvelopeAddress(env.rcpt_to(), /*allow_empty=*/false);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("envelope.rcpt_to: ", s.message()));
  }
  if (env.size_bytes() < 0) return absl::InvalidArgumentError("envelope.size_bytes is negative");
  return absl::OkStatus();
}

smtp::DeliveryResult NoSession(const absl::Status& why) {
  smtp::DeliveryResult r;
  r.outcome = smtp::Outcome::kTemporary;
  r.stage = smtp::Stage::kConnect;
  r.detail = std::string(why.message());
  return r;
}

// Sends one message in one SMTP transaction. Returns the SMTP outcome, or an
// error when the caller broke the contract (then the message was abandoned
// before its final ".").
absl::StatusOr<smtp::DeliveryResult> SendMessage(smtp::SessionPool* pool,
                                                 const InjectorOptions& options,
                                                 const BodySource& body, const v1::Envelope& env,
                                                 int64_t* received) {
  const std::string trace_header = absl::StrCat("X-Pocketmail-Key: ", env.key(), "\r\n");
  smtp::Envelope envelope;
  envelope.mail_from = env.mail_from();
  envelope.rcpt_to = env.rcpt_to();
  envelope.size_hint = static_cast<uint64_t>(env.size_bytes()) + trace_header.size();

  absl::StatusOr<smtp::SessionPool::Lease> lease =
      pool->Acquire(std::min(options.clock->Now() + options.session_wait, body.deadline));
  if (!lease.ok()) return NoSession(lease.status());
  smtp::SmtpSession& session = **lease;

  if (auto failed = session.BeginMessage(envelope)) return *failed;
  if (auto failed = session.SendBody(trace_header)) return *failed;
  absl::string_view piece;
  while (true) {
    absl::StatusOr<bool> more = body.next(&piece);
    absl::Status broken = more.status();
    if (more.ok() && !*more) break;
    if (broken.ok() && *received + static_cast<int64_t>(piece.size()) > env.size_bytes()) {
      broken = absl::InvalidArgumentError("more bytes than envelope.size_bytes");
    }
    if (!broken.ok()) {
      session.AbortMessage();
      return broken;
    }
    *received += piece.size();
    if (auto failed = session.SendBody(piece)) return *failed;
  }
  if (body.cancelled()) {
    session.AbortMessage();
    return absl::CancelledError("the client went away before the end of the message");
  }
  if (*received != env.size_bytes()) {
    session.AbortMessage();
    return absl::InvalidArgumentError(absl::StrCat(
        "received ", *received, " bytes, envelope.size_bytes says ", env.size_bytes()));
  }
  return session.FinishMessage();
}

absl::Status ValidateProbeRequest(const v1::ProbeRequest& request) {
  if (absl::Status s = smtp::ValidateTraceKey(request.key()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("key: ", s.message()));
  }
  if (absl::Status s = imap::ValidateSearchValue(request.key()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("key: ", s.message()));
  }
  if (absl::Status s = smtp::ValidateEnvelopeAddress(request.mailbox(), /*allow_empty=*/false);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("mailbox: ", s.message()));
  }
  return absl::OkStatus();
}

v1::ProbeResult ToProto(ProbeVerdict v) {
  switch (v) {
    case ProbeVerdict::kFound:
      return v1::PROBE_RESULT_FOUND;
    case ProbeVerdict::kNotFound:
      return v1::PROBE_RESULT_NOT_FOUND;
    case ProbeVerdict::kNoProbe:
      return v1::PROBE_RESULT_NO_PROBE;
    case ProbeVerdict::kFailed:
      return v1::PROBE_RESULT_FAILED;
  }
  return v1::PROBE_RESULT_UNSPECIFIED;
}

v1::OutcomeClass ToProto(smtp::Outcome o) {
  switch (o) {
    case smtp::Outcome::kDelivered:
      return v1::OUTCOME_CLASS_DELIVERED;
    case smtp::Outcome::kTemporary:
      return v1::OUTCOME_CLASS_TEMPORARY;
    case smtp::Outcome::kPermanent:
      return v1::OUTCOME_CLASS_PERMANENT;
    case smtp::Outcome::kAmbiguous:
      return v1::OUTCOME_CLASS_AMBIGUOUS;
  }
  return v1::OUTCOME_CLASS_UNSPECIFIED;
}

v1::Stage ToProto(smtp::Stage s) {
  switch (s) {
    case smtp::Stage::kConnect:
      return v1::STAGE_CONNECT;
    case smtp::Stage::kGreeting:
      return v1::STAGE_GREETING;
    case smtp::Stage::kEhlo:
      return v1::STAGE_EHLO;
    case smtp::Stage::kStartTls:
      return v1::STAGE_STARTTLS;
    case smtp::Stage::kAuth:
      return v1::STAGE_AUTH;
    case smtp::Stage::kMail:
      return v1::STAGE_MAIL;
    case smtp::Stage::kRcpt:
      return v1::STAGE_RCPT;
    case smtp::Stage::kData:
      return v1::STAGE_DATA;
    case smtp::Stage::kBody:
      return v1::STAGE_BODY;
  }
  return v1::STAGE_UNSPECIFIED;
}

}  // namespace

void FillResponse(const smtp::DeliveryResult& result, v1::InjectResponse* response) {
  response->set_outcome(ToProto(result.outcome));
  response->set_stage(ToProto(result.stage));
  response->set_smtp_code(result.code);
  response->set_enhanced_code(result.enhanced);
  response->set_reply_text(mail::ToBoundedUtf8(result.reply_text, smtp::kMaxReplyTextBytes));
  response->set_detail(mail::ToBoundedUtf8(result.detail, kMaxDetailBytes));
}

grpc::Status InjectorServiceImpl::Inject(grpc::ServerContext* context,
                                         grpc::ServerReader<v1::InjectRequest>* reader,
                                         v1::InjectResponse* response) {
  v1::InjectRequest first;
  if (!reader->Read(&first) || first.part_case() != v1::InjectRequest::kEnvelope) {
    log::Warn("inject refused", {{"error", "the first request must be the envelope"}});
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first request must be the envelope");
  }
  BodySource body;
  v1::InjectRequest request;
  body.next = [&](absl::string_view* piece) -> absl::StatusOr<bool> {
    if (!reader->Read(&request)) return false;
    if (request.part_case() != v1::InjectRequest::kChunk) {
      return absl::InvalidArgumentError("only chunks may follow the envelope");
    }
    const size_t max_chunk_bytes = core_.options().max_chunk_bytes;
    if (request.chunk().size() > max_chunk_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk of ", request.chunk().size(), " bytes exceeds ", max_chunk_bytes));
    }
    *piece = request.chunk();
    return true;
  };
  body.cancelled = [context] { return context->IsCancelled(); };
  body.deadline = server::DeadlineOf(*context);
  return server::ToGrpcResponse(core_.Deliver(first.envelope(), body), response);
}

absl::StatusOr<v1::InjectResponse> InjectorCore::Inject(const v1::Envelope& envelope,
                                                        absl::string_view message,
                                                        absl::Time deadline) {
  BodySource body;
  size_t offset = 0;
  body.next = [&](absl::string_view* piece) -> absl::StatusOr<bool> {
    if (offset >= message.size()) return false;
    // 1 MiB pieces, as over gRPC: they bound the session's encoding buffer.
    *piece = message.substr(offset, options_.max_chunk_bytes);
    offset += piece->size();
    return true;
  };
  body.cancelled = [] { return false; };
  body.deadline = deadline;
  return Deliver(envelope, body);
}

absl::StatusOr<v1::InjectResponse> InjectorCore::Deliver(const v1::Envelope& env,
                                                         const BodySource& body) {
  const absl::Time start = options_.clock->Now();
  if (absl::Status s = ValidateEnvelope(env); !s.ok()) {
    log::Warn("inject refused", {{"key", env.key()}, {"error", std::string(s.message())}});
    return s;
  }
  int64_t received = 0;
  absl::StatusOr<smtp::DeliveryResult> result = SendMessage(pool_, options_, body, env, &received);
  const int64_t ms = absl::ToInt64Milliseconds(options_.clock->Now() - start);
  if (!result.ok()) {
    log::Warn("inject abandoned", {{"key", env.key()},
                                   {"rcpt", env.rcpt_to()},
                                   {"bytes", static_cast<long long>(received)},
                                   {"ms", static_cast<long long>(ms)},
                                   {"error", std::string(result.status().message())}});
    return result.status();
  }
  const bool delivered = result->outcome == smtp::Outcome::kDelivered;
  log::Write(delivered ? log::Level::kInfo : log::Level::kWarn, "inject",
             {{"key", env.key()},
              {"rcpt", env.rcpt_to()},
              {"outcome", smtp::OutcomeName(result->outcome)},
              {"stage", smtp::StageName(result->stage)},
              {"code", result->code},
              {"enhanced", result->enhanced},
              {"bytes", static_cast<long long>(received)},
              {"ms", static_cast<long long>(ms)},
              {"reply", result->reply_text},
              {"detail", result->detail}});
  v1::InjectResponse response;
  FillResponse(*result, &response);
  return response;
}

absl::StatusOr<v1::ProbeResponse> InjectorCore::Probe(const v1::ProbeRequest& request,
                                                      absl::Time deadline) {
  const absl::Time start = options_.clock->Now();
  if (absl::Status s = ValidateProbeRequest(request); !s.ok()) {
    log::Warn("probe refused", {{"key", request.key()},
                                {"mailbox", request.mailbox()},
                                {"error", std::string(s.message())}});
    return s;
  }
  ProbeOutcome outcome;
  if (probe_ == nullptr) {
    outcome.verdict = ProbeVerdict::kNoProbe;
    outcome.detail = "delivery probing is not configured";
  } else {
    outcome = probe_->Probe(request.key(), request.mailbox(), deadline);
  }
  const int64_t ms = absl::ToInt64Milliseconds(options_.clock->Now() - start);
  log::Write(outcome.verdict == ProbeVerdict::kFailed ? log::Level::kWarn : log::Level::kInfo,
             "probe",
             {{"key", request.key()},
              {"mailbox", request.mailbox()},
              {"result", ProbeVerdictName(outcome.verdict)},
              {"matches", outcome.matches},
              {"ms", static_cast<long long>(ms)},
              {"detail", outcome.detail}});
  v1::ProbeResponse response;
  response.set_result(ToProto(outcome.verdict));
  response.set_matches(outcome.matches);
  response.set_detail(mail::ToBoundedUtf8(outcome.detail, kMaxDetailBytes));
  return response;
}

grpc::Status InjectorServiceImpl::Probe(grpc::ServerContext* context,
                                        const v1::ProbeRequest* request,
                                        v1::ProbeResponse* response) {
  return server::ToGrpcResponse(core_.Probe(*request, server::DeadlineOf(*context)), response);
}

}  // namespace pocketmail::injector
