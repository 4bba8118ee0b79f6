// pocketmailctl: the operator's command line for the pocketmail services.
//
//   pocketmailctl [--json] [--runtime-dir DIR] status
//   pocketmailctl [--json] drain
//   pocketmailctl [--json] replay KEY... | --all-failed
//   pocketmailctl [--json] refresh
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "common/config/private_dir.h"
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
    "  ls pending|processed|failed key, size, age and recipient of each object\n"
    "  verify                     ledger against bucket: mismatches in either direction\n"
    "  refresh                    re-read the router's account list now (count, version)\n"
    "  backup DIR                 consistent snapshot of Maddy's databases, then the ledger\n"
    "  restore DIR [--force]      put a backup back (services and Maddy stopped)\n"
    "\n"
    "backup/restore paths: --ledger-db (default $LEDGER_DB or $POCKETMAIL_STATE_DIR/ledger.db)\n"
    "and --maddy-dir (default $MADDY_STATE_DIR or /var/lib/maddy; --maddy-dir= to skip).\n"
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
  const char* ledger_db = std::getenv("LEDGER_DB");
  const char* state_dir = std::getenv("POCKETMAIL_STATE_DIR");
  ctx.ledger_db = ledger_db && *ledger_db   ? ledger_db
                  : state_dir && *state_dir ? std::string(state_dir) + "/ledger.db"
                                            : pocketmail::config::DefaultStateDir() + "/ledger.db";
  const char* maddy_dir = std::getenv("MADDY_STATE_DIR");
  ctx.maddy_dir = maddy_dir ? maddy_dir : "/var/lib/maddy";
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      ctx.json = true;
    } else if (a == "--runtime-dir" && i + 1 < argc) {
      ctx.runtime_dir = argv[++i];
    } else if (a.rfind("--runtime-dir=", 0) == 0) {
      ctx.runtime_dir = a.substr(14);
    } else if (a.rfind("--ledger-db=", 0) == 0) {
      ctx.ledger_db = a.substr(12);
    } else if (a.rfind("--maddy-dir=", 0) == 0) {
      ctx.maddy_dir = a.substr(12);
    } else if (a == "--force" || a == "--ledger-only") {
      ctx.force = true;
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
  if (verb == "ls") return pocketmail::ctl::Ls(ctx, args);
  if (verb == "verify") return pocketmail::ctl::Verify(ctx);
  if (verb == "refresh") return pocketmail::ctl::Refresh(ctx);
  if (verb == "backup") return pocketmail::ctl::BackupCmd(ctx, args);
  if (verb == "restore") return pocketmail::ctl::RestoreCmd(ctx, args);
  std::cerr << "unknown verb: " << verb << "\n" << kUsage;
  return 2;
}
