#include "services/fetcher/outcome.h"

#include <vector>

#include "gtest/gtest.h"

namespace pocketmail::fetcher {
namespace {

constexpr int kUntypedMax = 3;  // UNTYPED_FAILURE_MAX_ATTEMPTS' default

InjectResult Reply(injectorpb::OutcomeClass outcome, int code, const char* enhanced,
                   const char* text = "") {
  InjectResult r;
  r.reply.set_outcome(outcome);
  r.reply.set_smtp_code(code);
  r.reply.set_enhanced_code(enhanced);
  r.reply.set_reply_text(text);
  return r;
}

InjectResult CallFailed(absl::Status status, bool handed_over) {
  InjectResult r;
  r.call = std::move(status);
  r.handed_over = handed_over;
  return r;
}

struct InjectRow {
  const char* name;
  InjectResult result;
  int attempts;
  int untyped_max;
  Verdict verdict;
  const char* reason;
  bool record_reply;
};

TEST(ClassifyTest, EachInjectResultGetsTodaysVerdict) {
  using injectorpb::OUTCOME_CLASS_AMBIGUOUS;
  using injectorpb::OUTCOME_CLASS_DELIVERED;
  using injectorpb::OUTCOME_CLASS_PERMANENT;
  using injectorpb::OUTCOME_CLASS_TEMPORARY;
  using injectorpb::OUTCOME_CLASS_UNSPECIFIED;
  const std::vector<InjectRow> rows = {
      {"250 after the final dot", Reply(OUTCOME_CLASS_DELIVERED, 250, "2.0.0", "OK"), 1,
       kUntypedMax, Verdict::kDelivered, "", true},
      {"4xx", Reply(OUTCOME_CLASS_TEMPORARY, 451, "4.3.0", "try later"), 1, kUntypedMax,
       Verdict::kRetry, "451 4.3.0 try later", true},
      {"4xx never runs out of attempts", Reply(OUTCOME_CLASS_TEMPORARY, 453, "4.3.2"), 50,
       kUntypedMax, Verdict::kRetry, "453 4.3.2", true},
      {"an injector that named no class", Reply(OUTCOME_CLASS_UNSPECIFIED, 0, ""), 9, kUntypedMax,
       Verdict::kRetry, "0", true},
      {"no reply after the final dot", Reply(OUTCOME_CLASS_AMBIGUOUS, 0, ""), 1, kUntypedMax,
       Verdict::kProbeFirst, "0", true},
      // Maddy's untyped internal error, bounded by attempts.
      {"554 5.0.0, first attempt",
       Reply(OUTCOME_CLASS_PERMANENT, 554, "5.0.0", "Internal server error"), 1, kUntypedMax,
       Verdict::kRetry, "untyped failure (attempt 1 of 3): 554 5.0.0 Internal server error", true},
      {"554 5.0.0, second attempt",
       Reply(OUTCOME_CLASS_PERMANENT, 554, "5.0.0", "Internal server error"), 2, kUntypedMax,
       Verdict::kRetry, "untyped failure (attempt 2 of 3): 554 5.0.0 Internal server error", true},
      {"554 5.0.0, last attempt",
       Reply(OUTCOME_CLASS_PERMANENT, 554, "5.0.0", "Internal server error"), 3, kUntypedMax,
       Verdict::kDeadLetter, "rejected by mail server: 554 5.0.0 Internal server error", true},
      {"554 5.0.0 with one attempt allowed", Reply(OUTCOME_CLASS_PERMANENT, 554, "5.0.0"), 1, 1,
       Verdict::kDeadLetter, "rejected by mail server: 554 5.0.0", true},
      {"550 5.0.0 is untyped too", Reply(OUTCOME_CLASS_PERMANENT, 550, "5.0.0"), 1, kUntypedMax,
       Verdict::kRetry, "untyped failure (attempt 1 of 3): 550 5.0.0", true},
      {"bare 554, first attempt", Reply(OUTCOME_CLASS_PERMANENT, 554, ""), 1, kUntypedMax,
       Verdict::kRetry, "untyped failure (attempt 1 of 3): 554", true},
      {"bare 554, last attempt", Reply(OUTCOME_CLASS_PERMANENT, 554, ""), 3, kUntypedMax,
       Verdict::kDeadLetter, "rejected by mail server: 554", true},
      // A 5xx that names its cause is final at once.
      {"501 5.1.1 no such mailbox",
       Reply(OUTCOME_CLASS_PERMANENT, 501, "5.1.1", "User does not exist"), 1, kUntypedMax,
       Verdict::kDeadLetter, "rejected by mail server: 501 5.1.1 User does not exist", true},
      {"552 5.3.4 too big", Reply(OUTCOME_CLASS_PERMANENT, 552, "5.3.4"), 1, kUntypedMax,
       Verdict::kDeadLetter, "rejected by mail server: 552 5.3.4", true},
      {"554 5.6.0 malformed header",
       Reply(OUTCOME_CLASS_PERMANENT, 554, "5.6.0", "Malformed header"), 1, kUntypedMax,
       Verdict::kDeadLetter, "rejected by mail server: 554 5.6.0 Malformed header", true},
      {"550 5.7.1 refused", Reply(OUTCOME_CLASS_PERMANENT, 550, "5.7.1"), 1, kUntypedMax,
       Verdict::kDeadLetter, "rejected by mail server: 550 5.7.1", true},
      // The call itself failed.
      {"stream broke before the message was handed over",
       CallFailed(absl::UnavailableError("connection refused"), false), 1, kUntypedMax,
       Verdict::kRetry,
       "injector unreachable before the message was handed over: connection refused", false},
      {"not handed over wins over INVALID_ARGUMENT",
       CallFailed(absl::InvalidArgumentError("bad key"), false), 1, kUntypedMax, Verdict::kRetry,
       "injector unreachable before the message was handed over: bad key", false},
      {"envelope refused",
       CallFailed(absl::InvalidArgumentError("envelope.rcpt_to: has a space"), true), 1,
       kUntypedMax, Verdict::kDeadLetter,
       "injector refused envelope: envelope.rcpt_to: has a space", false},
      {"injector died after the hand-over",
       CallFailed(absl::UnavailableError("injector restarting"), true), 1, kUntypedMax,
       Verdict::kProbeFirst, "injector: injector restarting", false},
      {"deadline after the hand-over", CallFailed(absl::DeadlineExceededError("deadline"), true), 1,
       kUntypedMax, Verdict::kProbeFirst, "injector: deadline", false},
      // Only INVALID_ARGUMENT is final from the injector (unlike the router).
      {"FAILED_PRECONDITION after the hand-over",
       CallFailed(absl::FailedPreconditionError("odd"), true), 1, kUntypedMax, Verdict::kProbeFirst,
       "injector: odd", false},
  };
  for (const InjectRow& row : rows) {
    Decision d = Classify(row.result, row.attempts, row.untyped_max);
    EXPECT_EQ(VerdictName(d.verdict), std::string(VerdictName(row.verdict))) << row.name;
    EXPECT_EQ(d.reason, row.reason) << row.name;
    EXPECT_EQ(d.record_reply, row.record_reply) << row.name;
  }
}

struct RouteRow {
  absl::Status failure;
  Verdict verdict;
  const char* reason;
};

TEST(ClassifyRouteFailureTest, OnlyARefusedAddressIsFinal) {
  const std::vector<RouteRow> rows = {
      {absl::InvalidArgumentError("address contains CR/LF"), Verdict::kDeadLetter,
       "invalid recipient: address contains CR/LF"},
      {absl::InvalidArgumentError("recipient domain other.test is not example.org"),
       Verdict::kDeadLetter, "invalid recipient: recipient domain other.test is not example.org"},
      // The other codes that say the request itself is wrong.
      {absl::FailedPreconditionError("odd"), Verdict::kDeadLetter, "invalid recipient: odd"},
      {absl::OutOfRangeError("odd"), Verdict::kDeadLetter, "invalid recipient: odd"},
      {absl::UnavailableError("no account list has been read yet"), Verdict::kRetry,
       "router: no account list has been read yet"},
      {absl::DeadlineExceededError("Deadline Exceeded"), Verdict::kRetry,
       "router: Deadline Exceeded"},
      {absl::UnimplementedError("no Resolve"), Verdict::kRetry, "router: no Resolve"},
      {absl::InternalError("boom"), Verdict::kRetry, "router: boom"},
  };
  for (const RouteRow& row : rows) {
    Decision d = ClassifyRouteFailure(row.failure);
    EXPECT_EQ(VerdictName(d.verdict), std::string(VerdictName(row.verdict))) << row.failure;
    EXPECT_EQ(d.reason, row.reason) << row.failure;
    EXPECT_FALSE(d.record_reply) << row.failure;
  }
}

}  // namespace
}  // namespace pocketmail::fetcher
