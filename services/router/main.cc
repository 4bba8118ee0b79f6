// The router service binary: keeps Maddy's account list fresh and answers
// Resolve / ListMailboxes on its unix socket until SIGTERM.
#include "common/server/service_host.h"
#include "services/router/router_component.h"

namespace pocketmail::router {
namespace {

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("router", argc, argv, RouterSpecs(), &exit_code);
  if (!settings) return exit_code;
  auto router = RouterComponent::Create(*settings);
  if (!router.ok()) return server::ExitForStartupError(router.status());
  return server::ServeUntilStopped("router", *settings, {&(*router)->service()});
}

}  // namespace
}  // namespace pocketmail::router

int main(int argc, char** argv) { return pocketmail::router::Run(argc, argv); }
