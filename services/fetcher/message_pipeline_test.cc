#include "services/fetcher/message_pipeline.h"

#include <algorithm>

#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "services/fetcher/fakes_for_test.h"

namespace pocketmail::fetcher {
namespace {

using testing::EventLog;

const std::string kBody = "From: bob@outside.test\r\nSubject: hi\r\n\r\nhi\r\n";
const std::string kKey = testing::ContractKey(kBody);
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

class MessagePipelineTest : public ::testing::Test {
 protected:
  MessagePipelineTest() : store_(log_), ledger_(log_), router_(log_), injector_(log_) {
    options_.mail_domain = "example.org";
    options_.retry_base = absl::Seconds(30);
    options_.clock = &clock_;
    options_.jitter = [] { return 0.5; };  // delay factor exactly 1.0
  }

  ItemResult Run(const std::string& key = kKey) {
    MessagePipeline pipeline(store_, ledger_, router_, injector_, options_);
    return pipeline.Process({key, 10, kNow, "etag"});
  }

  void PutMail(const std::string& key = kKey,
               std::map<std::string, std::string> meta = {{"to", "alice@example.org"},
                                                          {"from", "bob@outside.test"}}) {
    store_.Put(key, kBody, std::move(meta));
  }

  // Index of an event in the log, or -1.
  int At(const std::string& event) {
    auto it = std::find(log_.events.begin(), log_.events.end(), event);
    return it == log_.events.end() ? -1 : static_cast<int>(it - log_.events.begin());
  }

  EventLog log_;
  testing::FakeObjectStore store_;
  testing::FakeLedger ledger_;
  testing::FakeRouter router_;
  testing::FakeInjector injector_;
  FakeClock clock_{kNow};
  PipelineOptions options_;
};

TEST_F(MessagePipelineTest, DeliversInTheDurableOrder) {
  PutMail();
  ItemResult r = Run();
  EXPECT_EQ(r.outcome, ItemOutcome::kDelivered) << r.detail;
  std::string processed = "processed/" + kKey.substr(8);
  // Each side effect only after the ledger recorded the state that allows it.
  EXPECT_LT(At("ledger begin " + kKey), At("get " + kKey));
  EXPECT_LT(At("get " + kKey), At("resolve alice@example.org"));
  EXPECT_LT(At("ledger STATE_PENDING->STATE_INJECTING"), At("inject " + kKey));
  EXPECT_LT(At("inject " + kKey), At("ledger STATE_INJECTING->STATE_DELIVERED"));
  EXPECT_LT(At("ledger STATE_INJECTING->STATE_DELIVERED"), At("copy " + kKey + " " + processed));
  EXPECT_LT(At("copy " + kKey + " " + processed), At("delete " + kKey));
  EXPECT_LT(At("delete " + kKey), At("ledger STATE_DELIVERED->STATE_DONE"));
  EXPECT_FALSE(store_.Has(kKey));
  EXPECT_TRUE(store_.Has(processed));
  EXPECT_EQ(ledger_.rows[kKey].delivery_path(), ledgerpb::DELIVERY_PATH_DIRECT);
}

TEST_F(MessagePipelineTest, EnvelopeUsesOriginalSenderAndRoutedMailbox) {
  PutMail();
  Run();
  ASSERT_EQ(injector_.envelopes.size(), 1u);
  EXPECT_EQ(injector_.envelopes[0].mail_from(), "bob@outside.test");
  EXPECT_EQ(injector_.envelopes[0].rcpt_to(), "alice@example.org");
  EXPECT_EQ(injector_.envelopes[0].key(), kKey);
}

TEST_F(MessagePipelineTest, WithoutProcessedCopyOnlyDeletes) {
  options_.keep_processed_copy = false;
  PutMail();
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_FALSE(store_.Has("processed/" + kKey.substr(8)));
  EXPECT_FALSE(store_.Has(kKey));
}

TEST_F(MessagePipelineTest, AlreadyDeliveredObjectIsRemovedNotReinjected) {
  PutMail();
  ledger_.rows[kKey].set_key(kKey);
  ledger_.rows[kKey].set_state(ledgerpb::STATE_DONE);
  EXPECT_EQ(Run().outcome, ItemOutcome::kSkipped);
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_FALSE(store_.Has(kKey));
}

TEST_F(MessagePipelineTest, DeliveredButNotMovedFinishesTheMove) {
  PutMail();
  ledger_.rows[kKey].set_key(kKey);
  ledger_.rows[kKey].set_state(ledgerpb::STATE_DELIVERED);
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_DONE);
}

// A row left in INJECTING by a crash, old enough that any commit in flight
// at the server has finished.
void MarkInterrupted(testing::FakeLedger& ledger) {
  ledger.rows[kKey].set_key(kKey);
  ledger.rows[kKey].set_state(ledgerpb::STATE_INJECTING);
  ledger.rows[kKey].set_mailbox("alice@example.org");
  ledger.rows[kKey].set_updated_ms(absl::ToUnixMillis(kNow - absl::Minutes(1)));
}

TEST_F(MessagePipelineTest, InterruptedInjectionFoundByTheProbeIsNotInjectedAgain) {
  PutMail();
  MarkInterrupted(ledger_);
  injector_.probe.set_result(injectorpb::PROBE_RESULT_FOUND);
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_TRUE(log_.Contains("probe " + kKey + " alice@example.org"));
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_DONE);
  EXPECT_EQ(ledger_.rows[kKey].delivery_path(), ledgerpb::DELIVERY_PATH_PROBE_FOUND);
}

TEST_F(MessagePipelineTest, InterruptedInjectionNotFoundByTheProbeIsInjected) {
  PutMail();
  MarkInterrupted(ledger_);
  injector_.probe.set_result(injectorpb::PROBE_RESULT_NOT_FOUND);
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_EQ(injector_.envelopes.size(), 1u);
  EXPECT_EQ(ledger_.rows[kKey].delivery_path(), ledgerpb::DELIVERY_PATH_PROBED_AND_INJECTED);
}

TEST_F(MessagePipelineTest, WithoutAProbeForTheMailboxItIsReinjectedAndRecordedAsSuch) {
  PutMail();
  MarkInterrupted(ledger_);
  injector_.probe.set_result(injectorpb::PROBE_RESULT_NO_PROBE);
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_EQ(injector_.envelopes.size(), 1u);
  EXPECT_EQ(ledger_.rows[kKey].delivery_path(), ledgerpb::DELIVERY_PATH_REINJECTED);
}

TEST_F(MessagePipelineTest, AFailedProbeLeavesTheMessageAmbiguousAndUninjected) {
  PutMail();
  MarkInterrupted(ledger_);
  injector_.probe.set_result(injectorpb::PROBE_RESULT_FAILED);
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_TRUE(ledger_.rows[kKey].ambiguous());
  // Next pass: the probe works and finds it.
  injector_.probe.set_result(injectorpb::PROBE_RESULT_FOUND);
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_TRUE(injector_.envelopes.empty());
}

TEST_F(MessagePipelineTest, AFreshlyInterruptedInjectionWaitsBeforeProbing) {
  PutMail();
  MarkInterrupted(ledger_);
  ledger_.rows[kKey].set_updated_ms(absl::ToUnixMillis(kNow - absl::Seconds(1)));
  EXPECT_EQ(Run().outcome, ItemOutcome::kSkipped);
  EXPECT_EQ(injector_.probes, 0);
}

TEST_F(MessagePipelineTest, NoReplyAfterTheFinalDotIsProbedNotRetriedBlindly) {
  PutMail();
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_AMBIGUOUS);
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_TRUE(ledger_.rows[kKey].ambiguous());
  EXPECT_EQ(ledger_.rows[kKey].next_attempt_ms(), absl::ToUnixMillis(kNow + options_.probe_delay));
  // When it comes round again, the probe is asked before anything is injected.
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_DELIVERED);
  injector_.probe.set_result(injectorpb::PROBE_RESULT_FOUND);
  clock_.Set(kNow + absl::Minutes(1));
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_EQ(injector_.envelopes.size(), 1u);  // only the first, ambiguous attempt
}

// Maddy's untyped internal error (go-smtp's 5.0.0), and a 5xx with no
// enhanced code at all: retried, a bounded number of times.
class UntypedFailureTest : public MessagePipelineTest,
                           public ::testing::WithParamInterface<std::pair<int, const char*>> {};

TEST_P(UntypedFailureTest, IsRetriedABoundedNumberOfTimesThenDeadLettered) {
  PutMail();
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_PERMANENT);
  injector_.reply.set_smtp_code(GetParam().first);
  injector_.reply.set_enhanced_code(GetParam().second);
  injector_.reply.set_reply_text("<alice@example.org> Internal server error");
  int64_t later = 0;
  for (int attempt = 1; attempt < options_.untyped_failure_max_attempts; ++attempt) {
    clock_.Set(kNow + absl::Hours(later));
    EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater) << attempt;
    later += 2;
  }
  clock_.Set(kNow + absl::Hours(later));
  EXPECT_EQ(Run().outcome, ItemOutcome::kDeadLettered);
  EXPECT_EQ(injector_.envelopes.size(), static_cast<size_t>(options_.untyped_failure_max_attempts));
}

INSTANTIATE_TEST_SUITE_P(Replies, UntypedFailureTest,
                         ::testing::Values(std::make_pair(554, "5.0.0"),
                                           std::make_pair(550, "5.0.0"), std::make_pair(554, "")));

// A 5xx that names its cause is final at once.
class TypedRejectionTest : public MessagePipelineTest,
                           public ::testing::WithParamInterface<std::pair<int, const char*>> {};

TEST_P(TypedRejectionTest, IsDeadLetteredAtOnce) {
  PutMail();
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_PERMANENT);
  injector_.reply.set_smtp_code(GetParam().first);
  injector_.reply.set_enhanced_code(GetParam().second);
  EXPECT_EQ(Run().outcome, ItemOutcome::kDeadLettered);
  EXPECT_EQ(injector_.envelopes.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Replies, TypedRejectionTest,
                         ::testing::Values(std::make_pair(501, "5.1.1"),
                                           std::make_pair(550, "5.1.1"),
                                           std::make_pair(552, "5.3.4"),
                                           std::make_pair(554, "5.6.0"),
                                           std::make_pair(550, "5.7.1")));

TEST_F(MessagePipelineTest, TemporaryReplyIsRetriedWithoutLimit) {
  PutMail();
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_TEMPORARY);
  injector_.reply.set_smtp_code(453);
  injector_.reply.set_enhanced_code("4.3.2");
  for (int attempt = 0; attempt < 2 * options_.untyped_failure_max_attempts; ++attempt) {
    clock_.Set(kNow + absl::Hours(2 * attempt));
    EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater) << attempt;
  }
}

TEST_F(MessagePipelineTest, PermanentRejectionDeadLettersWithReason) {
  PutMail();
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_PERMANENT);
  injector_.reply.set_smtp_code(554);
  injector_.reply.set_enhanced_code("5.6.0");
  injector_.reply.set_reply_text("Malformed header");
  EXPECT_EQ(Run().outcome, ItemOutcome::kDeadLettered);
  std::string failed = "failed/" + kKey.substr(8);
  ASSERT_TRUE(store_.Has(failed));
  EXPECT_FALSE(store_.Has(kKey));
  auto meta = store_.MetadataOf(failed);
  EXPECT_NE(meta["reason"].find("554 5.6.0"), std::string::npos) << meta["reason"];
  EXPECT_EQ(meta["to"], "alice@example.org");  // original metadata kept
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_DEAD_LETTERED);
  EXPECT_LT(At("copy " + kKey + " " + failed), At("delete " + kKey));
}

TEST_F(MessagePipelineTest, TemporaryFailureSchedulesBackoff) {
  PutMail();
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_TEMPORARY);
  injector_.reply.set_smtp_code(451);
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_TRUE(store_.Has(kKey));
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_RETRY_WAIT);
  EXPECT_EQ(ledger_.rows[kKey].next_attempt_ms(), absl::ToUnixMillis(kNow + absl::Seconds(30)));
}

TEST_F(MessagePipelineTest, BackoffDoublesWithAttempts) {
  PutMail();
  ledger_.rows[kKey].set_key(kKey);
  ledger_.rows[kKey].set_state(ledgerpb::STATE_RETRY_WAIT);
  ledger_.rows[kKey].set_attempts(2);
  injector_.reply.set_outcome(injectorpb::OUTCOME_CLASS_TEMPORARY);
  Run();
  // Third attempt failed: 30 s × 2².
  EXPECT_EQ(ledger_.rows[kKey].next_attempt_ms(), absl::ToUnixMillis(kNow + absl::Seconds(120)));
}

TEST_F(MessagePipelineTest, RetryWaitBeforeItsTimeIsLeftAlone) {
  PutMail();
  ledger_.rows[kKey].set_key(kKey);
  ledger_.rows[kKey].set_state(ledgerpb::STATE_RETRY_WAIT);
  ledger_.rows[kKey].set_next_attempt_ms(absl::ToUnixMillis(kNow + absl::Minutes(5)));
  EXPECT_EQ(Run().outcome, ItemOutcome::kSkipped);
  EXPECT_FALSE(log_.Contains("get " + kKey));
}

TEST_F(MessagePipelineTest, InvalidRecipientIsDeadLetteredWithoutInjecting) {
  PutMail(kKey, {{"to", "alice@example.org>\r\nRCPT TO:<evil@x.test"}});
  router_.fail = absl::InvalidArgumentError("address contains CR/LF");
  EXPECT_EQ(Run().outcome, ItemOutcome::kDeadLettered);
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_TRUE(store_.Has("failed/" + kKey.substr(8)));
}

TEST_F(MessagePipelineTest, RouterOutageIsTemporary) {
  PutMail();
  router_.fail = absl::UnavailableError("no account list yet");
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_TRUE(store_.Has(kKey));
}

TEST_F(MessagePipelineTest, MissingRecipientGoesToTheCatchAll) {
  PutMail(kKey, {{"from", "bob@outside.test"}});
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_TRUE(log_.Contains("resolve inbox@example.org"));
}

TEST_F(MessagePipelineTest, UnusableSenderFallsBackToIngestAddress) {
  PutMail(kKey, {{"to", "alice@example.org"}, {"from", "bob@x.test>\r\nDATA"}});
  Run();
  ASSERT_EQ(injector_.envelopes.size(), 1u);
  EXPECT_EQ(injector_.envelopes[0].mail_from(), "ingest@example.org");
}

TEST_F(MessagePipelineTest, LedgerOutageTouchesNothing) {
  PutMail();
  ledger_.down = absl::UnavailableError("ledger down");
  EXPECT_EQ(Run().outcome, ItemOutcome::kError);
  EXPECT_FALSE(log_.Contains("get " + kKey));
  EXPECT_TRUE(store_.Has(kKey));
}

TEST_F(MessagePipelineTest, S3ErrorOnGetIsTemporary) {
  PutMail();
  store_.get_error = absl::PermissionDeniedError("403 AccessDenied");
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_TRUE(store_.Has(kKey));
}

TEST_F(MessagePipelineTest, KeyOutsideTheContractIsDeadLettered) {
  const std::string odd = "pending/../notes.txt";
  PutMail(odd);
  EXPECT_EQ(Run(odd).outcome, ItemOutcome::kDeadLettered);
  EXPECT_TRUE(store_.Has("failed/../notes.txt"));
  EXPECT_NE(store_.MetadataOf("failed/../notes.txt")["reason"].find("unrecognised key"),
            std::string::npos);
  EXPECT_TRUE(injector_.envelopes.empty());
}

TEST_F(MessagePipelineTest, InjectorTransportFailureIsAmbiguousNotDropped) {
  PutMail();
  injector_.transport_error = absl::UnavailableError("injector restarting");
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_RETRY_WAIT);
  EXPECT_TRUE(ledger_.rows[kKey].ambiguous());
  EXPECT_TRUE(store_.Has(kKey));
}

TEST_F(MessagePipelineTest, AnInjectorThatNeverGotTheWholeMessageIsRetriedWithoutProbing) {
  PutMail();
  injector_.transport_error = absl::UnavailableError("connection refused");
  injector_.handed_over = false;
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_RETRY_WAIT);
  EXPECT_FALSE(ledger_.rows[kKey].ambiguous());
  EXPECT_EQ(ledger_.rows[kKey].next_attempt_ms(), absl::ToUnixMillis(kNow + options_.retry_base));
}

TEST_F(MessagePipelineTest, TheRecordIsCompleteFromTheInjectingStepOn) {
  PutMail(kKey, {{"to", "Alice+news@example.org"},
                 {"from", "bob@outside.test"},
                 {"subject", "Lunch?"},
                 {"receivedms", "1799999999000"},
                 {"rawsize", std::to_string(kBody.size())}});
  injector_.on_inject = [&](const injectorpb::Envelope&) {
    // The gateway can already answer "for whom, from whom, about what".
    const ledgerpb::Message& row = ledger_.rows[kKey];
    EXPECT_EQ(row.state(), ledgerpb::STATE_INJECTING);
    EXPECT_EQ(row.recipient(), "Alice+news@example.org");
    EXPECT_EQ(row.sender(), "bob@outside.test");
    EXPECT_EQ(row.subject(), "Lunch?");
    EXPECT_EQ(row.sha256(), kKey.substr(8, 64));
    EXPECT_EQ(row.received_ms(), 1799999999000);
  };
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_EQ(injector_.envelopes.size(), 1u);
}

TEST_F(MessagePipelineTest, ARouterOutageStillRecordsWhatTheObjectSaid) {
  PutMail();
  router_.fail = absl::UnavailableError("no account list yet");
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  EXPECT_EQ(ledger_.rows[kKey].recipient(), "alice@example.org");
  EXPECT_EQ(ledger_.rows[kKey].subject(), "hi");  // from the Subject field: no `subject` metadata
}

TEST_F(MessagePipelineTest, ReplacedBytesAreRetriedThenDeadLetteredAndNeverInjected) {
  store_.Put(kKey, "From: mallory@outside.test\r\n\r\nsomething else\r\n",
             {{"to", "alice@example.org"}, {"from", "bob@outside.test"}});
  for (int download = 1; download < options_.content_mismatch_max_attempts; ++download) {
    ItemResult r = Run();
    EXPECT_EQ(r.outcome, ItemOutcome::kRetryLater) << r.detail;
    EXPECT_NE(r.detail.find("content hash mismatch"), std::string::npos) << r.detail;
    EXPECT_EQ(ledger_.rows[kKey].content_mismatches(), download);
    EXPECT_TRUE(ledger_.rows[kKey].sha256().empty());  // never recorded as verified
    ledger_.rows[kKey].set_next_attempt_ms(0);         // its backoff has passed
  }
  ItemResult last = Run();
  EXPECT_EQ(last.outcome, ItemOutcome::kDeadLettered);
  EXPECT_EQ(last.detail.rfind("content hash mismatch", 0), 0u) << last.detail;
  EXPECT_TRUE(injector_.envelopes.empty());
  EXPECT_FALSE(log_.Contains("resolve alice@example.org"));
  const std::string failed = "failed/" + kKey.substr(8);
  ASSERT_TRUE(store_.Has(failed));
  EXPECT_EQ(store_.MetadataOf(failed)["reason"].rfind("content hash mismatch", 0), 0u);
  EXPECT_EQ(ledger_.rows[kKey].state(), ledgerpb::STATE_DEAD_LETTERED);
}

TEST_F(MessagePipelineTest, ADamagedTransferThatPassesNextTimeIsDelivered) {
  store_.Put(kKey, kBody.substr(0, kBody.size() - 3), {{"to", "alice@example.org"}});  // cut short
  EXPECT_EQ(Run().outcome, ItemOutcome::kRetryLater);
  ledger_.rows[kKey].set_next_attempt_ms(0);
  PutMail();
  EXPECT_EQ(Run().outcome, ItemOutcome::kDelivered);
  EXPECT_EQ(ledger_.rows[kKey].sha256(), kKey.substr(8, 64));
}

}  // namespace
}  // namespace pocketmail::fetcher
