// Test support: runs a real peer (moto S3, the SMTP server, Dovecot) or one of
// our service binaries as a child process, and waits until it is ready.
//
// Readiness protocol for peers written here: the child prints one line
//   READY key=value key=value ...
// on stdout (e.g. `READY port=40123`). Everything else it prints on stdout
// before that line is ignored; stderr is inherited so logs show up in test logs.
#ifndef POCKETMAIL_TESTS_PEERS_PEER_PROCESS_H_
#define POCKETMAIL_TESTS_PEERS_PEER_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pocketmail::testing {

class PeerProcess {
 public:
  PeerProcess() = default;
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;
  PeerProcess(PeerProcess&& other) noexcept;
  PeerProcess& operator=(PeerProcess&& other) noexcept;
  ~PeerProcess();  // SIGKILLs and reaps a child that is still running

  // Starts argv[0] (a path) with the current environment plus `extra_env`,
  // and waits up to `timeout` for the READY line. Returns its fields.
  static absl::StatusOr<PeerProcess> StartAndWaitReady(
      const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env,
      absl::Duration timeout = absl::Seconds(30));

  // Starts without waiting for a READY line (for our own services, whose
  // readiness is probed over gRPC health instead).
  static absl::StatusOr<PeerProcess> Start(const std::vector<std::string>& argv,
                                           const std::map<std::string, std::string>& extra_env);

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Value of a READY field ("" when absent).
  std::string field(const std::string& name) const;

  void Kill();  // SIGKILL + reap: the crash tests' weapon
  // Whether the child has exited on its own (reaping it, with its status in
  // *status when given); never waits and never signals.
  bool Exited(int* status = nullptr);
  // Waits for the child to exit on its own; DEADLINE_EXCEEDED (and a SIGKILL)
  // after `timeout`. Returns the status as waitpid reports it.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status (as waitpid).
  int Stop(absl::Duration grace = absl::Seconds(10));

 private:
  pid_t pid_ = -1;
  std::map<std::string, std::string> fields_;
};

// Path of a file in the runfiles tree ("pocketmail/tests/peers/s3_peer.py"
// style or workspace-relative "tests/peers/s3_peer.py").
std::string RunfilePath(const std::string& workspace_relative);

// One request/reply on a peer's line-based control port on 127.0.0.1: sends
// `line` + "\n", returns the reply line (without its "\n"; empty when the
// peer closed or did not answer within 10 s). UNAVAILABLE when the port can't
// be reached; `peer` names it in that error.
absl::StatusOr<std::string> ControlExchange(int port, const std::string& line,
                                            const std::string& peer);

// A 127.0.0.1 TCP port the kernel considers free right now (0 on failure).
// A peer binds it a moment later; one taken in between fails that peer's
// start, which its fixture retries with another port.
int PickFreePort();

// `s` as one single-quoted POSIX shell word.
std::string ShellQuote(const std::string& s);

// The whole file ("" when it can't be read), and a file written whole with `mode`.
std::string ReadWholeFile(const std::string& path);
void WriteWholeFile(const std::string& path, const std::string& content, mode_t mode);

// A short scratch dir (unix socket paths must stay under 108 bytes), removed
// recursively by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_PEER_PROCESS_H_
