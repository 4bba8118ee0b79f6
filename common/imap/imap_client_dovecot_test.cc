// The client against a real Dovecot serving Maildirs written the way the SMTP
// peer writes them.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/imap/imap_client.h"
#include "gtest/gtest.h"
#include "tests/peers/imap/dovecot_peer.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::imap {
namespace {

using ::pocketmail::testing::DovecotPeer;
using ::pocketmail::testing::ScratchDir;

constexpr char kInbox[] = "inbox@example.org";
constexpr char kPassword[] = "imap \"quoted\" \\ secret";
constexpr char kUtf8User[] = "utf8@example.org";
constexpr char kUtf8Password[] = "p\xc3\xa4sswort";

class ImapClientDovecotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    maildir_ = dir_.path() + "/maildir";
    auto peer = DovecotPeer::Start(dir_.path(), maildir_,
                                   {{kInbox, kPassword}, {kUtf8User, kUtf8Password}});
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = std::move(*peer);
  }

  void Deliver(const std::string& key) {
    const std::string name = absl::StrCat(++delivered_, ".peer");
    std::ofstream f(std::filesystem::path(maildir_) / kInbox / "new" / name, std::ios::binary);
    f << "Return-Path: <a@example.net>\r\nDelivered-To: " << kInbox
      << "\r\nX-Pocketmail-Key: " << key << "\r\nFrom: a@example.net\r\nSubject: t\r\n\r\nhi\r\n";
  }

  std::unique_ptr<ImapClient> LoggedIn() {
    ClientOptions o;
    o.port = peer_->port();
    o.command_timeout = absl::Seconds(10);
    auto client = ImapClient::Connect(o);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    absl::Status login = (*client)->Login(kInbox, kPassword);
    EXPECT_TRUE(login.ok()) << login << peer_->Log();
    return std::move(*client);
  }

  ScratchDir dir_;
  std::string maildir_;
  std::unique_ptr<DovecotPeer> peer_;
  int delivered_ = 0;
};

TEST_F(ImapClientDovecotTest, LogsInWithAQuotedPassword) {
  auto client = LoggedIn();
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->Logout().ok());
}

TEST_F(ImapClientDovecotTest, LogsInWithAnEightBitPasswordSentAsALiteral) {
  ClientOptions o;
  o.port = peer_->port();
  auto client = ImapClient::Connect(o);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Login(kUtf8User, kUtf8Password).ok()) << peer_->Log();
}

TEST_F(ImapClientDovecotTest, WrongPasswordIsPermissionDenied) {
  ClientOptions o;
  o.port = peer_->port();
  auto client = ImapClient::Connect(o);
  ASSERT_TRUE(client.ok());
  absl::Status s = (*client)->Login(kInbox, "wrong-password");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "wrong-password"));
}

TEST_F(ImapClientDovecotTest, ExamineOpensTheInboxReadOnly) {
  Deliver("pending/a.eml");
  Deliver("pending/b.eml");
  auto client = LoggedIn();
  ASSERT_NE(client, nullptr);
  auto info = client->Examine("INBOX");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->exists, 2u);
  EXPECT_TRUE(info->read_only);
  EXPECT_TRUE(client->warnings().empty());
}

TEST_F(ImapClientDovecotTest, ExamineOfAMissingMailboxIsFailedPrecondition) {
  auto client = LoggedIn();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Examine("No Such Folder").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ImapClientDovecotTest, SearchFindsTheMessagesCarryingTheHeader) {
  Deliver("pending/a.eml");
  Deliver("pending/b.eml");
  Deliver("pending/a.eml");
  auto client = LoggedIn();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Examine("INBOX").ok());
  auto a = client->SearchHeader("X-Pocketmail-Key", "pending/a.eml");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (std::vector<uint32_t>{1, 3}));
  auto none = client->SearchHeader("X-Pocketmail-Key", "pending/never.eml");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// IMAP SEARCH matches substrings; the exact comparison needs the header itself.
TEST_F(ImapClientDovecotTest, SearchMatchesSubstringsFetchGivesTheExactValue) {
  Deliver("pending/abc-1.eml");
  auto client = LoggedIn();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Examine("INBOX").ok());
  auto seqs = client->SearchHeader("X-Pocketmail-Key", "abc-1");
  ASSERT_TRUE(seqs.ok());
  ASSERT_EQ(*seqs, std::vector<uint32_t>{1});
  auto headers = client->FetchHeaderField(*seqs, "X-Pocketmail-Key");
  ASSERT_TRUE(headers.ok()) << headers.status();
  ASSERT_EQ(headers->count(1), 1u);
  EXPECT_EQ(HeaderFieldValues(headers->at(1), "X-Pocketmail-Key"),
            std::vector<std::string>{"pending/abc-1.eml"});
}

TEST_F(ImapClientDovecotTest, SeesMailDeliveredAfterAnEarlierSession) {
  {
    auto client = LoggedIn();
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Examine("INBOX").ok());
  }
  Deliver("pending/later.eml");
  auto client = LoggedIn();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Examine("INBOX").ok());
  auto seqs = client->SearchHeader("X-Pocketmail-Key", "pending/later.eml");
  ASSERT_TRUE(seqs.ok());
  EXPECT_EQ(seqs->size(), 1u);
}

TEST_F(ImapClientDovecotTest, StoppedServerIsUnavailable) {
  const int port = peer_->port();
  peer_->Stop();
  ClientOptions o;
  o.port = port;
  EXPECT_EQ(ImapClient::Connect(o).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace pocketmail::imap
