// Dead letters end to end: a permanent rejection lands in failed/ with its
// reason, fires the alert command, and — once the cause is fixed — is
// delivered by `pocketmailctl replay`.
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs pocketmailctl against the harness's services; returns its stdout.
std::string Ctl(PipelineHarness& h, const std::string& args, int* exit_code) {
  std::string out_file = h.scratch() + "/ctl.out";
  std::string cmd = absl::StrCat(RunfilePath("services/pocketmailctl/pocketmailctl"), " --runtime-dir ",
                                 h.runtime_dir(), " ", args, " > ", out_file, " 2>&1");
  int rc = std::system(cmd.c_str());
  *exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return Slurp(out_file);
}

TEST(DeadLetterE2E, RejectedMailIsDeadLetteredAlertedAndReplayedAfterTheFix) {
  HarnessOptions options;
  options.router_only_accounts = {"dave@example.org"};  // Maddy doesn't have it yet
  options.start_services = false;
  auto started = PipelineHarness::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  PipelineHarness& h = **started;
  std::string alert_log = h.scratch() + "/alerts.log";
  h.SetServiceEnv("MAIL_ALERT_CMD", "printf '%s\\n' \"$MAIL_ALERT_KIND\" >> " + alert_log);
  for (const char* name : PipelineHarness::kServices) ASSERT_TRUE(h.StartService(name).ok()) << name;

  auto m = h.PutPending("From: x@outside.test\r\nTo: dave@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
                        "dave@example.org", "x@outside.test");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  auto failed = h.bucket().GetObject("failed/" + m->key.substr(8));
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(absl::StrContains(failed->head.metadata["reason"], "501 5.1.1")) << failed->head.metadata["reason"];
  EXPECT_EQ(failed->head.metadata["to"], "dave@example.org");
  EXPECT_TRUE(failed->body == m->raw);
  EXPECT_TRUE(absl::StrContains(Slurp(alert_log), "dead_letters"));

  int rc = 0;
  std::string status = Ctl(h, "status", &rc);
  EXPECT_TRUE(absl::StrContains(status, "1 in failed/")) << status;
  std::string ls = Ctl(h, "ls failed", &rc);
  EXPECT_EQ(rc, 0) << ls;
  EXPECT_TRUE(absl::StrContains(ls, m->key.substr(8))) << ls;
  EXPECT_TRUE(absl::StrContains(ls, "dave@example.org")) << ls;
  EXPECT_TRUE(absl::StrContains(ls, "501 5.1.1")) << ls;
  std::string verify = Ctl(h, "verify", &rc);
  EXPECT_EQ(rc, 0) << verify;
  EXPECT_TRUE(absl::StrContains(verify, "0 unfinished in the ledger but gone")) << verify;
  std::string backup = Ctl(h, absl::StrCat("--ledger-db=", h.scratch(), "/state/ledger.db --maddy-dir= backup ",
                                           h.scratch(), "/backup"), &rc);
  EXPECT_EQ(rc, 0) << backup;
  EXPECT_TRUE(absl::StrContains(Slurp(h.scratch() + "/backup/STAMP"), "sha256.ledger.db=")) << backup;

  ASSERT_EQ(*h.SmtpControl("ADD_MAILBOX dave@example.org"), "OK");  // the operator creates the account
  std::string replay = Ctl(h, "replay --all-failed", &rc);
  EXPECT_EQ(rc, 0) << replay;
  EXPECT_TRUE(absl::StrContains(replay, "1 replayed, 0 failed")) << replay;
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  int delivered = 0;
  for (const auto& d : h.Delivered()) {
    if (d.trace_key == m->key) {
      ++delivered;
      EXPECT_EQ(d.mailbox, "dave@example.org");
    }
  }
  EXPECT_EQ(delivered, 1);
  auto gone = h.ListKeys("failed/");
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty());
}

}  // namespace
}  // namespace pocketmail::testing
