#include "common/process/shell_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace pocketmail::process {
namespace {

// Closes the fds it holds on every exit path.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  void Reset(int fd) {
    Close();
    fd_ = fd;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

absl::Status Errno(const char* what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

absl::Status MakePipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe2", errno);
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return absl::OkStatus();
}

// Kills the child's process group, then reaps the child itself.
void KillAndReap(pid_t pid, int* status) {
  ::kill(-pid, SIGKILL);
  while (::waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
}

// Waits for the shell to exit without reaping it, so its pid (= the group id)
// can't be reused while we kill stragglers in its group. False on deadline.
bool WaitForExit(pid_t pid, absl::Time deadline) {
  while (true) {
    siginfo_t info{};
    int rc = ::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid) return true;
    if (rc < 0 && errno != EINTR) return true;  // nothing to wait for; reap below
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// The inherited environment with `extra_env` added or overriding.
std::vector<std::string> ChildEnvironment(const std::map<std::string, std::string>& extra_env) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    if (extra_env.count(kv.substr(0, kv.find('='))) == 0) env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : extra_env) env_strings.push_back(k + "=" + v);
  return env_strings;
}

// Starts `/bin/sh -c command` in its own process group with stdin from
// /dev/null, stdout and stderr on the pipes' write ends and default signal
// dispositions. Returns its pid.
absl::StatusOr<pid_t> SpawnShell(const std::string& command,
                                 const std::map<std::string, std::string>& extra_env,
                                 const Fd& out_write, const Fd& err_write) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t no_signals, default_signals;
  sigemptyset(&no_signals);
  sigemptyset(&default_signals);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD})
    sigaddset(&default_signals, sig);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group, so a timeout kills all of it
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string shell = "/bin/sh", dash_c = "-c", line = command;
  std::vector<char*> argv = {shell.data(), dash_c.data(), line.data(), nullptr};
  pid_t pid = -1;
  std::vector<std::string> env_strings = ChildEnvironment(extra_env);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  int rc = posix_spawn(&pid, shell.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Errno("posix_spawn /bin/sh", rc);
  return pid;
}

absl::Status TimedOut(const CommandOptions& limits) {
  return absl::DeadlineExceededError(
      absl::StrCat("command timed out after ", absl::FormatDuration(limits.timeout)));
}

// Reads the child's stdout and stderr into `result` until both are closed.
// On an error (deadline, stdout over its limit, poll failing) the child's
// group is killed and the child reaped before returning.
absl::Status ReadOutput(pid_t pid, const Fd& out_read, const Fd& err_read, absl::Time deadline,
                        const CommandOptions& limits, CommandResult* result) {
  int status = 0;
  bool out_open = true, err_open = true;
  char buffer[8192];
  while (out_open || err_open) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      KillAndReap(pid, &status);
      return TimedOut(limits);
    }
    pollfd fds[2] = {{out_open ? out_read.get() : -1, POLLIN, 0},
                     {err_open ? err_read.get() : -1, POLLIN, 0}};
    int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      KillAndReap(pid, &status);
      return Errno("poll", err);
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      if (i == 0) {
        if (result->stdout_text.size() + n > limits.max_stdout_bytes) {
          KillAndReap(pid, &status);
          return absl::ResourceExhaustedError(
              absl::StrCat("command wrote more than ", limits.max_stdout_bytes, " bytes"));
        }
        result->stdout_text.append(buffer, n);
      } else {
        size_t room =
            limits.max_stderr_bytes - std::min(limits.max_stderr_bytes, result->stderr_text.size());
        result->stderr_text.append(buffer, std::min(room, static_cast<size_t>(n)));
      }
    }
  }
  return absl::OkStatus();
}

// Waits for the shell to exit (killing it at the deadline), kills whatever it
// left in its group, reaps it and records how it ended.
absl::Status WaitAndReap(pid_t pid, absl::Time deadline, const CommandOptions& limits,
                         CommandResult* result) {
  int status = 0;
  if (!WaitForExit(pid, deadline)) {
    KillAndReap(pid, &status);
    return TimedOut(limits);
  }
  KillAndReap(pid, &status);  // the shell has exited: this only clears stragglers
  if (WIFEXITED(status)) result->exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result->term_signal = WTERMSIG(status);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CommandResult> RunShellCommand(const std::string& command,
                                              const CommandOptions& limits) {
  Fd out_read, out_write, err_read, err_write;
  if (absl::Status st = MakePipe(&out_read, &out_write); !st.ok()) return st;
  if (absl::Status st = MakePipe(&err_read, &err_write); !st.ok()) return st;
  absl::StatusOr<pid_t> pid = SpawnShell(command, limits.extra_env, out_write, err_write);
  if (!pid.ok()) return pid.status();
  // Only the child holds the write ends now, so its exit ends the reads.
  out_write.Close();
  err_write.Close();

  const absl::Time deadline = absl::Now() + limits.timeout;
  CommandResult result;
  if (absl::Status st = ReadOutput(*pid, out_read, err_read, deadline, limits, &result); !st.ok()) {
    return st;
  }
  if (absl::Status st = WaitAndReap(*pid, deadline, limits, &result); !st.ok()) return st;
  return result;
}

}  // namespace pocketmail::process
