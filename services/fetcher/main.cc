// fetcher: polls pending/ in the R2 bucket and runs each object through the
// pipeline (ledger → GET → router → injector → ledger → move). See
// docs/ARCHITECTURE.md and message_pipeline.h for the ordering contract.
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/config/private_dir.h"
#include "common/config/settings.h"
#include "common/log/log.h"
#include "common/s3/s3_client.h"
#include "common/server/service_host.h"
#include "services/fetcher/drain_scheduler.h"
#include "services/fetcher/fetcher_service.h"
#include "services/fetcher/instance_guard.h"
#include "services/fetcher/message_pipeline.h"
#include "services/fetcher/pipeline_clients.h"
#include "services/fetcher/wake_listener.h"

namespace pocketmail::fetcher {
namespace {

std::vector<config::Spec> FetcherSpecs() {
  return std::vector<config::Spec>(
      {
          {"MAIL_DOMAIN", "", "the mail domain (required); fallback sender is ingest@MAIL_DOMAIN"},
          {"MAIL_POLL", "180", "seconds between polls of pending/ when idle"},
          {"FAST_POLL_S", "3", "seconds between polls for a while after activity (0 = always MAIL_POLL)"},
          {"ACTIVE_WINDOW_S", "300", "how long after the last activity (mail found, wake ping) to poll fast"},
          {"ONESHOT", "0", "1: run one pass, wait for it, and exit (no gRPC server)"},
          {"R2_ACCOUNT_ID", "", "Cloudflare account id (endpoint https://<id>.r2.cloudflarestorage.com)"},
          {"R2_ENDPOINT", "", "S3 endpoint override, https://host[:port]"},
          {"R2_BUCKET", "", "bucket name (required)"},
          {"R2_CA_FILE", "", "extra CA certificate to trust for the endpoint"},
          {"R2_ACCESS_KEY_ID", "", "R2 access key id", /*secret=*/true},
          {"R2_SECRET_ACCESS_KEY", "", "R2 secret access key", /*secret=*/true},
          {"FETCH_CONCURRENCY", "8", "messages processed at once"},
          {"FETCH_MEMORY_BUDGET_MB", "32", "message bodies held in memory at once, summed (one larger message still runs, alone)"},
          {"KEEP_PROCESSED_COPY", "1", "copy delivered objects to processed/ before deleting"},
          {"MAIL_CATCHALL_LOCALPART", "inbox", "where mail without a `to` is delivered"},
          {"ROUTE_CACHE_S", "10", "seconds a router answer is reused for the same recipient (0 = ask every time)"},
          {"RETRY_BASE_S", "30", "first retry delay after a temporary failure (doubles each time)"},
          {"RETRY_MAX_S", "3600", "longest retry delay"},
          {"PROBE_DELAY_S", "5", "wait this long after an ambiguous attempt before probing the mailbox"},
          {"BARE_554_MAX_ATTEMPTS", "3", "attempts for a bare 554 (no enhanced code) before dead-lettering"},
          {"R2_CONNECT_TIMEOUT_S", "10", "S3 connect timeout"},
          {"R2_REQUEST_TIMEOUT_S", "120", "S3 whole-request timeout (a stalled transfer fails after this)"},
          {"POCKETMAIL_STATE_DIR", config::DefaultStateDir(),
           "directory (mode 0700) for the single-instance lock and alert sentinels"},
          {"MAIL_ALERT_CMD", "", "shell command run for alerts; the text is in $MAIL_ALERT_MSG"},
          {"ALERT_DAYS", "3", "alert when the oldest pending object is older than this (days)"},
          {"ALERT_PASS_FAILURES", "5", "alert after this many passes in a row fail to list pending/"},
          {"WAKE_LISTEN", "", "127.0.0.1:PORT for the Worker's signed wake-up ping (off when empty)"},
          {"WAKE_SECRET", "", "HMAC key shared with the Worker's WAKE_SECRET", /*secret=*/true},
      });
}

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("fetcher", argc, argv, FetcherSpecs(), &exit_code);
  if (!settings) return exit_code;
  const config::Settings& s = *settings;
  auto poll = s.GetInt("MAIL_POLL");
  auto oneshot = s.GetBool("ONESHOT");
  auto concurrency = s.GetInt("FETCH_CONCURRENCY");
  auto budget_mb = s.GetInt("FETCH_MEMORY_BUDGET_MB");
  auto keep_copy = s.GetBool("KEEP_PROCESSED_COPY");
  auto retry_base = s.GetDouble("RETRY_BASE_S");
  auto retry_max = s.GetDouble("RETRY_MAX_S");
  auto probe_delay = s.GetDouble("PROBE_DELAY_S");
  auto fast_poll = s.GetDouble("FAST_POLL_S");
  auto active_window = s.GetDouble("ACTIVE_WINDOW_S");
  auto bare_554 = s.GetInt("BARE_554_MAX_ATTEMPTS");
  auto connect_timeout = s.GetDouble("R2_CONNECT_TIMEOUT_S");
  auto request_timeout = s.GetDouble("R2_REQUEST_TIMEOUT_S");
  auto route_cache = s.GetDouble("ROUTE_CACHE_S");
  for (const absl::Status& st : {poll.status(), oneshot.status(), concurrency.status(), budget_mb.status(),
                                 keep_copy.status(), retry_base.status(), retry_max.status(),
                                 probe_delay.status(), bare_554.status(), connect_timeout.status(),
                                 request_timeout.status(), fast_poll.status(), active_window.status(),
                                 route_cache.status()}) {
    if (!st.ok()) {
      log::Error("bad configuration", {{"error", st.ToString()}});
      return 2;
    }
  }
  if (s.Get("MAIL_DOMAIN").empty() || s.Get("R2_BUCKET").empty()) {
    log::Error("bad configuration", {{"error", "MAIL_DOMAIN and R2_BUCKET are required"}});
    return 2;
  }

  s3::ClientOptions s3_options;
  s3_options.endpoint = s.Get("R2_ENDPOINT").empty() ? s3::DefaultEndpoint(s.Get("R2_ACCOUNT_ID"))
                                                     : s.Get("R2_ENDPOINT");
  s3_options.bucket = s.Get("R2_BUCKET");
  s3_options.access_key_id = s.Get("R2_ACCESS_KEY_ID");
  s3_options.secret_access_key = s.Get("R2_SECRET_ACCESS_KEY");
  s3_options.ca_file = s.Get("R2_CA_FILE");
  s3_options.max_idle_connections = static_cast<int>(*concurrency) * 2;
  s3_options.connect_timeout = absl::Seconds(*connect_timeout);
  s3_options.request_timeout = absl::Seconds(*request_timeout);
  auto store = s3::S3Client::Create(s3_options);
  if (!store.ok()) {
    log::Error("cannot create S3 client", {{"error", store.status().ToString()}});
    return 2;
  }

  const std::string runtime_dir = s.Get("POCKETMAIL_RUNTIME_DIR");
  auto ledger = MakeGrpcLedgerClient(server::ConnectToService(runtime_dir, "ledger"));
  auto router = MakeCachingRouterClient(MakeGrpcRouterClient(server::ConnectToService(runtime_dir, "router")),
                                        absl::Seconds(std::max(0.0, *route_cache)));
  auto injector = MakeGrpcInjectorClient(server::ConnectToService(runtime_dir, "injector"));

  PipelineOptions pipeline_options;
  pipeline_options.mail_domain = s.Get("MAIL_DOMAIN");
  pipeline_options.catch_all_localpart = s.Get("MAIL_CATCHALL_LOCALPART");
  pipeline_options.keep_processed_copy = *keep_copy;
  pipeline_options.retry_base = absl::Seconds(*retry_base);
  pipeline_options.retry_max = absl::Seconds(*retry_max);
  pipeline_options.probe_delay = absl::Seconds(*probe_delay);
  pipeline_options.bare_554_max_attempts = static_cast<int>(*bare_554);
  MessagePipeline pipeline(**store, *ledger, *router, *injector, pipeline_options);

  const std::string state_dir = s.Get("POCKETMAIL_STATE_DIR");
  if (absl::Status st = config::EnsurePrivateDir(state_dir, "state dir"); !st.ok()) {
    log::Error("bad state dir", {{"error", st.ToString()}});
    return 2;
  }
  auto alert_days = s.GetDouble("ALERT_DAYS");
  auto alert_failures = s.GetInt("ALERT_PASS_FAILURES");
  if (!alert_days.ok() || !alert_failures.ok()) {
    log::Error("bad configuration", {{"error", (!alert_days.ok() ? alert_days.status() : alert_failures.status()).ToString()}});
    return 2;
  }
  AlertOptions alert_options;
  alert_options.command = s.Get("MAIL_ALERT_CMD");
  alert_options.sentinel_dir = state_dir;
  alert_options.backlog_age = absl::Seconds(*alert_days * 86400);
  alert_options.pass_failures = static_cast<int>(*alert_failures);
  Alerter alerter(alert_options);

  InstanceGuardOptions guard_options;
  guard_options.lock_path = absl::StrCat(state_dir, "/fetcher-", s3_options.bucket, ".lock");
  guard_options.lease_name = absl::StrCat("fetcher:", s3_options.bucket);
  auto guard = InstanceGuard::Acquire(guard_options, *ledger, nullptr);
  if (!guard.ok()) {
    log::Error("cannot become the draining instance", {{"error", guard.status().ToString()}});
    return 1;
  }

  SchedulerOptions scheduler_options;
  scheduler_options.poll_interval = absl::Seconds(std::max<int64_t>(1, *poll));
  scheduler_options.fast_poll_interval = absl::Seconds(std::max(0.0, *fast_poll));
  scheduler_options.active_window = absl::Seconds(std::max(0.0, *active_window));
  scheduler_options.concurrency = static_cast<int>(*concurrency);
  scheduler_options.memory_budget_bytes = *budget_mb << 20;
  scheduler_options.alerter = &alerter;
  scheduler_options.may_drain = [g = guard->get()] { return g->held(); };
  scheduler_options.instance_guard = (*guard)->Describe();
  DrainScheduler scheduler(**store, pipeline, scheduler_options);

  log::Info("starting", {{"endpoint", s3_options.endpoint}, {"bucket", s3_options.bucket},
                         {"poll_s", static_cast<long long>(*poll)}, {"oneshot", *oneshot},
                         {"concurrency", static_cast<long long>(*concurrency)}});
  if (*oneshot) {
    scheduler.Start(/*poll=*/false);
    auto pass = scheduler.DrainNow(/*wait=*/true);
    scheduler.Stop();
    log::Info("oneshot pass done", {{"listed", pass.listed()}, {"delivered", pass.delivered()},
                                    {"retried", pass.retried()}, {"dead_lettered", pass.dead_lettered()},
                                    {"error", pass.error()}});
    return pass.error().empty() ? 0 : 1;
  }

  DeadLetterReplay replay(**store, *ledger);
  FetcherService service(scheduler, replay, **store);
  auto host = server::ServiceHost::Start(server::OptionsFromSettings("fetcher", s), {&service});
  if (!host.ok()) {
    log::Error("cannot start server", {{"error", host.status().ToString()}});
    return 1;
  }
  scheduler.Start(/*poll=*/true);
  std::unique_ptr<WakeListener> wake;
  if (!s.Get("WAKE_LISTEN").empty()) {
    auto started = WakeListener::Start(s.Get("WAKE_LISTEN"), s.Get("WAKE_SECRET"),
                                       [&scheduler](const std::string& key) {
                                         log::Info("wake ping", {{"key", key}});
                                         scheduler.Wake();
                                       });
    if (!started.ok()) {
      log::Error("cannot start wake listener", {{"error", started.status().ToString()}});
      scheduler.Stop();
      return 1;
    }
    wake = std::move(*started);
  }
  (*host)->Wait([&] {
    wake.reset();
    scheduler.Stop();
  });
  return 0;
}

}  // namespace
}  // namespace pocketmail::fetcher

int main(int argc, char** argv) { return pocketmail::fetcher::Run(argc, argv); }
