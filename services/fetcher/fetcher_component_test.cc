// The settings → FetcherConfig step: defaults, the values derived from the
// settings and the errors an operator sees. Nothing is started.
#include "services/fetcher/fetcher_component.h"

#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/fetcher/fetcher_defaults.h"

namespace pocketmail::fetcher {
namespace {

// The two required settings, plus `env`.
absl::StatusOr<FetcherConfig> Parse(std::map<std::string, std::string> env,
                                    const std::vector<std::string>& args = {}) {
  env.emplace("MAIL_DOMAIN", "example.org");
  env.emplace("R2_BUCKET", "mail");
  absl::StatusOr<config::Settings> settings = config::Settings::LoadFrom(args, env, FetcherSpecs());
  if (!settings.ok()) return settings.status();
  return ParseFetcherConfig(*settings);
}

TEST(FetcherConfig, DefaultsMatchTheSpecs) {
  absl::StatusOr<FetcherConfig> c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->oneshot);
  EXPECT_EQ(c->mail_poll_s, 180);
  EXPECT_EQ(c->scheduler.poll_interval, absl::Seconds(180));
  EXPECT_EQ(c->scheduler.fast_poll_interval, absl::Seconds(3));
  EXPECT_EQ(c->scheduler.active_window, absl::Seconds(300));
  EXPECT_EQ(c->scheduler.concurrency, kDefaultFetchConcurrency);
  EXPECT_EQ(c->scheduler.memory_budget_bytes, int64_t{32} << 20);
  EXPECT_EQ(c->s3.bucket, "mail");
  EXPECT_EQ(c->s3.max_attempts, 3);
  EXPECT_EQ(c->s3.connect_timeout, absl::Seconds(10));
  EXPECT_EQ(c->s3.request_timeout, absl::Seconds(120));
  EXPECT_EQ(c->pipeline.mail_domain, "example.org");
  EXPECT_EQ(c->pipeline.catch_all_localpart, "inbox");
  EXPECT_TRUE(c->pipeline.keep_processed_copy);
  EXPECT_EQ(c->pipeline.retry_base, absl::Seconds(30));
  EXPECT_EQ(c->pipeline.retry_max, absl::Seconds(3600));
  EXPECT_EQ(c->pipeline.probe_delay, absl::Seconds(5));
  EXPECT_EQ(c->pipeline.untyped_failure_max_attempts, 3);
  EXPECT_EQ(c->pipeline.content_mismatch_max_attempts, 3);
  EXPECT_EQ(c->alerts.backlog_age, absl::Hours(3 * 24));
  EXPECT_EQ(c->alerts.pass_failures, 5);
  EXPECT_EQ(c->alerts.command, "");
  EXPECT_EQ(c->wake_listen, "");
}

TEST(FetcherConfig, MailDomainAndBucketAreRequired) {
  for (const char* missing : {"MAIL_DOMAIN", "R2_BUCKET"}) {
    absl::StatusOr<FetcherConfig> c = Parse({{missing, ""}});
    ASSERT_FALSE(c.ok()) << missing;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.status().message(), "MAIL_DOMAIN and R2_BUCKET are required");
  }
}

TEST(FetcherConfig, MaxAttemptsOutsideOneToTenNamesTheSettingAndTheRange) {
  for (const char* value : {"0", "11"}) {
    absl::StatusOr<FetcherConfig> c = Parse({{"R2_MAX_ATTEMPTS", value}});
    ASSERT_FALSE(c.ok()) << value;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("R2_MAX_ATTEMPTS must be 1..10"), absl::string_view::npos)
        << c.status();
  }
  EXPECT_EQ(Parse({{"R2_MAX_ATTEMPTS", "1"}})->s3.max_attempts, 1);
  EXPECT_EQ(Parse({{"R2_MAX_ATTEMPTS", "10"}})->s3.max_attempts, 10);
}

TEST(FetcherConfig, AMalformedNumberNamesItsSetting) {
  for (const char* name :
       {"MAIL_POLL", "FETCH_CONCURRENCY", "FETCH_MEMORY_BUDGET_MB", "RETRY_BASE_S", "RETRY_MAX_S",
        "PROBE_DELAY_S", "FAST_POLL_S", "ACTIVE_WINDOW_S", "UNTYPED_FAILURE_MAX_ATTEMPTS",
        "CONTENT_MISMATCH_MAX_ATTEMPTS", "R2_CONNECT_TIMEOUT_S", "R2_REQUEST_TIMEOUT_S",
        "R2_MAX_ATTEMPTS", "ALERT_DAYS", "ALERT_PASS_FAILURES", "ONESHOT", "KEEP_PROCESSED_COPY"}) {
    absl::StatusOr<FetcherConfig> c = Parse({{name, "soon"}});
    ASSERT_FALSE(c.ok()) << name;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(c.status().message().find(name), absl::string_view::npos) << c.status();
  }
}

TEST(FetcherConfig, EndpointIsTheAccountsUnlessOverridden) {
  EXPECT_EQ(Parse({{"R2_ACCOUNT_ID", "abc123"}})->s3.endpoint, s3::DefaultEndpoint("abc123"));
  EXPECT_EQ(
      Parse({{"R2_ACCOUNT_ID", "abc123"}, {"R2_ENDPOINT", "https://127.0.0.1:9000"}})->s3.endpoint,
      "https://127.0.0.1:9000");
}

TEST(FetcherConfig, S3KeepsTwoIdleConnectionsPerWorker) {
  absl::StatusOr<FetcherConfig> c = Parse({{"FETCH_CONCURRENCY", "5"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheduler.concurrency, 5);
  EXPECT_EQ(c->s3.max_idle_connections, 10);
}

TEST(FetcherConfig, LockAndLeaseAreNamedForTheBucket) {
  absl::StatusOr<FetcherConfig> c = Parse({{"POCKETMAIL_STATE_DIR", "/var/pm"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state_dir, "/var/pm");
  EXPECT_EQ(c->alerts.sentinel_dir, "/var/pm");
  EXPECT_EQ(c->guard.lock_path, "/var/pm/fetcher-mail.lock");
  EXPECT_EQ(c->guard.lease_name, "fetcher:mail");
}

TEST(FetcherConfig, UnitsAreConverted) {
  absl::StatusOr<FetcherConfig> c =
      Parse({{"FETCH_MEMORY_BUDGET_MB", "3"}, {"ALERT_DAYS", "0.5"}, {"RETRY_BASE_S", "1.5"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheduler.memory_budget_bytes, 3 << 20);
  EXPECT_EQ(c->alerts.backlog_age, absl::Hours(12));
  EXPECT_EQ(c->pipeline.retry_base, absl::Milliseconds(1500));
}

TEST(FetcherConfig, PollIntervalsAreClampedNotRefused) {
  absl::StatusOr<FetcherConfig> c =
      Parse({{"MAIL_POLL", "0"}, {"FAST_POLL_S", "-1"}, {"ACTIVE_WINDOW_S", "-5"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mail_poll_s, 0);  // as set, for the start-up log
  EXPECT_EQ(c->scheduler.poll_interval, absl::Seconds(1));
  EXPECT_EQ(c->scheduler.fast_poll_interval, absl::ZeroDuration());
  EXPECT_EQ(c->scheduler.active_window, absl::ZeroDuration());
}

TEST(FetcherConfig, FlagsAndOneshotAreRead) {
  absl::StatusOr<FetcherConfig> c =
      Parse({{"WAKE_LISTEN", "127.0.0.1:8025"}}, {"--oneshot=1", "--keep-processed-copy=0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->oneshot);
  EXPECT_FALSE(c->pipeline.keep_processed_copy);
  EXPECT_EQ(c->wake_listen, "127.0.0.1:8025");
}

TEST(FetcherConfig, ParsingMakesNoStateDir) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/not-made";
  ASSERT_TRUE(Parse({{"POCKETMAIL_STATE_DIR", dir}}).ok());
  struct stat st;
  EXPECT_NE(stat(dir.c_str(), &st), 0);
}

TEST(RouteCacheTtl, NegativeMeansAskEveryTimeAndGarbageIsRefused) {
  auto settings = [](const std::string& value) {
    return *config::Settings::LoadFrom({}, {{"ROUTE_CACHE_S", value}}, FetcherSpecs());
  };
  EXPECT_EQ(*RouteCacheTtl(settings("2.5")), absl::Milliseconds(2500));
  EXPECT_EQ(*RouteCacheTtl(settings("-1")), absl::ZeroDuration());
  absl::StatusOr<absl::Duration> bad = RouteCacheTtl(settings("often"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("ROUTE_CACHE_S"), absl::string_view::npos);
}

}  // namespace
}  // namespace pocketmail::fetcher
