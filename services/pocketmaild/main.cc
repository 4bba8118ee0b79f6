// pocketmaild: the four services in one process, for a phone where memory and
// battery count more than isolation. Each service keeps its gRPC API on its
// own socket ($RUNTIME/{ledger,router,injector,fetcher}.sock, reflection and
// health included), so the gateway, grpcurl and pocketmailctl see no
// difference; the fetcher reaches the other three by direct calls instead of
// gRPC. Settings are the union of the four services' (one environment).
// See docs/ARCHITECTURE.md, "One process or four".
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/server/service_host.h"
#include "services/fetcher/fetcher_component.h"
#include "services/injector/injector_component.h"
#include "services/ledger/ledger_component.h"
#include "services/pocketmaild/direct_clients.h"
#include "services/router/router_component.h"

namespace pocketmail::pocketmaild {
namespace {

// Settings two services share (MAIL_DOMAIN, POCKETMAIL_STATE_DIR, ...) appear
// once, with both descriptions.
std::vector<config::Spec> CombinedSpecs() {
  std::vector<config::Spec> merged;
  std::map<std::string, size_t> index;
  for (const auto& specs : {fetcher::FetcherSpecs(), router::RouterSpecs(),
                            injector::InjectorSpecs(), ledger::LedgerSpecs()}) {
    for (const config::Spec& spec : specs) {
      auto [it, fresh] = index.emplace(spec.name, merged.size());
      if (fresh) {
        merged.push_back(spec);
      } else if (merged[it->second].help != spec.help) {
        absl::StrAppend(&merged[it->second].help, "; ", spec.help);
      }
    }
  }
  return merged;
}

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("pocketmaild", argc, argv, CombinedSpecs(), &exit_code);
  if (!settings) return exit_code;
  const config::Settings& s = *settings;

  auto ledger = ledger::LedgerComponent::Create(s);
  if (!ledger.ok()) return server::ExitForStartupError(ledger.status());
  auto router = router::RouterComponent::Create(s);
  if (!router.ok()) return server::ExitForStartupError(router.status());
  auto injector = injector::InjectorComponent::Create(s);
  if (!injector.ok()) return server::ExitForStartupError(injector.status());
  fetcher::FetcherClients clients;
  clients.ledger = DirectLedgerClient((*ledger)->service().core());
  auto route_cache = fetcher::RouteCacheTtl(s);  // the setting keeps its meaning here
  if (!route_cache.ok()) return server::ExitForStartupError(route_cache.status());
  clients.router = fetcher::MakeCachingRouterClient(DirectRouterClient((*router)->service().core()),
                                                    *route_cache);
  clients.injector = DirectInjectorClient((*injector)->service().core());
  auto fetcher = fetcher::FetcherComponent::Create(s, std::move(clients));
  if (!fetcher.ok()) return server::ExitForStartupError(fetcher.status());
  fetcher::FetcherComponent& f = **fetcher;

  if (f.oneshot()) return f.RunOnePass();  // as the fetcher binary does

  server::ServerOptions options = server::OptionsFromSettings("pocketmaild", s);
  options.socket_names = {"ledger", "router", "injector", "fetcher"};
  auto host = server::ServiceHost::Start(options, {&(*ledger)->service(), &(*router)->service(),
                                                   &(*injector)->service(), &f.service()});
  if (!host.ok()) return server::ExitForStartupError(host.status());
  if (absl::Status st = f.Start(); !st.ok()) return server::ExitForStartupError(st);
  // The fetcher stops first: its in-flight messages still reach the others.
  (*host)->Wait([&] {
    f.Stop();
    (*ledger)->BeforeDrain();
  });
  return 0;
}

}  // namespace
}  // namespace pocketmail::pocketmaild

int main(int argc, char** argv) { return pocketmail::pocketmaild::Run(argc, argv); }
