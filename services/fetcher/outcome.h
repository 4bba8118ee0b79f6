// The one place that decides what an attempt's result means for the message:
// deliver, retry, retry but probe first, or dead-letter (docs/DESIGN.md,
// guarantee 3). The SMTP reply itself is classified by the injector (its
// OutcomeClass, common/smtp/smtp_session.cc); everything the fetcher decides
// from it, and from a failed call, is decided here.
//
// A wrong "permanent" dead-letters mail that would have been delivered, so
// anything not known to be final is retried.
#ifndef POCKETMAIL_SERVICES_FETCHER_OUTCOME_H_
#define POCKETMAIL_SERVICES_FETCHER_OUTCOME_H_

#include <string>

#include "absl/status/status.h"
#include "services/fetcher/pipeline_clients.h"

namespace pocketmail::fetcher {

enum class Verdict {
  kDelivered,   // the mail server took it
  kRetry,       // nothing was delivered: back off and try again
  kProbeFirst,  // it may have been delivered: ask the probe before injecting again
  kDeadLetter,  // it will never succeed as is
};

const char* VerdictName(Verdict verdict);

struct Decision {
  Verdict verdict;
  std::string reason;  // the ledger's error and the dead-letter reason; "" when delivered
  // The injector's reply belongs in the ledger write (its code, enhanced
  // code and text): false when no reply was read.
  bool record_reply = false;
};

// A Resolve that failed. The router refuses an address it can never route
// with INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE; any other code
// (UNAVAILABLE before the first account list, a deadline) may pass.
Decision ClassifyRouteFailure(const absl::Status& failure);

// The `attempts`-th Inject of a message (the ledger's count, which includes
// this one). A 5xx with enhanced code X.0.0, or none, is an untyped failure
// (go-smtp's code for an internal error Maddy did not classify: a locked
// database, a full disk): retried until `untyped_failure_max_attempts`
// attempts, then dead-lettered. Any other 5.x.y names what is wrong with the
// message and is final at once.
Decision Classify(const InjectResult& result, int attempts, int untyped_failure_max_attempts);

// "554 5.6.0 Malformed header (detail)": a reply as the ledger and logs show it.
std::string ReplyText(const injectorpb::InjectResponse& reply);

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_OUTCOME_H_
