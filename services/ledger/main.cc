// The ledger service binary: opens (or creates) ledger.db and serves the
// pocketmail.ledger.v1.Ledger API on its unix socket until SIGTERM.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config/settings.h"
#include "common/log/log.h"
#include "common/config/private_dir.h"
#include "common/server/service_host.h"
#include "services/ledger/ledger_service.h"
#include "services/ledger/ledger_store.h"

namespace pocketmail::ledger {
namespace {

absl::StatusOr<std::string> DatabasePath(const config::Settings& settings) {
  if (std::string explicit_path = settings.Get("LEDGER_DB"); !explicit_path.empty()) {
    return explicit_path;
  }
  std::string dir = settings.Get("POCKETMAIL_STATE_DIR");
  if (dir.empty()) {
    return absl::InvalidArgumentError("set POCKETMAIL_STATE_DIR or LEDGER_DB (no $HOME to default to)");
  }
  if (absl::Status st = config::EnsurePrivateDir(dir, "state dir"); !st.ok()) return st;
  return absl::StrCat(dir, "/ledger.db");
}

int Run(int argc, char** argv) {
  log::SetService("ledger");
  int exit_code = 0;
  std::optional<config::Settings> settings = server::LoadServiceSettings(
      "ledger", argc, argv,
      {{"POCKETMAIL_STATE_DIR", config::DefaultStateDir(), "directory (mode 0700) holding ledger.db"},
       {"LEDGER_DB", "", "explicit path of the ledger database (overrides the state dir)"}},
      &exit_code);
  if (!settings) return exit_code;

  absl::StatusOr<std::string> path = DatabasePath(*settings);
  if (!path.ok()) {
    log::Error("cannot prepare the database path", {{"error", std::string(path.status().message())}});
    return 1;
  }
  absl::StatusOr<std::unique_ptr<LedgerStore>> store = LedgerStore::Open(*path);
  if (!store.ok()) {
    log::Error("cannot open the ledger", {{"path", *path},
                                          {"error", std::string(store.status().message())}});
    return 1;
  }
  chmod(path->c_str(), 0600);  // sqlite gives its -wal/-shm files the same mode
  log::Info("ledger open", {{"path", *path}, {"last_seq", (*store)->LatestDeliverySeq()}});

  LedgerServiceImpl service(store->get());
  return server::ServeUntilStopped("ledger", *settings, {&service},
                                   [&service] { service.Shutdown(); });
}

}  // namespace
}  // namespace pocketmail::ledger

int main(int argc, char** argv) { return pocketmail::ledger::Run(argc, argv); }
