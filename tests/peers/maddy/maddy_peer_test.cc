// The Maddy peer against its contract, in raw LMTP/SMTP (no pocketmail
// client): the facts about Maddy that pocketmail is built on (docs/DESIGN.md,
// "Facts about Maddy", checked here against the real 0.8.1).
#include "tests/peers/maddy/maddy_peer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/process/shell_command.h"
#include "gtest/gtest.h"

namespace pocketmail::testing {
namespace {

// One line-protocol connection (LMTP on a unix socket, or SMTP on TCP).
class LineClient {
 public:
  static LineClient Unix(const std::string& path) {
    LineClient c;
    c.fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) c.Close();
    c.SetTimeout();
    return c;
  }
  static LineClient Tcp(int port) {
    LineClient c;
    c.fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) c.Close();
    c.SetTimeout();
    return c;
  }
  LineClient() = default;
  LineClient(LineClient&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~LineClient() { Close(); }

  bool connected() const { return fd_ >= 0; }
  void Send(const std::string& data) {
    if (fd_ >= 0) (void)!write(fd_, data.data(), data.size());
  }
  // A whole reply (multi-line joined with '\n'); "" on EOF or timeout.
  std::string Reply() {
    std::string out;
    while (true) {
      std::string line;
      char c;
      while (read(fd_, &c, 1) == 1) {
        if (c == '\n') break;
        if (c != '\r') line.push_back(c);
      }
      if (line.size() < 4) return out + line;
      out += (out.empty() ? "" : "\n") + line;
      if (line[3] != '-') return out;
    }
  }
  std::string Command(const std::string& line) {
    Send(line + "\r\n");
    return Reply();
  }

 private:
  void SetTimeout() {
    timeval tv{30, 0};
    if (fd_ >= 0) setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

const char kSloppy[] =
    "From: Someone <not an address>\r\n"  // net/mail refuses this
    "To: alice@example.org\r\n"
    "Date: the day before yesterday\r\n"  // and this
    "Subject: sloppy but real\r\n"
    "X-Pocketmail-Key: pending/sloppy\r\n"
    "\r\n"
    "..a line that starts with a dot\r\n"
    "body\r\n";

// LMTP transaction for one recipient; returns the replies to MAIL, RCPT and
// (when RCPT succeeded) the final dot.
std::vector<std::string> LmtpSend(LineClient& c, const std::string& from, const std::string& rcpt,
                                  const std::string& dot_stuffed) {
  std::vector<std::string> replies = {c.Command("MAIL FROM:<" + from + ">"),
                                      c.Command("RCPT TO:<" + rcpt + ">")};
  if (!absl::StartsWith(replies[1], "250")) return replies;
  EXPECT_TRUE(absl::StartsWith(c.Command("DATA"), "354"));
  c.Send(dot_stuffed + ".\r\n");
  replies.push_back(c.Reply());
  return replies;
}

class MaddyPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MaddyOptions options;
    options.mailboxes = {"alice@example.org", "bob@example.org"};
    options.max_message_size = "64K";
    auto started = MaddyPeer::Start(dir_.path(), options);
    ASSERT_TRUE(started.ok()) << started.status();
    maddy_ = std::move(*started);
  }
  ScratchDir dir_;
  std::unique_ptr<MaddyPeer> maddy_;
};

TEST_F(MaddyPeerTest, IsTheVersionUnderTest) { EXPECT_EQ(maddy_->version(), "0.8.1"); }

TEST_F(MaddyPeerTest, LmtpSocketIsInAnOwnerOnlyDirectory) {
  struct stat st;
  const std::string dir = maddy_->lmtp_socket().substr(0, maddy_->lmtp_socket().rfind('/'));
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(maddy_->service_settings().at("MAIL_LMTP_SOCKET"), maddy_->lmtp_socket());
}

TEST_F(MaddyPeerTest, LmtpDeliversSloppyHeadersByteForByteBehindDeliveredToAndReturnPath) {
  LineClient c = LineClient::Unix(maddy_->lmtp_socket());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(absl::StartsWith(c.Reply(), "220"));
  ASSERT_TRUE(absl::StartsWith(c.Command("LHLO test"), "250"));
  // Dot-stuffed on the wire: the stored line starts with a single dot.
  std::string wire = kSloppy;
  auto replies = LmtpSend(c, "sender@outside.test", "alice@example.org", wire);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(replies[2], "250 2.0.0")) << replies[2];
  auto stored = maddy_->ReadMailbox("alice@example.org");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  std::string original = kSloppy;
  original.replace(original.find("..a line"), 2, ".");
  EXPECT_EQ(
      (*stored)[0],
      absl::StrCat("Delivered-To: alice@example.org\r\nReturn-Path: <sender@outside.test>\r\n",
                   original));
}

TEST_F(MaddyPeerTest, LmtpTakesLinesFarOverTheRfcLimit) {
  LineClient c = LineClient::Unix(maddy_->lmtp_socket());
  ASSERT_TRUE(absl::StartsWith(c.Reply(), "220"));
  ASSERT_TRUE(absl::StartsWith(c.Command("LHLO test"), "250"));
  // Maddy's default smtp_max_line_length (4000) would answer 554 5.0.0.
  const std::string message = "Subject: one long line\r\n\r\n" + std::string(50000, 'h') + "\r\n";
  auto replies = LmtpSend(c, "s@outside.test", "alice@example.org", message);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(replies[2], "250 2.0.0")) << replies[2];
}

TEST_F(MaddyPeerTest, LmtpAnswersUnknownMailboxAndOversizeWithEnhancedCodes) {
  LineClient c = LineClient::Unix(maddy_->lmtp_socket());
  ASSERT_TRUE(absl::StartsWith(c.Reply(), "220"));
  ASSERT_TRUE(absl::StartsWith(c.Command("LHLO test"), "250"));
  auto unknown = LmtpSend(c, "s@outside.test", "nobody@example.org", "Subject: x\r\n\r\nx\r\n");
  ASSERT_EQ(unknown.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(unknown[1], "501 5.1.1")) << unknown[1];
  c.Command("RSET");
  // Over max_message_size (64K here): announced with SIZE= (RFC 1870, as the
  // injector does), refused at MAIL with 552 5.3.4 ...
  std::string big = "Subject: big\r\n\r\n";
  while (big.size() < size_t{80} * 1024) big += std::string(76, 'x') + "\r\n";
  EXPECT_TRUE(absl::StartsWith(
      c.Command(absl::StrCat("MAIL FROM:<s@outside.test> SIZE=", big.size())), "552 5.3.4"));
  c.Command("RSET");
  // ... but unannounced, only noticed while reading DATA, and then answered
  // as an untyped internal error.
  auto too_big = LmtpSend(c, "s@outside.test", "bob@example.org", big);
  ASSERT_EQ(too_big.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(too_big[2], "554 5.0.0")) << too_big[2];
}

TEST_F(MaddyPeerTest, SubmissionRefusesWhatLmtpDelivers) {
  const auto& s = maddy_->service_settings();
  LineClient c = LineClient::Tcp(maddy_->inject_port());
  ASSERT_TRUE(absl::StartsWith(c.Reply(), "220"));
  ASSERT_TRUE(absl::StartsWith(c.Command("EHLO test"), "250"));
  // AUTH PLAIN: "\0user\0pass", base64.
  const std::string plain =
      std::string("\0", 1) + s.at("INJECT_USER") + std::string("\0", 1) + s.at("INJECT_PASS");
  const std::string b64 = absl::Base64Escape(plain);
  ASSERT_TRUE(absl::StartsWith(c.Command("AUTH PLAIN " + b64), "235"));
  auto replies = LmtpSend(c, "sender@outside.test", "alice@example.org", kSloppy);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(replies[2], "554 5.6.0")) << replies[2];
}

TEST_F(MaddyPeerTest, AccountListIsTheInstallersPlusTheAddedMailboxes) {
  auto listed = process::RunShellCommand(maddy_->service_settings().at("MAIL_ACCOUNTS_CMD"));
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_TRUE(listed->succeeded()) << listed->stderr_text;
  for (const char* m :
       {"inbox@example.org", "admin@example.org", "alice@example.org", "bob@example.org"}) {
    EXPECT_TRUE(absl::StrContains(listed->stdout_text, std::string(m) + "\n")) << m;
  }
  ASSERT_TRUE(maddy_->AddMailbox("Carol@Example.org").ok());
  listed = process::RunShellCommand(maddy_->service_settings().at("MAIL_ACCOUNTS_CMD"));
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(absl::StrContains(listed->stdout_text, "carol@example.org\n")) << listed->stdout_text;
  auto inbox = maddy_->ReadMailbox("carol@example.org");  // she can log in
  ASSERT_TRUE(inbox.ok()) << inbox.status();
  EXPECT_TRUE(inbox->empty());
}

TEST_F(MaddyPeerTest, RestartsAfterSigkillDespiteTheLeftoverSocket) {
  maddy_->Kill();
  struct stat st;
  EXPECT_EQ(stat(maddy_->lmtp_socket().c_str(), &st), 0) << "Maddy leaves its socket file behind";
  ASSERT_TRUE(maddy_->Restart().ok()) << maddy_->Log();
  LineClient c = LineClient::Unix(maddy_->lmtp_socket());
  EXPECT_TRUE(absl::StartsWith(c.Reply(), "220"));
}

}  // namespace
}  // namespace pocketmail::testing
