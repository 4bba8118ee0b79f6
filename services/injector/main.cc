// The injector service binary: delivers messages streamed over gRPC into the
// local Maddy (SMTP with AUTH on loopback, or LMTP on a unix socket), and
// answers delivery probes over Maddy's IMAP, until SIGTERM.
#include "common/server/service_host.h"
#include "services/injector/injector_component.h"

namespace pocketmail::injector {
namespace {

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("injector", argc, argv, InjectorSpecs(), &exit_code);
  if (!settings) return exit_code;
  auto injector = InjectorComponent::Create(*settings);
  if (!injector.ok()) return server::ExitForStartupError(injector.status());
  return server::ServeUntilStopped("injector", *settings, {&(*injector)->service()});
}

}  // namespace
}  // namespace pocketmail::injector

int main(int argc, char** argv) { return pocketmail::injector::Run(argc, argv); }
