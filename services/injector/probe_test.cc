// Probe through the Injector service against real peers: the SMTP peer writes
// what Inject delivers into Maildirs, and Dovecot serves those Maildirs over
// IMAP the way Maddy serves its store.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/injector/delivery_probe.h"
#include "services/injector/injector_service.h"
#include "tests/peers/imap/dovecot_peer.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/smtp/smtp_peer.h"

namespace pocketmail::injector {
namespace {

using ::pocketmail::testing::DovecotPeer;
using ::pocketmail::testing::ScratchDir;
using ::pocketmail::testing::SmtpPeer;

constexpr char kInbox[] = "inbox@example.org";
constexpr char kAdmin[] = "admin@example.org";  // has an account, but the injector no password
constexpr char kInjectPassword[] = "inject-secret";
constexpr char kImapPassword[] = "imap \"probe\" secret";

struct ProbeCall {
  grpc::Status status;
  v1::ProbeResponse response;
};

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto smtp = SmtpPeer::Start(dir_.path(), {kInbox, kAdmin}, "inject", kInjectPassword);
    ASSERT_TRUE(smtp.ok()) << smtp.status();
    smtp_ = std::move(*smtp);
    auto imap = DovecotPeer::Start(dir_.path(), smtp_->maildir_root(),
                                   {{kInbox, kImapPassword}, {kAdmin, "admin-secret"}});
    ASSERT_TRUE(imap.ok()) << imap.status();
    imap_ = std::move(*imap);
    StartService(ProbeOn(imap_->port(), kImapPassword));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  static std::unique_ptr<DeliveryProbe> ProbeOn(int port, const std::string& password,
                                                absl::Duration timeout = absl::Seconds(20)) {
    ProbeCredentials credentials;
    EXPECT_TRUE(credentials.Set(kInbox, password).ok());
    ProbeOptions options;
    options.port = port;
    options.timeout = timeout;
    return std::make_unique<DeliveryProbe>(options, std::move(credentials));
  }

  void StartService(std::unique_ptr<DeliveryProbe> probe) {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    probe_ = std::move(probe);
    smtp::SessionOptions o;
    o.port = smtp_->port();
    o.helo_name = "injector.test";
    o.user = "inject";
    o.password = kInjectPassword;
    pool_ = std::make_unique<smtp::SessionPool>(o, 2);
    service_ = std::make_unique<InjectorServiceImpl>(pool_.get(), InjectorOptions(), probe_.get());
    const std::string address =
        absl::StrCat("unix:", dir_.path(), "/injector-", ++generation_, ".sock");
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Injector::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  void Inject(const std::string& key, const std::string& rcpt = kInbox) {
    const std::string msg = "From: Sender <sender@example.net>\r\nSubject: probe\r\n\r\nhello\r\n";
    grpc::ClientContext ctx;
    v1::InjectResponse response;
    auto writer = stub_->Inject(&ctx, &response);
    v1::InjectRequest envelope, chunk;
    envelope.mutable_envelope()->set_key(key);
    envelope.mutable_envelope()->set_mail_from("sender@example.net");
    envelope.mutable_envelope()->set_rcpt_to(rcpt);
    envelope.mutable_envelope()->set_size_bytes(msg.size());
    chunk.set_chunk(msg);
    ASSERT_TRUE(writer->Write(envelope) && writer->Write(chunk));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    ASSERT_EQ(response.outcome(), v1::OUTCOME_CLASS_DELIVERED) << response.DebugString();
  }

  ProbeCall Probe(const std::string& key, const std::string& mailbox = kInbox) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ProbeRequest request;
    request.set_key(key);
    request.set_mailbox(mailbox);
    ProbeCall call;
    call.status = stub_->Probe(&ctx, request, &call.response);
    return call;
  }

  ScratchDir dir_;
  std::unique_ptr<SmtpPeer> smtp_;
  std::unique_ptr<DovecotPeer> imap_;
  std::unique_ptr<DeliveryProbe> probe_;
  std::unique_ptr<smtp::SessionPool> pool_;
  std::unique_ptr<InjectorServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Injector::Stub> stub_;
  int generation_ = 0;
};

void ExpectResult(const ProbeCall& call, v1::ProbeResult result, int matches = -1) {
  ASSERT_TRUE(call.status.ok()) << call.status.error_message();
  EXPECT_EQ(call.response.result(), result) << call.response.DebugString();
  if (matches >= 0) {
    EXPECT_EQ(call.response.matches(), matches) << call.response.DebugString();
  }
}

TEST_F(ProbeTest, InjectedMessageIsFound) {
  Inject("pending/0a1b-01.eml");
  ExpectResult(Probe("pending/0a1b-01.eml"), v1::PROBE_RESULT_FOUND, 1);
}

TEST_F(ProbeTest, MessageInjectedTwiceCountsTwoMatches) {
  Inject("pending/twice.eml");
  Inject("pending/other.eml");
  Inject("pending/twice.eml");
  ExpectResult(Probe("pending/twice.eml"), v1::PROBE_RESULT_FOUND, 2);
}

TEST_F(ProbeTest, KeyNeverInjectedIsNotFound) {
  Inject("pending/delivered.eml");
  ProbeCall call = Probe("pending/never-injected.eml");
  ExpectResult(call, v1::PROBE_RESULT_NOT_FOUND, 0);
  EXPECT_TRUE(absl::StrContains(call.response.detail(), "searched 1 messages"))
      << call.response.detail();
}

TEST_F(ProbeTest, EmptyMailboxIsNotFound) {
  ExpectResult(Probe("pending/anything.eml"), v1::PROBE_RESULT_NOT_FOUND, 0);
}

// IMAP SEARCH matches substrings; a key inside another message's key must not
// count as delivered, or the message would never be injected.
TEST_F(ProbeTest, KeyContainedInAnotherKeyIsNotFound) {
  Inject("pending/abc-0123456789abcdef.eml");
  ExpectResult(Probe("pending/abc-0123456789abcdef"), v1::PROBE_RESULT_NOT_FOUND, 0);
  ExpectResult(Probe("PENDING/ABC-0123456789ABCDEF.EML"), v1::PROBE_RESULT_NOT_FOUND, 0);
}

TEST_F(ProbeTest, MailboxIsComparedCaseInsensitively) {
  Inject("pending/case.eml");
  ExpectResult(Probe("pending/case.eml", "INBOX@Example.ORG"), v1::PROBE_RESULT_FOUND, 1);
}

TEST_F(ProbeTest, MailboxWithoutCredentialsIsNoProbe) {
  Inject("pending/for-admin.eml", kAdmin);
  ExpectResult(Probe("pending/for-admin.eml", kAdmin), v1::PROBE_RESULT_NO_PROBE, 0);
}

TEST_F(ProbeTest, WithoutAProbeEveryMailboxIsNoProbe) {
  StartService(nullptr);
  Inject("pending/unprobed.eml");
  ExpectResult(Probe("pending/unprobed.eml"), v1::PROBE_RESULT_NO_PROBE);
}

TEST_F(ProbeTest, StoppedImapServerIsFailed) {
  Inject("pending/stopped.eml");
  imap_->Stop();
  ProbeCall call = Probe("pending/stopped.eml");
  ExpectResult(call, v1::PROBE_RESULT_FAILED, 0);
  EXPECT_TRUE(absl::StartsWith(call.response.detail(), "connect:")) << call.response.detail();
}

TEST_F(ProbeTest, WrongPasswordIsFailedAndTheDetailHoldsNoPassword) {
  StartService(ProbeOn(imap_->port(), "not-the-imap-password"));
  Inject("pending/wrong-pw.eml");
  ProbeCall call = Probe("pending/wrong-pw.eml");
  ExpectResult(call, v1::PROBE_RESULT_FAILED, 0);
  EXPECT_TRUE(absl::StartsWith(call.response.detail(), "login:")) << call.response.detail();
  EXPECT_FALSE(absl::StrContains(call.response.DebugString(), "not-the-imap-password"));
}

TEST_F(ProbeTest, ServerThatNeverGreetsIsFailedWithinTheTimeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);  // connections queue up; nobody ever answers
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  StartService(ProbeOn(ntohs(addr.sin_port), kImapPassword, absl::Milliseconds(500)));
  const absl::Time start = absl::Now();
  ProbeCall call = Probe("pending/silent.eml");
  ExpectResult(call, v1::PROBE_RESULT_FAILED, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::StrContains(call.response.detail(), "DEADLINE_EXCEEDED"))
      << call.response.detail();
  close(fd);
}

TEST_F(ProbeTest, KeyThatCannotBeSearchedSafelyIsInvalidArgument) {
  for (const std::string& key :
       {std::string(""), std::string("a\"b"), std::string("a\\b"), std::string("k\r\nA1 LOGOUT")}) {
    EXPECT_EQ(Probe(key).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << key;
  }
}

TEST_F(ProbeTest, MalformedMailboxIsInvalidArgument) {
  for (const std::string& mailbox :
       {std::string(""), std::string("a b@example.org"), std::string("inbox@example.org\r\n")}) {
    EXPECT_EQ(Probe("pending/k.eml", mailbox).status.error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << mailbox;
  }
}

}  // namespace
}  // namespace pocketmail::injector
