// What survives a restart or a crash, and schema versioning.
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/sqlite/database.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "services/ledger/ledger_schema.h"
#include "services/ledger/ledger_store.h"
#include "services/ledger/ledger_test_util.h"

namespace pocketmail::ledger {
namespace {

using ledger_testing::BeginFor;
using ledger_testing::FreshPath;
using ledger_testing::kT0;
using ledger_testing::LedgerStoreTest;
using ledger_testing::Step;

TEST(LedgerStoreDurabilityTest, ReopeningTheFileKeepsRowsAndTheSeqCounter) {
  std::string path = FreshPath("reopen.db");
  FakeClock clock(absl::FromUnixMillis(kT0));
  {
    auto store = LedgerStore::Open(path, &clock);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Begin(BeginFor("a")).ok());
    ASSERT_TRUE((*store)->Advance(Step("a", v1::STATE_PENDING, v1::STATE_INJECTING)).ok());
    ASSERT_TRUE((*store)->Advance(Step("a", v1::STATE_INJECTING, v1::STATE_DELIVERED)).ok());
    ASSERT_TRUE((*store)->Begin(BeginFor("b")).ok());
  }
  auto store = LedgerStore::Open(path, &clock);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->LatestDeliverySeq(), 1);
  EXPECT_EQ((*store)->Get("a")->state(), v1::STATE_DELIVERED);
  EXPECT_EQ((*store)->Get("b")->state(), v1::STATE_PENDING);
  ASSERT_TRUE((*store)->Advance(Step("b", v1::STATE_PENDING, v1::STATE_INJECTING)).ok());
  auto b = (*store)->Advance(Step("b", v1::STATE_INJECTING, v1::STATE_DELIVERED));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->seq(), 2);
}

TEST(LedgerStoreDurabilityTest, AnAcknowledgedWriteSurvivesAProcessThatDiesWithoutClosing) {
  std::string path = FreshPath("crash.db");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    FakeClock clock(absl::FromUnixMillis(kT0));
    auto store = LedgerStore::Open(path, &clock);
    if (!store.ok()) _exit(2);
    if (!(*store)->Begin(BeginFor("k")).ok()) _exit(3);
    if (!(*store)->Advance(Step("k", v1::STATE_PENDING, v1::STATE_INJECTING)).ok()) _exit(4);
    if (!(*store)->Advance(Step("k", v1::STATE_INJECTING, v1::STATE_DELIVERED)).ok()) _exit(5);
    _exit(0);  // no destructors: the WAL is never checkpointed or closed cleanly
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto store = LedgerStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto k = (*store)->Get("k");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->state(), v1::STATE_DELIVERED);
  EXPECT_EQ(k->seq(), 1);
}

TEST(LedgerSchemaTest, ReplayHistoryColumnsKeepTotalAttempts) {
  std::string path = FreshPath("history.db");
  FakeClock clock(absl::FromUnixMillis(kT0));
  {
    auto store = LedgerStore::Open(path, &clock);
    ASSERT_TRUE(store.ok());
    LedgerStore& s = **store;
    ASSERT_TRUE(s.Begin(BeginFor("k")).ok());
    ASSERT_TRUE(s.Advance(Step("k", v1::STATE_PENDING, v1::STATE_INJECTING)).ok());
    ASSERT_TRUE(s.Advance(Step("k", v1::STATE_INJECTING, v1::STATE_DEAD_LETTERING)).ok());
    ASSERT_TRUE(s.Advance(Step("k", v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED)).ok());
    ASSERT_TRUE(s.Advance(Step("k", v1::STATE_DEAD_LETTERED, v1::STATE_PENDING)).ok());
    ASSERT_TRUE(s.Advance(Step("k", v1::STATE_PENDING, v1::STATE_INJECTING)).ok());
  }
  auto db = sqlite::Database::Open(path);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt64("SELECT total_attempts FROM messages WHERE key = 'k'"), 2);
  EXPECT_EQ(*(*db)->QueryInt64("SELECT replays FROM messages WHERE key = 'k'"), 1);
  EXPECT_EQ(*(*db)->QueryInt64("SELECT attempts FROM messages WHERE key = 'k'"), 1);
}

TEST(LedgerSchemaTest, FreshDatabaseGetsTheCurrentVersion) {
  auto db = sqlite::Database::Open(":memory:");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(MigrateLedgerSchema(**db).ok());
  EXPECT_EQ(*(*db)->UserVersion(), kLedgerSchemaVersion);
  ASSERT_TRUE(MigrateLedgerSchema(**db).ok());  // idempotent
}

TEST(LedgerSchemaTest, RefusesADatabaseFromANewerBuild) {
  std::string path = FreshPath("newer.db");
  {
    auto db = sqlite::Database::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->SetUserVersion(kLedgerSchemaVersion + 1).ok());
  }
  auto store = LedgerStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace pocketmail::ledger
