// Runs the injector binary against the SMTP peer, configured the way the
// installer configures it (environment names, secrets in a 0600 env file).
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/health_client.h"
#include "common/server/service_host.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pocketmail/injector/v1/injector.grpc.pb.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/smtp/smtp_peer.h"

namespace pocketmail::injector {
namespace {

using ::pocketmail::testing::PeerProcess;
using ::pocketmail::testing::RunfilePath;
using ::pocketmail::testing::ScratchDir;
using ::pocketmail::testing::SmtpPeer;

TEST(InjectorMainTest, ServesInjectOnItsSocketAndStopsOnSigterm) {
  ScratchDir dir;
  auto peer = SmtpPeer::Start(dir.path(), {"inbox@example.org"}, "inject", "env-file-secret");
  ASSERT_TRUE(peer.ok()) << peer.status();
  const std::string env_file = dir.path() + "/mail-inject.env";
  {
    std::ofstream f(env_file);
    f << "INJECT_USER=inject\nINJECT_PASS=env-file-secret\n";
  }
  ASSERT_EQ(chmod(env_file.c_str(), 0600), 0);
  const std::string runtime_dir = dir.path() + "/run";
  auto injector = PeerProcess::Start(
      {RunfilePath("services/injector/injector"), "--env-file=" + env_file,
       "--mail-inject-port=" + std::to_string((*peer)->port()), "--mail-hostname=phone.test"},
      {{"POCKETMAIL_RUNTIME_DIR", runtime_dir}, {"INJECT_MAX_SESSIONS", "2"}});
  ASSERT_TRUE(injector.ok()) << injector.status();
  auto channel = server::ConnectToService(runtime_dir, "injector");
  ASSERT_TRUE(server::WaitUntilServing(channel, absl::Seconds(20)).ok());

  auto stub = v1::Injector::NewStub(channel);
  const std::string msg = "From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n";
  grpc::ClientContext ctx;
  v1::InjectResponse response;
  auto writer = stub->Inject(&ctx, &response);
  v1::InjectRequest envelope;
  envelope.mutable_envelope()->set_key("pending/main-test.eml");
  envelope.mutable_envelope()->set_mail_from("a@example.net");
  envelope.mutable_envelope()->set_rcpt_to("inbox@example.org");
  envelope.mutable_envelope()->set_size_bytes(msg.size());
  v1::InjectRequest chunk;
  chunk.set_chunk(msg);
  ASSERT_TRUE(writer->Write(envelope));
  ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(response.outcome(), v1::OUTCOME_CLASS_DELIVERED) << response.DebugString();
  EXPECT_EQ((*peer)->FindByKey("inbox@example.org", "pending/main-test.eml").size(), 1u);

  int status = injector->Stop(absl::Seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(InjectorMainTest, RefusesThePasswordOnTheCommandLine) {
  ScratchDir dir;
  auto injector =
      PeerProcess::Start({RunfilePath("services/injector/injector"), "--inject-pass=oops"},
                         {{"POCKETMAIL_RUNTIME_DIR", dir.path() + "/run"}});
  ASSERT_TRUE(injector.ok());
  // Wait for it to exit on its own (without reaping it; Stop() does that).
  siginfo_t info{};
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    info.si_pid = 0;
    if (waitid(P_PID, injector->pid(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid != 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  int status = injector->Stop(absl::Seconds(1));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
}

}  // namespace
}  // namespace pocketmail::injector
