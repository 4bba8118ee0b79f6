#include "services/router/account_source.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/process/shell_command.h"
#include "gtest/gtest.h"

namespace pocketmail::router {
namespace {

std::string TestDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

// Writes an executable shell script and returns its path.
std::string Script(const std::string& name, const std::string& body) {
  std::string path = absl::StrCat(TestDir(), "/", name, ".sh");
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

TEST(ParseAccountLinesTest, TrimsAndDropsBlankLines) {
  EXPECT_EQ(ParseAccountLines("alice@example.org\r\n\n  bob \n\t\n", false),
            (std::vector<std::string>{"alice@example.org", "bob"}));
}

TEST(ParseAccountLinesTest, CommentsStartAtLineStartOrAfterWhitespace) {
  EXPECT_EQ(ParseAccountLines("# seed users\nalice # the owner\nfoo#bar\n  # indented\n", true),
            (std::vector<std::string>{"alice", "foo#bar"}));
}

TEST(CommandAccountSourceTest, ReadsOneAccountPerLine) {
  CommandAccountSource source(
      Script("accounts_ok", "printf 'alice@example.org\\nbob@example.org\\n\\n'"),
      absl::Seconds(5));
  auto accounts = source.ListAccounts();
  ASSERT_TRUE(accounts.ok()) << accounts.status();
  EXPECT_EQ(*accounts, (std::vector<std::string>{"alice@example.org", "bob@example.org"}));
}

TEST(CommandAccountSourceTest, NoUsersOnStderrIsAnEmptyList) {
  CommandAccountSource source(Script("accounts_empty", "echo 'No users.' >&2"), absl::Seconds(5));
  auto accounts = source.ListAccounts();
  ASSERT_TRUE(accounts.ok()) << accounts.status();
  EXPECT_TRUE(accounts->empty());
}

TEST(CommandAccountSourceTest, NonZeroExitIsUnavailableWithTheReason) {
  CommandAccountSource source(
      Script("accounts_fail", "echo 'imapsql: database is locked' >&2\nexit 3"), absl::Seconds(5));
  auto accounts = source.ListAccounts();
  ASSERT_EQ(accounts.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(accounts.status().message().find("status 3"), std::string::npos);
  EXPECT_NE(accounts.status().message().find("database is locked"), std::string::npos);
}

TEST(CommandAccountSourceTest, HangingCommandTimesOut) {
  CommandAccountSource source(Script("accounts_hang", "echo alice\nsleep 30"),
                              absl::Milliseconds(200));
  absl::Time start = absl::Now();
  auto accounts = source.ListAccounts();
  EXPECT_EQ(accounts.status().code(), absl::StatusCode::kDeadlineExceeded) << accounts.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(CommandAccountSourceTest, CommandLineWithArgumentsRunsThroughTheShell) {
  std::string script = Script("accounts_args", "for u in \"$@\"; do echo \"$u\"; done");
  CommandAccountSource source(absl::StrCat(script, " imap-acct list"), absl::Seconds(5));
  auto accounts = source.ListAccounts();
  ASSERT_TRUE(accounts.ok());
  EXPECT_EQ(*accounts, (std::vector<std::string>{"imap-acct", "list"}));
}

TEST(SeedFileAccountSourceTest, ReadsNamesSkippingComments) {
  std::string path = absl::StrCat(TestDir(), "/users.txt");
  std::ofstream(path) << "# seed\nalice@example.org\n\nbob  # friend\n";
  SeedFileAccountSource source(path);
  auto accounts = source.ListAccounts();
  ASSERT_TRUE(accounts.ok());
  EXPECT_EQ(*accounts, (std::vector<std::string>{"alice@example.org", "bob"}));
}

TEST(SeedFileAccountSourceTest, MissingFileIsNotFound) {
  SeedFileAccountSource source(absl::StrCat(TestDir(), "/no-such-users.txt"));
  EXPECT_EQ(source.ListAccounts().status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pocketmail::router
