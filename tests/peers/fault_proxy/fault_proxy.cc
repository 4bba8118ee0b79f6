#include "tests/peers/fault_proxy/fault_proxy.h"

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
