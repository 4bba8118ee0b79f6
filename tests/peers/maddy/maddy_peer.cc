#include "tests/peers/maddy/maddy_peer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/config/settings.h"
#include "common/imap/imap_client.h"
#include "common/process/shell_command.h"

namespace pocketmail::testing {
namespace {

// Reads the first line a server sends on connect (its greeting), or "".
std::string Greeting(int fd) {
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line;
  char c;
  while (line.size() < 512 && read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  close(fd);
  return line;
}

std::string TcpGreeting(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  return Greeting(fd);
}

std::string UnixGreeting(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    close(fd);
    return "";
  }
  path.copy(addr.sun_path, path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  return Greeting(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MaddyPeer>> MaddyPeer::Start(const std::string& scratch_dir,
                                                            MaddyOptions options) {
  const char* bin = std::getenv("PM_MADDY_BIN");
  if (bin == nullptr || *bin == '\0') {
    return absl::FailedPreconditionError(
        "PM_MADDY_BIN is not set: build Maddy with tests/peers/maddy/build_maddy.sh and pass "
        "--test_env=PM_MADDY_BIN=<its output> (./pocketmail test does both)");
  }
  if (access(bin, X_OK) != 0)
    return absl::FailedPreconditionError(absl::StrCat("PM_MADDY_BIN=", bin, " is not executable"));
  auto peer = std::unique_ptr<MaddyPeer>(new MaddyPeer());
  peer->options_ = std::move(options);
  peer->binary_ = bin;
  peer->dir_ = scratch_dir + "/maddy";
  peer->prefix_ = peer->dir_ + "/p";
  peer->state_dir_ = peer->prefix_ + "/var/lib/pocketmail/maddy";
  peer->lmtp_socket_ = peer->prefix_ + "/run/pocketmail/maddy/lmtp.sock";
  peer->log_path_ = peer->dir_ + "/maddy.log";
  auto version = process::RunShellCommand(ShellQuote(bin) + " version");
  if (!version.ok()) return version.status();
  peer->version_ = std::string(
      absl::StripAsciiWhitespace(version->stdout_text.substr(0, version->stdout_text.find(' '))));

  // A port can be taken between our check and Maddy's bind: then Maddy exits
  // at once and the whole setup is redone with new ports.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::error_code ec;
    std::filesystem::remove_all(peer->dir_, ec);
    last = peer->Install();
    if (!last.ok()) return last;
    last = peer->StartProcess();
    if (last.ok()) last = peer->WaitUntilReady(absl::Seconds(20));
    if (last.ok()) break;
    peer->process_.Kill();
  }
  if (!last.ok())
    return absl::Status(last.code(), absl::StrCat(last.message(), "; maddy log:\n", peer->Log()));
  for (const std::string& mailbox : peer->options_.mailboxes) {
    if (absl::Status s = peer->AddMailbox(mailbox); !s.ok()) return s;
  }
  return peer;
}

MaddyPeer::~MaddyPeer() { process_.Kill(); }

absl::Status MaddyPeer::Install() {
  std::filesystem::create_directories(dir_ + "/in/secrets");
  imap_port_ = PickFreePort();
  inject_port_ = PickFreePort();
  submission_port_ = PickFreePort();
  WriteWholeFile(dir_ + "/in/.env",
                 absl::StrCat("# the test Maddy's .env (tests/peers/maddy/maddy_peer.cc)\n"
                              "ENABLE_EMAIL=true\nMAIL_DOMAIN=",
                              options_.mail_domain, "\nMAIL_HOSTNAME=mx.", options_.mail_domain,
                              "\nMAIL_IMAP_PORT=", imap_port_, "\nMAIL_INJECT_PORT=", inject_port_,
                              "\nMAIL_SUBMISSION_PORT=", submission_port_,
                              "\nMAIL_MAX_MESSAGE_SIZE=", options_.max_message_size,
                              "\nMAIL_INJECT_VIA=", options_.inject_via, "\n"),
                 0600);
  // The installer insists on the user's R2 and relay secrets; Maddy needs
  // only the relay key, and nothing here ever connects to the relay.
  WriteWholeFile(
      dir_ + "/in/secrets/mail-r2.env",
      "R2_ACCOUNT_ID=test\nR2_ACCESS_KEY_ID=test\nR2_SECRET_ACCESS_KEY=test\nR2_BUCKET=test\n",
      0600);
  WriteWholeFile(dir_ + "/in/secrets/mail-relay.env", "RESEND_API_KEY=re_test_never_used\n", 0600);
  if (absl::Status s = RunInstaller({"--secrets-src", dir_ + "/in/secrets", "--init", "none",
                                     "--no-health", "install", "maddy"},
                                    "");
      !s.ok()) {
    return s;
  }
  settings_.clear();
  for (const std::string file :
       {"/etc/pocketmail/pocketmail.env", "/etc/pocketmail/secrets/mail-inject.env",
        "/etc/pocketmail/secrets/mail-admin.env"}) {
    auto values = config::ReadEnvFile(prefix_ + file);
    if (!values.ok()) return values.status();
    for (const auto& [k, v] : *values) settings_[k] = v;
  }
  return absl::OkStatus();
}

absl::Status MaddyPeer::RunInstaller(const std::vector<std::string>& args,
                                     const std::string& stdin_line) const {
  std::vector<std::string> words = {"bash",     ShellQuote(RunfilePath("deploy/install-email.sh")),
                                    "--prefix", ShellQuote(prefix_),
                                    "--env",    ShellQuote(dir_ + "/in/.env")};
  for (const std::string& a : args) words.push_back(ShellQuote(a));
  process::CommandOptions options;
  options.timeout = absl::Seconds(60);
  options.max_stderr_bytes = 64 << 10;
  options.extra_env = {{"MADDY_BIN", binary_}};
  std::string command = absl::StrJoin(words, " ");
  if (!stdin_line.empty()) {
    // The secret travels in the environment and reaches stdin through the
    // printf builtin: never on any argv.
    options.extra_env["PM_STDIN_LINE"] = stdin_line;
    command = absl::StrCat("printf '%s\\n' \"$PM_STDIN_LINE\" | ", command);
  }
  auto result = process::RunShellCommand(command, options);
  if (!result.ok()) return result.status();
  if (!result->succeeded()) {
    return absl::InternalError(absl::StrCat("install-email.sh ", absl::StrJoin(args, " "),
                                            " failed (exit ", result->exit_code,
                                            "): ", result->stderr_text));
  }
  return absl::OkStatus();
}

absl::Status MaddyPeer::StartProcess() {
  // The installer's own run script (it exports the relay key and execs maddy,
  // so the pid is Maddy's). Its output goes to a file for Log().
  const std::string run = prefix_ + "/etc/sv/pocketmail-maddy/run";
  auto p = PeerProcess::Start(
      {"/bin/sh", "-c",
       absl::StrCat("exec ", ShellQuote(run), " >>", ShellQuote(log_path_), " 2>&1")},
      {});
  if (!p.ok()) return p.status();
  process_ = std::move(*p);
  return absl::OkStatus();
}

absl::Status MaddyPeer::WaitUntilReady(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StartsWith(TcpGreeting(imap_port_), "* OK") &&
        absl::StartsWith(UnixGreeting(lmtp_socket_), "220")) {
      return absl::OkStatus();
    }
    if (int status = 0; process_.Exited(&status)) {
      return absl::UnavailableError(
          absl::StrCat("maddy exited (status ", status, ") before it was ready"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("maddy did not answer IMAP and LMTP in time");
}

absl::Status MaddyPeer::AddMailbox(const std::string& address) {
  return RunInstaller({"add-mailbox", address}, TestPassword(absl::AsciiStrToLower(address)));
}

std::string MaddyPeer::PasswordOf(const std::string& mailbox) const {
  const std::string m = absl::AsciiStrToLower(mailbox);
  for (const auto& [user, pass] :
       {std::pair<const char*, const char*>{"INBOX_USER", "INBOX_PASS"},
        std::pair<const char*, const char*>{"ADMIN_USER", "ADMIN_PASS"}}) {
    auto u = settings_.find(user);
    auto p = settings_.find(pass);
    if (u != settings_.end() && p != settings_.end() && absl::AsciiStrToLower(u->second) == m)
      return p->second;
  }
  return TestPassword(m);
}

std::string MaddyPeer::Log() const { return ReadWholeFile(log_path_); }

absl::StatusOr<std::vector<std::string>> MaddyPeer::ReadMailbox(const std::string& mailbox) const {
  imap::ClientOptions o;
  o.port = imap_port_;
  o.max_literal_bytes = 64 << 20;  // the end-to-end test delivers 25 MiB messages
  auto client = imap::ImapClient::Connect(o, absl::Now() + absl::Minutes(2));
  if (!client.ok()) return client.status();
  if (absl::Status s = (*client)->Login(mailbox, PasswordOf(mailbox)); !s.ok()) return s;
  auto info = (*client)->Examine("INBOX");
  if (!info.ok()) return info.status();
  std::vector<std::string> out;
  // In batches, so one FETCH response stays a sane size.
  for (uint32_t first = 1; first <= info->exists; first += 16) {
    std::vector<uint32_t> seqs;
    for (uint32_t n = first; n <= info->exists && n < first + 16; ++n) seqs.push_back(n);
    auto messages = (*client)->FetchMessages(seqs);
    if (!messages.ok()) return messages.status();
    if (messages->size() != seqs.size()) {
      return absl::DataLossError(
          absl::StrCat(mailbox, ": asked for ", seqs.size(), " messages, got ", messages->size()));
    }
    for (auto& [seq, raw] : *messages) out.push_back(std::move(raw));
  }
  (void)(*client)->Logout();
  return out;
}

void MaddyPeer::Kill() { process_.Kill(); }

absl::Status MaddyPeer::Restart() {
  process_.Kill();
  if (absl::Status s = StartProcess(); !s.ok()) return s;
  return WaitUntilReady(absl::Seconds(20));
}

}  // namespace pocketmail::testing
