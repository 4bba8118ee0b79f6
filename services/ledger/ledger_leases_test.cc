#include "gtest/gtest.h"
#include "services/ledger/ledger_test_util.h"

namespace pocketmail::ledger::ledger_testing {
namespace {

v1::AcquireLeaseRequest Lease(const std::string& holder, int64_t ttl_ms = 30000) {
  v1::AcquireLeaseRequest r;
  r.set_name("fetcher:mail");
  r.set_holder(holder);
  r.set_ttl_ms(ttl_ms);
  return r;
}

using LedgerLeaseTest = LedgerStoreTest;

TEST_F(LedgerLeaseTest, AFreeLeaseIsGranted) {
  auto r = store_->AcquireLease(Lease("a"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->granted());
  EXPECT_EQ(r->expires_ms(), kT0 + 30000);
}

TEST_F(LedgerLeaseTest, AHeldLeaseIsRefusedAndNamesItsHolder) {
  ASSERT_TRUE(store_->AcquireLease(Lease("a"))->granted());
  auto r = store_->AcquireLease(Lease("b"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->granted());
  EXPECT_EQ(r->holder(), "a");
}

TEST_F(LedgerLeaseTest, TheHolderRenews) {
  ASSERT_TRUE(store_->AcquireLease(Lease("a"))->granted());
  clock_.Advance(absl::Milliseconds(20000));
  auto r = store_->AcquireLease(Lease("a"));
  EXPECT_TRUE(r->granted());
  EXPECT_EQ(r->expires_ms(), kT0 + 20000 + 30000);
}

TEST_F(LedgerLeaseTest, AnExpiredLeaseCanBeTaken) {
  ASSERT_TRUE(store_->AcquireLease(Lease("a"))->granted());
  clock_.Advance(absl::Milliseconds(31000));
  EXPECT_TRUE(store_->AcquireLease(Lease("b"))->granted());
}

TEST_F(LedgerLeaseTest, OnlyTheHolderReleases) {
  ASSERT_TRUE(store_->AcquireLease(Lease("a"))->granted());
  ASSERT_TRUE(store_->ReleaseLease("fetcher:mail", "b").ok());
  EXPECT_FALSE(store_->AcquireLease(Lease("b"))->granted());
  ASSERT_TRUE(store_->ReleaseLease("fetcher:mail", "a").ok());
  EXPECT_TRUE(store_->AcquireLease(Lease("b"))->granted());
}

TEST_F(LedgerLeaseTest, BadRequestsAreRejected) {
  EXPECT_FALSE(store_->AcquireLease(Lease("")).ok());
  EXPECT_FALSE(store_->AcquireLease(Lease("a", 0)).ok());
  EXPECT_FALSE(store_->AcquireLease(Lease("a", 2LL * 24 * 3600 * 1000)).ok());
}

}  // namespace
}  // namespace pocketmail::ledger::ledger_testing
