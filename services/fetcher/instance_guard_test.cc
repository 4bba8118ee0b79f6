#include "services/fetcher/instance_guard.h"

#include <sys/file.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <future>

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
    return o;
  }
  static InstanceGuardOptions NoFlock(InstanceGuardOptions o) {
    o.flock_fn = [](int, int) {
      errno = ENOSYS;  // what exFAT answers
      return -1;
    };
    return o;
  }

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
  std::atomic<int> polls{0};
  auto second = InstanceGuard::Acquire(Options("b"), ledger_, [&] { return ++polls > 5; });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kCancelled);
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
  std::atomic<int> polls{0};
  auto second = InstanceGuard::Acquire(NoFlock(Options("b")), ledger_, [&] { return ++polls > 5; });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kCancelled);
  first->reset();  // releases the lease
  EXPECT_TRUE(ledger_.lease_holder.empty());
  EXPECT_TRUE(InstanceGuard::Acquire(NoFlock(Options("b")), ledger_, nullptr).ok());
}

TEST_F(InstanceGuardTest, LosingTheLeaseIsNoticedByRenewal) {
  auto g = InstanceGuard::Acquire(NoFlock(Options("a")), ledger_, nullptr);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->held());
  ledger_.lease_holder = "intruder";  // as if our lease had expired and been taken
  for (int i = 0; i < 100 && (*g)->held(); ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE((*g)->held());
}

}  // namespace
}  // namespace pocketmail::fetcher
