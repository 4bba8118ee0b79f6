// fetcher: polls pending/ in the R2 bucket and runs each object through the
// pipeline (ledger → GET → router → injector → ledger → move). See
// docs/ARCHITECTURE.md and message_pipeline.h for the ordering contract.
#include "common/server/service_host.h"
#include "services/fetcher/fetcher_component.h"

namespace pocketmail::fetcher {
namespace {

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("fetcher", argc, argv, FetcherSpecs(), &exit_code);
  if (!settings) return exit_code;
  auto clients = GrpcClients(*settings);
  if (!clients.ok()) return server::ExitForStartupError(clients.status());
  auto fetcher = FetcherComponent::Create(*settings, *std::move(clients));
  if (!fetcher.ok()) return server::ExitForStartupError(fetcher.status());
  FetcherComponent& f = **fetcher;

  if (f.oneshot()) return f.RunOnePass();

  auto host =
      server::ServiceHost::Start(server::OptionsFromSettings("fetcher", *settings), {&f.service()});
  if (!host.ok()) return server::ExitForStartupError(host.status());
  if (absl::Status st = f.Start(); !st.ok()) return server::ExitForStartupError(st);
  (*host)->Wait([&] { f.Stop(); });
  return 0;
}

}  // namespace
}  // namespace pocketmail::fetcher

int main(int argc, char** argv) { return pocketmail::fetcher::Run(argc, argv); }
