// The SMTP peer's own contract, checked with a raw socket (no pocketmail code).
#include "tests/peers/smtp/smtp_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pocketmail::testing {
namespace {

// Blocking line-at-a-time SMTP client: just enough to poke the peer.
class RawSmtp {
 public:
  explicit RawSmtp(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawSmtp() { close(fd_); }
  bool connected() const { return connected_; }

  // The whole reply, lines joined with '\n'; "" on EOF.
  std::string Reply() {
    std::string all;
    while (true) {
      std::string line;
      char c;
      while (true) {
        if (recv(fd_, &c, 1, 0) != 1) return all;
        if (c == '\n') break;
        if (c != '\r') line.push_back(c);
      }
      absl::StrAppend(&all, all.empty() ? "" : "\n", line);
      if (line.size() < 4 || line[3] != '-') return all;
    }
  }
  void Send(const std::string& raw) { send(fd_, raw.data(), raw.size(), MSG_NOSIGNAL); }
  std::string Cmd(const std::string& line) {
    Send(line + "\r\n");
    return Reply();
  }
  void Login(const std::string& user, const std::string& pass) {
    Reply();  // greeting
    Cmd("EHLO test");
    Cmd("AUTH PLAIN " +
        absl::Base64Escape(std::string("\0", 1) + user + std::string("\0", 1) + pass));
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class SmtpPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SmtpPeerOptions options;
    options.max_size = 4096;
    auto peer = SmtpPeer::Start(dir_.path(), {"inbox@example.org", "Alice@Example.org"}, "inject",
                                "s3cret", options);
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = std::move(*peer);
  }
  ScratchDir dir_;
  std::unique_ptr<SmtpPeer> peer_;
};

TEST_F(SmtpPeerTest, AdvertisesWhatMaddyAdvertises) {
  RawSmtp c(peer_->port());
  ASSERT_TRUE(c.connected());
  EXPECT_TRUE(absl::StartsWith(c.Reply(), "220 "));
  std::string ehlo = c.Cmd("EHLO test");
  for (const char* ext : {"SIZE 4096", "8BITMIME", "SMTPUTF8", "PIPELINING", "AUTH LOGIN PLAIN"}) {
    EXPECT_TRUE(absl::StrContains(ehlo, ext)) << ext << " missing from " << ehlo;
  }
  EXPECT_FALSE(absl::StrContains(ehlo, "STARTTLS"));
}

TEST_F(SmtpPeerTest, RequiresAuthentication) {
  RawSmtp c(peer_->port());
  c.Reply();
  c.Cmd("EHLO test");
  EXPECT_TRUE(absl::StartsWith(c.Cmd("MAIL FROM:<a@b.c>"), "530 5.7.0"));
}

TEST_F(SmtpPeerTest, WrongPasswordIs535) {
  RawSmtp c(peer_->port());
  c.Reply();
  c.Cmd("EHLO test");
  EXPECT_TRUE(absl::StartsWith(
      c.Cmd("AUTH PLAIN " + absl::Base64Escape(std::string("\0inject\0nope", 12))), "535 5.7.8"));
  auto stats = peer_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)["auth_failed"], 1);
}

TEST_F(SmtpPeerTest, UnknownMailboxIs501AtRcpt) {
  RawSmtp c(peer_->port());
  c.Login("inject", "s3cret");
  EXPECT_TRUE(absl::StartsWith(c.Cmd("MAIL FROM:<a@b.c>"), "250"));
  EXPECT_TRUE(absl::StartsWith(c.Cmd("RCPT TO:<nobody@example.org>"), "501 5.1.1"));
}

TEST_F(SmtpPeerTest, DeliversLikeMaddyWithNullSenderAndCaseInsensitiveMailbox) {
  RawSmtp c(peer_->port());
  c.Login("inject", "s3cret");
  EXPECT_TRUE(absl::StartsWith(c.Cmd("MAIL FROM:<> BODY=8BITMIME"), "250"));
  EXPECT_TRUE(absl::StartsWith(c.Cmd("RCPT TO:<alice@example.org>"), "250"));
  EXPECT_TRUE(absl::StartsWith(c.Cmd("DATA"), "354"));
  EXPECT_TRUE(absl::StartsWith(
      c.Cmd("X-Pocketmail-Key: k1\r\nFrom: a@b.c\r\n\r\n..dot\r\nbody\r\n."), "250 2.0.0"));
  std::vector<std::string> got = peer_->FindByKey("ALICE@example.org", "k1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0],
            "Return-Path: <>\r\nDelivered-To: alice@example.org\r\n"
            "X-Pocketmail-Key: k1\r\nFrom: a@b.c\r\n\r\n.dot\r\nbody\r\n");
}

TEST_F(SmtpPeerTest, MissingFromIs554_560) {
  RawSmtp c(peer_->port());
  c.Login("inject", "s3cret");
  c.Cmd("MAIL FROM:<a@b.c>");
  c.Cmd("RCPT TO:<inbox@example.org>");
  c.Cmd("DATA");
  EXPECT_TRUE(absl::StartsWith(c.Cmd("Subject: x\r\n\r\nbody\r\n."), "554 5.6.0"));
  EXPECT_EQ(peer_->Count("inbox@example.org"), 0);
}

TEST_F(SmtpPeerTest, OversizeIs552_534AtMailAndAfterData) {
  RawSmtp c(peer_->port());
  c.Login("inject", "s3cret");
  EXPECT_TRUE(absl::StartsWith(c.Cmd("MAIL FROM:<a@b.c> SIZE=5000"), "552 5.3.4"));
  c.Cmd("MAIL FROM:<a@b.c>");
  c.Cmd("RCPT TO:<inbox@example.org>");
  c.Cmd("DATA");
  std::string big = "From: a@b.c\r\n\r\n";
  for (int i = 0; i < 100; ++i) big += std::string(60, 'x') + "\r\n";
  EXPECT_TRUE(absl::StartsWith(c.Cmd(big + "."), "552 5.3.4"));
}

TEST_F(SmtpPeerTest, InjectedFaultsAndCounters) {
  ASSERT_TRUE(peer_->SetFaults("fail_pct=100 fail_code=451").ok());
  {
    RawSmtp c(peer_->port());
    c.Login("inject", "s3cret");
    c.Cmd("MAIL FROM:<a@b.c>");
    c.Cmd("RCPT TO:<inbox@example.org>");
    c.Cmd("DATA");
    EXPECT_TRUE(absl::StartsWith(c.Cmd("From: a@b.c\r\n\r\nx\r\n."), "451 4.3.0"));
  }
  ASSERT_TRUE(peer_->SetFaults("fail_pct=0 drop_pct=100").ok());
  {
    RawSmtp c(peer_->port());
    c.Login("inject", "s3cret");
    c.Cmd("MAIL FROM:<a@b.c>");
    c.Cmd("RCPT TO:<inbox@example.org>");
    c.Cmd("DATA");
    EXPECT_EQ(c.Cmd("From: a@b.c\r\n\r\nx\r\n."), "");  // connection dropped, no reply
  }
  EXPECT_EQ(peer_->Count("inbox@example.org"), 1);  // drop_delivers defaults to 1
  EXPECT_FALSE(peer_->SetFaults("no_such_knob=1").ok());
  auto stats = peer_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)["connections"], 2);
  EXPECT_EQ((*stats)["faults"], 1);
  EXPECT_EQ((*stats)["drops"], 1);
}

TEST_F(SmtpPeerTest, ExitsCleanlyOnSigterm) {
  int port = peer_->port();
  int status = peer_->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  RawSmtp c(port);
  EXPECT_FALSE(c.connected());
}

}  // namespace
}  // namespace pocketmail::testing
