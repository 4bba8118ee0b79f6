// The phone end of the Worker's wake-up ping (worker/README.md, "Wake-up
// ping"): a tiny HTTP/1.1 listener on loopback, meant to be exposed through a
// Cloudflare Tunnel. A correctly signed, fresh ping makes the fetcher poll now
// instead of at its next MAIL_POLL tick; anything else is rejected and changes
// nothing. Off unless WAKE_LISTEN and WAKE_SECRET are both set.
//
// The ping carries no mail: the worst a replay within the freshness window can
// do is cause one extra LIST.
#ifndef POCKETMAIL_SERVICES_FETCHER_WAKE_LISTENER_H_
#define POCKETMAIL_SERVICES_FETCHER_WAKE_LISTENER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/time/clock.h"

namespace pocketmail::fetcher {

inline constexpr absl::Duration kWakeFreshness = absl::Minutes(5);

// Checks one ping and returns the object key it names. PERMISSION_DENIED for a
// bad or missing signature, a stale or future timestamp; INVALID_ARGUMENT for a
// malformed timestamp or body.
absl::StatusOr<std::string> VerifyWakePing(absl::string_view timestamp_header,
                                           absl::string_view signature_header,
                                           absl::string_view body, absl::string_view secret,
                                           absl::Time now);

// Hex HMAC-SHA256 over "<ts>\n<key>" (exposed for tests and tools).
std::string SignWakePing(absl::string_view secret, absl::string_view timestamp,
                         absl::string_view key);

class WakeListener {
 public:
  // `on_wake` is called (on the listener's thread) for each accepted ping.
  // A ping's freshness is judged on `clock` (not owned).
  static absl::StatusOr<std::unique_ptr<WakeListener>> Start(
      const std::string& address, std::string secret,
      std::function<void(const std::string&)> on_wake, Clock* clock = RealClock::Get());
  ~WakeListener();  // stops and joins
  int port() const { return port_; }

 private:
  WakeListener() = default;
  void Serve();
  void HandleConnection(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::string secret_;
  std::function<void(const std::string&)> on_wake_;
  Clock* clock_ = nullptr;
  std::thread thread_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_WAKE_LISTENER_H_
