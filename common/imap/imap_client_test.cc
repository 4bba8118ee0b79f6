// The client against a scripted IMAP server on a loopback socket: each test's
// server is a few lines of "read this, send that".
#include "common/imap/imap_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace pocketmail::imap {
namespace {

// One connection's worth of server, run on its own thread.
class ScriptedServer {
 public:
  using Script = std::function<void(ScriptedServer&)>;
  explicit ScriptedServer(Script script) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    listen(listen_fd_, 1);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script] {
      fd_ = accept(listen_fd_, nullptr, nullptr);
      timeval tv{5, 0};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      script(*this);
      close(fd_);
    });
  }
  ~ScriptedServer() {
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }

  void Send(const std::string& s) { send(fd_, s.data(), s.size(), MSG_NOSIGNAL); }
  std::string ReadLine() {  // without CRLF
    std::string line;
    char c;
    while (recv(fd_, &c, 1, 0) == 1 && c != '\n') line.push_back(c);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    received_.push_back(line);
    return line;
  }
  std::string ReadBytes(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = recv(fd_, &out[got], n - got, 0);
      if (r <= 0) break;
      got += r;
    }
    out.resize(got);
    return out;
  }
  // Waits until the client closes (so the script does not close first).
  void WaitForClose() {
    char c;
    while (recv(fd_, &c, 1, 0) > 0) {
    }
  }

 private:
  int listen_fd_ = -1;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::string> received_;
};

ClientOptions Options(int port) {
  ClientOptions o;
  o.port = port;
  o.connect_timeout = absl::Seconds(5);
  o.command_timeout = absl::Seconds(5);
  return o;
}

constexpr char kGreeting[] = "* OK [CAPABILITY IMAP4rev1] ready\r\n";

TEST(ImapClientTest, ByeGreetingIsUnavailable) {
  ScriptedServer server([](ScriptedServer& s) { s.Send("* BYE too busy\r\n"); });
  auto client = ImapClient::Connect(Options(server.port()));
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(client.status().message(), "too busy"));
}

TEST(ImapClientTest, RefusedConnectionIsUnavailable) {
  int port = 0;
  {
    ScriptedServer server([](ScriptedServer& s) { s.Send(kGreeting); });
    port = server.port();
    ASSERT_TRUE(ImapClient::Connect(Options(port)).ok());
  }  // the server no longer listens
  EXPECT_EQ(ImapClient::Connect(Options(port)).status().code(), absl::StatusCode::kUnavailable);
}

TEST(ImapClientTest, LoginQuotesAndEscapesCredentials) {
  std::string got;
  ScriptedServer server([&](ScriptedServer& s) {
    s.Send(kGreeting);
    got = s.ReadLine();
    s.Send("p1 OK logged in\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Login("u@example.org", "p\"w\\ d").ok());
  client->reset();
  EXPECT_EQ(got, R"(p1 LOGIN "u@example.org" "p\"w\\ d")");
}

TEST(ImapClientTest, LoginSendsAnEightBitPasswordAsALiteralAfterTheContinuation) {
  std::string line1, literal_and_rest;
  ScriptedServer server([&](ScriptedServer& s) {
    s.Send(kGreeting);
    line1 = s.ReadLine();
    s.Send("+ go ahead\r\n");
    literal_and_rest = s.ReadBytes(6);
    literal_and_rest += s.ReadLine();
    s.Send("p1 OK logged in\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  absl::Status login = (*client)->Login("u", "p\xc3\xa4ssw");
  EXPECT_TRUE(login.ok()) << login;
  client->reset();
  EXPECT_EQ(line1, "p1 LOGIN \"u\" {6}");
  EXPECT_EQ(literal_and_rest, "p\xc3\xa4ssw");
}

TEST(ImapClientTest, RefusedLoginIsPermissionDeniedAndNeverEchoesThePassword) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.Send("p1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  absl::Status s = (*client)->Login("u", "hunter2-secret");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(s.message(), "AUTHENTICATIONFAILED"));
  EXPECT_FALSE(absl::StrContains(s.message(), "hunter2"));
}

TEST(ImapClientTest, ServerRefusingALiteralEndsTheCommand) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.Send("p1 NO literal refused\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Login("u", "p\xc3\xa4ss").code(), absl::StatusCode::kPermissionDenied);
}

TEST(ImapClientTest, ExamineReportsExistsReadOnlyAndWarnings) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.Send(
        "* NO Internal mailbox synchronization failure\r\n* FLAGS (\\Seen)\r\n"
        "* 12 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\np1 OK [READ-ONLY] done\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  auto info = (*client)->Examine("INBOX");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->exists, 12u);
  EXPECT_TRUE(info->read_only);
  ASSERT_EQ((*client)->warnings().size(), 1u);
  EXPECT_TRUE(absl::StrContains((*client)->warnings()[0], "synchronization failure"));
}

TEST(ImapClientTest, ALiteralThatLooksLikeOurTaggedReplyDoesNotDesync) {
  std::string search;
  ScriptedServer server([&](ScriptedServer& s) {
    s.Send(kGreeting);
    search = s.ReadLine();
    s.Send(
        "* 9 FETCH (BODY[] {14}\r\np1 OK fooled\r\n)\r\n* SEARCH 3\r\n* SEARCH 1 3\r\n"
        "p1 OK done\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  auto seqs = (*client)->SearchHeader("X-Pocketmail-Key", "pending/a.eml");
  ASSERT_TRUE(seqs.ok()) << seqs.status();
  EXPECT_EQ(*seqs, (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(search, R"(p1 SEARCH HEADER X-Pocketmail-Key "pending/a.eml")");
}

TEST(ImapClientTest, FetchHeaderFieldReadsLiteralsAndIgnoresUnsolicitedFetches) {
  std::string fetch;
  ScriptedServer server([&](ScriptedServer& s) {
    s.Send(kGreeting);
    fetch = s.ReadLine();
    s.Send(
        "* 2 FETCH (BODY[HEADER.FIELDS (X-POCKETMAIL-KEY)] {21}\r\nX-Pocketmail-Key: a\r\n)\r\n"
        "* 4 FETCH (FLAGS (\\Seen))\r\n"
        "* 5 FETCH (BODY[HEADER.FIELDS (\"X-Pocketmail-Key\")] \"\")\r\np1 OK done\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  auto headers = (*client)->FetchHeaderField({2, 5}, "X-Pocketmail-Key");
  ASSERT_TRUE(headers.ok()) << headers.status();
  EXPECT_EQ(fetch, "p1 FETCH 2,5 (BODY.PEEK[HEADER.FIELDS (X-Pocketmail-Key)])");
  ASSERT_EQ(headers->size(), 2u);
  EXPECT_EQ(headers->at(2), "X-Pocketmail-Key: a\r\n");
  EXPECT_EQ(headers->at(5), "");
}

TEST(ImapClientTest, BadIsInternal) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.Send("p1 BAD Error in IMAP command\r\n");
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Examine("INBOX").status().code(), absl::StatusCode::kInternal);
}

TEST(ImapClientTest, ByeThenCloseMidCommandIsUnavailableWithTheReason) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.Send("* BYE shutting down\r\n");
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  auto r = (*client)->SearchHeader("X-Pocketmail-Key", "k");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "shutting down"));
}

TEST(ImapClientTest, SilentServerIsDeadlineExceeded) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.WaitForClose();
  });
  ClientOptions o = Options(server.port());
  o.command_timeout = absl::Milliseconds(200);
  auto client = ImapClient::Connect(o);
  ASSERT_TRUE(client.ok());
  absl::Time start = absl::Now();
  EXPECT_EQ((*client)->Examine("INBOX").status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(ImapClientTest, OverallDeadlineCapsEachCommand) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.WaitForClose();
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  (*client)->set_deadline(absl::Now() + absl::Milliseconds(200));
  absl::Time start = absl::Now();
  EXPECT_EQ((*client)->Examine("INBOX").status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(ImapClientTest, UnsafeSearchValueIsRefusedBeforeAnythingIsSent) {
  std::string next;
  ScriptedServer server([&](ScriptedServer& s) {
    s.Send(kGreeting);
    next = s.ReadLine();
  });
  {
    auto client = ImapClient::Connect(Options(server.port()));
    ASSERT_TRUE(client.ok());
    EXPECT_EQ((*client)->SearchHeader("X-Pocketmail-Key", "a\"b").status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*client)->SearchHeader("X-Pocketmail-Key", "a\r\nb").status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*client)->SearchHeader("X Key", "a").status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(next, "");  // the client closed without sending a command
}

TEST(ImapClientTest, LogoutToleratesACloseRightAfterBye) {
  ScriptedServer server([](ScriptedServer& s) {
    s.Send(kGreeting);
    s.ReadLine();
    s.Send("* BYE Logging out\r\n");
  });
  auto client = ImapClient::Connect(Options(server.port()));
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Logout().ok());
}

}  // namespace
}  // namespace pocketmail::imap
