// Dead letters end to end, into real Maddy 0.8.1 over LMTP: a permanent
// rejection by Maddy lands in failed/ with Maddy's reply, fires the alert
// command, and — once the operator has made the mailbox with the installer's
// add-mailbox — is delivered by `pocketmailctl replay`, read back from
// Maddy's IMAP byte for byte. Maddy's 5.1.1 comes on demand (a mailbox the
// router lists and Maddy lacks), so nothing here needs the SMTP stand-in.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

const char kDave[] = "dave@example.org";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs pocketmailctl against the harness's services; returns its stdout.
std::string Ctl(PipelineHarness& h, const std::string& args, int* exit_code) {
  std::string out_file = h.scratch() + "/ctl.out";
  std::string cmd =
      absl::StrCat(RunfilePath("services/pocketmailctl/pocketmailctl"), " --runtime-dir ",
                   h.runtime_dir(), " ", args, " > ", out_file, " 2>&1");
  int rc = std::system(cmd.c_str());
  *exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return Slurp(out_file);
}

// Real Maddy over LMTP; the router's seed list (MAIL_USERS_FILE, as an
// operator's typo or a mailbox not made yet would) names dave@, which Maddy
// lacks. Every service runs the alert command, which appends to the log.
std::unique_ptr<PipelineHarness> StartWithDaveUnknownToMaddy(const std::string& seed_dir,
                                                             const std::string& alert_log) {
  std::ofstream(seed_dir + "/users") << kDave << "\n";
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  options.service_env = {{"MAIL_USERS_FILE", seed_dir + "/users"},
                         {"MAIL_ALERT_CMD", "printf '%s\\n' \"$MAIL_ALERT_KIND\" >> " + alert_log}};
  auto h = PipelineHarness::Start(options);
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? std::move(*h) : nullptr;
}

// What the operator's tools say about the one dead letter.
void ExpectCtlReportsTheDeadLetter(PipelineHarness& h, const StoredMessage& m) {
  int rc = 0;
  std::string status = Ctl(h, "status", &rc);
  EXPECT_TRUE(absl::StrContains(status, "1 in failed/")) << status;
  std::string ls = Ctl(h, "ls failed", &rc);
  EXPECT_EQ(rc, 0) << ls;
  EXPECT_TRUE(absl::StrContains(ls, m.key.substr(8))) << ls;
  EXPECT_TRUE(absl::StrContains(ls, kDave)) << ls;
  EXPECT_TRUE(absl::StrContains(ls, "501 5.1.1")) << ls;
  std::string verify = Ctl(h, "verify", &rc);
  EXPECT_EQ(rc, 0) << verify;
  EXPECT_TRUE(absl::StrContains(verify, "0 unfinished in the ledger but gone")) << verify;
}

// A backup of the live ledger and the live Maddy databases.
void ExpectBackupOfLedgerAndMaddy(PipelineHarness& h) {
  int rc = 0;
  std::string backup = Ctl(h,
                           absl::StrCat("--ledger-db=", h.scratch(),
                                        "/state/ledger.db --maddy-dir=", h.maddy()->state_dir(),
                                        " backup ", h.scratch(), "/backup"),
                           &rc);
  EXPECT_EQ(rc, 0) << backup;
  std::string stamp = Slurp(h.scratch() + "/backup/STAMP");
  for (const char* field : {"sha256.ledger.db=", "sha256.imapsql.db=", "sha256.credentials.db="}) {
    EXPECT_TRUE(absl::StrContains(stamp, field)) << field << " missing from STAMP:\n"
                                                 << stamp << backup;
  }
}

// Maddy holds one copy of `m`, in dave@, byte for byte behind the trace field
// and the two fields Maddy adds over LMTP.
void ExpectInDavesMailboxOnce(PipelineHarness& h, const StoredMessage& m) {
  int copies = 0;
  for (const DeliveredMessage& d : h.Delivered()) {
    EXPECT_NE(d.mailbox, "") << d.data;  // every mailbox readable, every field accounted for
    if (d.trace_key != m.key) continue;
    ++copies;
    EXPECT_EQ(d.mailbox, kDave);
    EXPECT_EQ(d.return_path, m.from);
    EXPECT_EQ(d.added_fields, (std::vector<std::string>{"Delivered-To", "Return-Path"}));
    EXPECT_EQ(d.data, absl::StrCat("X-Pocketmail-Key: ", m.key, "\r\n", m.raw));
  }
  EXPECT_EQ(copies, 1);
}

TEST(DeadLetterE2E, RejectedMailIsDeadLetteredAlertedAndReplayedAfterTheFix) {
  ScratchDir seed_dir;
  const std::string alert_log = seed_dir.path() + "/alerts.log";
  std::unique_ptr<PipelineHarness> started =
      StartWithDaveUnknownToMaddy(seed_dir.path(), alert_log);
  ASSERT_NE(started, nullptr);
  PipelineHarness& h = *started;

  auto m =
      h.PutPending("From: x@outside.test\r\nTo: dave@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
                   kDave, "x@outside.test");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  auto failed = h.bucket().GetObject("failed/" + m->key.substr(8));
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(absl::StrContains(failed->head.metadata["reason"], "501 5.1.1"))
      << failed->head.metadata["reason"];
  EXPECT_EQ(failed->head.metadata["to"], kDave);
  EXPECT_TRUE(failed->body == m->raw);
  // The reply is Maddy's own: its log has the refused RCPT.
  EXPECT_TRUE(absl::StrContains(h.maddy()->Log(), "RCPT error")) << h.maddy()->Log();
  EXPECT_TRUE(absl::StrContains(h.maddy()->Log(), "\"rcpt\":\"dave@example.org\""))
      << h.maddy()->Log();
  EXPECT_TRUE(absl::StrContains(Slurp(alert_log), "dead_letters")) << Slurp(alert_log);
  ExpectCtlReportsTheDeadLetter(h, *m);
  ExpectBackupOfLedgerAndMaddy(h);

  ASSERT_TRUE(h.AddMailbox(kDave).ok());  // the operator creates the mailbox
  int rc = 0;
  std::string replay = Ctl(h, "replay --all-failed", &rc);
  EXPECT_EQ(rc, 0) << replay;
  EXPECT_TRUE(absl::StrContains(replay, "1 replayed, 0 failed")) << replay;
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  ExpectInDavesMailboxOnce(h, *m);
  auto gone = h.ListKeys("failed/");
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty());
}

}  // namespace
}  // namespace pocketmail::testing
