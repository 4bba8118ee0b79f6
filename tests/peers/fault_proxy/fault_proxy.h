// Test fixture: a fault-injecting TCP proxy (fault_proxy.py) in front of a
// peer on 127.0.0.1, for tests of how our services survive a bad network:
// latency, connection resets, black holes, connections cut mid-answer.
//
//   auto proxy = FaultProxy::Start(s3_peer_port);
//   ... point the client at 127.0.0.1:(*proxy)->port() ...
//   (*proxy)->Set("latency_ms=30 reset_pct=5 cut_pct=10 cut_after_bytes=1500");
//   auto stats = (*proxy)->Stats();  // connections, resets, blackholes, cuts, faults, ...
//
// Bytes pass through untouched, so TLS does too (the client still connects to
// 127.0.0.1, which the peer's certificate names). The knobs and what an
// "exchange" is are described in fault_proxy.py. Not thread-safe; the proxy
// process is killed when the fixture is destroyed.
#ifndef POCKETMAIL_TESTS_PEERS_FAULT_PROXY_FAULT_PROXY_H_
#define POCKETMAIL_TESTS_PEERS_FAULT_PROXY_FAULT_PROXY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

class FaultProxy {
 public:
  // Starts a proxy listening on a free 127.0.0.1 port that forwards to
  // target_host:target_port, and waits until it is ready.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(
      int target_port, const std::string& target_host = "127.0.0.1");

  int port() const { return port_; }  // where clients connect instead of the target
  int control_port() const { return control_port_; }

  // Sends one control line ("SET k=v ...", "RESET", "STATS") and returns the
  // reply line; an "ERR ..." reply is an INVALID_ARGUMENT error.
  absl::StatusOr<std::string> Control(const std::string& line);
  absl::Status Set(const std::string& knobs) { return Control("SET " + knobs).status(); }
  absl::Status Reset() { return Control("RESET").status(); }
  // connections, resets, blackholes, cuts, faults, active, bytes_up, bytes_down.
  absl::StatusOr<std::map<std::string, int64_t>> Stats();

  // SIGTERM and wait; returns the wait status.
  int Stop() { return process_.Stop(); }

 private:
  FaultProxy() = default;

  PeerProcess process_;
  int port_ = 0;
  int control_port_ = 0;
};

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_FAULT_PROXY_FAULT_PROXY_H_
