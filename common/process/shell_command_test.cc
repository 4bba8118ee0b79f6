#include "common/process/shell_command.h"

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
#include "gtest/gtest.h"

namespace pocketmail::process {
namespace {

std::string TestDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

int OpenFdCount() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

// True once `pid` has gone (or is a zombie awaiting its new parent).
bool ProcessGone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    if (!stat || !std::getline(stat, line)) return true;
    size_t close_paren = line.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < line.size() &&
        line[close_paren + 2] == 'Z') {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}
TEST(RunShellCommandTest, CapturesStdoutStderrAndExitCode) {
  auto r = RunShellCommand("echo out; echo err >&2; exit 7");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_FALSE(r->succeeded());
}

TEST(RunShellCommandTest, ChildGetsEmptyStdinAndDefaultSigpipe) {
  ::signal(SIGPIPE, SIG_IGN);  // as the service host does
  auto r = RunShellCommand("cat; yes | head -n 1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "y\n");
  EXPECT_EQ(r->stderr_text, "");  // `yes` died of SIGPIPE instead of printing EPIPE errors
}

TEST(RunShellCommandTest, TimeoutKillsTheWholeProcessGroup) {
  std::string pidfile = absl::StrCat(TestDir(), "/grandchild.pid");
  ::unlink(pidfile.c_str());
  CommandOptions limits;
  limits.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto r = RunShellCommand(absl::StrCat("sleep 30 & echo $! > ", pidfile, "; sleep 30"), limits);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  std::ifstream in(pidfile);
  std::string text;
  ASSERT_TRUE(std::getline(in, text));
  int grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(text, &grandchild));
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST(RunShellCommandTest, OversizedOutputIsResourceExhausted) {
  CommandOptions limits;
  limits.max_stdout_bytes = 1000;
  auto r = RunShellCommand("yes", limits);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST(RunShellCommandTest, StragglersThatCloseStdoutAreKilledAfterTheShellExits) {
  std::string pidfile = absl::StrCat(TestDir(), "/straggler.pid");
  ::unlink(pidfile.c_str());
  auto r = RunShellCommand(
      absl::StrCat("sleep 30 >/dev/null 2>&1 & echo $! > ", pidfile, "; echo done"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "done\n");
  std::ifstream in(pidfile);
  std::string text;
  ASSERT_TRUE(std::getline(in, text));
  int straggler = 0;
  ASSERT_TRUE(absl::SimpleAtoi(text, &straggler));
  EXPECT_TRUE(ProcessGone(straggler));
}

TEST(RunShellCommandTest, LeaksNoFdsAndNoZombies) {
  (void)RunShellCommand("true");  // let one-time allocations settle
  int before = OpenFdCount();
  CommandOptions quick;
  quick.timeout = absl::Milliseconds(100);
  for (int i = 0; i < 5; ++i) {
    (void)RunShellCommand("echo hi", {});
    (void)RunShellCommand("exit 3", {});
    (void)RunShellCommand("sleep 5", quick);
  }
  EXPECT_EQ(OpenFdCount(), before);
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // no children left at all
  EXPECT_EQ(errno, ECHILD);
}

TEST(RunShellCommandTest, ExtraEnvironmentReachesTheCommand) {
  CommandOptions options;
  options.extra_env["MAIL_ALERT_MSG"] = "backlog: 3 days; with 'quotes' and $dollars";
  auto r = RunShellCommand("printf '%s' \"$MAIL_ALERT_MSG\"", options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "backlog: 3 days; with 'quotes' and $dollars");
}

}  // namespace
}  // namespace pocketmail::process
