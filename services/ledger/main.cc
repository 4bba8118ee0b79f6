// The ledger service binary: opens (or creates) ledger.db and serves the
// pocketmail.ledger.v1.Ledger API on its unix socket until SIGTERM.
#include "common/log/log.h"
#include "common/server/service_host.h"
#include "services/ledger/ledger_component.h"

namespace pocketmail::ledger {
namespace {

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("ledger", argc, argv, LedgerSpecs(), &exit_code);
  if (!settings) return exit_code;
  auto ledger = LedgerComponent::Create(*settings);
  if (!ledger.ok()) return server::ExitForStartupError(ledger.status());
  return server::ServeUntilStopped("ledger", *settings, {&(*ledger)->service()},
                                   [&] { (*ledger)->BeforeDrain(); });
}

}  // namespace
}  // namespace pocketmail::ledger

int main(int argc, char** argv) { return pocketmail::ledger::Run(argc, argv); }
