// Tells the operator about conditions only a person can fix, by running
// MAIL_ALERT_CMD (through /bin/sh) with the text in MAIL_ALERT_MSG and the
// kind in MAIL_ALERT_KIND in its environment — never on its command line.
//
//   backlog        the oldest object in pending/ is older than ALERT_DAYS.
//                  pending/ has a ~30-day lifecycle: mail is deleted unread if
//                  nobody acts. Sent once; a sentinel file keeps it from
//                  repeating (across restarts too) until the backlog clears,
//                  which removes the sentinel and sends `backlog_cleared`.
//   pass_failures  N consecutive passes could not list pending/ (bad
//                  credentials, clock skew, R2 down). Once, until a pass works.
//   dead_letters   a pass dead-lettered messages (one alert per pass).
//
// A failing alert command is logged and retried at the next occasion (no
// sentinel is written). With no command configured, alerts are only logged.
// Thread-safe.
#ifndef POCKETMAIL_SERVICES_FETCHER_ALERTS_H_
#define POCKETMAIL_SERVICES_FETCHER_ALERTS_H_

#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/time/clock.h"

namespace pocketmail::fetcher {

struct AlertOptions {
  std::string command;       // MAIL_ALERT_CMD; "" = log only
  std::string sentinel_dir;  // where the sentinel files live (the state dir)
  absl::Duration backlog_age = absl::Hours(24 * 3);  // ALERT_DAYS
  int pass_failures = 5;                             // ALERT_PASS_FAILURES
  std::string host_label;                            // prefixed to every message
  Clock* clock = RealClock::Get();                   // not owned; the backlog's age is read on it
};

class Alerter {
 public:
  explicit Alerter(AlertOptions options);

  // After a listing succeeded. `oldest` is the oldest pending object's time
  // (ignored when count is 0).
  void OnListing(int pending_count, absl::Time oldest);
  void OnListingFailed(const std::string& error);
  void OnDeadLetters(int count, const std::vector<std::string>& sample_reasons);

  // For tests and status: alerts sent so far (kind: message).
  std::vector<std::string> sent() const;

 private:
  // Runs the command; true when it succeeded (or there is none).
  bool Send(const std::string& kind, const std::string& message);
  std::string SentinelPath(const std::string& kind) const;
  bool SentinelExists(const std::string& kind) const;
  void WriteSentinel(const std::string& kind, const std::string& message);
  void RemoveSentinel(const std::string& kind);

  AlertOptions options_;
  mutable std::mutex mu_;
  int consecutive_failures_ = 0;
  std::vector<std::string> sent_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_ALERTS_H_
