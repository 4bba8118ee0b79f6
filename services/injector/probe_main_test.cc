// The injector binary configured for probing the way the installer configures
// it: INBOX_USER/INBOX_PASS in mail-inject.env, more mailboxes in a 0600
// PROBE_CREDENTIALS_FILE, Maddy's IMAP port by name.
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/health_client.h"
#include "common/server/service_host.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pocketmail/injector/v1/injector.grpc.pb.h"
#include "tests/peers/imap/dovecot_peer.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/smtp/smtp_peer.h"

namespace pocketmail::injector {
namespace {

using ::pocketmail::testing::DovecotPeer;
using ::pocketmail::testing::PeerProcess;
using ::pocketmail::testing::RunfilePath;
using ::pocketmail::testing::ScratchDir;
using ::pocketmail::testing::SmtpPeer;

constexpr char kInbox[] = "inbox@example.org";
constexpr char kAdmin[] = "admin@example.org";
constexpr char kInjectPass[] = "inject-env-secret";
constexpr char kInboxPass[] = "inbox-imap-secret";
constexpr char kAdminPass[] = "admin=imap=secret";

void WritePrivate(const std::string& path, const std::string& content, mode_t mode = 0600) {
  std::ofstream(path) << content;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Starts the injector with stderr captured in `log_path`.
absl::StatusOr<PeerProcess> StartInjector(const std::vector<std::string>& args,
                                          const std::map<std::string, std::string>& env,
                                          const std::string& log_path) {
  std::vector<std::string> argv = {"/bin/sh", "-c",     "log=$1; shift; exec \"$@\" 2>\"$log\"",
                                   "sh",      log_path, RunfilePath("services/injector/injector")};
  argv.insert(argv.end(), args.begin(), args.end());
  return PeerProcess::Start(argv, env);
}

// Waits for the process to exit on its own; returns its status.
int ExitStatus(PeerProcess& process) {
  siginfo_t info{};
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    info.si_pid = 0;
    if (waitid(P_PID, process.pid(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return process.Stop(absl::Seconds(1));
}

TEST(ProbeMainTest, ProbesWithTheInstallersCredentialsAndNeverLogsThem) {
  ScratchDir dir;
  auto smtp = SmtpPeer::Start(dir.path(), {kInbox, kAdmin}, "inject", kInjectPass);
  ASSERT_TRUE(smtp.ok()) << smtp.status();
  auto imap = DovecotPeer::Start(dir.path(), (*smtp)->maildir_root(),
                                 {{kInbox, kInboxPass}, {kAdmin, kAdminPass}});
  ASSERT_TRUE(imap.ok()) << imap.status();
  const std::string env_file = dir.path() + "/mail-inject.env";
  WritePrivate(env_file, absl::StrCat("INJECT_USER=inject\nINJECT_PASS=", kInjectPass,
                                      "\nINBOX_USER=", kInbox, "\nINBOX_PASS=", kInboxPass, "\n"));
  const std::string creds = dir.path() + "/probe.creds";
  WritePrivate(creds, absl::StrCat("# more mailboxes\n", kAdmin, "=", kAdminPass, "\n"));
  const std::string runtime_dir = dir.path() + "/run";
  const std::string log = dir.path() + "/injector.log";
  auto injector = StartInjector(
      {"--env-file=" + env_file, "--mail-inject-port=" + std::to_string((*smtp)->port()),
       "--mail-imap-port=" + std::to_string((*imap)->port())},
      {{"POCKETMAIL_RUNTIME_DIR", runtime_dir}, {"PROBE_CREDENTIALS_FILE", creds}}, log);
  ASSERT_TRUE(injector.ok()) << injector.status();
  auto channel = server::ConnectToService(runtime_dir, "injector");
  ASSERT_TRUE(server::WaitUntilServing(channel, absl::Seconds(20)).ok()) << ReadFile(log);
  auto stub = v1::Injector::NewStub(channel);

  auto inject = [&](const std::string& key, const std::string& rcpt) {
    const std::string msg = "From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n";
    grpc::ClientContext ctx;
    v1::InjectResponse response;
    auto writer = stub->Inject(&ctx, &response);
    v1::InjectRequest envelope, chunk;
    envelope.mutable_envelope()->set_key(key);
    envelope.mutable_envelope()->set_mail_from("a@example.net");
    envelope.mutable_envelope()->set_rcpt_to(rcpt);
    envelope.mutable_envelope()->set_size_bytes(msg.size());
    chunk.set_chunk(msg);
    ASSERT_TRUE(writer->Write(envelope) && writer->Write(chunk));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    ASSERT_EQ(response.outcome(), v1::OUTCOME_CLASS_DELIVERED) << response.DebugString();
  };
  auto probe = [&](const std::string& key, const std::string& mailbox) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ProbeRequest request;
    request.set_key(key);
    request.set_mailbox(mailbox);
    v1::ProbeResponse response;
    EXPECT_TRUE(stub->Probe(&ctx, request, &response).ok());
    return response;
  };

  inject("pending/main-inbox.eml", kInbox);
  inject("pending/main-admin.eml", kAdmin);
  EXPECT_EQ(probe("pending/main-inbox.eml", kInbox).result(), v1::PROBE_RESULT_FOUND);
  EXPECT_EQ(probe("pending/main-admin.eml", kAdmin).result(), v1::PROBE_RESULT_FOUND);
  EXPECT_EQ(probe("pending/main-inbox.eml", kAdmin).result(), v1::PROBE_RESULT_NOT_FOUND);
  EXPECT_EQ(probe("pending/main-inbox.eml", "bob@example.org").result(), v1::PROBE_RESULT_NO_PROBE);

  int status = injector->Stop(absl::Seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::string logged = ReadFile(log);
  EXPECT_TRUE(absl::StrContains(logged, "msg=probe key=pending/main-admin.eml")) << logged;
  for (const char* secret : {kInjectPass, kInboxPass, kAdminPass}) {
    EXPECT_FALSE(absl::StrContains(logged, secret)) << secret;
  }
}

TEST(ProbeMainTest, RefusesAProbeCredentialsFileOthersCanRead) {
  ScratchDir dir;
  const std::string creds = dir.path() + "/probe.creds";
  WritePrivate(creds, "inbox@example.org=pw\n", 0644);
  auto injector = StartInjector(
      {}, {{"POCKETMAIL_RUNTIME_DIR", dir.path() + "/run"}, {"PROBE_CREDENTIALS_FILE", creds}},
      dir.path() + "/injector.log");
  ASSERT_TRUE(injector.ok());
  int status = ExitStatus(*injector);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
}

TEST(ProbeMainTest, RefusesInboxUserWithoutItsPassword) {
  ScratchDir dir;
  auto injector = StartInjector({"--inbox-user=inbox@example.org"},
                                {{"POCKETMAIL_RUNTIME_DIR", dir.path() + "/run"}},
                                dir.path() + "/injector.log");
  ASSERT_TRUE(injector.ok());
  int status = ExitStatus(*injector);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_TRUE(absl::StrContains(ReadFile(dir.path() + "/injector.log"), "INBOX_PASS"));
}

}  // namespace
}  // namespace pocketmail::injector
