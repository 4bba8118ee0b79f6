// Test fixture: a fault-injecting TCP proxy (fault_proxy.py) in front of a
// peer on 127.0.0.1, for tests of how our services survive a bad network:
// latency, connection resets, black holes, connections cut mid-answer.
//
//   auto proxy = FaultProxy::Start(s3_peer_port);
//   ... point the client at 127.0.0.1:(*proxy)->port() ...
//   (*proxy)->Set("latency_ms=30 reset_pct=5 cut_pct=10 cut_after_bytes=1500");
//   auto stats = (*proxy)->Stats();  // connections, resets, blackholes, cuts, faults, ...
//
// Or unix socket to unix socket, for Maddy's LMTP endpoint, with the answer to
// each end-of-data held so a crash test can kill the client after the message
// was delivered and before it heard 250:
//
//   auto proxy = FaultProxy::StartUnix(maddy_lmtp_socket, scratch.path() + "/lmtp");
//   ... point the client at (*proxy)->socket_path() ...
//   (*proxy)->Set("hold_after_dot_ms=2000");
//   ... wait for Maddy to have the message, SIGKILL the client; Stats()["holds"] ...
//
// Bytes pass through untouched, so TLS does too (the client still connects to
// 127.0.0.1, which the peer's certificate names). The knobs and what an
// "exchange" is are described in fault_proxy.py. Not thread-safe; the proxy
// process is killed when the fixture is destroyed (and its listening socket,
// if still its own, removed).
#ifndef POCKETMAIL_TESTS_PEERS_FAULT_PROXY_FAULT_PROXY_H_
#define POCKETMAIL_TESTS_PEERS_FAULT_PROXY_FAULT_PROXY_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

class FaultProxy {
 public:
  // Starts a proxy listening on a free 127.0.0.1 port that forwards to
  // target_host:target_port, and waits until it is ready.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(
      int target_port, const std::string& target_host = "127.0.0.1");

  // Starts a proxy listening on the unix socket listen_socket that forwards to
  // the unix socket target_socket, and waits until it is ready. listen_socket
  // is created mode 0600 (keep it under 108 bytes: a ScratchDir is short
  // enough); a stale socket there is replaced, anything else is an error.
  // Knobs, Stats() and the control port (TCP, 127.0.0.1) are as for Start().
  static absl::StatusOr<std::unique_ptr<FaultProxy>> StartUnix(const std::string& target_socket,
                                                               const std::string& listen_socket);

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  ~FaultProxy();

  // Where clients connect instead of the target: port() for Start() (0 for
  // StartUnix()), socket_path() for StartUnix() ("" for Start()).
  int port() const { return port_; }
  const std::string& socket_path() const { return socket_path_; }
  int control_port() const { return control_port_; }

  // Sends one control line ("SET k=v ...", "RESET", "STATS") and returns the
  // reply line; an "ERR ..." reply is an INVALID_ARGUMENT error.
  absl::StatusOr<std::string> Control(const std::string& line);
  absl::Status Set(const std::string& knobs) { return Control("SET " + knobs).status(); }
  absl::Status Reset() { return Control("RESET").status(); }
  // connections, resets, blackholes, cuts, faults, active, bytes_up,
  // bytes_down, holds (answers held by hold_after_dot_ms; not faults).
  absl::StatusOr<std::map<std::string, int64_t>> Stats();

  // SIGTERM and wait (the proxy removes its listening socket); returns the
  // wait status.
  int Stop() { return process_.Stop(); }

 private:
  FaultProxy() = default;
  // Runs fault_proxy.py with args; listen_socket is its --listen-unix ("" for TCP).
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Launch(std::vector<std::string> args,
                                                            const std::string& listen_socket);

  PeerProcess process_;
  int port_ = 0;
  std::string socket_path_;
  ino_t socket_ino_ = 0;  // of socket_path_ when the proxy was ready
  int control_port_ = 0;
};

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_FAULT_PROXY_FAULT_PROXY_H_
