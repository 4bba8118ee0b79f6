// pocketmailctl: the operator's command line for the pocketmail services.
//
//   pocketmailctl [--json] [--runtime-dir DIR] status
//   pocketmailctl [--json] drain
//   pocketmailctl [--json] replay KEY... | --all-failed
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "common/server/service_host.h"
#include "services/pocketmailctl/ctl_commands.h"

namespace {

constexpr char kUsage[] =
    "usage: pocketmailctl [--json] [--runtime-dir DIR] VERB [ARGS]\n"
    "\n"
    "verbs:\n"
    "  status                     pending, in flight, deliveries, dead letters, last pass, health\n"
    "  drain                      run one pass now and wait for it\n"
    "  replay KEY...|--all-failed re-drive dead letters from failed/\n"
    "\n"
    "The runtime dir defaults to $POCKETMAIL_RUNTIME_DIR, $XDG_RUNTIME_DIR/pocketmail,\n"
    "or /tmp/pocketmail-$UID, like the services.\n";

}  // namespace

int main(int argc, char** argv) {
  pocketmail::ctl::CtlContext ctx;
  ctx.runtime_dir = pocketmail::server::DefaultRuntimeDir();
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  ctx.terminal = isatty(STDERR_FILENO) != 0;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      ctx.json = true;
    } else if (a == "--runtime-dir" && i + 1 < argc) {
      ctx.runtime_dir = argv[++i];
    } else if (a.rfind("--runtime-dir=", 0) == 0) {
      ctx.runtime_dir = a.substr(14);
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      rest.push_back(a);
    }
  }
  if (rest.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  std::string verb = rest[0];
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  if (verb == "status") return pocketmail::ctl::Status(ctx);
  if (verb == "drain") return pocketmail::ctl::Drain(ctx);
  if (verb == "replay") return pocketmail::ctl::Replay(ctx, args);
  std::cerr << "unknown verb: " << verb << "\n" << kUsage;
  return 2;
}
