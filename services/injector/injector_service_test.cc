// The Injector service on a unix-socket gRPC server, delivering into the real
// SMTP peer (tests/peers/smtp).
#include "services/injector/injector_service.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/smtp/smtp_peer.h"

namespace pocketmail::injector {
namespace {

using ::pocketmail::testing::ScratchDir;
using ::pocketmail::testing::SmtpPeer;
using ::pocketmail::testing::SmtpPeerOptions;

constexpr char kInbox[] = "inbox@example.org";
constexpr char kPassword[] = "inject-secret";
constexpr size_t kMiB = 1 << 20;

struct CallResult {
  grpc::Status status;
  v1::InjectResponse response;
};

v1::InjectRequest EnvelopeRequest(const std::string& key, const std::string& rcpt, int64_t size,
                                  const std::string& from = "sender@example.net") {
  v1::InjectRequest r;
  r.mutable_envelope()->set_key(key);
  r.mutable_envelope()->set_mail_from(from);
  r.mutable_envelope()->set_rcpt_to(rcpt);
  r.mutable_envelope()->set_size_bytes(size);
  return r;
}

v1::InjectRequest Chunk(absl::string_view bytes) {
  v1::InjectRequest r;
  r.set_chunk(std::string(bytes));
  return r;
}

std::string Message(const std::string& body = "hello\r\n") {
  return absl::StrCat("From: Sender <sender@example.net>\r\nSubject: test\r\n\r\n", body);
}

class InjectorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartPeer();
    StartService(SmtpOptions());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  void StartPeer(SmtpPeerOptions options = {}) {
    auto peer = SmtpPeer::Start(dir_.path(), {kInbox}, "inject", kPassword, options);
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = std::move(*peer);
  }
  smtp::SessionOptions SmtpOptions() const {
    smtp::SessionOptions o;
    o.port = peer_->port();
    o.helo_name = "injector.test";
    o.user = "inject";
    o.password = kPassword;
    o.command_timeout = absl::Seconds(10);
    o.final_reply_timeout = absl::Seconds(10);
    return o;
  }
  void StartService(const smtp::SessionOptions& options, int sessions = 4) {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    pool_ = std::make_unique<smtp::SessionPool>(options, sessions);
    service_ = std::make_unique<InjectorServiceImpl>(pool_.get());
    const std::string address =
        absl::StrCat("unix:", dir_.path(), "/injector-", ++generation_, ".sock");
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(8 << 20);  // as server::ServerOptions
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Injector::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  // Sends `requests` in order (stopping at the first failed write), then half-closes.
  CallResult Call(const std::vector<v1::InjectRequest>& requests) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    CallResult result;
    auto writer = stub_->Inject(&ctx, &result.response);
    bool ok = true;
    for (const auto& r : requests) {
      if (!(ok = writer->Write(r))) break;
    }
    if (ok) writer->WritesDone();
    result.status = writer->Finish();
    return result;
  }
  CallResult Inject(const std::string& key, const std::string& rcpt, const std::string& message,
                    const std::string& from = "sender@example.net", size_t chunk = kMiB) {
    std::vector<v1::InjectRequest> requests = {EnvelopeRequest(key, rcpt, message.size(), from)};
    for (size_t off = 0; off < message.size(); off += chunk) {
      requests.push_back(Chunk(absl::string_view(message).substr(off, chunk)));
    }
    return Call(requests);
  }
  int64_t Stat(const std::string& name) {
    auto stats = peer_->Stats();
    return stats.ok() ? (*stats)[name] : -1;
  }
  std::string Delivered(const std::string& message, const std::string& key,
                        const std::string& from = "sender@example.net") {
    return absl::StrCat("Return-Path: <", from, ">\r\nDelivered-To: ", kInbox,
                        "\r\nX-Pocketmail-Key: ", key, "\r\n", message);
  }

  ScratchDir dir_;
  std::unique_ptr<SmtpPeer> peer_;
  std::unique_ptr<smtp::SessionPool> pool_;
  std::unique_ptr<InjectorServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Injector::Stub> stub_;
  int generation_ = 0;
};

void ExpectOutcome(const CallResult& r, v1::OutcomeClass outcome, v1::Stage stage, int code = -1,
                   const std::string& enhanced = "-") {
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.response.outcome(), outcome) << r.response.DebugString();
  EXPECT_EQ(r.response.stage(), stage) << r.response.DebugString();
  if (code >= 0) {
    EXPECT_EQ(r.response.smtp_code(), code);
  }
  if (enhanced != "-") {
    EXPECT_EQ(r.response.enhanced_code(), enhanced);
  }
}

TEST_F(InjectorServiceTest, DeliversVerbatimBytesBehindTheTraceHeader) {
  std::string msg = Message();
  CallResult r = Inject("pending/abc-01.eml", kInbox, msg);
  ExpectOutcome(r, v1::OUTCOME_CLASS_DELIVERED, v1::STAGE_BODY, 250, "2.0.0");
  auto got = peer_->FindByKey(kInbox, "pending/abc-01.eml");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Delivered(msg, "pending/abc-01.eml"));
}

TEST_F(InjectorServiceTest, NullSenderIsDeliveredWithEmptyReturnPath) {
  std::string msg = Message();
  ExpectOutcome(Inject("k-null", kInbox, msg, ""), v1::OUTCOME_CLASS_DELIVERED, v1::STAGE_BODY);
  EXPECT_EQ(peer_->FindByKey(kInbox, "k-null").at(0), Delivered(msg, "k-null", ""));
}

TEST_F(InjectorServiceTest, Delivers25MiBMessageIn1MiBChunks) {
  std::string msg = Message();
  msg.reserve(25 * kMiB + 100);
  for (int i = 0; msg.size() < 25 * kMiB; ++i) {
    absl::StrAppend(&msg, "line ", i, " ", std::string(60 + i % 13, 'a' + i % 26), "\r\n");
  }
  CallResult r = Inject("big", kInbox, msg);
  ExpectOutcome(r, v1::OUTCOME_CLASS_DELIVERED, v1::STAGE_BODY, 250);
  auto got = peer_->FindByKey(kInbox, "big");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0] == Delivered(msg, "big")) << "delivered " << got[0].size() << " bytes";
}

TEST_F(InjectorServiceTest, BareLfAndDotLinesArriveIntactWithCrlf) {
  std::string msg =
      "From: a@example.net\nSubject: dots\n\n.\n..two\n.three\nlast line without newline";
  // Chunks of 7 bytes put CR, LF and '.' on chunk boundaries.
  ExpectOutcome(Inject("dots", kInbox, msg, "sender@example.net", 7), v1::OUTCOME_CLASS_DELIVERED,
                v1::STAGE_BODY);
  EXPECT_EQ(peer_->FindByKey(kInbox, "dots").at(0),
            Delivered("From: a@example.net\r\nSubject: dots\r\n\r\n.\r\n..two\r\n.three\r\n"
                      "last line without newline\r\n",
                      "dots"));
}

TEST_F(InjectorServiceTest, EightBitHeaderBytesPass) {
  std::string msg =
      "From: J\xc3\xbcrgen M\xc3\xbcller <j@example.org>\r\nSubject: caf\xe9 \xff\xfe raw\r\n\r\n"
      "body \x80\x81\r\n";
  ExpectOutcome(Inject("8bit", kInbox, msg), v1::OUTCOME_CLASS_DELIVERED, v1::STAGE_BODY);
  EXPECT_EQ(peer_->FindByKey(kInbox, "8bit").at(0), Delivered(msg, "8bit"));
}

TEST_F(InjectorServiceTest, UnknownMailboxIsPermanent501) {
  ExpectOutcome(Inject("k", "nobody@example.org", Message()), v1::OUTCOME_CLASS_PERMANENT,
                v1::STAGE_RCPT, 501, "5.1.1");
}

TEST_F(InjectorServiceTest, EarlyRejectionReachesAClientStillStreaming) {
  std::string msg = Message(std::string(5 * kMiB, 'x') + "\r\n");
  ExpectOutcome(Inject("k", "nobody@example.org", msg), v1::OUTCOME_CLASS_PERMANENT, v1::STAGE_RCPT,
                501);
}

TEST_F(InjectorServiceTest, MissingFromIsPermanent554) {
  ExpectOutcome(Inject("k", kInbox, "Subject: no from\r\n\r\nbody\r\n"),
                v1::OUTCOME_CLASS_PERMANENT, v1::STAGE_BODY, 554, "5.6.0");
}

TEST_F(InjectorServiceTest, OversizeIsPermanent552) {
  SmtpPeerOptions small;
  small.max_size = int64_t{64} * 1024;
  StartPeer(small);
  StartService(SmtpOptions());
  CallResult r = Inject("k", kInbox, Message(std::string(size_t{100} * 1024, 'x')));
  ExpectOutcome(r, v1::OUTCOME_CLASS_PERMANENT, v1::STAGE_MAIL, 552, "5.3.4");
}

// A wrong credential is our misconfiguration, not the message's fault: it must
// not dead-letter mail.
TEST_F(InjectorServiceTest, WrongPasswordIsTemporaryAtAuth) {
  smtp::SessionOptions o = SmtpOptions();
  o.password = "not-the-password";
  StartService(o);
  CallResult r = Inject("k", kInbox, Message());
  ExpectOutcome(r, v1::OUTCOME_CLASS_TEMPORARY, v1::STAGE_AUTH, 535, "5.7.8");
  EXPECT_FALSE(absl::StrContains(r.response.DebugString(), "not-the-password"));
}

TEST_F(InjectorServiceTest, StoppedMailServerIsTemporaryAtConnect) {
  peer_->Stop();
  ExpectOutcome(Inject("k", kInbox, Message()), v1::OUTCOME_CLASS_TEMPORARY, v1::STAGE_CONNECT, 0);
}

TEST_F(InjectorServiceTest, ConnectionDroppedAfterFinalDotIsAmbiguous) {
  ASSERT_TRUE(peer_->SetFaults("drop_pct=100").ok());
  CallResult r = Inject("maybe", kInbox, Message());
  ExpectOutcome(r, v1::OUTCOME_CLASS_AMBIGUOUS, v1::STAGE_BODY, 0);
  EXPECT_FALSE(r.response.detail().empty());
}

TEST_F(InjectorServiceTest, TemporaryReplyIsTemporary) {
  ASSERT_TRUE(peer_->SetFaults("fail_pct=100 fail_code=451").ok());
  ExpectOutcome(Inject("k", kInbox, Message()), v1::OUTCOME_CLASS_TEMPORARY, v1::STAGE_BODY, 451,
                "4.3.0");
}

TEST_F(InjectorServiceTest, ReusesOneConnectionAcross20Messages) {
  for (int i = 0; i < 20; ++i) {
    ExpectOutcome(Inject(absl::StrCat("m", i), kInbox, Message()), v1::OUTCOME_CLASS_DELIVERED,
                  v1::STAGE_BODY);
  }
  EXPECT_EQ(peer_->Count(kInbox), 20);
  EXPECT_EQ(Stat("connections"), 1);
}

TEST_F(InjectorServiceTest, ConcurrentCallsShareABoundedPool) {
  StartService(SmtpOptions(), /*sessions=*/2);
  std::atomic<int> delivered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        CallResult r = Inject(absl::StrCat("c", t, "-", i), kInbox, Message());
        if (r.status.ok() && r.response.outcome() == v1::OUTCOME_CLASS_DELIVERED) ++delivered;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(delivered.load(), 30);
  EXPECT_EQ(peer_->Count(kInbox), 30);
  EXPECT_LE(Stat("connections"), 2);
}

TEST_F(InjectorServiceTest, CrLfInRecipientIsInvalidAndNeverReachesTheServer) {
  CallResult r = Inject("k", "inbox@example.org>\r\nRCPT TO:<evil@example.org", Message());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Stat("rcpt"), 0);
  EXPECT_EQ(Stat("connections"), 0);
}

TEST_F(InjectorServiceTest, CrLfInKeyIsInvalid) {
  CallResult r = Inject("k\r\nBcc: evil@example.org", kInbox, Message());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Stat("connections"), 0);
}

TEST_F(InjectorServiceTest, MissingEnvelopeIsInvalid) {
  EXPECT_EQ(Call({Chunk(Message())}).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Call({}).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Stat("connections"), 0);
}

TEST_F(InjectorServiceTest, ChunkOver1MiBIsInvalidAndNotDelivered) {
  std::string msg = Message(std::string(kMiB + 10, 'x'));
  CallResult r = Call({EnvelopeRequest("k", kInbox, msg.size()), Chunk(msg)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Stat("data"), 0);
  EXPECT_EQ(peer_->Count(kInbox), 0);
}

TEST_F(InjectorServiceTest, FewerBytesThanDeclaredIsInvalidAndNotDelivered) {
  std::string msg = Message();
  CallResult r = Call({EnvelopeRequest("short", kInbox, msg.size() + 1), Chunk(msg)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Stat("data"), 0);  // the final "." never went out
  // The session recovers for the next message.
  ExpectOutcome(Inject("next", kInbox, msg), v1::OUTCOME_CLASS_DELIVERED, v1::STAGE_BODY);
  EXPECT_EQ(peer_->Count(kInbox), 1);
}

TEST_F(InjectorServiceTest, MoreBytesThanDeclaredIsInvalidAndNotDelivered) {
  std::string msg = Message();
  CallResult r = Call({EnvelopeRequest("long", kInbox, 10), Chunk(msg)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(peer_->Count(kInbox), 0);
}

TEST_F(InjectorServiceTest, SecondEnvelopeIsInvalid) {
  std::string msg = Message();
  CallResult r = Call({EnvelopeRequest("k", kInbox, msg.size()), EnvelopeRequest("k", kInbox, 1)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(peer_->Count(kInbox), 0);
}

TEST_F(InjectorServiceTest, ClientCancellingMidBodyDeliversNothing) {
  std::string msg = Message(std::string(3 * kMiB, 'y'));
  {
    grpc::ClientContext ctx;
    v1::InjectResponse response;
    auto writer = stub_->Inject(&ctx, &response);
    ASSERT_TRUE(writer->Write(EnvelopeRequest("half", kInbox, msg.size())));
    ASSERT_TRUE(writer->Write(Chunk(absl::string_view(msg).substr(0, kMiB))));
    ctx.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ExpectOutcome(Inject("after", kInbox, Message()), v1::OUTCOME_CLASS_DELIVERED, v1::STAGE_BODY);
  absl::SleepFor(absl::Milliseconds(300));  // let the cancelled handler finish aborting
  EXPECT_EQ(peer_->FindByKey(kInbox, "half").size(), 0u);
  EXPECT_EQ(peer_->Count(kInbox), 1);
}

// The combined binary's path: the core's same transaction from a buffer, no stream.
TEST_F(InjectorServiceTest, TheCoreFromABufferDeliversTheSameBytesAndChecksTheEnvelope) {
  std::string msg = Message();
  for (int i = 0; msg.size() < 3 * kMiB; ++i) absl::StrAppend(&msg, "line ", i, "\r\n");
  v1::Envelope envelope = EnvelopeRequest("buffered", kInbox, msg.size()).envelope();
  auto reply = service_->core().Inject(envelope, msg, absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->outcome(), v1::OUTCOME_CLASS_DELIVERED) << reply->DebugString();
  auto got = peer_->FindByKey(kInbox, "buffered");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0] == Delivered(msg, "buffered")) << "delivered " << got[0].size() << " bytes";

  v1::Envelope bad = EnvelopeRequest("bad\r\nkey", kInbox, msg.size()).envelope();
  EXPECT_EQ(service_->core().Inject(bad, msg, absl::Now() + absl::Seconds(60)).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::Envelope short_count = EnvelopeRequest("short", kInbox, msg.size() + 1).envelope();
  EXPECT_EQ(
      service_->core().Inject(short_count, msg, absl::Now() + absl::Seconds(60)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(peer_->FindByKey(kInbox, "short").empty());
}

TEST(FillResponseTest, KeepsProtoStringsValidUtf8AndBounded) {
  smtp::DeliveryResult r;
  r.outcome = smtp::Outcome::kPermanent;
  r.stage = smtp::Stage::kRcpt;
  r.code = 550;
  r.enhanced = "5.1.1";
  r.reply_text = "bad \xff bytes " + std::string(2000, 'z');
  v1::InjectResponse response;
  FillResponse(r, &response);
  EXPECT_EQ(response.outcome(), v1::OUTCOME_CLASS_PERMANENT);
  EXPECT_EQ(response.stage(), v1::STAGE_RCPT);
  EXPECT_TRUE(absl::StartsWith(response.reply_text(), "bad ? bytes "));
  EXPECT_LE(response.reply_text().size(), smtp::kMaxReplyTextBytes);
}

}  // namespace
}  // namespace pocketmail::injector
