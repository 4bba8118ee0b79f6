// The Dovecot peer's contract, checked over raw IMAP: it serves the Maildirs
// written by someone else (here: this test, as the SMTP peer would), never
// moves or rewrites them, and stops/dies on request.
#include "tests/peers/imap/dovecot_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {
namespace {

namespace fs = std::filesystem;

// A line-at-a-time IMAP conversation over a blocking socket (5 s timeouts).
class RawImap {
 public:
  explicit RawImap(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (connected_) greeting_ = ReadLine();
  }
  ~RawImap() { close(fd_); }
  bool connected() const { return connected_; }
  const std::string& greeting() const { return greeting_; }

  // Sends "<tag> <command>" and returns every line up to and including the tagged one.
  std::string Command(const std::string& tag, const std::string& command) {
    std::string line = absl::StrCat(tag, " ", command, "\r\n");
    send(fd_, line.data(), line.size(), MSG_NOSIGNAL);
    std::string all;
    for (int i = 0; i < 1000; ++i) {
      std::string l = ReadLine();
      absl::StrAppend(&all, l, "\n");
      if (l.empty() || absl::StartsWith(l, tag + " ")) break;
    }
    return all;
  }

 private:
  std::string ReadLine() {
    std::string line;
    char c;
    while (recv(fd_, &c, 1, 0) == 1 && c != '\n') {
      if (c != '\r') line.push_back(c);
    }
    return line;
  }
  int fd_ = -1;
  bool connected_ = false;
  std::string greeting_;
};

void WriteMessage(const std::string& maildir_root, const std::string& mailbox,
                  const std::string& name, const std::string& key) {
  std::ofstream f(fs::path(maildir_root) / mailbox / "new" / name, std::ios::binary);
  f << "Return-Path: <a@example.net>\r\nDelivered-To: " << mailbox
    << "\r\nX-Pocketmail-Key: " << key << "\r\nFrom: a@example.net\r\nSubject: t\r\n\r\nbody\r\n";
}

class DovecotPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    maildir_ = dir_.path() + "/maildir";
    auto peer = DovecotPeer::Start(
        dir_.path(), maildir_,
        {{"inbox@example.org", "imap-secret"}, {"Admin@Example.org", "p\"w\\ x"}});
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = std::move(*peer);
  }

  ScratchDir dir_;
  std::string maildir_;
  std::unique_ptr<DovecotPeer> peer_;
};

TEST_F(DovecotPeerTest, GreetsOnItsPort) {
  RawImap imap(peer_->port());
  ASSERT_TRUE(imap.connected());
  EXPECT_TRUE(absl::StartsWith(imap.greeting(), "* OK")) << imap.greeting();
}

TEST_F(DovecotPeerTest, CreatesEachUsersMaildirUnderTheLowercasedAddress) {
  for (const char* box : {"inbox@example.org", "admin@example.org"}) {
    for (const char* sub : {"cur", "new", "tmp"}) {
      EXPECT_TRUE(fs::is_directory(fs::path(maildir_) / box / sub)) << box << "/" << sub;
    }
  }
}

TEST_F(DovecotPeerTest, LogsInWithTheRightPasswordOnly) {
  RawImap good(peer_->port());
  EXPECT_TRUE(absl::StrContains(good.Command("a", "LOGIN inbox@example.org imap-secret"), "a OK"));
  RawImap bad(peer_->port());
  EXPECT_TRUE(absl::StrContains(bad.Command("a", "LOGIN inbox@example.org wrong"), "a NO"));
}

TEST_F(DovecotPeerTest, UserNamesAreCaseInsensitiveAndPasswordsMayHoldQuotes) {
  RawImap imap(peer_->port());
  EXPECT_TRUE(
      absl::StrContains(imap.Command("a", R"(LOGIN ADMIN@example.ORG "p\"w\\ x")"), "a OK"));
}

TEST_F(DovecotPeerTest, FindsMailWrittenToTheMaildirAfterStartAndLeavesItInNew) {
  WriteMessage(maildir_, "inbox@example.org", "1.peer", "pending/one.eml");
  RawImap imap(peer_->port());
  imap.Command("a", "LOGIN inbox@example.org imap-secret");
  std::string examine = imap.Command("b", "EXAMINE INBOX");
  EXPECT_TRUE(absl::StrContains(examine, "* 1 EXISTS")) << examine << peer_->Log();
  EXPECT_TRUE(absl::StrContains(
      imap.Command("c", "SEARCH HEADER X-Pocketmail-Key \"pending/one.eml\""), "* SEARCH 1\n"));
  WriteMessage(maildir_, "inbox@example.org", "2.peer", "pending/two.eml");
  RawImap again(peer_->port());
  again.Command("a", "LOGIN inbox@example.org imap-secret");
  again.Command("b", "EXAMINE INBOX");
  EXPECT_TRUE(absl::StrContains(
      again.Command("c", "SEARCH HEADER X-Pocketmail-Key \"pending/two.eml\""), "* SEARCH 2\n"));
  EXPECT_TRUE(fs::exists(fs::path(maildir_) / "inbox@example.org/new/1.peer"));
  EXPECT_TRUE(fs::exists(fs::path(maildir_) / "inbox@example.org/new/2.peer"));
}

TEST_F(DovecotPeerTest, StopClosesThePort) {
  const int port = peer_->port();
  peer_->Stop();
  RawImap imap(port);
  EXPECT_FALSE(imap.connected());
}

TEST_F(DovecotPeerTest, KillLeavesNoDovecotProcessBehind) {
  const int port = peer_->port();
  RawImap session(port);  // an imap-login child exists now
  ASSERT_TRUE(session.connected());
  peer_->Kill();
  RawImap imap(port);
  EXPECT_FALSE(imap.connected());
}

TEST(DovecotPeerStartTest, RefusesAUserNameThatWouldBreakTheConfig) {
  ScratchDir dir;
  EXPECT_FALSE(DovecotPeer::Start(dir.path(), dir.path() + "/m", {{"a b@example.org", "x"}}).ok());
  EXPECT_FALSE(DovecotPeer::Start(dir.path(), dir.path() + "/m", {{"a@example.org", "x:y"}}).ok());
}

}  // namespace
}  // namespace pocketmail::testing
