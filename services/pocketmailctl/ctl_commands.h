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
  std::string ledger_db;  // backup/restore: the ledger database file
  std::string maddy_dir;  // backup/restore: Maddy's state dir ("" = skip Maddy)
  bool force = false;     // restore while services seem to run; --ledger-only
  bool json = false;
  bool terminal = false;  // stdout is a TTY: progress output allowed
  std::ostream* out;
  std::ostream* err;
};

int Status(const CtlContext& ctx);
int Drain(const CtlContext& ctx);
// args: KEY... or --all-failed
int Replay(const CtlContext& ctx, const std::vector<std::string>& args);
// args: pending|processed|failed
int Ls(const CtlContext& ctx, const std::vector<std::string>& args);
// Ledger against bucket: objects still in pending/ the ledger calls finished,
// and rows the ledger calls unfinished whose object is gone.
int Verify(const CtlContext& ctx);
// Router.Refresh: re-read the account list now; prints its size and version.
int Refresh(const CtlContext& ctx);
int BackupCmd(const CtlContext& ctx, const std::vector<std::string>& args);
int RestoreCmd(const CtlContext& ctx, const std::vector<std::string>& args);

}  // namespace pocketmail::ctl

#endif  // POCKETMAIL_SERVICES_POCKETMAILCTL_CTL_COMMANDS_H_
