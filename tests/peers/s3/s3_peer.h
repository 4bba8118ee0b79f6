// Test fixture: a real S3 peer (tests/peers/s3/s3_peer.py — moto over HTTPS with
// SigV4 enforced) on 127.0.0.1, for integration tests of anything that talks to R2.
//
//   ScratchDir scratch;
//   absl::StatusOr<S3Peer> peer = S3Peer::Start(scratch.path());
//   client options: peer->endpoint(), bucket(), access_key_id(), secret_access_key(), ca_file()
//   service processes: PeerProcess::Start(argv, peer->env())
//
// The python interpreter is $PM_MOTO_PYTHON when set, else `python3` found on
// PATH; it must have moto 5.2.x (bazel test --test_env=PM_MOTO_PYTHON=$(command -v python3)).
// Not thread-safe; the peer process is killed when the fixture is destroyed.
#ifndef POCKETMAIL_TESTS_PEERS_S3_S3_PEER_H_
#define POCKETMAIL_TESTS_PEERS_S3_S3_PEER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

class S3Peer {
 public:
  struct Options {
    std::string bucket = "pocketmail";
    bool count_requests = false;  // enables Stats()
  };

  // Starts the peer with its certificate and creds.env under `scratch_dir`
  // (which must exist and outlive the peer) and waits until it is ready.
  static absl::StatusOr<S3Peer> Start(const std::string& scratch_dir, Options options);
  static absl::StatusOr<S3Peer> Start(const std::string& scratch_dir) {
    return Start(scratch_dir, Options());
  }

  S3Peer(S3Peer&&) = default;
  S3Peer& operator=(S3Peer&&) = default;

  const std::string& endpoint() const { return endpoint_; }  // "https://127.0.0.1:PORT"
  int port() const { return port_; }
  const std::string& bucket() const { return bucket_; }
  const std::string& access_key_id() const { return access_key_id_; }
  const std::string& secret_access_key() const { return secret_access_key_; }
  const std::string& ca_file() const { return ca_file_; }
  // R2_ENDPOINT, R2_BUCKET, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_CA_FILE.
  std::map<std::string, std::string> env() const;

  pid_t pid() const { return process_.pid(); }
  bool running() const { return process_.running(); }
  void Kill() { process_.Kill(); }  // SIGKILL: the peer vanishes mid-whatever
  // SIGTERM, then SIGKILL after `grace`. Returns the wait status (as waitpid).
  int Stop(absl::Duration grace = absl::Seconds(10)) { return process_.Stop(grace); }
  // Starts the peer again on the same port with the same certificate and
  // credentials (killing it first if it still runs). Its buckets are empty again.
  absl::Status Restart();

  // Requests served so far by kind ("LIST", "GET", "COPY", "DELETE", "PUT",
  // "HEAD"), plus "FAULTS" (faults fired). REQUIRES: started with count_requests.
  absl::StatusOr<std::map<std::string, int64_t>> Stats() const;

 private:
  S3Peer() = default;
  absl::Status Launch(int port, const std::map<std::string, std::string>& env);

  Options options_;
  std::string scratch_dir_;
  PeerProcess process_;
  int port_ = 0;
  std::string endpoint_;
  std::string bucket_;
  std::string access_key_id_;
  std::string secret_access_key_;
  std::string ca_file_;
};

// Fault knobs of a running S3 peer, reachable by anyone who has its endpoint
// and CA file (e.g. a test that did not start it). `json` replaces the whole
// fault configuration, "{}" turns every fault off; the keys (error_pct,
// error_codes, error_ops, deny_keys, listing, latency_ms) are described in
// s3_peer.py. INVALID_ARGUMENT when the peer refuses the configuration,
// UNAVAILABLE when it cannot be reached.
absl::Status SetS3PeerFaults(const std::string& endpoint, const std::string& ca_file,
                             const std::string& json);

// The body of the peer's /__peer/stats: a flat JSON object of counters, always
// with "FAULTS" (faults fired so far), and with the per-kind request counts
// when the peer counts requests.
absl::StatusOr<std::string> S3PeerStats(const std::string& endpoint, const std::string& ca_file);

// The counters of an S3PeerStats() body, by name.
absl::StatusOr<std::map<std::string, int64_t>> ParseS3PeerStats(const std::string& body);

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_S3_S3_PEER_H_
