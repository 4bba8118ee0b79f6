// How the pipeline treats real Maddy's replies, each produced by the real
// Maddy 0.8.1 the installer sets up (no stand-in):
//   5.1.1 unknown mailbox, 5.3.4 too big   dead-lettered at once, with the reply
//   5.0.0 (Maddy's untyped internal error) retried a bounded number of times:
//         delivered once the cause is gone, dead-lettered when it stays
//   sloppy From / Date headers             delivered byte for byte over LMTP;
//         over the submission option, dead-lettered with Maddy's reply
// 4.x.x cannot be made to come from Maddy on demand (its only 4xx is an
// SQLite serialization race); the temporary class is tested against the SMTP
// stand-in (fault_test, injector_service_test).
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/grpc_status.h"
#include "gtest/gtest.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

namespace ledgerpb = ::pocketmail::ledger::v1;

std::string Mail(const std::string& headers, const std::string& tag) {
  return absl::StrCat(headers, "Subject: ", tag, "\r\n\r\nbody of ", tag, "\r\n");
}

const char kWellFormed[] =
    "From: Sender <sender@outside.test>\r\nTo: alice@example.org\r\nDate: Tue, 24 Nov 2026 "
    "05:00:00 +0000\r\nMessage-ID: <w@outside.test>\r\n";
const char kMalformedFrom[] =
    "From: Sender <not an address>\r\nTo: alice@example.org\r\nDate: Tue, 24 Nov 2026 05:00:00 "
    "+0000\r\nMessage-ID: <f@outside.test>\r\n";
const char kMalformedDate[] =
    "From: Sender <sender@outside.test>\r\nTo: alice@example.org\r\nDate: sometime last "
    "week\r\nMessage-ID: <d@outside.test>\r\n";

class MaddyReplies : public ::testing::Test {
 protected:
  void Start(MailStore store, std::map<std::string, std::string> env = {},
             std::string max_size = "32M") {
    HarnessOptions options;
    options.mail_store = store;
    options.maddy_max_message_size = max_size;
    options.service_env = {
        {"RETRY_BASE_S", "0.5"}, {"RETRY_MAX_S", "1"}, {"UNTYPED_FAILURE_MAX_ATTEMPTS", "3"}};
    for (auto& [k, v] : env) options.service_env[k] = v;
    auto h = PipelineHarness::Start(options);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
  }

  // The ledger's row for `key`; NOT_FOUND before the fetcher has seen it.
  absl::StatusOr<ledgerpb::Message> TryRow(const std::string& key) {
    auto stub = ledgerpb::Ledger::NewStub(h_->Channel("ledger"));
    grpc::ClientContext ctx;
    ledgerpb::GetRequest req;
    req.set_key(key);
    ledgerpb::GetResponse resp;
    grpc::Status s = stub->Get(&ctx, req, &resp);
    if (!s.ok()) return server::FromGrpcStatus(s);
    return resp.message();
  }

  ledgerpb::Message Row(const std::string& key) {
    auto row = TryRow(key);
    EXPECT_TRUE(row.ok()) << row.status();
    return row.ok() ? *row : ledgerpb::Message();
  }

  std::string FailedReason(const std::string& pending_key) {
    auto o = h_->bucket().GetObject("failed/" + pending_key.substr(8));
    return o.ok() ? o->head.metadata["reason"] : "";
  }

  // The delivered copy of `key` in Maddy, after the fields Maddy adds.
  std::optional<DeliveredMessage> Find(const std::string& key) {
    for (DeliveredMessage& d : h_->Delivered()) {
      if (d.trace_key == key) return d;
    }
    return std::nullopt;
  }

  // Waits until the row has recorded at least one failed attempt.
  void AwaitFailedAttempt(const std::string& key) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto row = TryRow(key);
      if (row.ok() && row->state() == ledgerpb::STATE_RETRY_WAIT && row->attempts() >= 1) return;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "no failed attempt recorded for " << key;
  }

  std::unique_ptr<PipelineHarness> h_;
};

TEST_F(MaddyReplies, UnknownMailboxIsDeadLetteredAtOnceWith511) {
  // The router's seed list names a mailbox Maddy doesn't have (a typo in
  // MAIL_USERS_FILE): Maddy refuses it at RCPT.
  ScratchDir seed_dir;
  const std::string seed = seed_dir.path() + "/users";
  std::ofstream(seed) << "ghost@example.org\n";
  Start(MailStore::kMaddyLmtp, {{"MAIL_USERS_FILE", seed}});
  auto m = h_->PutPending(Mail(kWellFormed, "ghost"), "ghost@example.org", "s@outside.test");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(h_->DrainUntilEmpty(absl::Minutes(1)).ok());
  ledgerpb::Message row = Row(m->key);
  EXPECT_EQ(row.state(), ledgerpb::STATE_DEAD_LETTERED);
  EXPECT_EQ(row.attempts(), 1);
  EXPECT_EQ(row.enhanced_code(), "5.1.1");
  EXPECT_TRUE(absl::StrContains(FailedReason(m->key), "5.1.1")) << FailedReason(m->key);
}

TEST_F(MaddyReplies, OverMaddysSizeLimitIsDeadLetteredAtOnceWith534) {
  Start(MailStore::kMaddyLmtp, {}, "1M");
  std::string big = Mail(kWellFormed, "big");
  while (big.size() < (2 << 20)) big += std::string(76, 'b') + "\r\n";
  auto m = h_->PutPending(big, "alice@example.org", "s@outside.test");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(h_->DrainUntilEmpty(absl::Minutes(1)).ok());
  ledgerpb::Message row = Row(m->key);
  EXPECT_EQ(row.state(), ledgerpb::STATE_DEAD_LETTERED);
  EXPECT_EQ(row.attempts(), 1);
  EXPECT_EQ(row.smtp_code(), 552);
  EXPECT_EQ(row.enhanced_code(), "5.3.4");
  EXPECT_TRUE(absl::StrContains(FailedReason(m->key), "552 5.3.4")) << FailedReason(m->key);
}

TEST_F(MaddyReplies, AnUntypedFailureThatPassesIsRetriedAndDelivered) {
  Start(MailStore::kMaddyLmtp);
  // Another writer holds imapsql.db: Maddy waits out its busy timeout (5 s)
  // and answers 554 5.0.0 "Internal server error".
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((h_->maddy()->state_dir() + "/imapsql.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto m = h_->PutPending(Mail(kWellFormed, "locked"), "alice@example.org", "s@outside.test");
  ASSERT_TRUE(m.ok());
  AwaitFailedAttempt(m->key);
  ledgerpb::Message failed = Row(m->key);
  EXPECT_EQ(failed.smtp_code(), 554);
  EXPECT_EQ(failed.enhanced_code(), "5.0.0");
  EXPECT_TRUE(absl::StrContains(failed.last_error(), "untyped failure (attempt 1 of 3)"))
      << failed.last_error();
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);

  ASSERT_TRUE(h_->DrainUntilEmpty(absl::Minutes(1)).ok());
  ledgerpb::Message row = Row(m->key);
  EXPECT_EQ(row.state(), ledgerpb::STATE_DONE);
  EXPECT_EQ(row.attempts(), 2);
  auto delivered = Find(m->key);
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->data, absl::StrCat("X-Pocketmail-Key: ", m->key, "\r\n", m->raw));
}

TEST_F(MaddyReplies, AnUntypedFailureThatStaysIsDeadLetteredAfterTheBoundedAttempts) {
  Start(MailStore::kMaddyLmtp);
  // Maddy's message store is broken (a file where its messages/ dir was).
  const std::string messages = h_->maddy()->state_dir() + "/messages";
  std::filesystem::rename(messages, messages + ".moved");
  std::ofstream(messages) << "not a directory\n";
  auto m = h_->PutPending(Mail(kWellFormed, "broken store"), "alice@example.org", "s@outside.test");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(h_->DrainUntilEmpty(absl::Minutes(1)).ok());
  ledgerpb::Message row = Row(m->key);
  EXPECT_EQ(row.state(), ledgerpb::STATE_DEAD_LETTERED);
  EXPECT_EQ(row.attempts(), 3);
  EXPECT_EQ(row.enhanced_code(), "5.0.0");
  EXPECT_TRUE(absl::StrContains(FailedReason(m->key), "554 5.0.0")) << FailedReason(m->key);
}

TEST_F(MaddyReplies, SloppyHeadersAreDeliveredByteForByteOverLmtp) {
  Start(MailStore::kMaddyLmtp);
  auto from =
      h_->PutPending(Mail(kMalformedFrom, "bad from"), "alice@example.org", "s@outside.test");
  auto date =
      h_->PutPending(Mail(kMalformedDate, "bad date"), "alice@example.org", "s@outside.test");
  ASSERT_TRUE(from.ok() && date.ok());
  ASSERT_TRUE(h_->DrainUntilEmpty(absl::Minutes(1)).ok());
  for (const StoredMessage* m : {&*from, &*date}) {
    auto delivered = Find(m->key);
    ASSERT_TRUE(delivered.has_value()) << m->key;
    EXPECT_EQ(delivered->data, absl::StrCat("X-Pocketmail-Key: ", m->key, "\r\n", m->raw));
    EXPECT_EQ(delivered->added_fields, (std::vector<std::string>{"Delivered-To", "Return-Path"}));
    EXPECT_EQ(Row(m->key).state(), ledgerpb::STATE_DONE);
  }
}

TEST_F(MaddyReplies, SloppyHeadersAreDeadLetteredWithMaddysReplyOverSubmission) {
  Start(MailStore::kMaddySubmission);
  auto good = h_->PutPending(Mail(kWellFormed, "fine"), "alice@example.org", "s@outside.test");
  auto from =
      h_->PutPending(Mail(kMalformedFrom, "bad from"), "alice@example.org", "s@outside.test");
  auto date =
      h_->PutPending(Mail(kMalformedDate, "bad date"), "alice@example.org", "s@outside.test");
  ASSERT_TRUE(good.ok() && from.ok() && date.ok());
  ASSERT_TRUE(h_->DrainUntilEmpty(absl::Minutes(1)).ok());
  // The well-formed one arrives, behind the Received field submission adds.
  auto delivered = Find(good->key);
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->added_fields,
            (std::vector<std::string>{"Delivered-To", "Return-Path", "Received"}));
  EXPECT_EQ(delivered->data, absl::StrCat("X-Pocketmail-Key: ", good->key, "\r\n", good->raw));
  // Net/mail refuses the From at once (5.6.0) ...
  EXPECT_EQ(Row(from->key).state(), ledgerpb::STATE_DEAD_LETTERED);
  EXPECT_EQ(Row(from->key).attempts(), 1);
  EXPECT_TRUE(absl::StrContains(FailedReason(from->key), "554 5.6.0")) << FailedReason(from->key);
  // ... the Date with an untyped 5.0.0, so only after the bounded attempts.
  EXPECT_EQ(Row(date->key).state(), ledgerpb::STATE_DEAD_LETTERED);
  EXPECT_EQ(Row(date->key).attempts(), 3);
  EXPECT_TRUE(absl::StrContains(FailedReason(date->key), "554 5.0.0")) << FailedReason(date->key);
  EXPECT_FALSE(Find(from->key).has_value());
  EXPECT_FALSE(Find(date->key).has_value());
}

}  // namespace
}  // namespace pocketmail::testing
