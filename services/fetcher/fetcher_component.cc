#include "services/fetcher/fetcher_component.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/config/private_dir.h"
#include "common/log/log.h"
#include "common/server/service_host.h"
#include "services/fetcher/fetcher_defaults.h"

namespace pocketmail::fetcher {

std::vector<config::Spec> FetcherSpecs() {
  return std::vector<config::Spec>({
      {"MAIL_DOMAIN", "", "the mail domain (required); fallback sender is ingest@MAIL_DOMAIN"},
      {"MAIL_POLL", "180", "seconds between polls of pending/ when idle"},
      {"FAST_POLL_S", "3",
       "seconds between polls for a while after activity (0 = always MAIL_POLL)"},
      {"ACTIVE_WINDOW_S", "300",
       "how long after the last activity (mail found, wake ping) to poll fast"},
      {"ONESHOT", "0", "1: run one pass, wait for it, and exit (no gRPC server)"},
      {"R2_ACCOUNT_ID", "",
       "Cloudflare account id (endpoint https://<id>.r2.cloudflarestorage.com)"},
      {"R2_ENDPOINT", "", "S3 endpoint override, https://host[:port]"},
      {"R2_BUCKET", "", "bucket name (required)"},
      {"R2_CA_FILE", "", "extra CA certificate to trust for the endpoint"},
      {"R2_ACCESS_KEY_ID", "", "R2 access key id", /*secret=*/true},
      {"R2_SECRET_ACCESS_KEY", "", "R2 secret access key", /*secret=*/true},
      {"FETCH_CONCURRENCY", absl::StrCat(kDefaultFetchConcurrency), "messages processed at once"},
      {"FETCH_MEMORY_BUDGET_MB", "32",
       "message bodies held in memory at once, summed (one larger message still runs, alone)"},
      {"KEEP_PROCESSED_COPY", "1", "copy delivered objects to processed/ before deleting"},
      {"MAIL_CATCHALL_LOCALPART", "inbox", "where mail without a `to` is delivered"},
      {"ROUTE_CACHE_S", "10",
       "seconds a router answer is reused for the same recipient (0 = ask every time)"},
      {"RETRY_BASE_S", "30", "first retry delay after a temporary failure (doubles each time)"},
      {"RETRY_MAX_S", "3600", "longest retry delay"},
      {"PROBE_DELAY_S", "5",
       "wait this long after an ambiguous attempt before probing the mailbox"},
      {"UNTYPED_FAILURE_MAX_ATTEMPTS", "3",
       "attempts for a 5xx with enhanced code X.0.0 or none (Maddy's untyped internal error) "
       "before dead-lettering"},
      {"CONTENT_MISMATCH_MAX_ATTEMPTS", "3",
       "downloads whose bytes fail the sha256/rawsize check before the object is dead-lettered"},
      {"R2_CONNECT_TIMEOUT_S", "10", "S3 connect timeout"},
      {"R2_REQUEST_TIMEOUT_S", "120",
       "S3 whole-request timeout (a stalled transfer fails after this)"},
      {"R2_MAX_ATTEMPTS", "3",
       "tries per S3 request (1..10): a connect failure, reset before any byte or 5xx is retried "
       "inside the request"},
      {"POCKETMAIL_STATE_DIR", config::DefaultStateDir(),
       "directory (mode 0700) for the single-instance lock and alert sentinels"},
      {"MAIL_ALERT_CMD", "", "shell command run for alerts; the text is in $MAIL_ALERT_MSG"},
      {"ALERT_DAYS", "3", "alert when the oldest pending object is older than this (days)"},
      {"ALERT_PASS_FAILURES", "5", "alert after this many passes in a row fail to list pending/"},
      {"WAKE_LISTEN", "", "127.0.0.1:PORT for the Worker's signed wake-up ping (off when empty)"},
      {"WAKE_SECRET", "", "HMAC key shared with the Worker's WAKE_SECRET", /*secret=*/true},
  });
}

absl::StatusOr<absl::Duration> RouteCacheTtl(const config::Settings& s) {
  auto seconds = s.GetDouble("ROUTE_CACHE_S");
  if (!seconds.ok()) return absl::InvalidArgumentError(seconds.status().ToString());
  return absl::Seconds(std::max(0.0, *seconds));
}

absl::StatusOr<FetcherClients> GrpcClients(const config::Settings& s) {
  auto route_cache = RouteCacheTtl(s);
  if (!route_cache.ok()) return route_cache.status();
  const std::string runtime_dir = s.Get("POCKETMAIL_RUNTIME_DIR");
  FetcherClients clients;
  clients.ledger = MakeGrpcLedgerClient(server::ConnectToService(runtime_dir, "ledger"));
  clients.router = MakeCachingRouterClient(
      MakeGrpcRouterClient(server::ConnectToService(runtime_dir, "router")), *route_cache);
  clients.injector = MakeGrpcInjectorClient(server::ConnectToService(runtime_dir, "injector"));
  return clients;
}

absl::StatusOr<FetcherConfig> ParseFetcherConfig(const config::Settings& s) {
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
  auto untyped_attempts = s.GetInt("UNTYPED_FAILURE_MAX_ATTEMPTS");
  auto mismatch_attempts = s.GetInt("CONTENT_MISMATCH_MAX_ATTEMPTS");
  auto connect_timeout = s.GetDouble("R2_CONNECT_TIMEOUT_S");
  auto request_timeout = s.GetDouble("R2_REQUEST_TIMEOUT_S");
  auto max_attempts = s.GetIntInRange("R2_MAX_ATTEMPTS", 1, 10);
  auto alert_days = s.GetDouble("ALERT_DAYS");
  auto alert_failures = s.GetInt("ALERT_PASS_FAILURES");
  for (const absl::Status& st :
       {poll.status(), oneshot.status(), concurrency.status(), budget_mb.status(),
        keep_copy.status(), retry_base.status(), retry_max.status(), probe_delay.status(),
        untyped_attempts.status(), mismatch_attempts.status(), connect_timeout.status(),
        request_timeout.status(), max_attempts.status(), fast_poll.status(), active_window.status(),
        alert_days.status(), alert_failures.status()}) {
    if (!st.ok()) return absl::InvalidArgumentError(st.ToString());
  }
  if (s.Get("MAIL_DOMAIN").empty() || s.Get("R2_BUCKET").empty()) {
    return absl::InvalidArgumentError("MAIL_DOMAIN and R2_BUCKET are required");
  }

  FetcherConfig c;
  c.oneshot = *oneshot;
  c.mail_poll_s = *poll;
  c.state_dir = s.Get("POCKETMAIL_STATE_DIR");
  c.wake_listen = s.Get("WAKE_LISTEN");
  c.wake_secret = s.Get("WAKE_SECRET");

  c.s3.endpoint = s.Get("R2_ENDPOINT").empty() ? s3::DefaultEndpoint(s.Get("R2_ACCOUNT_ID"))
                                               : s.Get("R2_ENDPOINT");
  c.s3.bucket = s.Get("R2_BUCKET");
  c.s3.access_key_id = s.Get("R2_ACCESS_KEY_ID");
  c.s3.secret_access_key = s.Get("R2_SECRET_ACCESS_KEY");
  c.s3.ca_file = s.Get("R2_CA_FILE");
  c.s3.max_idle_connections = static_cast<int>(*concurrency) * 2;
  c.s3.connect_timeout = absl::Seconds(*connect_timeout);
  c.s3.request_timeout = absl::Seconds(*request_timeout);
  c.s3.max_attempts = static_cast<int>(*max_attempts);

  c.pipeline.mail_domain = s.Get("MAIL_DOMAIN");
  c.pipeline.catch_all_localpart = s.Get("MAIL_CATCHALL_LOCALPART");
  c.pipeline.keep_processed_copy = *keep_copy;
  c.pipeline.retry_base = absl::Seconds(*retry_base);
  c.pipeline.retry_max = absl::Seconds(*retry_max);
  c.pipeline.probe_delay = absl::Seconds(*probe_delay);
  c.pipeline.untyped_failure_max_attempts = static_cast<int>(*untyped_attempts);
  c.pipeline.content_mismatch_max_attempts = static_cast<int>(*mismatch_attempts);

  c.alerts.command = s.Get("MAIL_ALERT_CMD");
  c.alerts.sentinel_dir = c.state_dir;
  c.alerts.backlog_age = absl::Seconds(*alert_days * 86400);
  c.alerts.pass_failures = static_cast<int>(*alert_failures);

  c.guard.lock_path = absl::StrCat(c.state_dir, "/fetcher-", c.s3.bucket, ".lock");
  c.guard.lease_name = absl::StrCat("fetcher:", c.s3.bucket);

  c.scheduler.poll_interval = absl::Seconds(std::max<int64_t>(1, *poll));
  c.scheduler.fast_poll_interval = absl::Seconds(std::max(0.0, *fast_poll));
  c.scheduler.active_window = absl::Seconds(std::max(0.0, *active_window));
  c.scheduler.concurrency = static_cast<int>(*concurrency);
  c.scheduler.memory_budget_bytes = *budget_mb << 20;
  return c;
}

absl::StatusOr<std::unique_ptr<FetcherComponent>> FetcherComponent::Create(
    const config::Settings& settings, FetcherClients clients) {
  absl::StatusOr<FetcherConfig> config = ParseFetcherConfig(settings);
  if (!config.ok()) return config.status();
  return Create(*std::move(config), std::move(clients));
}

absl::StatusOr<std::unique_ptr<FetcherComponent>> FetcherComponent::Create(FetcherConfig c,
                                                                           FetcherClients clients) {
  auto f = std::unique_ptr<FetcherComponent>(new FetcherComponent());
  f->oneshot_ = c.oneshot;
  f->wake_listen_ = c.wake_listen;
  f->wake_secret_ = c.wake_secret;
  f->clients_ = std::move(clients);

  auto store = s3::S3Client::Create(c.s3);
  if (!store.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create S3 client: ", store.status().ToString()));
  }
  f->store_ = *std::move(store);
  f->pipeline_ = std::make_unique<MessagePipeline>(
      *f->store_, *f->clients_.ledger, *f->clients_.router, *f->clients_.injector, c.pipeline);

  if (absl::Status st = config::EnsurePrivateDir(c.state_dir, "state dir"); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad state dir: ", st.ToString()));
  }
  f->alerter_ = std::make_unique<Alerter>(c.alerts);

  auto guard = InstanceGuard::Acquire(c.guard, *f->clients_.ledger, nullptr);
  if (!guard.ok()) {
    return absl::Status(guard.status().code(), absl::StrCat("cannot become the draining instance: ",
                                                            guard.status().ToString()));
  }
  f->guard_ = *std::move(guard);

  c.scheduler.alerter = f->alerter_.get();
  c.scheduler.may_drain = [g = f->guard_.get()] { return g->held(); };
  c.scheduler.instance_guard = f->guard_->Describe();
  f->scheduler_ = std::make_unique<DrainScheduler>(*f->store_, *f->pipeline_, c.scheduler);
  f->replay_ = std::make_unique<DeadLetterReplay>(*f->store_, *f->clients_.ledger);
  f->service_ = std::make_unique<FetcherService>(*f->scheduler_, *f->replay_, *f->store_);

  log::Info("starting", {{"endpoint", c.s3.endpoint},
                         {"bucket", c.s3.bucket},
                         {"poll_s", static_cast<long long>(c.mail_poll_s)},
                         {"oneshot", c.oneshot},
                         {"concurrency", static_cast<long long>(c.scheduler.concurrency)}});
  return f;
}

FetcherComponent::~FetcherComponent() { Stop(); }

int FetcherComponent::RunOnePass() {
  scheduler_->Start(/*poll=*/false);
  auto pass = scheduler_->DrainNow(/*wait=*/true);
  Stop();
  log::Info("oneshot pass done", {{"listed", pass.listed()},
                                  {"delivered", pass.delivered()},
                                  {"retried", pass.retried()},
                                  {"dead_lettered", pass.dead_lettered()},
                                  {"error", pass.error()}});
  return pass.error().empty() ? 0 : 1;
}

absl::Status FetcherComponent::Start() {
  scheduler_->Start(/*poll=*/true);
  if (wake_listen_.empty()) return absl::OkStatus();
  DrainScheduler* scheduler = scheduler_.get();
  auto started =
      WakeListener::Start(wake_listen_, wake_secret_, [scheduler](const std::string& key) {
        log::Info("wake ping", {{"key", key}});
        scheduler->Wake();
      });
  if (!started.ok()) {
    scheduler_->Stop();
    return absl::Status(started.status().code(),
                        absl::StrCat("cannot start wake listener: ", started.status().ToString()));
  }
  wake_ = *std::move(started);
  return absl::OkStatus();
}

void FetcherComponent::Stop() {
  wake_.reset();
  if (scheduler_) scheduler_->Stop();
}

}  // namespace pocketmail::fetcher
