// The pipeline on a bad network: 500 messages through the four services while
// every path to the outside world misbehaves, and still each one is delivered
// exactly once.
//
//   fetcher ──▶ fault proxy ──▶ S3 peer     latency, resets (at accept and after a
//                                           request reached S3), black holes, answers
//                                           cut mid-body; S3 500/503 on 20% of requests
//   injector ─▶ fault proxy ──▶ SMTP peer   latency, resets and black holes at
//                                           accept; 421/451 on 20% of transactions
//
// The SMTP faults are the unambiguous kind (the peer answers 4xx instead of
// delivering, or no session ever starts): a connection lost after the final "."
// can only be resolved by the delivery probe, which this test does not cover.
// Prints one summary line on stdout:
//   fault-test: messages=500 faults=N lost=0 duplicates=0
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/peers/fault_proxy/fault_proxy.h"
#include "tests/peers/s3/s3_peer.h"

namespace pocketmail::testing {
namespace {

constexpr int kMessages = 500;

// Recipient → the mailbox the router must pick (see pipeline_e2e_test.cc).
const std::vector<std::pair<std::string, std::string>> kRecipients = {
    {"alice@example.org", "alice@example.org"},
    {"Bob@Example.ORG", "bob@example.org"},
    {"alice+lists@example.org", "alice@example.org"},
    {"postmaster@example.org", "admin@example.org"},
    {"nobody-here@example.org", "inbox@example.org"},
    {"carol@example.org", "carol@example.org"},
};

// What each path suffers. Percentages are deterministic (every Nth chance).
// Black holes only at accept: one that swallows an answer mid-request is met only
// by the S3 client's whole-request timeout (120 s), which the fetcher cannot set.
constexpr char kS3ProxyFaults[] =
    "latency_ms=30 reset_pct=3 reset_where=any blackhole_pct=2 blackhole_where=accept "
    "cut_pct=4 cut_after_bytes=1500";
constexpr char kS3PeerFaults[] = R"({"error_pct": 20, "error_codes": [500, 503]})";
// SMTP connections fail only at accept: a reset or cut mid-session could fall
// after the final "." (ambiguous until the delivery probe resolves it).
constexpr char kSmtpProxyFaults[] =
    "latency_ms=10 reset_pct=10 reset_where=accept blackhole_pct=5 blackhole_where=accept";
// The SMTP peer takes one stage and code at a time; the test turns through these.
const std::vector<std::string> kSmtpPeerFaults = {
    "fail_pct=20 fail_code=451 fail_stage=data",
    "fail_pct=20 fail_code=421 fail_stage=mail",
    "fail_pct=20 fail_code=451 fail_stage=rcpt",
    "fail_pct=20 fail_code=421 fail_stage=data",
};

// The services give up on a black-holed connection this fast, and retry soon.
const std::map<std::string, std::string> kServiceEnv = {
    {"MAIL_INJECT_TIMEOUT_S", "3"},  // each SMTP command (connect: min(this, 10 s))
    {"RETRY_BASE_S", "0.2"},
    {"RETRY_MAX_S", "2"},
    {"FETCH_CONCURRENCY", "8"},
    // No setting shortens the fetcher's S3 timeouts (connect 10 s, which covers
    // the TLS handshake a black hole never answers; whole request 120 s).
};

std::string MakeMessage(int n, const std::string& to, size_t bytes, std::mt19937& rng) {
  std::string raw = absl::StrFormat(
      "From: Sender %d <sender%d@outside.test>\r\nTo: %s\r\nSubject: fault test %d\r\n"
      "Date: Tue, 24 Nov 2026 05:00:00 +0000\r\nMessage-ID: <fault%d@outside.test>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
      n, n, to, n, n);
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 .,;-";
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  while (raw.size() < bytes) {
    std::string line;
    for (int i = 0; i < 72; ++i) line.push_back(kAlphabet[pick(rng)]);
    if (rng() % 40 == 0) line[0] = '.';  // dot-stuffing must survive the faults too
    raw += line + "\r\n";
  }
  return raw;
}

int PortOf(const std::string& endpoint) {  // "https://127.0.0.1:PORT"
  int port = 0;
  absl::SimpleAtoi(endpoint.substr(endpoint.rfind(':') + 1), &port);
  return port;
}

int64_t StatOr0(const absl::StatusOr<std::map<std::string, int64_t>>& stats,
                const std::string& name) {
  if (!stats.ok()) return 0;
  auto it = stats->find(name);
  return it == stats->end() ? 0 : it->second;
}

TEST(FaultTest, EveryMessageArrivesExactlyOnceThroughABadNetwork) {
  const absl::Time test_start = absl::Now();
  HarnessOptions options;
  options.start_services = false;
  // FAULT_COMBINED=1: the combined pocketmaild instead of four processes.
  const char* combined = std::getenv("FAULT_COMBINED");
  options.combined = combined != nullptr && std::string(combined) == "1";
  auto started = PipelineHarness::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<PipelineHarness> harness = *std::move(started);
  PipelineHarness& h = *harness;
  const std::string s3_endpoint = h.s3_env().at("R2_ENDPOINT");
  const std::string s3_ca = h.s3_env().at("R2_CA_FILE");

  auto s3_proxy = FaultProxy::Start(PortOf(s3_endpoint));
  ASSERT_TRUE(s3_proxy.ok()) << s3_proxy.status();
  auto smtp_proxy = FaultProxy::Start(h.smtp_port());
  ASSERT_TRUE(smtp_proxy.ok()) << smtp_proxy.status();

  // The mail is in the bucket before anything goes wrong (the Worker's side is
  // not under test here).
  std::mt19937 rng(20261124);
  std::map<std::string, std::string> expected_mailbox;  // key → mailbox
  for (int i = 0; i < kMessages; ++i) {
    const auto& [to, mailbox] = kRecipients[i % kRecipients.size()];
    std::string raw = MakeMessage(i, to, 1024 + rng() % (size_t{6} * 1024), rng);
    auto m = h.PutPending(raw, to, absl::StrCat("sender", i, "@outside.test"));
    ASSERT_TRUE(m.ok()) << m.status();
    expected_mailbox[m->key] = mailbox;
  }
  ASSERT_EQ(expected_mailbox.size(), static_cast<size_t>(kMessages));

  ASSERT_TRUE((*s3_proxy)->Set(kS3ProxyFaults).ok());
  ASSERT_TRUE((*smtp_proxy)->Set(kSmtpProxyFaults).ok());
  ASSERT_TRUE(SetS3PeerFaults(s3_endpoint, s3_ca, kS3PeerFaults).ok());
  ASSERT_TRUE(h.SmtpControl("SET " + kSmtpPeerFaults[0]).ok());

  h.SetServiceEnv("R2_ENDPOINT", absl::StrCat("https://127.0.0.1:", (*s3_proxy)->port()));
  h.SetServiceEnv("MAIL_INJECT_PORT", std::to_string((*smtp_proxy)->port()));
  for (const auto& [name, value] : kServiceEnv) h.SetServiceEnv(name, value);
  for (const char* name : PipelineHarness::kServices) {
    ASSERT_TRUE(h.StartService(name).ok()) << name;
  }

  // Turn through the SMTP peer's fault stages while the fetcher drains.
  std::atomic<bool> draining{true};
  std::thread rotate([&] {
    for (size_t i = 1; draining; ++i) {
      for (int t = 0; t < 15 && draining; ++t) absl::SleepFor(absl::Milliseconds(100));
      if (draining) h.SmtpControl("SET " + kSmtpPeerFaults[i % kSmtpPeerFaults.size()]);
    }
  });

  // Drain until a pass completes and finds pending/ empty.
  auto fetcher = fetcher::v1::Fetcher::NewStub(h.Channel("fetcher"));
  const absl::Time deadline = absl::Now() + absl::Minutes(8);
  bool empty = false;
  int passes = 0;
  while (!empty && absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
    fetcher::v1::DrainNowRequest request;
    request.set_wait(true);
    fetcher::v1::DrainNowResponse response;
    grpc::Status s = fetcher->DrainNow(&ctx, request, &response);
    ++passes;
    if (!s.ok()) {
      std::fprintf(stderr, "[fault] DrainNow: %s\n", s.error_message().c_str());
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    const auto& p = response.pass();
    std::fprintf(stderr,
                 "[fault] pass %d at %.0fs: listed=%d delivered=%d retried=%d "
                 "dead_lettered=%d skipped=%d error=%s\n",
                 passes, absl::ToDoubleSeconds(absl::Now() - test_start), p.listed(), p.delivered(),
                 p.retried(), p.dead_lettered(), p.skipped(), p.error().c_str());
    empty = p.error().empty() && p.listed() == 0;
    if (!empty && p.delivered() == 0 && p.retried() == 0) absl::SleepFor(absl::Milliseconds(200));
  }
  draining = false;
  rotate.join();
  const absl::Duration drain_time = absl::Now() - test_start;

  // Faults off; count what fired on every path.
  auto s3_proxy_stats = (*s3_proxy)->Stats();
  auto smtp_proxy_stats = (*smtp_proxy)->Stats();
  auto s3_peer_stats_body = S3PeerStats(s3_endpoint, s3_ca);
  ASSERT_TRUE(s3_peer_stats_body.ok()) << s3_peer_stats_body.status();
  auto s3_peer_stats = ParseS3PeerStats(*s3_peer_stats_body);
  auto smtp_reply = h.SmtpControl("STATS");
  ASSERT_TRUE(smtp_reply.ok()) << smtp_reply.status();
  ASSERT_TRUE(SetS3PeerFaults(s3_endpoint, s3_ca, "{}").ok());
  ASSERT_TRUE((*s3_proxy)->Reset().ok());
  ASSERT_TRUE((*smtp_proxy)->Reset().ok());
  ASSERT_TRUE(h.SmtpControl("RESET").ok());
  ASSERT_TRUE(s3_proxy_stats.ok() && smtp_proxy_stats.ok() && s3_peer_stats.ok());
  int64_t smtp_peer_faults = 0;
  for (absl::string_view kv : absl::StrSplit(*smtp_reply, ' ')) {
    if (absl::ConsumePrefix(&kv, "faults=")) absl::SimpleAtoi(kv, &smtp_peer_faults);
  }
  const int64_t faults = StatOr0(s3_proxy_stats, "faults") + StatOr0(smtp_proxy_stats, "faults") +
                         StatOr0(s3_peer_stats, "FAULTS") + smtp_peer_faults;
  std::fprintf(
      stderr,
      "[fault] s3 proxy: resets=%lld blackholes=%lld cuts=%lld connections=%lld; "
      "s3 peer errors=%lld; smtp proxy: resets=%lld blackholes=%lld connections=%lld; "
      "smtp peer 4xx=%lld (%s); drained in %.1fs over %d passes\n",
      (long long)StatOr0(s3_proxy_stats, "resets"),
      (long long)StatOr0(s3_proxy_stats, "blackholes"), (long long)StatOr0(s3_proxy_stats, "cuts"),
      (long long)StatOr0(s3_proxy_stats, "connections"),
      (long long)StatOr0(s3_peer_stats, "FAULTS"), (long long)StatOr0(smtp_proxy_stats, "resets"),
      (long long)StatOr0(smtp_proxy_stats, "blackholes"),
      (long long)StatOr0(smtp_proxy_stats, "connections"), (long long)smtp_peer_faults,
      smtp_reply->c_str(), absl::ToDoubleSeconds(drain_time), passes);

  // What arrived, by trace key.
  std::map<std::string, int> seen;
  int64_t lost = 0, duplicates = 0, strangers = 0, misrouted = 0;
  for (const DeliveredMessage& m : h.Delivered()) {
    auto it = expected_mailbox.find(m.trace_key);
    if (it == expected_mailbox.end()) {
      ++strangers;
      continue;
    }
    if (m.mailbox != it->second) ++misrouted;
    ++seen[m.trace_key];
  }
  for (const auto& [key, mailbox] : expected_mailbox) {
    auto it = seen.find(key);
    if (it == seen.end()) {
      ++lost;
      std::fprintf(stderr, "[fault] lost %s\n", key.c_str());
    } else if (it->second > 1) {
      duplicates += it->second - 1;
      std::fprintf(stderr, "[fault] %s delivered %d times\n", key.c_str(), it->second);
    }
  }
  std::printf("fault-test: %smessages=%d faults=%lld lost=%lld duplicates=%lld\n",
              options.combined ? "combined " : "", kMessages, static_cast<long long>(faults),
              static_cast<long long>(lost), static_cast<long long>(duplicates));
  std::fflush(stdout);

  EXPECT_TRUE(empty) << "pending/ was not drained in time";
  EXPECT_GT(faults, 0);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(strangers, 0);
  EXPECT_EQ(misrouted, 0);
  auto pending = h.ListKeys("pending/");
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_TRUE(pending->empty()) << pending->size() << " left in pending/";
  auto failed = h.ListKeys("failed/");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(failed->empty()) << failed->size() << " dead-lettered";

  harness.reset();  // services stop before the proxies in front of their peers go
}

}  // namespace
}  // namespace pocketmail::testing
