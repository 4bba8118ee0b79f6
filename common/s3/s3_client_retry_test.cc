// S3Client's in-request retries against a real S3 peer, through the fault
// proxy: what is tried again inside the call, what is not, and when it gives
// up. Attempts are counted on all three sides: the client (requests_sent,
// retries), the proxy (connections, resets) and the peer (requests by kind).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/s3/s3_peer_fixture.h"
#include "tests/peers/fault_proxy/fault_proxy.h"

namespace pocketmail::s3 {
namespace {

using absl::StatusCode;
using pocketmail::testing::FaultProxy;
using pocketmail::testing::SetS3PeerFaults;

class S3ClientRetryTest : public S3PeerFixture {
 protected:
  static void SetUpTestSuite() {
    S3PeerFixture::SetUpTestSuite();
    auto proxy = FaultProxy::Start(peer_->port());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = proxy->release();
  }
  static void TearDownTestSuite() {
    delete proxy_;
    proxy_ = nullptr;
    S3PeerFixture::TearDownTestSuite();
  }
  void TearDown() override {
    EXPECT_TRUE(proxy_->Reset().ok());
    EXPECT_TRUE(PeerFaults("{}").ok());
  }

  // A client whose every connection goes through the proxy (a fresh pool, so
  // its first request opens a new connection).
  static std::unique_ptr<S3Client> ProxiedClient(int max_attempts = 3) {
    ClientOptions o = Options();
    o.endpoint = absl::StrCat("https://127.0.0.1:", proxy_->port());
    o.max_attempts = max_attempts;
    return NewClient(o);
  }

  static absl::Status PeerFaults(const std::string& json) {
    return SetS3PeerFaults(peer_->endpoint(), peer_->ca_file(), json);
  }
  static int64_t ProxyStat(const std::string& name) {
    auto stats = proxy_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->at(name) : -1;
  }
  static int64_t PeerStat(const std::string& kind) {
    auto stats = peer_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->at(kind) : -1;
  }

  static inline FaultProxy* proxy_ = nullptr;
};

// The proxy's reset_pct=50 resets every second new connection (deterministic
// buckets): one warm-up connection makes the next one the reset one.
void ResetTheNextNewConnection(FaultProxy* proxy, S3Client* warm_up) {
  ASSERT_TRUE(proxy->Set("reset_pct=50 reset_where=accept").ok());
  ASSERT_TRUE(warm_up->ListObjectsV2("none/", "").ok());
}

TEST_F(S3ClientRetryTest, GetSucceedsInOneCallWhenItsConnectionIsResetBeforeAnyByte) {
  ASSERT_TRUE(client_->PutObject(Key("m.eml"), "hello", {}).ok());
  ResetTheNextNewConnection(proxy_, ProxiedClient().get());
  const int64_t resets = ProxyStat("resets");
  const int64_t connections = ProxyStat("connections");
  const int64_t gets = PeerStat("GET");

  auto client = ProxiedClient();
  absl::StatusOr<Object> got = client->GetObject(Key("m.eml"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, "hello");
  EXPECT_EQ(client->requests_sent(), 2);
  EXPECT_EQ(client->retries(), 1);
  EXPECT_EQ(ProxyStat("resets") - resets, 1);
  EXPECT_EQ(ProxyStat("connections") - connections, 2);
  EXPECT_EQ(PeerStat("GET") - gets, 1);  // the reset attempt never reached S3
}

TEST_F(S3ClientRetryTest, ListSucceedsInOneCallWhenItsConnectionIsResetBeforeAnyByte) {
  ASSERT_TRUE(client_->PutObject(Key("a"), "x", {}).ok());
  ResetTheNextNewConnection(proxy_, ProxiedClient().get());
  const int64_t lists = PeerStat("LIST");

  auto client = ProxiedClient();
  absl::StatusOr<ListPage> page = client->ListObjectsV2(Key(""), "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(client->retries(), 1);
  EXPECT_EQ(PeerStat("LIST") - lists, 1);
}

// If-None-Match: * is retried only when it cannot have reached S3; a reset at
// accept is such a case (the TLS handshake never finished).
TEST_F(S3ClientRetryTest, ConditionalPutIsRetriedWhenItsConnectionNeverCameUp) {
  ResetTheNextNewConnection(proxy_, ProxiedClient().get());
  const int64_t puts = PeerStat("PUT");
  auto client = ProxiedClient();
  EXPECT_TRUE(client->PutObject(Key("once"), "v", {}, /*if_none_match=*/true).ok());
  EXPECT_EQ(client->retries(), 1);
  EXPECT_EQ(PeerStat("PUT") - puts, 1);
}

TEST_F(S3ClientRetryTest, PersistentResetsGiveUpAfterMaxAttemptsWithTheLastError) {
  ASSERT_TRUE(proxy_->Set("reset_pct=100 reset_where=accept").ok());
  const int64_t resets = ProxyStat("resets");
  const int64_t gets = PeerStat("GET");
  auto client = ProxiedClient();
  absl::StatusOr<Object> got = client->GetObject(Key("m.eml"));
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status();
  EXPECT_NE(got.status().message().find("GetObject"), absl::string_view::npos);
  EXPECT_EQ(client->requests_sent(), 3);
  EXPECT_EQ(client->retries(), 2);
  EXPECT_EQ(ProxyStat("resets") - resets, 3);
  EXPECT_EQ(PeerStat("GET") - gets, 0);
}

TEST_F(S3ClientRetryTest, MaxAttemptsOneTurnsRetriesOff) {
  ASSERT_TRUE(proxy_->Set("reset_pct=100 reset_where=accept").ok());
  auto client = ProxiedClient(/*max_attempts=*/1);
  EXPECT_EQ(client->GetObject(Key("m.eml")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(client->requests_sent(), 1);
  EXPECT_EQ(client->retries(), 0);
}

// The sink already consumed the first bytes: repeating the GET would hand it
// the start of the body twice.
TEST_F(S3ClientRetryTest, ConnectionCutAfterBodyBytesStreamedIsNotRetried) {
  const std::string body = RandomBytes(1 << 20, 7);
  ASSERT_TRUE(client_->PutObject(Key("big.eml"), body, {}).ok());
  ASSERT_TRUE(proxy_->Set("cut_pct=100 cut_after_bytes=200000").ok());
  const int64_t gets = PeerStat("GET");
  const int64_t cuts = ProxyStat("cuts");
  auto client = ProxiedClient();
  int64_t streamed = 0;
  absl::StatusOr<ObjectHead> head =
      client->GetObjectStreaming(Key("big.eml"), nullptr, [&](absl::string_view piece) {
        streamed += static_cast<int64_t>(piece.size());
        return true;
      });
  EXPECT_EQ(head.status().code(), StatusCode::kUnavailable) << head.status();
  EXPECT_GT(streamed, 0);
  EXPECT_LT(streamed, static_cast<int64_t>(body.size()));
  EXPECT_EQ(client->requests_sent(), 1);
  EXPECT_EQ(client->retries(), 0);
  EXPECT_EQ(ProxyStat("cuts") - cuts, 1);
  EXPECT_EQ(PeerStat("GET") - gets, 1);
}

TEST_F(S3ClientRetryTest, SlowDownIsRetriedInsideTheCall) {
  ASSERT_TRUE(client_->PutObject(Key("m.eml"), "hello", {}).ok());
  // error_pct=50: every second GET answers 503 SlowDown-style; the first passes.
  ASSERT_TRUE(PeerFaults(R"({"error_pct": 50, "error_codes": [503], "error_ops": ["GET"]})").ok());
  ASSERT_TRUE(client_->GetObject(Key("m.eml")).ok());
  const int64_t sent = client_->requests_sent();
  const int64_t faults = PeerStat("FAULTS");
  absl::StatusOr<Object> got = client_->GetObject(Key("m.eml"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, "hello");
  EXPECT_EQ(client_->requests_sent() - sent, 2);
  EXPECT_EQ(client_->retries(), 1);
  EXPECT_EQ(PeerStat("FAULTS") - faults, 1);
}

TEST_F(S3ClientRetryTest, PersistentServerErrorsGiveUpAfterMaxAttempts) {
  ASSERT_TRUE(
      PeerFaults(R"({"error_pct": 100, "error_codes": [500], "error_ops": ["LIST"]})").ok());
  const int64_t lists = PeerStat("LIST");
  absl::StatusOr<ListPage> page = client_->ListObjectsV2(Key(""), "");
  EXPECT_EQ(page.status().code(), StatusCode::kUnavailable) << page.status();
  EXPECT_NE(page.status().message().find("HTTP 500"), absl::string_view::npos) << page.status();
  EXPECT_EQ(client_->retries(), 2);
  EXPECT_EQ(PeerStat("LIST") - lists, 3);
}

// S3 may have applied a conditional PUT that answered 5xx: not repeated.
TEST_F(S3ClientRetryTest, ConditionalPutIsNotRetriedOnAServerError) {
  ASSERT_TRUE(PeerFaults(R"({"error_pct": 100, "error_codes": [503], "error_ops": ["PUT"]})").ok());
  const int64_t puts = PeerStat("PUT");
  EXPECT_EQ(client_->PutObject(Key("c"), "v", {}, /*if_none_match=*/true).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(client_->retries(), 0);
  EXPECT_EQ(PeerStat("PUT") - puts, 1);
}

TEST_F(S3ClientRetryTest, NotFoundAndAccessDeniedAreNotRetried) {
  const int64_t gets = PeerStat("GET");
  EXPECT_EQ(client_->GetObject(Key("missing")).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(client_->PutObject(Key("secret"), "x", {}).ok());
  ASSERT_TRUE(PeerFaults(absl::StrCat(R"({"deny_keys": [")", Key("secret"), R"("]})")).ok());
  EXPECT_EQ(client_->GetObject(Key("secret")).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(client_->retries(), 0);
  EXPECT_EQ(PeerStat("GET") - gets, 2);
}

// A port nobody listens on: connect is refused at once, like the phone's
// "Failed to connect ... after 0 ms".
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(S3ClientRetryTest, RefusedConnectionsAreRetriedThenReported) {
  ClientOptions o = Options();
  o.endpoint = absl::StrCat("https://127.0.0.1:", ClosedPort());
  auto client = NewClient(o);
  const absl::Time start = absl::Now();
  absl::StatusOr<Object> got = client->GetObject(Key("m.eml"));
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status();
  EXPECT_EQ(client->requests_sent(), 3);
  EXPECT_EQ(client->retries(), 2);
  // Two jittered waits under 100 ms and 200 ms ceilings.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace pocketmail::s3
