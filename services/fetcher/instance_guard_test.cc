#include "services/fetcher/instance_guard.h"

#include <sys/file.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <future>

#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "services/fetcher/fakes_for_test.h"

namespace pocketmail::fetcher {
namespace {

class InstanceGuardTest : public ::testing::Test {
 protected:
  InstanceGuardTest() : ledger_(log_) {}
  InstanceGuardOptions Options(const std::string& holder) {
    InstanceGuardOptions o;
    o.lock_path = std::string(std::getenv("TEST_TMPDIR")) + "/" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".lock";
    o.lease_name = "fetcher:mail";
    o.holder_id = holder;
    o.retry_every = absl::Milliseconds(20);
    o.lease_ttl = absl::Milliseconds(300);
    o.clock = &clock_;
    return o;
  }
  static InstanceGuardOptions NoFlock(InstanceGuardOptions o) {
    o.flock_fn = [](int, int) {
      errno = ENOSYS;  // what exFAT answers
      return -1;
    };
    return o;
  }

  // Acquires with `o` on its own clock while the lock is held elsewhere, and
  // checks that it waits retry_every between tries until it gives up.
  void ExpectStandsByRetryingEvery(InstanceGuardOptions o) {
    FakeClock clock;
    o.clock = &clock;
    constexpr int kTries = 3;
    std::atomic<int> tries{0};
    auto waiting = std::async(std::launch::async, [&] {
      return InstanceGuard::Acquire(o, ledger_, [&] { return ++tries > kTries; });
    });
    for (int i = 1; i <= kTries; ++i) {
      EXPECT_TRUE(clock.AwaitWaitsBegun(i));
      EXPECT_EQ(tries.load(), i);  // one try, then a sleep
      clock.Advance(o.retry_every);
    }
    EXPECT_EQ(waiting.get().status().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(clock.waits_begun(), kTries);
  }

  FakeClock clock_;
  testing::EventLog log_;
  testing::FakeLedger ledger_;
};

TEST_F(InstanceGuardTest, UsesFlockWhereTheFilesystemHasIt) {
  auto g = InstanceGuard::Acquire(Options("a"), ledger_, nullptr);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->mechanism(), InstanceGuard::Mechanism::kFlock);
  EXPECT_TRUE(ledger_.lease_holder.empty());
}

TEST_F(InstanceGuardTest, ASecondInstanceWaitsForTheFlock) {
  auto first = InstanceGuard::Acquire(Options("a"), ledger_, nullptr);
  ASSERT_TRUE(first.ok());
  ExpectStandsByRetryingEvery(Options("b"));
  first->reset();  // the first exits; the lock is free
  auto third = InstanceGuard::Acquire(Options("c"), ledger_, nullptr);
  EXPECT_TRUE(third.ok());
}

TEST_F(InstanceGuardTest, FallsBackToALedgerLeaseOnEnosys) {
  auto g = InstanceGuard::Acquire(NoFlock(Options("a")), ledger_, nullptr);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->mechanism(), InstanceGuard::Mechanism::kLease);
  EXPECT_EQ(ledger_.lease_holder, "a");
  EXPECT_NE((*g)->Describe().find("lease"), std::string::npos);
}

TEST_F(InstanceGuardTest, ALeaseHeldElsewhereMakesTheSecondWait) {
  auto first = InstanceGuard::Acquire(NoFlock(Options("a")), ledger_, nullptr);
  ASSERT_TRUE(first.ok());
  ExpectStandsByRetryingEvery(NoFlock(Options("b")));
  first->reset();  // releases the lease
  EXPECT_TRUE(ledger_.lease_holder.empty());
  EXPECT_TRUE(InstanceGuard::Acquire(NoFlock(Options("b")), ledger_, nullptr).ok());
}

TEST_F(InstanceGuardTest, LosingTheLeaseIsNoticedByRenewal) {
  auto g = InstanceGuard::Acquire(NoFlock(Options("a")), ledger_, nullptr);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->held());
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));  // the renewer waits a third of the TTL
  ledger_.lease_holder = "intruder";       // as if our lease had expired and been taken
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(2));  // it renewed, was refused, and waits again
  EXPECT_FALSE((*g)->held());
}

}  // namespace
}  // namespace pocketmail::fetcher
