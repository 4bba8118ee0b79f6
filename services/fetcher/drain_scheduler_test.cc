#include "services/fetcher/drain_scheduler.h"

#include <atomic>
#include <future>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "services/fetcher/fakes_for_test.h"

namespace pocketmail::fetcher {
namespace {

std::string BodyFor(int i) { return absl::StrCat("From: a@b.test\r\n\r\nmessage ", i, "\r\n"); }
std::string KeyFor(int i) { return testing::ContractKey(BodyFor(i), i); }

// Waits, in real time (10 s at most), for the scheduler's workers to do
// something the fakes have no hook for. Time itself moves only by FakeClock.
template <typename Done>
bool Eventually(Done done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class DrainSchedulerTest : public ::testing::Test {
 protected:
  DrainSchedulerTest() : store_(log_), ledger_(log_), router_(log_), injector_(log_) {
    options_.mail_domain = "example.org";
    options_.clock = &clock_;
  }
  void PutN(int n) {
    for (int i = 0; i < n; ++i) store_.Put(KeyFor(i), BodyFor(i), {{"to", "alice@example.org"}});
  }
  // MAIL_POLL an hour: a test that wants a pass asks for it or moves the clock.
  SchedulerOptions Scheduling(int concurrency, int list_page_size = 1000) {
    SchedulerOptions o{absl::Hours(1), concurrency, 64 << 20, list_page_size};
    o.clock = &clock_;
    return o;
  }
  // Moves time on by `d` once the poll loop is waiting, and waits until it has
  // come round to wait again (after a pass, or after re-planning).
  void AdvancePollLoop(absl::Duration d) {
    const int64_t waits = clock_.waits_begun();
    clock_.Advance(d);
    ASSERT_TRUE(clock_.AwaitWaitsBegun(waits + 1));
  }
  int64_t NowMs() { return absl::ToUnixMillis(clock_.Now()); }

  testing::EventLog log_;
  testing::FakeObjectStore store_;
  testing::FakeLedger ledger_;
  testing::FakeRouter router_;
  testing::FakeInjector injector_;
  FakeClock clock_;
  PipelineOptions options_;
};

TEST_F(DrainSchedulerTest, PassDrainsEveryObjectAcrossListingPages) {
  PutN(25);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, Scheduling(3, /*list_page_size=*/7));
  scheduler.Start(/*poll=*/false);
  auto pass = scheduler.DrainNow(/*wait=*/true);
  EXPECT_EQ(pass.listed(), 25);
  EXPECT_EQ(pass.delivered(), 25);
  EXPECT_EQ(pass.finished_ms(), NowMs());
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
  DrainScheduler scheduler(store_, pipeline, Scheduling(2));
  scheduler.Start(/*poll=*/false);
  auto waiter = std::async(std::launch::async, [&] { return scheduler.DrainNow(/*wait=*/true); });
  // The other five get through (on the second worker) although key 0 is stuck.
  EXPECT_TRUE(Eventually([&] { return others == 5 && blocked; }));
  EXPECT_TRUE(Eventually([&] { return scheduler.Status().in_flight() <= 1; }));
  EXPECT_EQ(scheduler.Status().in_flight(), 1);  // only the stuck one
  release.set_value();
  EXPECT_EQ(waiter.get().delivered(), 6);
}

TEST_F(DrainSchedulerTest, AKeyInFlightIsNotStartedTwice) {
  PutN(1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  injector_.on_inject = [&](const injectorpb::Envelope&) {
    entered.set_value();
    released.wait();
  };
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, Scheduling(4));
  scheduler.Start(/*poll=*/false);
  auto first = std::async(std::launch::async, [&] { return scheduler.DrainNow(true); });
  ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
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
  DrainScheduler scheduler(store_, pipeline, Scheduling(1));
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
  DrainScheduler scheduler(store_, pipeline, Scheduling(2));
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
  DrainScheduler scheduler(store_, pipeline, Scheduling(2));
  scheduler.Start(/*poll=*/false);
  EXPECT_EQ(scheduler.DrainNow(true).delivered(), 4);
  EXPECT_EQ(scheduler.Status().pending_count(), 0);
}

TEST_F(DrainSchedulerTest, PollLoopRunsAFirstPassAtStartup) {
  PutN(2);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, Scheduling(2));
  scheduler.Start(/*poll=*/true);
  // Time stands still: only the start-up pass can find them.
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));
  EXPECT_EQ(scheduler.Status().passes_total(), 1);
  EXPECT_TRUE(Eventually([&] { return injector_.envelopes.size() >= 2; }));
  EXPECT_EQ(injector_.envelopes.size(), 2u);
  scheduler.Stop();
}

TEST_F(DrainSchedulerTest, PollsFastAfterActivityAndBacksOffWhenIdle) {
  PutN(1);
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  SchedulerOptions o = Scheduling(1);
  o.fast_poll_interval = absl::Milliseconds(50);
  o.active_window = absl::Milliseconds(300);
  DrainScheduler scheduler(store_, pipeline, o);
  const absl::Time found_mail = clock_.Now();
  scheduler.Start(/*poll=*/true);
  // The start-up pass finds mail: the loop now polls every 50 ms.
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));
  ASSERT_TRUE(Eventually([&] {
    return scheduler.Status().in_flight() == 0;
  }));  // delivered: later passes find nothing
  EXPECT_EQ(scheduler.Status().next_pass_ms(), NowMs() + 50);
  for (int i = 0; i < 3; ++i) AdvancePollLoop(absl::Milliseconds(50));
  EXPECT_EQ(scheduler.Status().passes_total(), 4);
  // With nothing found for the whole window, it falls back to MAIL_POLL.
  while (clock_.Now() - found_mail < o.active_window) AdvancePollLoop(absl::Milliseconds(50));
  EXPECT_EQ(scheduler.Status().next_pass_ms(), NowMs() + absl::ToInt64Milliseconds(absl::Hours(1)));
  const int64_t settled = scheduler.Status().passes_total();
  const int64_t waits = clock_.waits_begun();
  clock_.Advance(absl::Minutes(59));
  EXPECT_FALSE(clock_.AwaitWaitsBegun(waits + 1, absl::Milliseconds(50)));
  EXPECT_EQ(scheduler.Status().passes_total(), settled);
  AdvancePollLoop(absl::Minutes(1));
  EXPECT_EQ(scheduler.Status().passes_total(), settled + 1);
  EXPECT_EQ(scheduler.Status().last_pass().started_ms(), NowMs());
  scheduler.Stop();
}

TEST_F(DrainSchedulerTest, AWakeStartsAPassAtOnce) {
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  DrainScheduler scheduler(store_, pipeline, Scheduling(1));
  scheduler.Start(/*poll=*/true);
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));  // the start-up pass found nothing
  PutN(1);
  scheduler.Wake();  // without time moving
  EXPECT_TRUE(Eventually([&] { return injector_.envelopes.size() >= 1; }));
  EXPECT_EQ(injector_.envelopes.size(), 1u);
  EXPECT_EQ(scheduler.Status().passes_total(), 2);
  scheduler.Stop();
}

TEST_F(DrainSchedulerTest, MailFoundByDrainNowSwitchesTheIdleLoopToFastPolling) {
  MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
  SchedulerOptions o = Scheduling(1);
  o.fast_poll_interval = absl::Milliseconds(50);
  o.active_window = absl::Seconds(30);
  DrainScheduler scheduler(store_, pipeline, o);
  scheduler.Start(/*poll=*/true);
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));
  // Idle: the loop sleeps for an hour. An operator's drain finds mail...
  EXPECT_EQ(scheduler.Status().next_pass_ms(), NowMs() + absl::ToInt64Milliseconds(absl::Hours(1)));
  PutN(1);
  scheduler.DrainNow(/*wait=*/true);
  // ...and the next poll is planned at the fast rate, not an hour out.
  ASSERT_TRUE(clock_.AwaitWaitsBegun(2));
  EXPECT_EQ(scheduler.Status().next_pass_ms(), NowMs() + 50);
  PutN(2);
  AdvancePollLoop(absl::Milliseconds(50));
  EXPECT_TRUE(Eventually([&] { return injector_.envelopes.size() >= 2; }));
  EXPECT_EQ(injector_.envelopes.size(), 2u);
  scheduler.Stop();
}

}  // namespace
}  // namespace pocketmail::fetcher
