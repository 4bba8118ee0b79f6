#include "tests/peers/fault_proxy/fault_proxy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pocketmail::testing {

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Launch(std::vector<std::string> args,
                                                               const std::string& listen_socket) {
  args.insert(args.begin(),
              {"/usr/bin/python3", RunfilePath("tests/peers/fault_proxy/fault_proxy.py")});
  auto proxy = std::unique_ptr<FaultProxy>(new FaultProxy());
  auto process = PeerProcess::StartAndWaitReady(args, {});
  if (!process.ok()) return process.status();
  proxy->process_ = *std::move(process);
  // The path as given, not as echoed on the space-separated READY line.
  proxy->socket_path_ = listen_socket;
  bool listening = listen_socket.empty()
                       ? absl::SimpleAtoi(proxy->process_.field("port"), &proxy->port_)
                       : !proxy->process_.field("socket").empty();
  if (!listening ||
      !absl::SimpleAtoi(proxy->process_.field("control_port"), &proxy->control_port_)) {
    return absl::InternalError("fault proxy READY line lacks its port or socket");
  }
  if (!proxy->socket_path_.empty()) {
    struct stat st {};
    if (lstat(proxy->socket_path_.c_str(), &st) != 0) {
      return absl::InternalError(
          absl::StrCat("fault proxy socket ", proxy->socket_path_, " is missing"));
    }
    proxy->socket_ino_ = st.st_ino;
  }
  return proxy;
}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(int target_port,
                                                              const std::string& target_host) {
  return Launch({"--target-host", target_host, "--target-port", std::to_string(target_port)},
                /*listen_socket=*/"");
}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::StartUnix(
    const std::string& target_socket, const std::string& listen_socket) {
  return Launch({"--target-unix", target_socket, "--listen-unix", listen_socket}, listen_socket);
}

FaultProxy::~FaultProxy() {
  if (socket_path_.empty()) return;  // PeerProcess kills the proxy
  // A SIGKILLed proxy leaves its socket behind; remove it, unless it has
  // already been removed (Stop()) or replaced by someone else's.
  process_.Kill();
  struct stat st {};
  if (lstat(socket_path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == socket_ino_) {
    unlink(socket_path_.c_str());
  }
}

absl::StatusOr<std::string> FaultProxy::Control(const std::string& line) {
  absl::StatusOr<std::string> exchanged = ControlExchange(control_port_, line, "fault proxy");
  if (!exchanged.ok()) return exchanged.status();
  const std::string& reply = *exchanged;
  if (absl::StartsWith(reply, "ERR")) {
    return absl::InvalidArgumentError(absl::StrCat("fault proxy: '", line, "' → '", reply, "'"));
  }
  if (!absl::StartsWith(reply, "OK")) {
    return absl::UnavailableError(absl::StrCat("fault proxy: no reply to '", line, "'"));
  }
  return reply;
}

absl::StatusOr<std::map<std::string, int64_t>> FaultProxy::Stats() {
  absl::StatusOr<std::string> reply = Control("STATS");
  if (!reply.ok()) return reply.status();
  std::map<std::string, int64_t> stats;
  for (absl::string_view kv : absl::StrSplit(reply->substr(2), ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    int64_t v = 0;
    if (absl::SimpleAtoi(p.second, &v)) stats[p.first] = v;
  }
  return stats;
}

}  // namespace pocketmail::testing
