#include "tests/peers/fault_proxy/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pocketmail::testing {

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(int target_port,
                                                              const std::string& target_host) {
  auto proxy = std::unique_ptr<FaultProxy>(new FaultProxy());
  auto process = PeerProcess::StartAndWaitReady(
      {"/usr/bin/python3", RunfilePath("tests/peers/fault_proxy/fault_proxy.py"),
       "--target-host", target_host, "--target-port", std::to_string(target_port)},
      {});
  if (!process.ok()) return process.status();
  proxy->process_ = *std::move(process);
  if (!absl::SimpleAtoi(proxy->process_.field("port"), &proxy->port_) ||
      !absl::SimpleAtoi(proxy->process_.field("control_port"), &proxy->control_port_)) {
    return absl::InternalError("fault proxy READY line lacks ports");
  }
  return proxy;
}

absl::StatusOr<std::string> FaultProxy::Control(const std::string& line) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(control_port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return absl::UnavailableError("cannot reach the fault proxy's control port");
  }
  std::string request = line + "\n";
  bool sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size());
  std::string reply;
  char c;
  while (sent && recv(fd, &c, 1, 0) == 1 && c != '\n') reply.push_back(c);
  close(fd);
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
