#include "services/ledger/ledger_component.h"

#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/config/private_dir.h"
#include "common/log/log.h"

namespace pocketmail::ledger {
namespace {

absl::StatusOr<std::string> DatabasePath(const config::Settings& settings) {
  if (std::string explicit_path = settings.Get("LEDGER_DB"); !explicit_path.empty()) {
    return explicit_path;
  }
  std::string dir = settings.Get("POCKETMAIL_STATE_DIR");
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        "set POCKETMAIL_STATE_DIR or LEDGER_DB (no $HOME to default to)");
  }
  if (absl::Status st = config::EnsurePrivateDir(dir, "state dir"); !st.ok()) return st;
  return absl::StrCat(dir, "/ledger.db");
}

}  // namespace

std::vector<config::Spec> LedgerSpecs() {
  return {
      {"POCKETMAIL_STATE_DIR", config::DefaultStateDir(),
       "directory (mode 0700) holding ledger.db"},
      {"LEDGER_DB", "", "explicit path of the ledger database (overrides the state dir)"},
  };
}

absl::StatusOr<std::unique_ptr<LedgerComponent>> LedgerComponent::Create(
    const config::Settings& settings) {
  absl::StatusOr<std::string> path = DatabasePath(settings);
  if (!path.ok()) {
    return absl::Status(path.status().code(), absl::StrCat("cannot prepare the database path: ",
                                                           path.status().message()));
  }
  absl::StatusOr<std::unique_ptr<LedgerStore>> store = LedgerStore::Open(*path);
  if (!store.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the ledger ", *path, ": ", store.status().message()));
  }
  chmod(path->c_str(), 0600);  // sqlite gives its -wal/-shm files the same mode
  log::Info("ledger open", {{"path", *path}, {"last_seq", (*store)->LatestDeliverySeq()}});
  auto component = std::unique_ptr<LedgerComponent>(new LedgerComponent());
  component->store_ = *std::move(store);
  component->service_ = std::make_unique<LedgerServiceImpl>(component->store_.get());
  return component;
}

}  // namespace pocketmail::ledger
