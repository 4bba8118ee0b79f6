// The ledger as a part that can be hosted: its settings, the store it opens
// and the gRPC service over it. The ledger binary (main.cc) serves it alone;
// the combined binary (services/pocketmaild) hosts it next to the others.
#ifndef POCKETMAIL_SERVICES_LEDGER_LEDGER_COMPONENT_H_
#define POCKETMAIL_SERVICES_LEDGER_LEDGER_COMPONENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/settings.h"
#include "services/ledger/ledger_service.h"
#include "services/ledger/ledger_store.h"

namespace pocketmail::ledger {

std::vector<config::Spec> LedgerSpecs();

// Where the ledger lives, from its settings.
struct LedgerConfig {
  std::string db_path;
  // Made (mode 0700) before the database is opened; "" when LEDGER_DB is set.
  std::string state_dir;
};

// INVALID_ARGUMENT when neither LEDGER_DB nor POCKETMAIL_STATE_DIR is set.
absl::StatusOr<LedgerConfig> ParseLedgerConfig(const config::Settings& settings);

class LedgerComponent {
 public:
  // Opens (or creates) the database. INVALID_ARGUMENT: bad settings.
  static absl::StatusOr<std::unique_ptr<LedgerComponent>> Create(const config::Settings& settings);
  static absl::StatusOr<std::unique_ptr<LedgerComponent>> Create(const LedgerConfig& config);

  LedgerServiceImpl& service() { return *service_; }
  // Before the server drains: ends WatchDeliveries streams.
  void BeforeDrain() { service_->Shutdown(); }

 private:
  LedgerComponent() = default;
  std::unique_ptr<LedgerStore> store_;
  std::unique_ptr<LedgerServiceImpl> service_;
};

}  // namespace pocketmail::ledger

#endif  // POCKETMAIL_SERVICES_LEDGER_LEDGER_COMPONENT_H_
