// The fault proxy itself: it forwards bytes untouched (TLS included), over TCP
// or unix sockets, and each knob does what fault_proxy.py says,
// deterministically, against a plain echo server as the target.
#include "tests/peers/fault_proxy/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/s3/s3_client.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/s3/s3_peer.h"

namespace pocketmail::testing {
namespace {

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  EXPECT_LT(path.size(), sizeof addr.sun_path) << path;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  return addr;
}

// The target: echoes every byte back, and remembers connections and bytes.
// On a free 127.0.0.1 port, or on the unix socket unix_path when given.
class EchoServer {
 public:
  explicit EchoServer(const std::string& unix_path = "") {
    if (!unix_path.empty()) {
      listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr = UnixAddress(unix_path);
      EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << unix_path;
    } else {
      listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
      socklen_t len = sizeof addr;
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    }
    listen(listen_fd_, 64);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~EchoServer() {
    stopping_ = true;
    acceptor_.join();
    close(listen_fd_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : handlers_) t.join();
    for (int fd : fds_) close(fd);
  }

  int port() const { return port_; }
  int connections() const { return connections_; }
  std::string received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      handlers_.emplace_back([this, fd] { Echo(fd); });
    }
  }
  void Echo(int fd) {
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        received_.append(buf, n);
      }
      if (send(fd, buf, n, MSG_NOSIGNAL) != n) break;
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> handlers_;
  std::string received_;
};

// A client socket connected to 127.0.0.1:port, reads timing out after `timeout`.
int Connect(int port, absl::Duration timeout = absl::Seconds(10)) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// A client socket connected to the unix socket at path, like Connect().
int ConnectUnix(const std::string& path, absl::Duration timeout = absl::Seconds(10)) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_un addr = UnixAddress(path);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += n;
  }
}

struct ReadResult {
  std::string data;
  bool eof = false;  // orderly close (FIN)
  int error = 0;     // errno of a failed read (ECONNRESET, EAGAIN on timeout)
};

// Reads until `want` bytes arrived, the connection ended, or a read failed.
ReadResult ReadUpTo(int fd, size_t want) {
  ReadResult r;
  char buf[65536];
  while (r.data.size() < want) {
    ssize_t n = recv(fd, buf, std::min(sizeof buf, want - r.data.size()), 0);
    if (n == 0) {
      r.eof = true;
      break;
    }
    if (n < 0) {
      r.error = errno;
      break;
    }
    r.data.append(buf, n);
  }
  return r;
}

// Sends `line` to an echo target and returns how long its echo took to come back.
absl::Duration EchoTime(int fd, const std::string& line) {
  absl::Time start = absl::Now();
  SendAll(fd, line);
  EXPECT_EQ(ReadUpTo(fd, line.size()).data, line);
  return absl::Now() - start;
}

std::string RandomBytes(size_t n) {
  std::mt19937 gen(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto proxy = FaultProxy::Start(echo_.port());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }
  int64_t Stat(const std::string& name) {
    auto stats = proxy_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->at(name) : -1;
  }

  EchoServer echo_;
  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(FaultProxyTest, ForwardsBytesBothWaysUntouched) {
  const std::string payload = RandomBytes(3 << 20);
  int fd = Connect(proxy_->port());
  std::thread sender([&] { SendAll(fd, payload); });
  ReadResult echoed = ReadUpTo(fd, payload.size());
  sender.join();
  close(fd);
  EXPECT_TRUE(echoed.data == payload) << echoed.data.size() << " of " << payload.size();
  EXPECT_EQ(Stat("connections"), 1);
  EXPECT_EQ(Stat("faults"), 0);
  EXPECT_EQ(Stat("bytes_up"), static_cast<int64_t>(payload.size()));
}

TEST_F(FaultProxyTest, LatencyDelaysEachDirectionWithoutThrottlingTheStream) {
  ASSERT_TRUE(proxy_->Set("latency_ms=150").ok());
  int fd = Connect(proxy_->port());
  absl::Time start = absl::Now();
  SendAll(fd, "x");
  ASSERT_EQ(ReadUpTo(fd, 1).data, "x");
  absl::Duration round_trip = absl::Now() - start;
  EXPECT_GE(round_trip, absl::Milliseconds(300));  // 150 ms each way
  // Ten sends 30 ms apart: a FIFO per direction delivers them all ~300 ms after
  // the last, where a proxy that waited per chunk would take 10 × 300 ms.
  start = absl::Now();
  for (int i = 0; i < 10; ++i) {
    SendAll(fd, "y");
    absl::SleepFor(absl::Milliseconds(30));
  }
  EXPECT_EQ(ReadUpTo(fd, 10).data, "yyyyyyyyyy");
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  close(fd);
}

TEST_F(FaultProxyTest, ResetAtAcceptSendsRstBeforeAnyByteReachesTheTarget) {
  ASSERT_TRUE(proxy_->Set("reset_pct=100 reset_where=accept").ok());
  int fd = Connect(proxy_->port());
  SendAll(fd, "hello");
  ReadResult r = ReadUpTo(fd, 5);
  close(fd);
  EXPECT_EQ(r.error, ECONNRESET) << "eof=" << r.eof << " data=" << r.data;
  EXPECT_EQ(echo_.connections(), 0);
  EXPECT_EQ(Stat("resets"), 1);
  EXPECT_EQ(Stat("faults"), 1);
}

TEST_F(FaultProxyTest, ResetMidStreamComesAfterTheTargetGotTheRequest) {
  ASSERT_TRUE(proxy_->Set("reset_pct=100 reset_where=stream").ok());
  int fd = Connect(proxy_->port());
  SendAll(fd, "request");
  ReadResult r = ReadUpTo(fd, 7);
  close(fd);
  EXPECT_EQ(r.error, ECONNRESET) << "eof=" << r.eof << " data=" << r.data;
  EXPECT_EQ(r.data, "");
  EXPECT_EQ(echo_.received(), "request");  // the target did the work; the client never hears
  EXPECT_EQ(Stat("resets"), 1);
}

TEST_F(FaultProxyTest, BlackHoleNeitherForwardsNorClosesUntilTheClientGivesUp) {
  ASSERT_TRUE(proxy_->Set("blackhole_pct=100").ok());
  int fd = Connect(proxy_->port(), absl::Milliseconds(500));
  SendAll(fd, "anyone there?");
  ReadResult r = ReadUpTo(fd, 1);
  EXPECT_EQ(r.error, EAGAIN) << "eof=" << r.eof << " data=" << r.data;
  EXPECT_EQ(echo_.connections(), 0);
  EXPECT_EQ(Stat("blackholes"), 1);
  EXPECT_EQ(Stat("active"), 1);
  close(fd);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Stat("active") != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Stat("active"), 0);
}

TEST_F(FaultProxyTest, BlackHoleMidStreamSwallowsTheAnswerAndKeepsTheConnection) {
  ASSERT_TRUE(proxy_->Set("blackhole_pct=50 blackhole_where=stream").ok());
  int fd = Connect(proxy_->port(), absl::Milliseconds(500));
  SendAll(fd, "first");
  EXPECT_EQ(ReadUpTo(fd, 5).data, "first");
  SendAll(fd, "second");
  ReadResult r = ReadUpTo(fd, 6);
  EXPECT_EQ(r.error, EAGAIN) << "eof=" << r.eof << " data=" << r.data;
  EXPECT_EQ(echo_.received(), "firstsecond");  // the request got through; the answer never will
  SendAll(fd, "third");                        // still accepted, and dropped
  EXPECT_EQ(ReadUpTo(fd, 1).error, EAGAIN);
  EXPECT_EQ(Stat("blackholes"), 1);
  EXPECT_EQ(Stat("active"), 1);
  close(fd);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Stat("active") != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Stat("active"), 0);
  EXPECT_EQ(echo_.received(), "firstsecond");
}

TEST_F(FaultProxyTest, CutClosesTheConnectionAfterNBytesOfTheAnswer) {
  ASSERT_TRUE(proxy_->Set("cut_pct=100 cut_after_bytes=1000").ok());
  const std::string payload = RandomBytes(20000);
  int fd = Connect(proxy_->port());
  SendAll(fd, payload);
  ReadResult r = ReadUpTo(fd, payload.size());
  close(fd);
  EXPECT_TRUE(r.eof) << "error=" << r.error;
  EXPECT_EQ(r.data, payload.substr(0, 1000));
  EXPECT_EQ(Stat("cuts"), 1);
  EXPECT_EQ(Stat("bytes_down"), 1000);
}

TEST_F(FaultProxyTest, PercentagesAreDeterministic) {
  ASSERT_TRUE(proxy_->Set("reset_pct=25 reset_where=accept").ok());
  std::vector<bool> reset;
  for (int i = 0; i < 8; ++i) {
    int fd = Connect(proxy_->port());
    SendAll(fd, "ping");
    reset.push_back(ReadUpTo(fd, 4).data != "ping");
    close(fd);
  }
  EXPECT_EQ(reset, (std::vector<bool>{false, false, false, true, false, false, false, true}));
  EXPECT_EQ(Stat("connections"), 8);
  EXPECT_EQ(Stat("resets"), 2);
}

TEST_F(FaultProxyTest, StreamFaultsAreDrawnPerExchange) {
  // One kept-alive connection, one exchange per request: every 2nd answer is cut.
  ASSERT_TRUE(proxy_->Set("cut_pct=50 cut_after_bytes=2").ok());
  int fd = Connect(proxy_->port());
  SendAll(fd, "first");
  EXPECT_EQ(ReadUpTo(fd, 5).data, "first");
  SendAll(fd, "second");
  ReadResult r = ReadUpTo(fd, 6);
  close(fd);
  EXPECT_EQ(r.data, "se");
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(Stat("cuts"), 1);
}

// The knob is there for a crash test that kills the client between "the
// server stored the message" and "the client heard 250". The echo target
// answers each write at once, so only the proxy can make an answer late; 800
// ms against a 400 ms ceiling for an unheld answer keeps the two apart on a
// loaded machine.
constexpr absl::Duration kHold = absl::Milliseconds(800);
constexpr absl::Duration kUnheld = absl::Milliseconds(400);

TEST_F(FaultProxyTest, HoldAfterDotDelaysOnlyTheAnswerToTheEndOfData) {
  ASSERT_TRUE(proxy_->Set("hold_after_dot_ms=800").ok());
  int fd = Connect(proxy_->port());
  EXPECT_LT(EchoTime(fd, "MAIL FROM:<a@example.org>\r\n"), kUnheld);
  EXPECT_LT(EchoTime(fd, "DATA\r\n"), kUnheld);
  EXPECT_LT(EchoTime(fd, "Subject: x\r\n\r\n..stuffed\r\n"), kUnheld);  // no marker yet
  EXPECT_GE(EchoTime(fd, "body\r\n.\r\n"), kHold);
  EXPECT_LT(EchoTime(fd, "QUIT\r\n"), kUnheld);  // one hold per dot, then disarmed
  close(fd);
  EXPECT_EQ(Stat("holds"), 1);
  EXPECT_EQ(Stat("faults"), 0);  // a held answer still arrives whole: not a fault
  EXPECT_EQ(echo_.received(),
            "MAIL FROM:<a@example.org>\r\nDATA\r\nSubject: x\r\n\r\n..stuffed\r\n"
            "body\r\n.\r\nQUIT\r\n");
}

TEST_F(FaultProxyTest, HoldAfterDotSeesTheMarkerSplitAcrossWrites) {
  ASSERT_TRUE(proxy_->Set("hold_after_dot_ms=800").ok());
  int fd = Connect(proxy_->port());
  // Each half is echoed before the next is sent, so the proxy saw them as
  // separate chunks: "\r\n" ends one, ".\r\n" is the next (as when a client
  // writes the body, then the dot line; or an empty body right after DATA).
  EXPECT_LT(EchoTime(fd, "last line\r\n"), kUnheld);
  EXPECT_GE(EchoTime(fd, ".\r\n"), kHold);
  EXPECT_LT(EchoTime(fd, "body\r\n."), kUnheld);
  EXPECT_GE(EchoTime(fd, "\r\n"), kHold);
  close(fd);
  EXPECT_EQ(Stat("holds"), 2);
}

TEST_F(FaultProxyTest, BadKnobsAreRefusedAndResetTurnsEverythingOff) {
  EXPECT_EQ(proxy_->Set("bogus=1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy_->Set("reset_pct=150").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy_->Set("reset_where=sideways").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy_->Set("blackhole_where=up").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy_->Set("latency_ms=abc").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy_->Set("hold_after_dot_ms=-1").code(), absl::StatusCode::kInvalidArgument);
  // All or nothing: a bad knob in a line leaves the good ones unset too.
  EXPECT_FALSE(proxy_->Set("reset_pct=100 bogus=1").ok());
  int fd = Connect(proxy_->port());
  SendAll(fd, "ok");
  EXPECT_EQ(ReadUpTo(fd, 2).data, "ok");
  close(fd);

  ASSERT_TRUE(proxy_->Set("reset_pct=100").ok());
  ASSERT_TRUE(proxy_->Reset().ok());
  fd = Connect(proxy_->port());
  SendAll(fd, "ok");
  EXPECT_EQ(ReadUpTo(fd, 2).data, "ok");
  close(fd);
  EXPECT_EQ(Stat("faults"), 0);
  EXPECT_EQ(proxy_->Control("FROB").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FaultProxyUnix, ForwardsBytesBothWaysBetweenUnixSockets) {
  ScratchDir scratch;
  EchoServer echo(scratch.path() + "/target.sock");
  auto proxy =
      FaultProxy::StartUnix(scratch.path() + "/target.sock", scratch.path() + "/proxy.sock");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ((*proxy)->socket_path(), scratch.path() + "/proxy.sock");
  EXPECT_EQ((*proxy)->port(), 0);
  const std::string payload = RandomBytes(3 << 20);
  int fd = ConnectUnix((*proxy)->socket_path());
  std::thread sender([&] { SendAll(fd, payload); });
  ReadResult echoed = ReadUpTo(fd, payload.size());
  sender.join();
  close(fd);
  EXPECT_TRUE(echoed.data == payload) << echoed.data.size() << " of " << payload.size();
  EXPECT_EQ(echo.connections(), 1);
  auto stats = (*proxy)->Stats();  // the control port is TCP as ever
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->at("connections"), 1);
  EXPECT_EQ(stats->at("bytes_up"), static_cast<int64_t>(payload.size()));
  EXPECT_EQ(stats->at("bytes_down"), static_cast<int64_t>(payload.size()));
}

TEST(FaultProxyUnix, HoldsTheAnswerToTheEndOfDataOverUnixSockets) {
  ScratchDir scratch;
  EchoServer echo(scratch.path() + "/lmtp.sock");
  auto proxy = FaultProxy::StartUnix(scratch.path() + "/lmtp.sock", scratch.path() + "/p.sock");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  ASSERT_TRUE((*proxy)->Set("hold_after_dot_ms=800").ok());
  int fd = ConnectUnix((*proxy)->socket_path());
  EXPECT_LT(EchoTime(fd, "LHLO x\r\n"), kUnheld);
  EXPECT_GE(EchoTime(fd, "body\r\n.\r\n"), kHold);
  close(fd);
  auto stats = (*proxy)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->at("holds"), 1);
}

// The listening socket: private (0600), taking the place of a stale one a
// SIGKILLed proxy left behind, and gone once the proxy is stopped or the
// fixture destroyed.
TEST(FaultProxyUnix, ListeningSocketIsPrivateReplacesAStaleOneAndIsRemoved) {
  ScratchDir scratch;
  EchoServer echo(scratch.path() + "/target.sock");
  const std::string path = scratch.path() + "/proxy.sock";
  {
    int stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = UnixAddress(path);
    ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(stale);  // the file stays, with nobody behind it
  }
  auto proxy = FaultProxy::StartUnix(scratch.path() + "/target.sock", path);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  struct stat st {};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  int fd = ConnectUnix(path);
  EXPECT_LT(EchoTime(fd, "ping"), absl::Seconds(5));
  close(fd);
  EXPECT_EQ((*proxy)->Stop(), 0);
  EXPECT_NE(lstat(path.c_str(), &st), 0) << "still there after SIGTERM";

  auto killed = FaultProxy::StartUnix(scratch.path() + "/target.sock", path);
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  killed->reset();  // SIGKILL: the fixture removes what the proxy could not
  EXPECT_NE(lstat(path.c_str(), &st), 0) << "still there after the fixture";
}

// Something at the path that is not a socket is somebody's file: refused, kept.
TEST(FaultProxyUnix, RefusesToReplaceAFileThatIsNotASocket) {
  ScratchDir scratch;
  const std::string path = scratch.path() + "/not-a-socket";
  int f = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(f, 0);
  close(f);
  auto proxy = FaultProxy::StartUnix(scratch.path() + "/target.sock", path);
  EXPECT_FALSE(proxy.ok());
  struct stat st {};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

// TLS is only bytes to the proxy: a client that verifies the S3 peer's
// certificate against its CA still does, through the proxy, at 127.0.0.1.
TEST(FaultProxyTls, PassesTlsThroughWithCertificateChecksIntact) {
  ScratchDir scratch;
  auto peer = S3Peer::Start(scratch.path());
  ASSERT_TRUE(peer.ok()) << peer.status();
  auto proxy = FaultProxy::Start(peer->port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  ASSERT_TRUE((*proxy)->Set("latency_ms=20").ok());
  s3::ClientOptions o;
  o.endpoint = "https://127.0.0.1:" + std::to_string((*proxy)->port());
  o.bucket = peer->bucket();
  o.access_key_id = peer->access_key_id();
  o.secret_access_key = peer->secret_access_key();
  o.ca_file = peer->ca_file();
  auto client = s3::S3Client::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->PutObject("pending/a.eml", "hello", {{"to", "a@example.org"}}).ok());
  auto got = (*client)->GetObject("pending/a.eml");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, "hello");
  EXPECT_EQ(got->head.metadata["to"], "a@example.org");
  auto stats = (*proxy)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->at("connections"), 1);
}

}  // namespace
}  // namespace pocketmail::testing
