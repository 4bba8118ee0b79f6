#include "tests/e2e/pipeline_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/config/settings.h"
#include "common/server/health_client.h"
#include "common/server/service_host.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"

namespace pocketmail::testing {
namespace {

std::string MotoPython() {
  const char* py = std::getenv("PM_MOTO_PYTHON");
  return py != nullptr && *py != '\0' ? py : "/usr/bin/env";
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PipelineHarness>> PipelineHarness::Start(HarnessOptions options) {
  auto h = std::unique_ptr<PipelineHarness>(new PipelineHarness());
  h->options_ = std::move(options);
  h->runtime_dir_ = h->scratch_.path() + "/run";
  if (absl::Status s = h->StartPeers(); !s.ok()) return s;
  if (h->options_.start_services) {
    for (const char* name : kServices) {
      if (absl::Status s = h->StartService(name); !s.ok()) return s;
    }
  }
  return h;
}

PipelineHarness::~PipelineHarness() {
  // Fetcher first, so nothing is mid-flight when its peers go away.
  for (auto it = std::rbegin(kServices); it != std::rend(kServices); ++it) {
    auto found = services_.find(*it);
    if (found != services_.end()) found->second.Stop(absl::Seconds(5));
  }
  if (auto combined = services_.find("pocketmaild"); combined != services_.end()) {
    combined->second.Stop(absl::Seconds(5));
  }
}

absl::Status PipelineHarness::StartPeers() {
  const std::string base = scratch_.path();
  std::filesystem::create_directories(base + "/s3");
  std::vector<std::string> s3_argv = {MotoPython()};
  if (s3_argv[0] == "/usr/bin/env") s3_argv.push_back("python3");
  s3_argv.insert(s3_argv.end(), {RunfilePath("tests/peers/s3/s3_peer.py"), "--dir", base + "/s3"});
  if (options_.s3_count_requests) s3_argv.push_back("--count-requests");
  auto s3 = PeerProcess::StartAndWaitReady(s3_argv, {});
  if (!s3.ok()) return s3.status();
  s3_peer_ = std::move(*s3);
  auto creds = config::ReadEnvFile(base + "/s3/creds.env");
  if (!creds.ok()) return creds.status();
  s3_env_ = *creds;

  s3::ClientOptions o;
  o.endpoint = s3_env_["R2_ENDPOINT"];
  o.bucket = s3_env_["R2_BUCKET"];
  o.access_key_id = s3_env_["R2_ACCESS_KEY_ID"];
  o.secret_access_key = s3_env_["R2_SECRET_ACCESS_KEY"];
  o.ca_file = s3_env_["R2_CA_FILE"];
  auto client = s3::S3Client::Create(o);
  if (!client.ok()) return client.status();
  bucket_ = std::move(*client);

  store_mailboxes_ = options_.mailboxes;
  if (options_.mail_store != MailStore::kSmtpStandIn) return StartMaddy();

  maildir_ = base + "/maildir";
  std::filesystem::create_directories(maildir_);
  WriteWholeFile(base + "/smtp-creds", "USER=pocketmail-inject\nPASS=inject-secret-for-tests\n",
                 0600);
  WriteWholeFile(base + "/mailboxes.txt", absl::StrJoin(options_.mailboxes, "\n") + "\n", 0644);
  // The router's live account list, as `maddy imap-acct list` would print it.
  std::vector<std::string> accounts = options_.mailboxes;
  accounts.insert(accounts.end(), options_.router_only_accounts.begin(),
                  options_.router_only_accounts.end());
  WriteWholeFile(base + "/accounts.txt", absl::StrJoin(accounts, "\n") + "\n", 0644);
  auto smtp = PeerProcess::StartAndWaitReady(
      {"/usr/bin/python3", RunfilePath("tests/peers/smtp/smtp_peer.py"), "--credentials",
       base + "/smtp-creds", "--mailboxes", base + "/mailboxes.txt", "--maildir", maildir_},
      {});
  if (!smtp.ok()) return smtp.status();
  smtp_peer_ = std::move(*smtp);
  if (!absl::SimpleAtoi(smtp_peer_.field("port"), &smtp_port_) ||
      !absl::SimpleAtoi(smtp_peer_.field("control_port"), &smtp_control_port_)) {
    return absl::InternalError("smtp peer READY line lacks ports");
  }
  if (options_.with_imap) {
    std::map<std::string, std::string> users;
    std::string credentials;
    for (const std::string& m : options_.mailboxes) {
      users[m] = ImapPassword(m);
      absl::StrAppend(&credentials, m, "=", ImapPassword(m), "\n");
    }
    auto imap = DovecotPeer::Start(base, maildir_, users);
    if (!imap.ok()) return imap.status();
    imap_ = std::move(*imap);
    WriteWholeFile(base + "/probe-credentials", credentials, 0600);
    options_.service_env.emplace("PROBE_CREDENTIALS_FILE", base + "/probe-credentials");
    options_.service_env.emplace("MAIL_IMAP_PORT", std::to_string(imap_->port()));
  }
  return absl::OkStatus();
}

// Maddy as the installer sets it up; the services get what the installer
// wrote for them (delivery socket or port, account command and watch, the
// inject and probe credentials).
absl::Status PipelineHarness::StartMaddy() {
  if (!options_.router_only_accounts.empty()) {
    return absl::InvalidArgumentError("router_only_accounts needs the SMTP stand-in");
  }
  MaddyOptions maddy;
  maddy.mail_domain = options_.mail_domain;
  maddy.max_message_size = options_.maddy_max_message_size;
  maddy.inject_via = options_.mail_store == MailStore::kMaddyLmtp ? "lmtp" : "submission";
  const std::string installers[] = {"inbox@" + options_.mail_domain,
                                    "admin@" + options_.mail_domain};
  for (const std::string& m : options_.mailboxes) {
    if (m != installers[0] && m != installers[1]) maddy.mailboxes.push_back(m);
  }
  auto started = MaddyPeer::Start(scratch_.path(), maddy);
  if (!started.ok()) return started.status();
  maddy_ = std::move(*started);
  static const char* kFromInstaller[] = {
      "MAIL_LMTP_SOCKET", "MAIL_INJECT_HOST",  "MAIL_INJECT_PORT",    "MAIL_IMAP_HOST",
      "MAIL_IMAP_PORT",   "MAIL_ACCOUNTS_CMD", "MAIL_ACCOUNTS_WATCH", "INJECT_USER",
      "INJECT_PASS",      "INBOX_USER",        "INBOX_PASS",          "ADMIN_USER",
      "ADMIN_PASS"};
  for (const char* name : kFromInstaller) {
    auto it = maddy_->service_settings().find(name);
    if (it != maddy_->service_settings().end()) options_.service_env.emplace(name, it->second);
  }
  if (options_.with_imap) {
    std::string credentials;
    for (const std::string& m : maddy.mailboxes)
      absl::StrAppend(&credentials, m, "=", ImapPassword(m), "\n");
    WriteWholeFile(scratch_.path() + "/probe-credentials", credentials, 0600);
    options_.service_env.emplace("PROBE_CREDENTIALS_FILE", scratch_.path() + "/probe-credentials");
  }
  return absl::OkStatus();
}

std::string PipelineHarness::ImapPassword(const std::string& mailbox) const {
  return maddy_ ? maddy_->PasswordOf(mailbox) : "imap-pw-" + mailbox;
}

absl::Status PipelineHarness::AddMailbox(const std::string& address) {
  if (maddy_) {
    if (absl::Status s = maddy_->AddMailbox(address); !s.ok()) return s;
  } else {
    auto reply = SmtpControl("ADD_MAILBOX " + address);
    if (!reply.ok()) return reply.status();
    if (*reply != "OK") return absl::InternalError("ADD_MAILBOX: " + *reply);
  }
  store_mailboxes_.push_back(absl::AsciiStrToLower(address));
  return absl::OkStatus();
}

std::map<std::string, std::string> PipelineHarness::ServiceEnv() const {
  const std::string base = scratch_.path();
  std::map<std::string, std::string> env = {
      {"POCKETMAIL_RUNTIME_DIR", runtime_dir_},
      {"POCKETMAIL_STATE_DIR", base + "/state"},
      {"MAIL_DOMAIN", options_.mail_domain},
      {"MAIL_HOSTNAME", "phone.test"},
      {"MAIL_POLL", std::to_string(options_.poll_seconds)},
      {"FETCH_CONCURRENCY", std::to_string(options_.fetch_concurrency)},
      {"RETRY_BASE_S", "1"},
      {"RETRY_MAX_S", "5"},
  };
  if (!maddy_) {
    env["MAIL_ACCOUNTS_CMD"] = "cat " + base + "/accounts.txt";
    env["MAIL_INJECT_HOST"] = "127.0.0.1";
    env["MAIL_INJECT_PORT"] = std::to_string(smtp_port_);
    env["INJECT_USER"] = "pocketmail-inject";
    env["INJECT_PASS"] = "inject-secret-for-tests";
  }
  for (const auto& [k, v] : s3_env_) env[k] = v;
  for (const auto& [k, v] : options_.service_env) env[k] = v;
  return env;
}

std::vector<std::string> PipelineHarness::ServiceArgv(const std::string& binary) const {
  if (options_.service_wrapper.empty()) return {binary};
  // A wrapper looks a bare relative name up in PATH (proot does): make it a path.
  std::vector<std::string> argv = options_.service_wrapper;
  argv.push_back(std::filesystem::absolute(binary).string());
  return argv;
}

int PipelineHarness::imap_port() const {
  if (maddy_) return maddy_->imap_port();
  return imap_ ? imap_->port() : 0;
}

absl::Status PipelineHarness::StartService(const std::string& name) {
  if (ServiceRunning(name)) return absl::OkStatus();
  const std::string process = ProcessOf(name);
  std::string binary = RunfilePath(absl::StrCat("services/", process, "/", process));
  auto p = PeerProcess::Start(ServiceArgv(binary), ServiceEnv());
  if (!p.ok()) return p.status();
  services_[process] = std::move(*p);
  if (!options_.combined) return server::WaitUntilServing(Channel(name), absl::Seconds(20));
  for (const char* each : kServices) {
    if (absl::Status s = server::WaitUntilServing(Channel(each), absl::Seconds(20)); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

void PipelineHarness::KillService(const std::string& name) {
  auto it = services_.find(ProcessOf(name));
  if (it != services_.end()) it->second.Kill();
}

absl::Status PipelineHarness::StopService(const std::string& name) {
  auto it = services_.find(ProcessOf(name));
  if (it == services_.end()) return absl::OkStatus();
  if (!options_.service_wrapper.empty() && it->second.running()) ::kill(-it->second.pid(), SIGTERM);
  int status = it->second.Stop(absl::Seconds(15));
  if (status < 0)
    return absl::DeadlineExceededError(absl::StrCat(name, " did not stop on SIGTERM"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(name, " exited with status ", status));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PipelineHarness::RunFetcherOneshot(absl::Duration timeout) {
  std::map<std::string, std::string> env = ServiceEnv();
  env["ONESHOT"] = "1";
  auto p = PeerProcess::Start(ServiceArgv(RunfilePath("services/fetcher/fetcher")), env);
  if (!p.ok()) return p.status();
  return p->WaitForExit(timeout);
}

bool PipelineHarness::ServiceRunning(const std::string& name) const {
  auto it = services_.find(ProcessOf(name));
  return it != services_.end() && it->second.running();
}

std::shared_ptr<grpc::Channel> PipelineHarness::Channel(const std::string& name) const {
  return server::ConnectToService(runtime_dir_, name);
}

absl::StatusOr<StoredMessage> PipelineHarness::PutPending(
    const std::string& raw, const std::string& to, const std::string& from, bool legacy_key,
    std::map<std::string, std::string> metadata) {
  std::string sha = Sha256Hex(raw);
  std::string key = legacy_key
                        ? absl::StrCat("pending/", sha, ".eml")
                        : absl::StrCat("pending/", sha, "-",
                                       Sha256Hex(absl::AsciiStrToLower(to)).substr(0, 16), ".eml");
  metadata["to"] = to;
  metadata["from"] = from;
  metadata["sha256"] = sha;
  metadata["rawsize"] = std::to_string(raw.size());
  metadata["receivedms"] = std::to_string(absl::ToUnixMillis(absl::Now()));
  absl::Status s =
      bucket_->PutObject(key, raw, metadata, /*if_none_match=*/false, "message/rfc822");
  if (!s.ok()) return s;
  return StoredMessage{key, raw, to, from};
}

absl::Status PipelineHarness::PutRaw(const std::string& key, const std::string& body,
                                     const std::map<std::string, std::string>& metadata) {
  return bucket_->PutObject(key, body, metadata, false, "message/rfc822");
}

absl::StatusOr<std::vector<std::string>> PipelineHarness::ListKeys(const std::string& prefix) {
  std::vector<std::string> keys;
  std::string token;
  do {
    auto page = bucket_->ListObjectsV2(prefix, token, 1000);
    if (!page.ok()) return page.status();
    for (const auto& o : page->objects) keys.push_back(o.key);
    token = page->truncated ? page->next_continuation_token : "";
  } while (!token.empty());
  return keys;
}

absl::Status PipelineHarness::DrainUntilEmpty(absl::Duration timeout) {
  auto stub = pocketmail::fetcher::v1::Fetcher::NewStub(Channel("fetcher"));
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto keys = ListKeys("pending/");
    if (keys.ok() && keys->empty()) return absl::OkStatus();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    pocketmail::fetcher::v1::DrainNowRequest req;
    req.set_wait(true);
    pocketmail::fetcher::v1::DrainNowResponse resp;
    grpc::Status s = stub->DrainNow(&ctx, req, &resp);
    if (!s.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  auto keys = ListKeys("pending/");
  return absl::DeadlineExceededError(
      absl::StrCat("pending/ not empty in time: ", keys.ok() ? keys->size() : -1, " left"));
}

namespace {

// Splits what Maddy stored into the fields it added in front and the rest.
// Only the names Maddy adds on delivery are taken; the first other field
// (our trace header) ends them. A Received field may be folded.
DeliveredMessage ParseMaddyMessage(const std::string& stored) {
  DeliveredMessage m;
  size_t pos = 0;
  while (pos < stored.size()) {
    size_t end = stored.find("\r\n", pos);
    if (end == std::string::npos) break;
    while (end + 2 < stored.size() && (stored[end + 2] == ' ' || stored[end + 2] == '\t')) {
      end = stored.find("\r\n", end + 2);  // a folded continuation
      if (end == std::string::npos) break;
    }
    if (end == std::string::npos) break;
    absl::string_view field(stored.data() + pos, end - pos);
    size_t colon = field.find(':');
    if (colon == absl::string_view::npos) break;
    std::string name(field.substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(field.substr(colon + 1));
    if (name == "Delivered-To") {
      m.mailbox = absl::AsciiStrToLower(value);
    } else if (name == "Return-Path") {
      m.return_path = std::string(absl::StripPrefix(absl::StripSuffix(value, ">"), "<"));
    } else if (name != "Received") {
      break;
    }
    m.added_fields.push_back(name);
    pos = end + 2;
  }
  m.data = stored.substr(pos);
  if (absl::StartsWith(m.data, "X-Pocketmail-Key: ")) {
    size_t eol = m.data.find("\r\n");
    m.trace_key = m.data.substr(18, eol - 18);
  }
  return m;
}

}  // namespace

std::vector<DeliveredMessage> PipelineHarness::Delivered() const {
  std::vector<DeliveredMessage> out;
  if (maddy_) {
    for (const std::string& mailbox : store_mailboxes_) {
      auto stored = maddy_->ReadMailbox(mailbox);
      if (!stored.ok()) {
        DeliveredMessage unreadable;
        unreadable.data = absl::StrCat("cannot read ", mailbox, ": ", stored.status().ToString());
        out.push_back(std::move(unreadable));
        continue;
      }
      for (const std::string& raw : *stored) out.push_back(ParseMaddyMessage(raw));
    }
    return out;
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(maildir_, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || it->path().parent_path().filename() != "new") continue;
    std::string content = ReadWholeFile(it->path().string());
    DeliveredMessage m;
    // The peer prepends exactly "Return-Path: <...>\r\nDelivered-To: ...\r\n".
    size_t first = content.find("\r\n");
    size_t second = first == std::string::npos ? first : content.find("\r\n", first + 2);
    if (second == std::string::npos) continue;
    absl::string_view rp = absl::string_view(content).substr(0, first);
    absl::string_view dt = absl::string_view(content).substr(first + 2, second - first - 2);
    absl::ConsumePrefix(&rp, "Return-Path: ");
    m.return_path = std::string(absl::StripPrefix(absl::StripSuffix(rp, ">"), "<"));
    absl::ConsumePrefix(&dt, "Delivered-To: ");
    m.mailbox = absl::AsciiStrToLower(dt);
    m.data = content.substr(second + 2);
    if (absl::StartsWith(m.data, "X-Pocketmail-Key: ")) {
      size_t eol = m.data.find("\r\n");
      m.trace_key = m.data.substr(18, eol - 18);
    }
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::string> PipelineHarness::SmtpControl(const std::string& line) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(smtp_control_port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return absl::UnavailableError("cannot reach smtp control port");
  }
  std::string msg = line + "\n";
  if (write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) {
    close(fd);
    return absl::UnavailableError("short write to control port");
  }
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    reply.append(buf, n);
    if (reply.find('\n') != std::string::npos) break;
  }
  close(fd);
  return std::string(absl::StripAsciiWhitespace(reply));
}

}  // namespace pocketmail::testing
