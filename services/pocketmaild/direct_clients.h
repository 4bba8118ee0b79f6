// The fetcher's clients when the four services share one process: direct
// calls into the ledger's, router's and injector's cores (the code behind
// their gRPC services), with the same requests, checks and answers as over
// gRPC but no serialization, sockets, thread hand-offs or gRPC types. The
// ledger client still group-commits (MakeLedgerClient).
#ifndef POCKETMAIL_SERVICES_POCKETMAILD_DIRECT_CLIENTS_H_
#define POCKETMAIL_SERVICES_POCKETMAILD_DIRECT_CLIENTS_H_

#include <memory>

#include "services/fetcher/pipeline_clients.h"
#include "services/injector/injector_service.h"
#include "services/ledger/ledger_service.h"
#include "services/router/router_service.h"

namespace pocketmail::pocketmaild {

// Each core must outlive its client.
std::unique_ptr<fetcher::LedgerClient> DirectLedgerClient(ledger::LedgerCore& core);
std::unique_ptr<fetcher::RouterClient> DirectRouterClient(router::RouterCore& core);
std::unique_ptr<fetcher::InjectorClient> DirectInjectorClient(injector::InjectorCore& core);

}  // namespace pocketmail::pocketmaild

#endif  // POCKETMAIL_SERVICES_POCKETMAILD_DIRECT_CLIENTS_H_
