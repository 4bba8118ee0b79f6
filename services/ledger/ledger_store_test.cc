// The write path: Begin and Advance through the state machine.
#include "services/ledger/ledger_store.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sqlite/database.h"
#include "gtest/gtest.h"
#include "services/ledger/ledger_test_util.h"
#include "services/ledger/state_machine.h"

namespace pocketmail::ledger {
namespace {

using ledger_testing::BeginFor;
using ledger_testing::FreshPath;
using ledger_testing::kT0;
using ledger_testing::LedgerStoreTest;
using ledger_testing::Step;

TEST_F(LedgerStoreTest, BeginCreatesPendingRowWithMetadata) {
  auto r = store_->Begin(BeginFor("pending/a.eml"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->created);
  const v1::Message& m = r->message;
  EXPECT_EQ(m.key(), "pending/a.eml");
  EXPECT_EQ(m.state(), v1::STATE_PENDING);
  EXPECT_EQ(m.recipient(), "alice@example.org");
  EXPECT_EQ(m.sender(), "bob@example.net");
  EXPECT_EQ(m.size_bytes(), 1234);
  EXPECT_EQ(m.sha256(), "ab12");
  EXPECT_EQ(m.received_ms(), kT0 - 5000);
  EXPECT_EQ(m.subject(), "hello");
  EXPECT_EQ(m.first_seen_ms(), kT0);
  EXPECT_EQ(m.updated_ms(), kT0);
  EXPECT_EQ(m.attempts(), 0);
  EXPECT_EQ(m.seq(), 0);
}

TEST_F(LedgerStoreTest, BeginOnAKnownKeyReturnsTheExistingRowUnchanged) {
  BringTo("k", v1::STATE_DONE);
  clock_.Advance(absl::Milliseconds(60'000));
  v1::BeginRequest again = BeginFor("k", "someone-else@example.org");
  auto r = store_->Begin(again);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->message.state(), v1::STATE_DONE);
  EXPECT_EQ(r->message.recipient(), "alice@example.org");
  EXPECT_EQ(r->message.first_seen_ms(), kT0);
}

TEST_F(LedgerStoreTest, EveryLegalTransitionIsAccepted) {
  const std::pair<v1::State, v1::State> legal[] = {
      {v1::STATE_PENDING, v1::STATE_INJECTING},
      {v1::STATE_PENDING, v1::STATE_DEAD_LETTERING},
      {v1::STATE_INJECTING, v1::STATE_DELIVERED},
      {v1::STATE_INJECTING, v1::STATE_RETRY_WAIT},
      {v1::STATE_INJECTING, v1::STATE_DEAD_LETTERING},
      {v1::STATE_RETRY_WAIT, v1::STATE_INJECTING},
      {v1::STATE_RETRY_WAIT, v1::STATE_DEAD_LETTERING},
      {v1::STATE_RETRY_WAIT, v1::STATE_PENDING},
      {v1::STATE_RETRY_WAIT, v1::STATE_RETRY_WAIT},
      {v1::STATE_DELIVERED, v1::STATE_DONE},
      {v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED},
      {v1::STATE_DEAD_LETTERED, v1::STATE_PENDING},
  };
  int n = 0;
  for (const auto& [from, to] : legal) {
    std::string key = absl::StrCat("legal-", n++);
    BringTo(key, from);
    auto r = store_->Advance(Step(key, from, to));
    ASSERT_TRUE(r.ok()) << key << ": " << r.status();
    EXPECT_EQ(r->state(), to);
  }
}

TEST_F(LedgerStoreTest, IllegalTransitionsAreFailedPreconditionNamingBothStates) {
  const std::pair<v1::State, v1::State> illegal[] = {
      {v1::STATE_PENDING, v1::STATE_DELIVERED},      {v1::STATE_PENDING, v1::STATE_DONE},
      {v1::STATE_INJECTING, v1::STATE_PENDING},      {v1::STATE_DELIVERED, v1::STATE_INJECTING},
      {v1::STATE_DONE, v1::STATE_PENDING},           {v1::STATE_DEAD_LETTERED, v1::STATE_INJECTING},
      {v1::STATE_DEAD_LETTERING, v1::STATE_PENDING}, {v1::STATE_RETRY_WAIT, v1::STATE_DONE},
  };
  int n = 0;
  for (const auto& [from, to] : illegal) {
    std::string key = absl::StrCat("illegal-", n++);
    BringTo(key, from);
    auto r = store_->Advance(Step(key, from, to));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find(StateName(from)), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find(StateName(to)), std::string::npos) << r.status();
    EXPECT_EQ(store_->Get(key)->state(), from);  // unchanged
  }
}

TEST_F(LedgerStoreTest, WrongFromStateIsFailedPreconditionNamingRowAndRequestedState) {
  MustBegin("k");
  auto r = store_->Advance(Step("k", v1::STATE_INJECTING, v1::STATE_DELIVERED));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("it is in PENDING"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("from INJECTING"), std::string::npos) << r.status();
}

TEST_F(LedgerStoreTest, RepeatingAnAppliedTransitionSucceedsWithoutChanges) {
  MustBegin("k");
  v1::Message first = MustAdvance(Step("k", v1::STATE_PENDING, v1::STATE_INJECTING));
  clock_.Advance(absl::Milliseconds(1000));
  v1::Message again = MustAdvance(Step("k", v1::STATE_PENDING, v1::STATE_INJECTING));
  EXPECT_EQ(again.attempts(), 1);
  EXPECT_EQ(again.updated_ms(), first.updated_ms());
  MustAdvance(Step("k", v1::STATE_INJECTING, v1::STATE_DELIVERED));
  v1::Message delivered_again = MustAdvance(Step("k", v1::STATE_INJECTING, v1::STATE_DELIVERED));
  EXPECT_EQ(delivered_again.seq(), 1);
  EXPECT_EQ(store_->LatestDeliverySeq(), 1);
}

TEST_F(LedgerStoreTest, UnknownKeyIsNotFoundAndUnknownStateIsInvalid) {
  EXPECT_EQ(store_->Advance(Step("nope", v1::STATE_PENDING, v1::STATE_INJECTING)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("nope").status().code(), absl::StatusCode::kNotFound);
  MustBegin("k");
  EXPECT_EQ(
      store_->Advance(Step("k", v1::STATE_PENDING, static_cast<v1::State>(99))).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Advance(Step("k", v1::STATE_UNSPECIFIED, v1::STATE_INJECTING)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerStoreTest, InjectingCountsAttemptsAndRecordsTheRoute) {
  MustBegin("k");
  v1::AdvanceRequest inject = Step("k", v1::STATE_PENDING, v1::STATE_INJECTING);
  inject.set_mailbox("alice@example.org");
  inject.set_route_rule("RULE_EXACT");
  v1::Message m = MustAdvance(inject);
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.mailbox(), "alice@example.org");
  EXPECT_EQ(m.route_rule(), "RULE_EXACT");

  v1::AdvanceRequest wait = Step("k", v1::STATE_INJECTING, v1::STATE_RETRY_WAIT);
  wait.set_next_attempt_ms(kT0 + 60'000);
  wait.set_smtp_code(451);
  wait.set_enhanced_code("4.4.5");
  wait.set_smtp_reply("timeout");
  wait.set_error("maddy busy");
  m = MustAdvance(wait);
  EXPECT_EQ(m.next_attempt_ms(), kT0 + 60'000);
  EXPECT_EQ(m.smtp_code(), 451);
  EXPECT_EQ(m.enhanced_code(), "4.4.5");
  EXPECT_EQ(m.smtp_reply(), "timeout");
  EXPECT_EQ(m.last_error(), "maddy busy");

  m = MustAdvance(Step("k", v1::STATE_RETRY_WAIT, v1::STATE_INJECTING));  // no route given
  EXPECT_EQ(m.attempts(), 2);
  EXPECT_EQ(m.next_attempt_ms(), 0);
  EXPECT_EQ(m.mailbox(), "alice@example.org");  // kept
  EXPECT_EQ(m.smtp_code(), 451);                // kept until a new reply arrives
}

TEST_F(LedgerStoreTest, DeliveredAssignsIncreasingSeqAndDeliveredTime) {
  BringTo("a", v1::STATE_INJECTING);
  BringTo("b", v1::STATE_INJECTING);
  clock_.Advance(absl::Milliseconds(500));
  v1::AdvanceRequest deliver = Step("b", v1::STATE_INJECTING, v1::STATE_DELIVERED);
  deliver.set_smtp_code(250);
  deliver.set_smtp_reply("OK");
  deliver.set_delivery_path(v1::DELIVERY_PATH_DIRECT);
  v1::Message b = MustAdvance(deliver);
  EXPECT_EQ(b.seq(), 1);
  EXPECT_EQ(b.delivered_ms(), kT0 + 500);
  EXPECT_EQ(b.smtp_code(), 250);
  EXPECT_EQ(b.delivery_path(), v1::DELIVERY_PATH_DIRECT);
  v1::AdvanceRequest probe = Step("a", v1::STATE_INJECTING, v1::STATE_DELIVERED);
  probe.set_delivery_path(v1::DELIVERY_PATH_PROBE_FOUND);
  v1::Message a = MustAdvance(probe);
  EXPECT_EQ(a.seq(), 2);
  EXPECT_EQ(a.delivery_path(), v1::DELIVERY_PATH_PROBE_FOUND);
  EXPECT_EQ(store_->LatestDeliverySeq(), 2);
}

TEST_F(LedgerStoreTest, DeadLetterStoresTheReasonAndReplayResetsTheRetryBudget) {
  BringTo("k", v1::STATE_INJECTING);
  v1::AdvanceRequest bounce = Step("k", v1::STATE_INJECTING, v1::STATE_DEAD_LETTERING);
  bounce.set_smtp_code(554);
  bounce.set_enhanced_code("5.6.0");
  bounce.set_smtp_reply("From header missing");
  bounce.set_error("permanent rejection");
  v1::Message m = MustAdvance(bounce);
  EXPECT_EQ(m.last_error(), "permanent rejection");
  m = MustAdvance(Step("k", v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED));
  EXPECT_EQ(m.last_error(), "permanent rejection");
  EXPECT_EQ(m.attempts(), 1);

  m = MustAdvance(Step("k", v1::STATE_DEAD_LETTERED, v1::STATE_PENDING));
  EXPECT_EQ(m.state(), v1::STATE_PENDING);
  EXPECT_EQ(m.attempts(), 0);     // the retry counter starts afresh
  EXPECT_EQ(m.smtp_code(), 554);  // the history of why it failed is kept
  EXPECT_EQ(m.enhanced_code(), "5.6.0");
  m = MustAdvance(Step("k", v1::STATE_PENDING, v1::STATE_INJECTING));
  EXPECT_EQ(m.attempts(), 1);
}

TEST_F(LedgerStoreTest, PendingCanBeDeadLetteredDirectlyForBadMetadata) {
  MustBegin("k");
  v1::AdvanceRequest r = Step("k", v1::STATE_PENDING, v1::STATE_DEAD_LETTERING);
  r.set_error("no recipient metadata");
  v1::Message m = MustAdvance(r);
  EXPECT_EQ(m.state(), v1::STATE_DEAD_LETTERING);
  EXPECT_EQ(m.attempts(), 0);
  EXPECT_EQ(m.last_error(), "no recipient metadata");
}

TEST_F(LedgerStoreTest, FreeTextIsBoundedAtAUtf8Boundary) {
  BringTo("k", v1::STATE_INJECTING);
  v1::AdvanceRequest r = Step("k", v1::STATE_INJECTING, v1::STATE_RETRY_WAIT);
  std::string long_reply;
  for (int i = 0; i < 3000; ++i) long_reply += "\xc3\xbc";  // ü, two bytes each
  r.set_smtp_code(451);
  r.set_smtp_reply(long_reply);
  v1::Message m = MustAdvance(r);
  EXPECT_LE(m.smtp_reply().size(), 2048u);
  EXPECT_GT(m.smtp_reply().size(), 2000u);
  EXPECT_EQ(m.smtp_reply().size() % 2, 0u);
}

}  // namespace
}  // namespace pocketmail::ledger

namespace pocketmail::ledger::ledger_testing {
namespace {

TEST_F(LedgerStoreTest, AmbiguityPersistsAcrossRetryWaitUntilAnAttemptSettlesIt) {
  BringTo("k", v1::STATE_INJECTING);
  v1::AdvanceRequest wait = Step("k", v1::STATE_INJECTING, v1::STATE_RETRY_WAIT);
  wait.set_ambiguous(true);
  EXPECT_TRUE(MustAdvance(wait).ambiguous());
  // A probe found it: RETRY_WAIT → DELIVERED settles the ambiguity.
  v1::Message delivered = MustAdvance(Step("k", v1::STATE_RETRY_WAIT, v1::STATE_DELIVERED));
  EXPECT_FALSE(delivered.ambiguous());
  EXPECT_GT(delivered.seq(), 0);
}

TEST_F(LedgerStoreTest, ANewAttemptClearsAmbiguity) {
  BringTo("k", v1::STATE_INJECTING);
  v1::AdvanceRequest wait = Step("k", v1::STATE_INJECTING, v1::STATE_RETRY_WAIT);
  wait.set_ambiguous(true);
  MustAdvance(wait);
  EXPECT_FALSE(MustAdvance(Step("k", v1::STATE_RETRY_WAIT, v1::STATE_INJECTING)).ambiguous());
}

// Apply: group commit. Each op has its own outcome; a failing op is undone to
// its savepoint and the others in the batch still commit.
TEST_F(LedgerStoreTest, ApplyGivesEachOpItsOwnOutcomeAndUndoesOnlyTheFailedOnes) {
  BringTo("delivered", v1::STATE_DELIVERED);
  v1::ApplyRequest batch;
  *batch.add_ops()->mutable_begin() = BeginFor("new");
  *batch.add_ops()->mutable_advance() = Step("new", v1::STATE_PENDING, v1::STATE_INJECTING);
  // Wrong from_state: the row is DELIVERED.
  *batch.add_ops()->mutable_advance() =
      Step("delivered", v1::STATE_INJECTING, v1::STATE_RETRY_WAIT);
  *batch.add_ops()->mutable_advance() = Step("missing", v1::STATE_PENDING, v1::STATE_INJECTING);
  *batch.add_ops()->mutable_advance() = Step("delivered", v1::STATE_DELIVERED, v1::STATE_DONE);
  batch.add_ops();  // empty op
  auto applied = store_->Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_EQ(applied->results_size(), 6);
  EXPECT_EQ(applied->results(0).code(), 0);
  EXPECT_TRUE(applied->results(0).created());
  EXPECT_EQ(applied->results(1).code(), 0);
  EXPECT_EQ(applied->results(1).message().state(), v1::STATE_INJECTING);
  EXPECT_EQ(applied->results(1).message().attempts(), 1);
  EXPECT_EQ(applied->results(2).code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_NE(applied->results(2).error().find("DELIVERED"), std::string::npos)
      << applied->results(2).error();
  EXPECT_FALSE(applied->results(2).has_message());
  EXPECT_EQ(applied->results(3).code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(applied->results(4).code(), 0);
  EXPECT_EQ(applied->results(4).message().state(), v1::STATE_DONE);
  EXPECT_EQ(applied->results(5).code(), static_cast<int>(absl::StatusCode::kInvalidArgument));

  // What committed is exactly what succeeded.
  EXPECT_EQ(store_->Get("new")->state(), v1::STATE_INJECTING);
  EXPECT_EQ(store_->Get("delivered")->state(), v1::STATE_DONE);
  EXPECT_TRUE(absl::IsNotFound(store_->Get("missing").status()));
}

TEST_F(LedgerStoreTest, ApplyDeliveriesInOneBatchGetConsecutiveSequenceNumbers) {
  BringTo("a", v1::STATE_INJECTING);
  BringTo("b", v1::STATE_INJECTING);
  const int64_t before = store_->LatestDeliverySeq();
  v1::ApplyRequest batch;
  *batch.add_ops()->mutable_advance() = Step("a", v1::STATE_INJECTING, v1::STATE_DELIVERED);
  *batch.add_ops()->mutable_advance() = Step("b", v1::STATE_INJECTING, v1::STATE_DELIVERED);
  auto applied = store_->Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->results(0).message().seq(), before + 1);
  EXPECT_EQ(applied->results(1).message().seq(), before + 2);
  EXPECT_EQ(store_->LatestDeliverySeq(), before + 2);  // published: WatchDeliveries wakes
}

TEST_F(LedgerStoreTest, ApplyIsDurableAcrossReopen) {
  const std::string path = FreshPath("apply_reopen.db");
  {
    auto store = LedgerStore::Open(path, &clock_);
    ASSERT_TRUE(store.ok());
    v1::ApplyRequest batch;
    for (const char* key : {"x", "y"}) {
      *batch.add_ops()->mutable_begin() = BeginFor(key);
      *batch.add_ops()->mutable_advance() = Step(key, v1::STATE_PENDING, v1::STATE_INJECTING);
    }
    auto applied = (*store)->Apply(batch);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }
  auto reopened = LedgerStore::Open(path, &clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->Get("x")->state(), v1::STATE_INJECTING);
  EXPECT_EQ((*reopened)->Get("y")->state(), v1::STATE_INJECTING);
}

v1::MessageFacts Facts() {
  v1::MessageFacts facts;
  facts.set_recipient("carol+lists@example.org");
  facts.set_sender("<>");
  facts.set_subject("Undelivered Mail Returned to Sender");
  facts.set_sha256(std::string(64, 'c'));
  facts.set_received_ms(kT0 - 900);
  facts.set_size_bytes(4321);
  return facts;
}

TEST_F(LedgerStoreTest, FactsFromTheDownloadCompleteTheRecordAndLaterStepsKeepThem) {
  v1::BeginRequest listed;  // what the listing knows: the key and the size
  listed.set_key("k");
  listed.set_size_bytes(4000);
  ASSERT_TRUE(store_->Begin(listed).ok());
  v1::AdvanceRequest inject = Step("k", v1::STATE_PENDING, v1::STATE_INJECTING);
  *inject.mutable_facts() = Facts();
  v1::Message m = MustAdvance(inject);
  EXPECT_EQ(m.recipient(), "carol+lists@example.org");
  EXPECT_EQ(m.sender(), "<>");
  EXPECT_EQ(m.subject(), "Undelivered Mail Returned to Sender");
  EXPECT_EQ(m.sha256(), std::string(64, 'c'));
  EXPECT_EQ(m.received_ms(), kT0 - 900);
  EXPECT_EQ(m.size_bytes(), 4321);
  m = MustAdvance(Step("k", v1::STATE_INJECTING, v1::STATE_DELIVERED));
  EXPECT_EQ(m.recipient(), "carol+lists@example.org");
  EXPECT_EQ(m.sha256(), std::string(64, 'c'));
  // An empty fact never erases a known one.
  v1::AdvanceRequest done = Step("k", v1::STATE_DELIVERED, v1::STATE_DONE);
  done.mutable_facts()->set_subject("");
  EXPECT_EQ(MustAdvance(done).subject(), "Undelivered Mail Returned to Sender");
}

TEST_F(LedgerStoreTest, ContentMismatchesAreCountedAndAReplayStartsAfresh) {
  MustBegin("k");
  v1::AdvanceRequest mismatch = Step("k", v1::STATE_PENDING, v1::STATE_RETRY_WAIT);
  mismatch.set_content_mismatch(true);
  mismatch.set_error("content hash mismatch: ...");
  EXPECT_EQ(MustAdvance(mismatch).content_mismatches(), 1);
  // A second mismatch on the retry waits again (RETRY_WAIT → RETRY_WAIT
  // applies each time, with its new time), a third dead-letters.
  v1::AdvanceRequest wait_again = Step("k", v1::STATE_RETRY_WAIT, v1::STATE_RETRY_WAIT);
  wait_again.set_content_mismatch(true);
  wait_again.set_next_attempt_ms(kT0 + 120'000);
  v1::Message waiting = MustAdvance(wait_again);
  EXPECT_EQ(waiting.content_mismatches(), 2);
  EXPECT_EQ(waiting.next_attempt_ms(), kT0 + 120'000);
  v1::AdvanceRequest again = Step("k", v1::STATE_RETRY_WAIT, v1::STATE_DEAD_LETTERING);
  again.set_content_mismatch(true);
  EXPECT_EQ(MustAdvance(again).content_mismatches(), 3);
  MustAdvance(Step("k", v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED));
  EXPECT_EQ(MustAdvance(Step("k", v1::STATE_DEAD_LETTERED, v1::STATE_PENDING)).content_mismatches(),
            0);
  // RETRY_WAIT → RETRY_WAIT on a row in another state is still refused.
  EXPECT_EQ(store_->Advance(Step("k", v1::STATE_RETRY_WAIT, v1::STATE_RETRY_WAIT)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LedgerStoreTest, ALedgerFromTheLastSchemaVersionStillReads) {
  const std::string path = FreshPath("schema_v2.db");
  {
    auto store = LedgerStore::Open(path, &clock_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Begin(BeginFor("old")).ok());
  }
  {
    // Turn it back into what the previous build wrote.
    auto db = sqlite::Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("ALTER TABLE messages DROP COLUMN content_mismatches").ok());
    ASSERT_TRUE((*db)->SetUserVersion(2).ok());
  }
  auto reopened = LedgerStore::Open(path, &clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<v1::Message> old = (*reopened)->Get("old");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->recipient(), "alice@example.org");
  EXPECT_EQ(old->content_mismatches(), 0);
}

}  // namespace
}  // namespace pocketmail::ledger::ledger_testing
