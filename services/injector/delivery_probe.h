// DeliveryProbe answers "did the message with trace key K reach mailbox M?"
// by logging into M over IMAP and searching its INBOX (where Maddy delivers)
// for X-Pocketmail-Key: K. It resolves the ambiguous window between the final
// "." and the server's reply (docs/DESIGN.md, guarantee 2), so a wrong "found"
// would lose mail: matches are confirmed by fetching the header and comparing
// it exactly, since IMAP SEARCH matches substrings.
//
// Verdicts:
//   kFound     ≥ 1 message carries exactly the key (`matches` counts them)
//   kNotFound  the INBOX was searched and no message carries it
//   kNoProbe   no credentials for the mailbox: cannot tell
//   kFailed    connect, login, search or timeout error, or the server
//              warned that its view of the mailbox may be incomplete; the
//              detail says why (never the password). Try again later.
// One fresh IMAP connection per probe (probes are rare), opened read-only
// (EXAMINE), so probing never marks mail \Seen.
//
// Thread-safe: Probe is const and shares nothing between calls.
#ifndef POCKETMAIL_SERVICES_INJECTOR_DELIVERY_PROBE_H_
#define POCKETMAIL_SERVICES_INJECTOR_DELIVERY_PROBE_H_

#include <string>

#include "absl/time/time.h"
#include "common/time/clock.h"
#include "services/injector/probe_credentials.h"

namespace pocketmail::injector {

inline constexpr char kTraceHeader[] = "X-Pocketmail-Key";

struct ProbeOptions {
  std::string host = "127.0.0.1";
  int port = 9143;
  absl::Duration timeout = absl::Seconds(20);  // the whole probe
  std::string folder = "INBOX";
  Clock* clock = RealClock::Get();  // not owned; reads the probe's deadline
};

enum class ProbeVerdict { kFound, kNotFound, kNoProbe, kFailed };
const char* ProbeVerdictName(ProbeVerdict v);  // "found", "not_found", ...

struct ProbeOutcome {
  ProbeVerdict verdict = ProbeVerdict::kFailed;
  int matches = 0;
  std::string detail;
};

class DeliveryProbe {
 public:
  DeliveryProbe(ProbeOptions options, ProbeCredentials credentials)
      : options_(std::move(options)), credentials_(std::move(credentials)) {}

  // Stops at `deadline` or after options.timeout, whichever is first.
  // A key that cannot be searched for safely (see imap::ValidateSearchValue)
  // is kFailed without any I/O; callers should refuse it earlier.
  ProbeOutcome Probe(const std::string& key, const std::string& mailbox,
                     absl::Time deadline = absl::InfiniteFuture()) const;

  bool HasCredentials(const std::string& mailbox) const {
    return credentials_.Find(mailbox) != nullptr;
  }

 private:
  const ProbeOptions options_;
  const ProbeCredentials credentials_;
};

}  // namespace pocketmail::injector

#endif  // POCKETMAIL_SERVICES_INJECTOR_DELIVERY_PROBE_H_
