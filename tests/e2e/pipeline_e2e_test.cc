// The whole pipeline, end to end: 200+ messages of mixed sizes (up to 25 MiB)
// through the four separate service processes over their unix sockets (and
// again through the combined pocketmaild, where noted: TEST_P), from
// moto S3 (SigV4 over HTTPS) into real Maddy over LMTP. Each message must land
// in the right mailbox exactly once, byte for byte the original plus the trace
// header; pending/ ends empty and processed/ holds every object.
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "pocketmail/router/v1/router.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

// Recipient → the mailbox it must land in, worked out by hand from the
// routing rules (not by asking the router).
const std::vector<std::pair<std::string, std::string>> kRecipients = {
    {"alice@example.org", "alice@example.org"},              // exact
    {"Bob@Example.ORG", "bob@example.org"},                  // exact, case-insensitive
    {"alice+newsletters@example.org", "alice@example.org"},  // subaddress
    {"postmaster@example.org", "admin@example.org"},         // role alias
    {"abuse@example.org", "admin@example.org"},              // role alias
    {"nobody-here@example.org", "inbox@example.org"},        // unknown → catch-all
    {"carol@example.org", "carol@example.org"},
};

std::string MakeMessage(int n, const std::string& to, size_t body_bytes, std::mt19937& rng) {
  std::string raw = absl::StrFormat(
      "From: Sender %d <sender%d@outside.test>\r\nTo: %s\r\nSubject: message %d\r\n"
      "Date: Tue, 24 Nov 2026 05:00:00 +0000\r\nMessage-ID: <m%d@outside.test>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
      n, n, to, n, n);
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 .,;-";
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  std::string line;
  while (raw.size() < body_bytes) {
    line.clear();
    for (int i = 0; i < 76; ++i) line.push_back(kAlphabet[pick(rng)]);
    // Lines that start with '.' must survive SMTP dot-stuffing.
    if (rng() % 50 == 0) line[0] = '.';
    raw += line;
    raw += "\r\n";
  }
  return raw;
}

// Four processes (false) or the combined pocketmaild (true).
class PipelineE2E : public ::testing::TestWithParam<bool> {
 protected:
  HarnessOptions Options() {
    HarnessOptions options;
    options.mail_store = MailStore::kMaddyLmtp;
    options.combined = GetParam();
    return options;
  }
};

INSTANTIATE_TEST_SUITE_P(ProcessLayout, PipelineE2E, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Combined" : "FourProcesses";
                         });

TEST_P(PipelineE2E, DeliversEveryMessageExactlyOnceIntoTheRightMailbox) {
  auto harness = PipelineHarness::Start(Options());
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;

  std::mt19937 rng(20261124);
  std::vector<size_t> sizes;
  for (int i = 0; i < 190; ++i) sizes.push_back(1024 + rng() % (size_t{64} * 1024));
  for (int i = 0; i < 6; ++i) sizes.push_back((1 + rng() % 3) << 20);
  sizes.push_back(5 << 20);
  sizes.push_back(12 << 20);
  sizes.push_back(25 << 20);
  sizes.push_back((25 << 20) - 4096);

  std::map<std::string, StoredMessage> stored;
  std::map<std::string, std::string> expected_mailbox;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto& [to, mailbox] = kRecipients[i % kRecipients.size()];
    std::string raw = MakeMessage(static_cast<int>(i), to, sizes[i], rng);
    auto m = h.PutPending(raw, to, absl::StrCat("sender", i, "@outside.test"),
                          /*legacy_key=*/i % 40 == 0);
    ASSERT_TRUE(m.ok()) << m.status();
    expected_mailbox[m->key] = mailbox;
    stored[m->key] = std::move(*m);
  }
  ASSERT_EQ(stored.size(), sizes.size());

  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(5)).ok());

  std::map<std::string, int> seen;
  for (const DeliveredMessage& d : h.Delivered()) {
    ++seen[d.trace_key];
    auto it = stored.find(d.trace_key);
    ASSERT_NE(it, stored.end()) << "delivered a message nobody stored: " << d.trace_key;
    EXPECT_EQ(d.mailbox, expected_mailbox[d.trace_key]) << d.trace_key;
    EXPECT_EQ(d.return_path, it->second.from) << d.trace_key;
    // Byte for byte: the trace header, then the original.
    std::string expected = absl::StrCat("X-Pocketmail-Key: ", d.trace_key, "\r\n", it->second.raw);
    EXPECT_TRUE(d.data == expected)
        << d.trace_key << " differs (sizes " << d.data.size() << " vs " << expected.size() << ")";
  }
  for (const auto& [key, m] : stored) {
    EXPECT_EQ(seen[key], 1) << key << " delivered " << seen[key] << " times";
  }

  auto pending = h.ListKeys("pending/");
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
  auto processed = h.ListKeys("processed/");
  ASSERT_TRUE(processed.ok());
  std::set<std::string> processed_set(processed->begin(), processed->end());
  for (const auto& [key, m] : stored) {
    EXPECT_TRUE(processed_set.count("processed/" + key.substr(8))) << key;
  }
}

TEST_P(PipelineE2E, AWorkerRetryOfADeliveredMessageIsNotDeliveredTwice) {
  auto harness = PipelineHarness::Start(Options());
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  std::mt19937 rng(7);
  std::string raw = MakeMessage(1, "alice@example.org", 2048, rng);
  ASSERT_TRUE(h.PutPending(raw, "alice@example.org", "s@outside.test").ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
  // Email Routing retried after we had already deleted the object: the Worker
  // re-puts the same key. The ledger knows it; nothing is injected again.
  ASSERT_TRUE(h.PutPending(raw, "alice@example.org", "s@outside.test").ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
  EXPECT_EQ(h.Delivered().size(), 1u);
}

TEST(OneshotE2E, RunsOnePassAndExits) {
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  ASSERT_TRUE(h.StopService("fetcher").ok());  // the polling one must not drain first
  std::mt19937 rng(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(h.PutPending(MakeMessage(i, "bob@example.org", 2048, rng), "bob@example.org",
                             "s@outside.test")
                    .ok());
  }
  auto status = h.RunFetcherOneshot(absl::Minutes(1));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_EQ(h.Delivered().size(), 3u);
  auto pending = h.ListKeys("pending/");
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

TEST_P(PipelineE2E, ServicesStopGracefullyOnSigterm) {
  auto harness = PipelineHarness::Start(Options());
  ASSERT_TRUE(harness.ok()) << harness.status();
  for (const char* name : {"fetcher", "injector", "router", "ledger"}) {
    EXPECT_TRUE((*harness)->StopService(name).ok()) << name;
  }
}

// The combined binary keeps each service's API on that service's socket.
TEST(CombinedE2E, ServesEachApiOnItsOwnSocket) {
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  options.combined = true;
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  std::mt19937 rng(11);
  ASSERT_TRUE(h.PutPending(MakeMessage(1, "carol@example.org", 2048, rng), "carol@example.org",
                           "s@outside.test")
                  .ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  auto ledger = pocketmail::ledger::v1::Ledger::NewStub(h.Channel("ledger"));
  grpc::ClientContext ledger_ctx;
  pocketmail::ledger::v1::StatsResponse stats;
  ASSERT_TRUE(ledger->Stats(&ledger_ctx, pocketmail::ledger::v1::StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.total(), 1);

  auto router = pocketmail::router::v1::Router::NewStub(h.Channel("router"));
  grpc::ClientContext router_ctx;
  pocketmail::router::v1::ResolveRequest resolve;
  resolve.set_address("Carol+x@example.org");
  pocketmail::router::v1::ResolveResponse route;
  ASSERT_TRUE(router->Resolve(&router_ctx, resolve, &route).ok());
  EXPECT_EQ(route.mailbox(), "carol@example.org");

  auto fetcher = pocketmail::fetcher::v1::Fetcher::NewStub(h.Channel("fetcher"));
  grpc::ClientContext fetcher_ctx;
  pocketmail::fetcher::v1::StatusResponse status;
  ASSERT_TRUE(
      fetcher->Status(&fetcher_ctx, pocketmail::fetcher::v1::StatusRequest(), &status).ok());
  EXPECT_EQ(h.Delivered().size(), 1u);
}

}  // namespace
}  // namespace pocketmail::testing
