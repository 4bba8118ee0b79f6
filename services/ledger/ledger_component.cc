#include "services/ledger/ledger_component.h"

#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/config/private_dir.h"
#include "common/log/log.h"

namespace pocketmail::ledger {

std::vector<config::Spec> LedgerSpecs() {
  return {
      {"POCKETMAIL_STATE_DIR", config::DefaultStateDir(),
       "directory (mode 0700) holding ledger.db"},
      {"LEDGER_DB", "", "explicit path of the ledger database (overrides the state dir)"},
  };
}

absl::StatusOr<LedgerConfig> ParseLedgerConfig(const config::Settings& settings) {
  LedgerConfig config;
  if (std::string explicit_path = settings.Get("LEDGER_DB"); !explicit_path.empty()) {
    config.db_path = explicit_path;
    return config;
  }
  config.state_dir = settings.Get("POCKETMAIL_STATE_DIR");
  if (config.state_dir.empty()) {
    return absl::InvalidArgumentError(
        "cannot prepare the database path: set POCKETMAIL_STATE_DIR or LEDGER_DB (no $HOME to "
        "default to)");
  }
  config.db_path = absl::StrCat(config.state_dir, "/ledger.db");
  return config;
}

absl::StatusOr<std::unique_ptr<LedgerComponent>> LedgerComponent::Create(
    const config::Settings& settings) {
  absl::StatusOr<LedgerConfig> config = ParseLedgerConfig(settings);
  if (!config.ok()) return config.status();
  return Create(*config);
}

absl::StatusOr<std::unique_ptr<LedgerComponent>> LedgerComponent::Create(
    const LedgerConfig& config) {
  if (!config.state_dir.empty()) {
    if (absl::Status st = config::EnsurePrivateDir(config.state_dir, "state dir"); !st.ok()) {
      return absl::Status(st.code(),
                          absl::StrCat("cannot prepare the database path: ", st.message()));
    }
  }
  const std::string& path = config.db_path;
  absl::StatusOr<std::unique_ptr<LedgerStore>> store = LedgerStore::Open(path);
  if (!store.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the ledger ", path, ": ", store.status().message()));
  }
  chmod(path.c_str(), 0600);  // sqlite gives its -wal/-shm files the same mode
  log::Info("ledger open", {{"path", path}, {"last_seq", (*store)->LatestDeliverySeq()}});
  auto component = std::unique_ptr<LedgerComponent>(new LedgerComponent());
  component->store_ = *std::move(store);
  component->service_ = std::make_unique<LedgerServiceImpl>(component->store_.get());
  return component;
}

}  // namespace pocketmail::ledger
