#include "services/fetcher/dead_letter_replay.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "services/fetcher/fakes_for_test.h"
#include "services/fetcher/message_pipeline.h"

namespace pocketmail::fetcher {
namespace {

const std::string kName = std::string(64, 'c') + "-0123456789abcdef.eml";

class DeadLetterReplayTest : public ::testing::Test {
 protected:
  DeadLetterReplayTest() : store_(log_), ledger_(log_) {}

  void DeadLetter(const std::string& name) {
    store_.Put("failed/" + name, "From: a@b.test\r\n\r\nx\r\n",
               {{"to", "alice@example.org"}, {"reason", "rejected: 501 5.1.1"}, {"failedms", "1"}});
    auto& row = ledger_.rows["pending/" + name];
    row.set_key("pending/" + name);
    row.set_state(ledgerpb::STATE_DEAD_LETTERED);
  }

  testing::EventLog log_;
  testing::FakeObjectStore store_;
  testing::FakeLedger ledger_;
};

TEST_F(DeadLetterReplayTest, MovesTheObjectBackWithItsOriginalMetadata) {
  DeadLetter(kName);
  DeadLetterReplay replay(store_, ledger_);
  auto out = replay.ReplayOne("failed/" + kName);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(out.key(), "pending/" + kName);
  EXPECT_FALSE(store_.Has("failed/" + kName));
  auto meta = store_.MetadataOf("pending/" + kName);
  EXPECT_EQ(meta["to"], "alice@example.org");
  EXPECT_EQ(meta.count("reason"), 0u);
  EXPECT_EQ(ledger_.rows["pending/" + kName].state(), ledgerpb::STATE_PENDING);
}

TEST_F(DeadLetterReplayTest, RecordsPendingBeforeTheObjectReappears) {
  DeadLetter(kName);
  DeadLetterReplay(store_, ledger_).ReplayOne("pending/" + kName);
  auto& events = log_.events;
  auto at = [&](const std::string& e) {
    return std::find(events.begin(), events.end(), e) - events.begin();
  };
  EXPECT_LT(at("ledger STATE_DEAD_LETTERED->STATE_PENDING"),
            at("copy failed/" + kName + " pending/" + kName));
  EXPECT_LT(at("copy failed/" + kName + " pending/" + kName), at("delete failed/" + kName));
}

TEST_F(DeadLetterReplayTest, AReplayInterruptedAfterTheLedgerStepCanBeRerun) {
  DeadLetter(kName);
  ledger_.rows["pending/" + kName].set_state(ledgerpb::STATE_PENDING);  // step 1 done, then a crash
  auto out = DeadLetterReplay(store_, ledger_).ReplayOne("failed/" + kName);
  EXPECT_TRUE(out.ok()) << out.error();
  EXPECT_TRUE(store_.Has("pending/" + kName));
}

TEST_F(DeadLetterReplayTest, RefusesWhenTheLedgerSaysDelivered) {
  DeadLetter(kName);
  ledger_.rows["pending/" + kName].set_state(ledgerpb::STATE_DONE);
  auto out = DeadLetterReplay(store_, ledger_).ReplayOne("failed/" + kName);
  EXPECT_FALSE(out.ok());
  EXPECT_TRUE(store_.Has("failed/" + kName));
  EXPECT_FALSE(store_.Has("pending/" + kName));
}

TEST_F(DeadLetterReplayTest, UnknownDeadLetterIsAnError) {
  EXPECT_FALSE(DeadLetterReplay(store_, ledger_).ReplayOne("failed/nope.eml").ok());
}

TEST_F(DeadLetterReplayTest, ReplayAllCoversEveryFailedObject) {
  DeadLetter(kName);
  DeadLetter(std::string(64, 'd') + ".eml");
  auto all = DeadLetterReplay(store_, ledger_).ReplayAll();
  EXPECT_EQ(all.replayed(), 2);
  EXPECT_EQ(all.failed(), 0);
  EXPECT_FALSE(store_.Has("failed/" + kName));
}

}  // namespace
}  // namespace pocketmail::fetcher
