#include "tests/peers/peer_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace pocketmail::testing {
namespace {

absl::StatusOr<std::pair<pid_t, int>> Spawn(const std::vector<std::string>& argv,
                                            const std::map<std::string, std::string>& extra_env,
                                            bool capture_stdout) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == absl::string_view::npos) continue;
    env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : extra_env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  int pipefd[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture_stdout) {
    if (pipe2(pipefd, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so a killed peer's children (e.g. dovecot's) can be reaped too.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (capture_stdout) close(pipefd[1]);
  if (rc != 0) {
    if (capture_stdout) close(pipefd[0]);
    return absl::InternalError(absl::StrCat("spawn ", argv[0], ": ", std::strerror(rc)));
  }
  return std::make_pair(pid, capture_stdout ? pipefd[0] : -1);
}

}  // namespace

PeerProcess::PeerProcess(PeerProcess&& other) noexcept { *this = std::move(other); }

PeerProcess& PeerProcess::operator=(PeerProcess&& other) noexcept {
  if (this != &other) {
    if (running()) Kill();
    pid_ = other.pid_;
    fields_ = std::move(other.fields_);
    other.pid_ = -1;
  }
  return *this;
}

PeerProcess::~PeerProcess() {
  if (running()) Stop(absl::Seconds(5));
}

absl::StatusOr<PeerProcess> PeerProcess::Start(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env) {
  auto spawned = Spawn(argv, extra_env, /*capture_stdout=*/false);
  if (!spawned.ok()) return spawned.status();
  PeerProcess p;
  p.pid_ = spawned->first;
  return p;
}

absl::StatusOr<PeerProcess> PeerProcess::StartAndWaitReady(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env,
    absl::Duration timeout) {
  auto spawned = Spawn(argv, extra_env, /*capture_stdout=*/true);
  if (!spawned.ok()) return spawned.status();
  PeerProcess p;
  p.pid_ = spawned->first;
  int fd = spawned->second;
  std::string buffer;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (absl::StartsWith(line, "READY")) {
        for (absl::string_view kv : absl::StrSplit(line.substr(5), ' ', absl::SkipEmpty())) {
          size_t eq = kv.find('=');
          if (eq != absl::string_view::npos) {
            p.fields_[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
          }
        }
        // Keep draining the child's stdout so it never blocks on a full pipe.
        std::thread([fd] {
          char sink[4096];
          while (read(fd, sink, sizeof sink) > 0) {
          }
          close(fd);
        }).detach();
        return p;
      }
    }
    int remaining_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (remaining_ms <= 0) {
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat(argv[0], " not ready in time"));
    }
    pollfd pfd{fd, POLLIN, 0};
    int n = poll(&pfd, 1, remaining_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char chunk[4096];
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got <= 0) {
      close(fd);
      return absl::InternalError(absl::StrCat(argv[0], " exited before READY"));
    }
    buffer.append(chunk, got);
  }
}

std::string PeerProcess::field(const std::string& name) const {
  auto it = fields_.find(name);
  return it == fields_.end() ? "" : it->second;
}

void PeerProcess::Kill() {
  if (!running()) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

bool PeerProcess::Exited(int* status) {
  if (!running()) return true;
  int s = 0;
  if (waitpid(pid_, &s, WNOHANG) != pid_) return false;
  ::kill(-pid_, SIGKILL);  // leftovers in its process group
  pid_ = -1;
  if (status != nullptr) *status = s;
  return true;
}

absl::StatusOr<int> PeerProcess::WaitForExit(absl::Duration timeout) {
  if (!running()) return absl::FailedPreconditionError("not running");
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return absl::DeadlineExceededError("child did not exit in time");
}

int PeerProcess::Stop(absl::Duration grace) {
  if (!running()) return 0;
  ::kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + grace;
  int status = 0;
  while (absl::Now() < deadline) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      ::kill(-pid_, SIGKILL);  // leftovers in its process group
      pid_ = -1;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return -1;
}

std::string RunfilePath(const std::string& workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr) {
    return absl::StrCat(srcdir, "/", ws != nullptr ? ws : "pocketmail", "/", workspace_relative);
  }
  return workspace_relative;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteWholeFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  chmod(path.c_str(), mode);
}

ScratchDir::ScratchDir() {
  char tmpl[] = "/tmp/pm-XXXXXX";
  char* made = mkdtemp(tmpl);
  path_ = made != nullptr ? made : "/tmp";
}

ScratchDir::~ScratchDir() {
  if (path_ == "/tmp" || path_.empty()) return;
  if (std::getenv("PM_KEEP_SCRATCH") != nullptr) return;  // debugging aid
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::string> ControlExchange(int port, const std::string& line,
                                            const std::string& peer) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot reach the ", peer, "'s control port"));
  }
  std::string request = line + "\n";
  bool sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size());
  std::string reply;
  char c;
  while (sent && recv(fd, &c, 1, 0) == 1 && c != '\n') reply.push_back(c);
  close(fd);
  return reply;
}

}  // namespace pocketmail::testing
