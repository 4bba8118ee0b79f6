// Transport against listeners made here: loopback TCP and unix sockets. Only
// outcomes that cannot depend on timing are checked (a unix socket's write is
// in the peer's queue when it returns; a deadline is only used where nothing
// will ever arrive).
#include "common/net/transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pocketmail::net {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(30);

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() { Close(); }
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

void SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string RecvExactly(int fd, size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// A TCP socket on 127.0.0.1 with a kernel-chosen port; listening unless told not to.
struct TcpServer {
  Fd listener;
  int port = 0;

  explicit TcpServer(bool listen = true) : listener(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    if (listen) {
      EXPECT_EQ(::listen(listener.get(), 4), 0);
    }
  }
  Fd Accept() { return Fd(::accept(listener.get(), nullptr, nullptr)); }
};

// A unix socket listener in a fresh directory under /tmp (TEST_TMPDIR may be
// longer than sun_path allows).
struct UnixServer {
  std::string dir;
  std::string path;
  Fd listener;

  UnixServer() {
    char tmpl[] = "/tmp/pm-transport-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    path = dir + "/s";
    listener = Fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener.get(), 4), 0);
  }
  ~UnixServer() {
    listener.Close();
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  Fd Accept() { return Fd(::accept(listener.get(), nullptr, nullptr)); }
};

TEST(TransportTcp, ReadsLinesEndedByCrlfOrBareLf) {
  TcpServer server;
  auto t = Transport::ConnectTcp("127.0.0.1", server.port, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  SendAll(peer.get(), "220 ready\r\nbare\n\r\n");
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "220 ready");
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "bare");
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "");
  EXPECT_FALSE((*t)->tls_active());
}

TEST(TransportTcp, WriteAllDeliversEveryByte) {
  TcpServer server;
  auto t = Transport::ConnectTcp("127.0.0.1", server.port, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  std::string data(16000, 'x');
  for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>('a' + i % 26);
  // The peer reads only after WriteAll returns, so stay under the socket buffers.
  ASSERT_TRUE((*t)->WriteAll(data, kGenerous).ok());
  EXPECT_EQ(RecvExactly(peer.get(), 16000), data);
}

TEST(TransportTcp, RefusedConnectIsUnavailableAndNamesThePeer) {
  TcpServer bound_not_listening(/*listen=*/false);
  auto t = Transport::ConnectTcp("127.0.0.1", bound_not_listening.port, kGenerous);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  const std::string what = absl::StrCat("connect to 127.0.0.1:", bound_not_listening.port);
  EXPECT_NE(t.status().message().find(what), absl::string_view::npos) << t.status();
  EXPECT_NE(t.status().message().find(std::strerror(ECONNREFUSED)), absl::string_view::npos)
      << t.status();
}

TEST(TransportTcp, UnresolvableHostIsUnavailable) {
  auto t = Transport::ConnectTcp("no such host", 25, kGenerous);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(t.status().message().find("resolve no such host"), absl::string_view::npos)
      << t.status();
}

TEST(TransportTcp, PeerClosingIsUnavailable) {
  TcpServer server;
  auto t = Transport::ConnectTcp("127.0.0.1", server.port, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  SendAll(peer.get(), "221 bye\r\n");
  peer.Close();
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "221 bye");
  auto next = (*t)->ReadLine(100, kGenerous);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(next.status().message(), "connection closed by the server");
}

TEST(TransportTcp, ReadPastTheDeadlineIsDeadlineExceeded) {
  TcpServer server;
  auto t = Transport::ConnectTcp("127.0.0.1", server.port, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();  // sends nothing, ever
  auto line = (*t)->ReadLine(100, absl::Milliseconds(20));
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(TransportUnix, ExchangesLinesAndExactBytes) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  ASSERT_TRUE((*t)->WriteAll("LHLO pm\r\n", kGenerous).ok());
  EXPECT_EQ(RecvExactly(peer.get(), 9), "LHLO pm\r\n");
  SendAll(peer.get(), "* 1 FETCH {5}\r\na\r\nbcTAIL\r\n");
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "* 1 FETCH {5}");
  EXPECT_EQ(*(*t)->ReadExact(5, kGenerous), "a\r\nbc");
  EXPECT_TRUE((*t)->HasBufferedInput());
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "TAIL");
  EXPECT_FALSE((*t)->HasBufferedInput());
}

TEST(TransportUnix, OverlongLineIsDataLoss) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  SendAll(peer.get(), std::string(64, 'x') + "\r\n");
  auto line = (*t)->ReadLine(10, kGenerous);
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), absl::StatusCode::kDataLoss);
}

TEST(TransportUnix, LineOfExactlyTheLimitIsAccepted) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  SendAll(peer.get(), std::string(10, 'x') + "\r\n");
  EXPECT_EQ(*(*t)->ReadLine(10, kGenerous), std::string(10, 'x'));
}

TEST(TransportUnix, IdleConnectionIsStaleOnceThePeerSpeaksOrCloses) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  EXPECT_FALSE((*t)->IdleConnectionIsStale());
  SendAll(peer.get(), "421 idle too long\r\n");
  EXPECT_TRUE((*t)->IdleConnectionIsStale());

  auto other = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(other.ok()) << other.status();
  Fd other_peer = server.Accept();
  EXPECT_FALSE((*other)->IdleConnectionIsStale());
  other_peer.Close();
  EXPECT_TRUE((*other)->IdleConnectionIsStale());
}

TEST(TransportUnix, MissingSocketIsUnavailable) {
  auto t = Transport::ConnectUnix("/nonexistent/pocketmail/lmtp.sock", kGenerous);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(t.status().message().find("/nonexistent/pocketmail/lmtp.sock"),
            absl::string_view::npos);
}

TEST(TransportUnix, PathTooLongForSunPathIsRefused) {
  const std::string path = "/tmp/" + std::string(sizeof(sockaddr_un::sun_path), 'p');
  auto t = Transport::ConnectUnix(path, kGenerous);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(t.status().message().find("unix socket path too long"), absl::string_view::npos);
}

TEST(TransportUnix, ClosedTransportRefusesReadsAndWrites) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  (*t)->Close();
  EXPECT_EQ((*t)->WriteAll("x", kGenerous).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*t)->ReadLine(10, kGenerous).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE((*t)->IdleConnectionIsStale());
  EXPECT_EQ((*t)->StartTls(TlsOptions{}, kGenerous).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TransportUnix, StartTlsRefusesBytesSentAfterTheReply) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  Fd peer = server.Accept();
  SendAll(peer.get(), "220 go ahead\r\n250 injected\r\n");
  EXPECT_EQ(*(*t)->ReadLine(100, kGenerous), "220 go ahead");
  TlsOptions tls;
  tls.server_name = "mail.example.org";
  absl::Status st = (*t)->StartTls(tls, kGenerous);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("injection"), absl::string_view::npos) << st;
}

TEST(TransportUnix, VerifiedTlsNeedsAServerName) {
  UnixServer server;
  auto t = Transport::ConnectUnix(server.path, kGenerous);
  ASSERT_TRUE(t.ok()) << t.status();
  TlsOptions tls;  // verify, no name
  EXPECT_EQ((*t)->StartTls(tls, kGenerous).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*t)->tls_active());
}

}  // namespace
}  // namespace pocketmail::net
