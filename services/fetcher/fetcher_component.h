// The fetcher as a part that can be hosted: its settings, the S3 client, the
// per-message pipeline, the drain scheduler (poll loop, workers, alerts), the
// single-instance guard, the optional wake listener and the gRPC service.
//
// The clients it uses to reach the ledger, router and injector are passed in:
// gRPC over their unix sockets in the fetcher binary (GrpcClients), direct
// calls in the combined binary (services/pocketmaild).
#ifndef POCKETMAIL_SERVICES_FETCHER_FETCHER_COMPONENT_H_
#define POCKETMAIL_SERVICES_FETCHER_FETCHER_COMPONENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/settings.h"
#include "common/s3/s3_client.h"
#include "services/fetcher/alerts.h"
#include "services/fetcher/dead_letter_replay.h"
#include "services/fetcher/drain_scheduler.h"
#include "services/fetcher/fetcher_service.h"
#include "services/fetcher/instance_guard.h"
#include "services/fetcher/message_pipeline.h"
#include "services/fetcher/pipeline_clients.h"
#include "services/fetcher/wake_listener.h"

namespace pocketmail::fetcher {

std::vector<config::Spec> FetcherSpecs();

struct FetcherClients {
  std::unique_ptr<LedgerClient> ledger;
  std::unique_ptr<RouterClient> router;
  std::unique_ptr<InjectorClient> injector;
};

// ROUTE_CACHE_S: how long a router answer is reused (INVALID_ARGUMENT if unparsable).
absl::StatusOr<absl::Duration> RouteCacheTtl(const config::Settings& settings);

// gRPC clients to the services' sockets under POCKETMAIL_RUNTIME_DIR; the
// router's answers are cached for ROUTE_CACHE_S.
absl::StatusOr<FetcherClients> GrpcClients(const config::Settings& settings);

// The fetcher's settings, checked and converted, with the values derived from
// them (S3 idle connections, the instance lock and lease names). Reading it
// touches nothing: Create makes the state dir and takes the lock.
struct FetcherConfig {
  bool oneshot = false;       // ONESHOT
  int64_t mail_poll_s = 180;  // MAIL_POLL as set (the scheduler polls at most once a second)
  std::string state_dir;      // POCKETMAIL_STATE_DIR
  std::string wake_listen;    // WAKE_LISTEN; "" = no wake listener
  std::string wake_secret;    // WAKE_SECRET
  s3::ClientOptions s3;       // checked by S3Client::Create
  PipelineOptions pipeline;
  AlertOptions alerts;
  InstanceGuardOptions guard;
  SchedulerOptions scheduler;  // alerter, may_drain and instance_guard are Create's
};

// INVALID_ARGUMENT names the setting that is malformed or out of range, or
// says MAIL_DOMAIN and R2_BUCKET are required.
absl::StatusOr<FetcherConfig> ParseFetcherConfig(const config::Settings& settings);

class FetcherComponent {
 public:
  // Validates the settings (INVALID_ARGUMENT), builds everything, then waits
  // to become the one draining instance (see instance_guard.h).
  static absl::StatusOr<std::unique_ptr<FetcherComponent>> Create(const config::Settings& settings,
                                                                  FetcherClients clients);
  static absl::StatusOr<std::unique_ptr<FetcherComponent>> Create(FetcherConfig config,
                                                                  FetcherClients clients);
  ~FetcherComponent();

  bool oneshot() const { return oneshot_; }
  FetcherService& service() { return *service_; }

  // ONESHOT: one pass, waited for, without the poll loop or a gRPC server.
  // Returns the process exit code: 0, or 1 when the pass failed.
  int RunOnePass();
  // Starts the poll loop and, when WAKE_LISTEN is set, the wake listener.
  absl::Status Start();
  // Stops both; in-flight messages finish first. Idempotent.
  void Stop();

 private:
  FetcherComponent() = default;

  bool oneshot_ = false;
  std::string wake_listen_;
  std::string wake_secret_;
  FetcherClients clients_;
  std::unique_ptr<s3::S3Client> store_;
  std::unique_ptr<MessagePipeline> pipeline_;
  std::unique_ptr<Alerter> alerter_;
  std::unique_ptr<InstanceGuard> guard_;
  std::unique_ptr<DrainScheduler> scheduler_;
  std::unique_ptr<DeadLetterReplay> replay_;
  std::unique_ptr<FetcherService> service_;
  std::unique_ptr<WakeListener> wake_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_FETCHER_COMPONENT_H_
