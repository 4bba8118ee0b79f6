// pocketmailctl's verbs, each a function from parsed arguments to an exit
// code, writing human-readable text (or JSON with --json) to `out`. They talk
// to the services over their unix sockets in the runtime dir.
#ifndef POCKETMAIL_SERVICES_POCKETMAILCTL_CTL_COMMANDS_H_
#define POCKETMAIL_SERVICES_POCKETMAILCTL_CTL_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

namespace pocketmail::ctl {

struct CtlContext {
  std::string runtime_dir;
  bool json = false;
  bool terminal = false;  // stdout is a TTY: progress output allowed
  std::ostream* out;
  std::ostream* err;
};

int Status(const CtlContext& ctx);
int Drain(const CtlContext& ctx);
// args: KEY... or --all-failed
int Replay(const CtlContext& ctx, const std::vector<std::string>& args);

}  // namespace pocketmail::ctl

#endif  // POCKETMAIL_SERVICES_POCKETMAILCTL_CTL_COMMANDS_H_
