#include "services/fetcher/drain_scheduler.h"

#include <atomic>
#include <future>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "services/fetcher/fakes_for_test.h"

namespace pocketmail::fetcher {
namespace {

std::string BodyFor(int i) { return absl::StrCat("From: a@b.test\r\n\r\nmessage ", i, "\r\n"); }
std::string KeyFor(int i) { return testing::ContractKey(BodyFor(i), i); }

class DrainSchedulerTest : public ::testing::Test {
 protected:
  DrainSchedulerTest() : store_(log_), ledger_(log_), router_(log_), injector_(log_) {
    options_.mail_domain = "example.org";
  }
  void PutN(int n) {
    for (int i = 0; i < n; ++i) store_.Put(KeyFor(i), BodyFor(i), {{"to", "alice@example.org"}});
  }

  testing::EventLog log_;
  testing::FakeObjectStore store_;
  testing::FakeLedger ledger_;
  testing::FakeRouter router_;
  testing::FakeInjector injector_;
  PipelineOptions options_;
};

TEST_F(DrainSchedulerTest, PassDrainsEveryObjectAcrossListingPages) {
  PutN(25);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 3, 64 << 20, /*list_page_size=*/7});
  scheduler.Start(/*poll=*/false);
  auto pass = scheduler.DrainNow(/*wait=*/true);
  EXPECT_EQ(pass.listed(), 25);
  EXPECT_EQ(pass.delivered(), 25);
  EXPECT_GT(pass.finished_ms(), 0);
  EXPECT_EQ(injector_.envelopes.size(), 25u);
  auto left = store_.ListObjectsV2("pending/", "", 1000, "");
  EXPECT_TRUE(left->objects.empty());
}

TEST_F(DrainSchedulerTest, ASlowMessageDoesNotBlockTheOthers) {
  PutN(6);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> others{0};
  std::atomic<bool> blocked{false};
  injector_.on_inject = [&](const injectorpb::Envelope& e) {
    if (e.key() == KeyFor(0)) {
      blocked = true;
      released.wait();
    } else {
      ++others;
    }
  };
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 2, 64 << 20, 1000});
  scheduler.Start(/*poll=*/false);
  auto waiter = std::async(std::launch::async, [&] { return scheduler.DrainNow(/*wait=*/true); });
  // The other five get through (on the second worker) although key 0 is stuck.
  for (int i = 0; i < 500 && (others < 5 || !blocked); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(others.load(), 5);
  EXPECT_TRUE(blocked.load());
  for (int i = 0; i < 500 && scheduler.Status().in_flight() > 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(scheduler.Status().in_flight(), 1);  // only the stuck one
  release.set_value();
  EXPECT_EQ(waiter.get().delivered(), 6);
}

TEST_F(DrainSchedulerTest, AKeyInFlightIsNotStartedTwice) {
  PutN(1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> entered{false};
  injector_.on_inject = [&](const injectorpb::Envelope&) {
    entered = true;
    released.wait();
  };
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 4, 64 << 20, 1000});
  scheduler.Start(/*poll=*/false);
  auto first = std::async(std::launch::async, [&] { return scheduler.DrainNow(true); });
  for (int i = 0; i < 500 && !entered; ++i) absl::SleepFor(absl::Milliseconds(10));
  auto second = scheduler.DrainNow(/*wait=*/true);  // lists the same key while it is in flight
  EXPECT_EQ(second.listed(), 1);
  EXPECT_EQ(second.skipped(), 1);
  release.set_value();
  first.get();
  EXPECT_EQ(injector_.envelopes.size(), 1u);
}

TEST_F(DrainSchedulerTest, ListingFailureIsRecordedInStatus) {
  store_.list_error = absl::UnavailableError("malformed ListObjectsV2 response");
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 1, 64 << 20, 1000});
  scheduler.Start(/*poll=*/false);
  auto pass = scheduler.DrainNow(true);
  EXPECT_NE(pass.error().find("malformed"), std::string::npos);
  auto status = scheduler.Status();
  EXPECT_EQ(status.pass_errors_total(), 1);
  ASSERT_GE(status.recent_errors_size(), 1);
}

TEST_F(DrainSchedulerTest, StatusReportsPendingCountAfterAPass) {
  PutN(3);
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_TEMPORARY);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 2, 64 << 20, 1000});
  scheduler.Start(/*poll=*/false);
  auto pass = scheduler.DrainNow(true);
  EXPECT_EQ(pass.retried(), 3);
  auto status = scheduler.Status();
  EXPECT_EQ(status.pending_count(), 3);
  EXPECT_EQ(status.passes_total(), 1);
}

TEST_F(DrainSchedulerTest, PendingCountDropsAsMessagesLeavePending) {
  PutN(4);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 2, 64 << 20, 1000});
  scheduler.Start(/*poll=*/false);
  EXPECT_EQ(scheduler.DrainNow(true).delivered(), 4);
  EXPECT_EQ(scheduler.Status().pending_count(), 0);
}

TEST_F(DrainSchedulerTest, PollLoopRunsAFirstPassAtStartup) {
  PutN(2);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 2, 64 << 20, 1000});
  scheduler.Start(/*poll=*/true);
  for (int i = 0; i < 500 && injector_.envelopes.size() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(injector_.envelopes.size(), 2u);
  scheduler.Stop();
}

}  // namespace
}  // namespace pocketmail::fetcher

namespace pocketmail::fetcher {
namespace {

TEST_F(DrainSchedulerTest, PollsFastAfterActivityAndBacksOffWhenIdle) {
  PutN(1);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  SchedulerOptions o{absl::Hours(1), 1, 64 << 20, 1000};
  o.fast_poll_interval = absl::Milliseconds(50);
  o.active_window = absl::Milliseconds(300);
  DrainScheduler scheduler(store_, pipeline, o);
  scheduler.Start(/*poll=*/true);
  // The start-up pass finds mail: the loop now polls every 50 ms.
  for (int i = 0; i < 200 && scheduler.Status().passes_total() < 4; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_GE(scheduler.Status().passes_total(), 4);
  // With nothing found for longer than the window, it falls back to MAIL_POLL.
  absl::SleepFor(absl::Milliseconds(1000));
  int64_t settled = scheduler.Status().passes_total();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(scheduler.Status().passes_total(), settled);
  EXPECT_GT(scheduler.Status().next_pass_ms(), absl::ToUnixMillis(absl::Now() + absl::Minutes(30)));
  scheduler.Stop();
}

TEST_F(DrainSchedulerTest, AWakeStartsAPassAtOnce) {
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, {absl::Hours(1), 1, 64 << 20, 1000});
  scheduler.Start(/*poll=*/true);
  for (int i = 0; i < 200 && scheduler.Status().passes_total() < 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  PutN(1);
  scheduler.Wake();
  for (int i = 0; i < 200 && injector_.envelopes.size() < 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(injector_.envelopes.size(), 1u);
  scheduler.Stop();
}

}  // namespace
}  // namespace pocketmail::fetcher

namespace pocketmail::fetcher {
namespace {

TEST_F(DrainSchedulerTest, MailFoundByDrainNowSwitchesTheIdleLoopToFastPolling) {
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  SchedulerOptions o{absl::Hours(1), 1, 64 << 20, 1000};
  o.fast_poll_interval = absl::Milliseconds(50);
  o.active_window = absl::Seconds(30);
  DrainScheduler scheduler(store_, pipeline, o);
  scheduler.Start(/*poll=*/true);
  for (int i = 0; i < 200 && scheduler.Status().passes_total() < 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  // Idle: the loop sleeps for an hour. An operator's drain finds mail...
  PutN(1);
  scheduler.DrainNow(/*wait=*/true);
  // ...and the next poll is planned at the fast rate, not an hour out.
  PutN(2);
  for (int i = 0; i < 300 && injector_.envelopes.size() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(injector_.envelopes.size(), 2u);
  scheduler.Stop();
}

}  // namespace
}  // namespace pocketmail::fetcher
