#include "services/fetcher/outcome.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pocketmail::fetcher {
namespace {

bool IsUntypedFailure(const injectorpb::InjectResponse& r) {
  return r.enhanced_code().empty() || absl::EndsWith(r.enhanced_code(), ".0.0");
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kDelivered:
      return "delivered";
    case Verdict::kRetry:
      return "retry";
    case Verdict::kProbeFirst:
      return "probe_first";
    case Verdict::kDeadLetter:
      return "dead_letter";
  }
  return "unknown";
}

std::string ReplyText(const injectorpb::InjectResponse& r) {
  return absl::StrCat(r.smtp_code(), r.enhanced_code().empty() ? "" : " ", r.enhanced_code(),
                      r.reply_text().empty() ? "" : " ", r.reply_text(),
                      r.detail().empty() ? "" : " (", r.detail(), r.detail().empty() ? "" : ")");
}

Decision ClassifyRouteFailure(const absl::Status& failure) {
  switch (failure.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return {Verdict::kDeadLetter, absl::StrCat("invalid recipient: ", failure.message())};
    default:
      return {Verdict::kRetry, absl::StrCat("router: ", failure.message())};
  }
}

Decision Classify(const InjectResult& result, int attempts, int untyped_failure_max_attempts) {
  if (!result.call.ok()) {
    // The injector sends the final "." only after the whole message and the
    // client's half-close arrived: before that nothing can have been
    // delivered, whatever the status says.
    if (!result.handed_over) {
      return {Verdict::kRetry,
              absl::StrCat("injector unreachable before the message was handed over: ",
                           result.call.message())};
    }
    // It checks the envelope and the byte count before the final ".".
    if (absl::IsInvalidArgument(result.call)) {
      return {Verdict::kDeadLetter,
              absl::StrCat("injector refused envelope: ", result.call.message())};
    }
    // It may have died after the final ".": the outcome is unknown.
    return {Verdict::kProbeFirst, absl::StrCat("injector: ", result.call.message())};
  }
  const injectorpb::InjectResponse& reply = result.reply;
  switch (reply.outcome()) {
    case injectorpb::OUTCOME_CLASS_DELIVERED:
      return {Verdict::kDelivered, "", true};
    case injectorpb::OUTCOME_CLASS_PERMANENT:
      if (IsUntypedFailure(reply) && attempts < untyped_failure_max_attempts) {
        return {Verdict::kRetry,
                absl::StrCat("untyped failure (attempt ", attempts, " of ",
                             untyped_failure_max_attempts, "): ", ReplyText(reply)),
                true};
      }
      return {Verdict::kDeadLetter, absl::StrCat("rejected by mail server: ", ReplyText(reply)),
              true};
    case injectorpb::OUTCOME_CLASS_AMBIGUOUS:
      return {Verdict::kProbeFirst, ReplyText(reply), true};
    case injectorpb::OUTCOME_CLASS_TEMPORARY:
    default:  // UNSPECIFIED: an injector that said nothing useful; never final
      return {Verdict::kRetry, ReplyText(reply), true};
  }
}

}  // namespace pocketmail::fetcher
