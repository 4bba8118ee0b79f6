// SmtpSession and SessionPool against the real SMTP peer (tests/peers/smtp).
#include "common/smtp/smtp_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/smtp/session_pool.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/smtp/smtp_peer.h"

namespace pocketmail::smtp {
namespace {

using ::pocketmail::testing::ScratchDir;
using ::pocketmail::testing::SmtpPeer;
using ::pocketmail::testing::SmtpPeerOptions;

constexpr char kInbox[] = "inbox@example.org";
constexpr char kPassword[] = "pw-do-not-log-7f3a";

std::string Message(const std::string& key, const std::string& body = "hello\r\n") {
  return absl::StrCat("X-Pocketmail-Key: ", key, "\r\nFrom: Sender <sender@example.net>\r\n",
                      "Subject: test\r\n\r\n", body);
}

Envelope To(const std::string& rcpt, uint64_t size_hint = 0) {
  Envelope e;
  e.mail_from = "sender@example.net";
  e.rcpt_to = rcpt;
  e.size_hint = size_hint;
  return e;
}

class SmtpSessionTest : public ::testing::Test {
 protected:
  void StartPeer(SmtpPeerOptions options = {}) {
    auto peer =
        SmtpPeer::Start(dir_.path(), {kInbox, "jürgen@example.org"}, "inject", kPassword, options);
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = std::move(*peer);
  }
  void SetUp() override { StartPeer(); }

  SessionOptions Options() const {
    SessionOptions o;
    o.host = "127.0.0.1";
    o.port = peer_->port();
    o.helo_name = "injector.test";
    o.user = "inject";
    o.password = kPassword;
    o.connect_timeout = absl::Seconds(5);
    o.command_timeout = absl::Seconds(5);
    o.final_reply_timeout = absl::Seconds(5);
    return o;
  }
  int64_t Stat(const std::string& name) {
    auto stats = peer_->Stats();
    return stats.ok() ? (*stats)[name] : -1;
  }

  ScratchDir dir_;
  std::unique_ptr<SmtpPeer> peer_;
};

TEST_F(SmtpSessionTest, DeliversMessageBytesVerbatim) {
  SmtpSession s(Options());
  DeliveryResult r = s.Deliver(To(kInbox), Message("k1"));
  EXPECT_EQ(r.outcome, Outcome::kDelivered) << r.DebugString();
  EXPECT_EQ(r.stage, Stage::kBody);
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "2.0.0");
  auto got = peer_->FindByKey(kInbox, "k1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], absl::StrCat("Return-Path: <sender@example.net>\r\nDelivered-To: ", kInbox,
                                 "\r\n", Message("k1")));
  EXPECT_TRUE(s.extensions().pipelining);
  EXPECT_TRUE(s.extensions().smtputf8);
  EXPECT_EQ(s.extensions().max_size, 32u << 20);
}

TEST_F(SmtpSessionTest, ReusesOneConnectionWithRsetBetweenMessages) {
  SmtpSession s(Options());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(s.Deliver(To(kInbox), Message(absl::StrCat("m", i))).outcome, Outcome::kDelivered);
  }
  EXPECT_EQ(s.connections_opened(), 1);
  EXPECT_EQ(Stat("connections"), 1);
  EXPECT_EQ(Stat("auth_ok"), 1);
  EXPECT_EQ(peer_->Count(kInbox), 5);
}

TEST_F(SmtpSessionTest, NullSenderIsSentAsAngleBrackets) {
  SmtpSession s(Options());
  Envelope e = To(kInbox);
  e.mail_from = "";
  ASSERT_EQ(s.Deliver(e, Message("bounce")).outcome, Outcome::kDelivered);
  EXPECT_TRUE(absl::StartsWith(peer_->FindByKey(kInbox, "bounce").at(0), "Return-Path: <>\r\n"));
}

TEST_F(SmtpSessionTest, BodyStreamedInAwkwardPiecesArrivesIntact) {
  SmtpSession s(Options());
  ASSERT_FALSE(s.BeginMessage(To(kInbox)).has_value());
  std::string msg = Message("pieces", "line\r\n.\r\n..two dots\r\nbare lf\n.\nend\r");
  for (size_t i = 0; i < msg.size(); i += 3) {
    ASSERT_FALSE(s.SendBody(msg.substr(i, 3)).has_value());
  }
  ASSERT_EQ(s.FinishMessage().outcome, Outcome::kDelivered);
  std::string got = peer_->FindByKey(kInbox, "pieces").at(0);
  EXPECT_TRUE(absl::EndsWith(got, "\r\n\r\nline\r\n.\r\n..two dots\r\nbare lf\r\n.\r\nend\r\n"))
      << got;
}

TEST_F(SmtpSessionTest, UnknownMailboxIsPermanentAtRcptAndSessionStaysUsable) {
  SmtpSession s(Options());
  DeliveryResult r = s.Deliver(To("nobody@example.org"), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kPermanent) << r.DebugString();
  EXPECT_EQ(r.stage, Stage::kRcpt);
  EXPECT_EQ(r.code, 501);
  EXPECT_EQ(r.enhanced, "5.1.1");
  EXPECT_EQ(s.Deliver(To(kInbox), Message("after")).outcome, Outcome::kDelivered);
  EXPECT_EQ(s.connections_opened(), 1);
}

TEST_F(SmtpSessionTest, MissingFromIsPermanentAfterData) {
  SmtpSession s(Options());
  DeliveryResult r = s.Deliver(To(kInbox), "Subject: no from\r\n\r\nbody\r\n");
  EXPECT_EQ(r.outcome, Outcome::kPermanent);
  EXPECT_EQ(r.stage, Stage::kBody);
  EXPECT_EQ(r.code, 554);
  EXPECT_EQ(r.enhanced, "5.6.0");
}

TEST_F(SmtpSessionTest, OversizeIsPermanentAtMailWhenAnnouncedElseAfterData) {
  SmtpPeerOptions small;
  small.max_size = 2000;
  StartPeer(small);
  std::string big = Message("big", std::string(3000, 'x') + "\r\n");
  SmtpSession s(Options());
  DeliveryResult at_mail = s.Deliver(To(kInbox, big.size()), big);
  EXPECT_EQ(at_mail.outcome, Outcome::kPermanent);
  EXPECT_EQ(at_mail.stage, Stage::kMail);
  EXPECT_EQ(at_mail.code, 552);
  EXPECT_EQ(at_mail.enhanced, "5.3.4");
  DeliveryResult at_end = s.Deliver(To(kInbox, 0), big);
  EXPECT_EQ(at_end.outcome, Outcome::kPermanent);
  EXPECT_EQ(at_end.stage, Stage::kBody);
  EXPECT_EQ(at_end.enhanced, "5.3.4");
}

TEST_F(SmtpSessionTest, WrongPasswordIsTemporaryAtAuthAndNeverShowsThePassword) {
  SessionOptions o = Options();
  o.password = "wrong-secret-91c2";
  SmtpSession s(o);
  DeliveryResult r = s.Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary) << r.DebugString();
  EXPECT_EQ(r.stage, Stage::kAuth);
  EXPECT_EQ(r.code, 535);
  EXPECT_EQ(r.enhanced, "5.7.8");
  EXPECT_FALSE(absl::StrContains(r.DebugString(), "wrong-secret"));
  EXPECT_FALSE(s.connected());
}

TEST_F(SmtpSessionTest, AuthLoginIsUsedWhenPlainIsNotOffered) {
  SmtpPeerOptions login_only;
  login_only.auth_mechanisms = "LOGIN";
  StartPeer(login_only);
  SmtpSession s(Options());
  EXPECT_EQ(s.Deliver(To(kInbox), Message("login")).outcome, Outcome::kDelivered);
  EXPECT_FALSE(s.extensions().auth_plain);
  EXPECT_EQ(Stat("auth_ok"), 1);
}

TEST_F(SmtpSessionTest, StoppedServerIsTemporaryAtConnect) {
  SessionOptions o = Options();
  peer_->Stop();
  SmtpSession s(o);
  DeliveryResult r = s.Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kConnect);
  EXPECT_EQ(r.code, 0);
  EXPECT_FALSE(r.detail.empty());
}

TEST_F(SmtpSessionTest, ConnectionDroppedAfterFinalDotIsAmbiguousThenReconnects) {
  SmtpSession s(Options());
  ASSERT_TRUE(peer_->SetFaults("drop_pct=100").ok());
  DeliveryResult r = s.Deliver(To(kInbox), Message("dropped"));
  EXPECT_EQ(r.outcome, Outcome::kAmbiguous) << r.DebugString();
  EXPECT_EQ(r.stage, Stage::kBody);
  EXPECT_EQ(r.code, 0);
  ASSERT_TRUE(peer_->ResetFaults().ok());
  EXPECT_EQ(s.Deliver(To(kInbox), Message("next")).outcome, Outcome::kDelivered);
  EXPECT_EQ(s.connections_opened(), 2);
}

TEST_F(SmtpSessionTest, ReplyHeldPastTheTimeoutIsAmbiguous) {
  SessionOptions o = Options();
  o.final_reply_timeout = absl::Milliseconds(300);
  SmtpSession s(o);
  ASSERT_TRUE(peer_->SetFaults("hold_s=2").ok());
  DeliveryResult r = s.Deliver(To(kInbox), Message("held"));
  EXPECT_EQ(r.outcome, Outcome::kAmbiguous) << r.DebugString();
  EXPECT_EQ(r.stage, Stage::kBody);
}

TEST_F(SmtpSessionTest, Injected451AfterDataIsTemporary) {
  SmtpSession s(Options());
  ASSERT_TRUE(peer_->SetFaults("fail_pct=100 fail_code=451").ok());
  DeliveryResult r = s.Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kBody);
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.enhanced, "4.3.0");
  EXPECT_EQ(peer_->Count(kInbox), 0);
}

TEST_F(SmtpSessionTest, Injected421AtMailIsTemporaryAndTheNextMessageReconnects) {
  SmtpSession s(Options());
  ASSERT_TRUE(peer_->SetFaults("fail_pct=100 fail_code=421 fail_stage=mail").ok());
  DeliveryResult r = s.Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kMail);
  EXPECT_EQ(r.code, 421);
  ASSERT_TRUE(peer_->ResetFaults().ok());
  EXPECT_EQ(s.Deliver(To(kInbox), Message("y")).outcome, Outcome::kDelivered);
  EXPECT_EQ(s.connections_opened(), 2);
}

TEST_F(SmtpSessionTest, CommandInjectionInAddressesNeverReachesTheServer) {
  SmtpSession s(Options());
  for (const char* rcpt : {"inbox@example.org>\r\nRCPT TO:<evil@example.org",
                           "inbox@example.org\nDATA", "inbox@example.org> NOTIFY=NEVER"}) {
    DeliveryResult r = s.Deliver(To(rcpt), Message("x"));
    EXPECT_EQ(r.outcome, Outcome::kPermanent);
    EXPECT_EQ(r.stage, Stage::kRcpt);
  }
  Envelope bad_sender = To(kInbox);
  bad_sender.mail_from = "a@b.c>\r\nRSET";
  EXPECT_EQ(s.Deliver(bad_sender, Message("x")).stage, Stage::kMail);
  EXPECT_EQ(Stat("connections"), 0);
  EXPECT_EQ(Stat("rcpt"), 0);
}

TEST_F(SmtpSessionTest, NonAsciiRecipientUsesSmtpUtf8) {
  SmtpSession s(Options());
  EXPECT_EQ(s.Deliver(To("jürgen@example.org"), Message("utf8")).outcome, Outcome::kDelivered);
  EXPECT_EQ(peer_->FindByKey("jürgen@example.org", "utf8").size(), 1u);
}

TEST_F(SmtpSessionTest, StartTlsVerifiedAgainstConfiguredCa) {
  SmtpPeerOptions tls;
  tls.tls = true;
  StartPeer(tls);
  SessionOptions o = Options();
  o.ca_file = peer_->ca_file();
  SmtpSession s(o);
  DeliveryResult r = s.Deliver(To(kInbox), Message("tls"));
  EXPECT_EQ(r.outcome, Outcome::kDelivered) << r.DebugString();
  EXPECT_EQ(Stat("tls"), 1);
  EXPECT_EQ(s.Deliver(To(kInbox), Message("tls2")).outcome, Outcome::kDelivered);
  EXPECT_EQ(Stat("connections"), 1);
}

TEST_F(SmtpSessionTest, StartTlsWithUnknownCaOrWrongNameIsTemporary) {
  ScratchDir other_dir;
  SmtpPeerOptions tls;
  tls.tls = true;
  auto other = SmtpPeer::Start(other_dir.path(), {kInbox}, "inject", kPassword, tls);
  ASSERT_TRUE(other.ok());
  StartPeer(tls);
  SessionOptions wrong_ca = Options();
  wrong_ca.ca_file = (*other)->ca_file();
  DeliveryResult r = SmtpSession(wrong_ca).Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kStartTls);
  EXPECT_TRUE(absl::StrContains(r.detail, "verif")) << r.detail;

  SessionOptions wrong_name = Options();
  wrong_name.ca_file = peer_->ca_file();
  wrong_name.tls_server_name = "mail.elsewhere.example";
  r = SmtpSession(wrong_name).Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kStartTls);

  SessionOptions by_dns_name = Options();
  by_dns_name.ca_file = peer_->ca_file();
  by_dns_name.tls_server_name = "localhost";
  EXPECT_EQ(SmtpSession(by_dns_name).Deliver(To(kInbox), Message("dns")).outcome,
            Outcome::kDelivered);
  EXPECT_EQ(Stat("auth_ok"), 1);  // credentials went only over the verified session
}

TEST_F(SmtpSessionTest, LoopbackWithoutCaUsesStartTlsUnverified) {
  SmtpPeerOptions tls;
  tls.tls = true;
  StartPeer(tls);
  SmtpSession s(Options());
  EXPECT_EQ(s.Deliver(To(kInbox), Message("opportunistic")).outcome, Outcome::kDelivered);
  EXPECT_EQ(Stat("tls"), 1);
}

TEST_F(SmtpSessionTest, ConfiguredCaRequiresStartTls) {
  SessionOptions o = Options();
  o.ca_file = "/nonexistent/ca.pem";
  DeliveryResult r = SmtpSession(o).Deliver(To(kInbox), Message("x"));
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kStartTls);
  EXPECT_EQ(Stat("auth_ok") + Stat("auth_failed"), 0);
}

TEST_F(SmtpSessionTest, LmtpOverUnixSocket) {
  SmtpPeerOptions lmtp;
  lmtp.lmtp = true;
  StartPeer(lmtp);
  SessionOptions o;
  o.lmtp = true;
  o.unix_socket = peer_->lmtp_socket();
  o.command_timeout = absl::Seconds(5);
  SmtpSession s(o);
  EXPECT_EQ(s.Deliver(To(kInbox), Message("lmtp1")).outcome, Outcome::kDelivered);
  EXPECT_EQ(s.Deliver(To(kInbox), Message("lmtp2")).outcome, Outcome::kDelivered);
  EXPECT_EQ(s.Deliver(To("nobody@example.org"), Message("x")).outcome, Outcome::kPermanent);
  EXPECT_EQ(peer_->Count(kInbox), 2);
  EXPECT_EQ(s.connections_opened(), 1);
}

// A listener that accepts TCP connections (via the backlog) but never speaks.
TEST_F(SmtpSessionTest, SilentServerIsTemporaryAtGreeting) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  SessionOptions o = Options();
  o.port = ntohs(a.sin_port);
  o.command_timeout = absl::Milliseconds(200);
  DeliveryResult r = SmtpSession(o).Deliver(To(kInbox), Message("x"));
  close(fd);
  EXPECT_EQ(r.outcome, Outcome::kTemporary);
  EXPECT_EQ(r.stage, Stage::kGreeting);
}

TEST_F(SmtpSessionTest, PoolSharesABoundedNumberOfConnections) {
  SessionPool pool(Options(), 2);
  std::atomic<int> delivered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto lease = pool.Acquire(absl::Now() + absl::Seconds(30));
        if (!lease.ok()) continue;
        if ((*lease)->Deliver(To(kInbox), Message(absl::StrCat(t, "-", i))).outcome ==
            Outcome::kDelivered) {
          ++delivered;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(delivered.load(), 40);
  EXPECT_EQ(peer_->Count(kInbox), 40);
  EXPECT_LE(Stat("connections"), 2);
  EXPECT_EQ(pool.connections_opened(), Stat("connections"));
}

TEST_F(SmtpSessionTest, PoolAcquireTimesOutWhenAllSessionsAreLeased) {
  SessionPool pool(Options(), 1);
  auto first = pool.Acquire(absl::Now() + absl::Seconds(1));
  ASSERT_TRUE(first.ok());
  auto second = pool.Acquire(absl::Now() + absl::Milliseconds(100));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(SmtpSessionTest, PoolAcquireReadsItsDeadlineOnTheSessionsClock) {
  FakeClock clock(absl::Now() + absl::Hours(1));  // an hour ahead of the real one
  SessionOptions o = Options();
  o.clock = &clock;
  SessionPool pool(o, 1);
  auto first = pool.Acquire(clock.Now() + absl::Seconds(1));
  ASSERT_TRUE(first.ok());
  const absl::Time start = absl::Now();
  auto second = pool.Acquire(clock.Now() + absl::Milliseconds(100));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));  // not the hour the real clock would say
}

TEST_F(SmtpSessionTest, ReleasingALeaseMidMessageAbortsWithoutTheFinalDot) {
  SessionPool pool(Options(), 1);
  {
    auto lease = pool.Acquire(absl::Now() + absl::Seconds(1));
    ASSERT_TRUE(lease.ok());
    ASSERT_FALSE((*lease)->BeginMessage(To(kInbox)).has_value());
    ASSERT_FALSE((*lease)->SendBody(Message("half")).has_value());
  }
  auto lease = pool.Acquire(absl::Now() + absl::Seconds(1));
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)->Deliver(To(kInbox), Message("whole")).outcome, Outcome::kDelivered);
  EXPECT_EQ(peer_->FindByKey(kInbox, "half").size(), 0u);
  EXPECT_EQ(peer_->Count(kInbox), 1);
}

}  // namespace
}  // namespace pocketmail::smtp
