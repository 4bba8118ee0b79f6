#include "common/time/clock.h"

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"

namespace pocketmail {
namespace {

// Something to wait for: a flag under a mutex, with its condition variable.
struct Flag {
  std::mutex mu;
  std::condition_variable cv;
  bool set = false;
  void Set() {
    std::lock_guard<std::mutex> lock(mu);
    set = true;
    cv.notify_all();
  }
  bool WaitOn(Clock& clock, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return clock.WaitFor(lock, cv, timeout, [this] { return set; });
  }
};

// A negative can only be seen by not seeing it for a while.
constexpr auto kNotYet = std::chrono::milliseconds(50);

TEST(RealClockTest, NowIsTheSystemWallClock) {
  EXPECT_LT(absl::AbsDuration(RealClock::Get()->Now() - absl::Now()), absl::Seconds(1));
  EXPECT_EQ(RealClock::Get(), RealClock::Get());
}

TEST(RealClockTest, WaitForReturnsTrueOnceDone) {
  Flag flag;
  std::thread setter([&] { flag.Set(); });
  EXPECT_TRUE(flag.WaitOn(*RealClock::Get(), absl::Seconds(30)));
  setter.join();
}

TEST(RealClockTest, WaitForReturnsFalseAfterTheTimeout) {
  Flag flag;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(flag.WaitOn(*RealClock::Get(), absl::Milliseconds(20)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
}

TEST(RealClockTest, WaitForWithoutATimeoutWaitsForDone) {
  Flag flag;
  std::thread setter([&] { flag.Set(); });
  EXPECT_TRUE(flag.WaitOn(*RealClock::Get(), absl::InfiniteDuration()));
  setter.join();
}

TEST(RealClockTest, SleepForSleeps) {
  const absl::Time start = absl::Now();
  RealClock::Get()->SleepFor(absl::Milliseconds(20));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
}

TEST(FakeClockTest, TimeMovesOnlyWhenTold) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  FakeClock clock(start);
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Seconds(90));
  EXPECT_EQ(clock.Now(), start + absl::Seconds(90));
  clock.Set(start - absl::Hours(1));
  EXPECT_EQ(clock.Now(), start - absl::Hours(1));
}

TEST(FakeClockTest, SleepReturnsOnceTimeIsAdvancedPastItsEnd) {
  FakeClock clock;
  std::promise<void> woke;
  std::thread sleeper([&] {
    clock.SleepFor(absl::Seconds(10));
    woke.set_value();
  });
  ASSERT_TRUE(clock.AwaitWaitsBegun(1));
  clock.Advance(absl::Seconds(9));
  auto woken = woke.get_future();
  EXPECT_EQ(woken.wait_for(kNotYet), std::future_status::timeout);
  clock.Advance(absl::Seconds(1));
  woken.get();
  sleeper.join();
}

TEST(FakeClockTest, SetMovesWallTimeButNotSleeps) {
  FakeClock clock;
  std::promise<void> woke;
  std::thread sleeper([&] {
    clock.SleepFor(absl::Minutes(1));
    woke.set_value();
  });
  ASSERT_TRUE(clock.AwaitWaitsBegun(1));
  clock.Set(clock.Now() + absl::Hours(1));  // a wall-clock jump
  auto woken = woke.get_future();
  EXPECT_EQ(woken.wait_for(kNotYet), std::future_status::timeout);
  clock.Advance(absl::Minutes(1));
  woken.get();
  sleeper.join();
}

TEST(FakeClockTest, WaitForReturnsTrueOnceDoneWithoutTimeMoving) {
  FakeClock clock;
  Flag flag;
  auto waiter = std::async(std::launch::async, [&] { return flag.WaitOn(clock, absl::Hours(1)); });
  ASSERT_TRUE(clock.AwaitWaitsBegun(1));
  flag.Set();
  EXPECT_TRUE(waiter.get());
}

TEST(FakeClockTest, WaitForTimesOutWhenTimeIsAdvancedPastItsTimeout) {
  FakeClock clock;
  Flag flag;
  auto waiter =
      std::async(std::launch::async, [&] { return flag.WaitOn(clock, absl::Seconds(5)); });
  ASSERT_TRUE(clock.AwaitWaitsBegun(1));
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(waiter.wait_for(kNotYet), std::future_status::timeout);
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(waiter.get());
}

TEST(FakeClockTest, AwaitWaitsBegunCountsEveryWaitAndTimesOut) {
  FakeClock clock;
  EXPECT_EQ(clock.waits_begun(), 0);
  EXPECT_FALSE(clock.AwaitWaitsBegun(1, absl::Milliseconds(10)));
  clock.SleepFor(absl::ZeroDuration());
  Flag flag;
  flag.Set();
  EXPECT_TRUE(flag.WaitOn(clock, absl::Seconds(1)));
  EXPECT_EQ(clock.waits_begun(), 2);
  EXPECT_TRUE(clock.AwaitWaitsBegun(2, absl::Milliseconds(10)));
}

}  // namespace
}  // namespace pocketmail
