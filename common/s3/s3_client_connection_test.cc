// S3Client against a real S3 peer: TLS verification, connection reuse under
// sequential and concurrent use, and recovery from a peer outage.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/s3/s3_peer_fixture.h"

namespace pocketmail::s3 {
namespace {

using absl::StatusCode;
using pocketmail::testing::S3Peer;
using pocketmail::testing::ScratchDir;
using S3ClientConnectionTest = S3PeerFixture;

TEST_F(S3ClientConnectionTest, RejectedUploadsKeepTheConnectionUsable) {
  ClientOptions options = Options();
  options.secret_access_key = "not-the-secret";
  auto client = NewClient(options);
  const std::string body = RandomBytes(2 << 20, 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(client->PutObject(Key("rejected"), body, {}).code(), StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(client->connections_opened(), 1);
}

TEST_F(S3ClientConnectionTest, CertificateIsVerified) {
  ClientOptions options = Options();
  options.ca_file = "";  // the peer's self-signed certificate is not trusted then
  auto client = NewClient(options);
  absl::StatusOr<ListPage> page = client->ListObjectsV2("pending/", "");
  EXPECT_EQ(page.status().code(), StatusCode::kUnavailable) << page.status();
  EXPECT_NE(page.status().message().find("certificate"), absl::string_view::npos) << page.status();

  options = Options();
  options.endpoint = "https://localhost:" + std::to_string(peer_->port());  // also in the cert
  EXPECT_TRUE(NewClient(options)->ListObjectsV2("pending/", "").ok());
}

TEST_F(S3ClientConnectionTest, SequentialRequestsReuseOneConnection) {
  ASSERT_TRUE(client_->PutObject(Key("k"), "v", {}).ok());
  for (int i = 0; i < 50; ++i) {
    switch (i % 3) {
      case 0:
        ASSERT_TRUE(client_->GetObject(Key("k")).ok());
        break;
      case 1:
        ASSERT_TRUE(client_->HeadObject(Key("k")).ok());
        break;
      default:
        ASSERT_TRUE(client_->ListObjectsV2(Key(""), "").ok());
        break;
    }
  }
  EXPECT_EQ(client_->requests_sent(), 51);
  RecordProperty("connections_opened", static_cast<int>(client_->connections_opened()));
  EXPECT_LE(client_->connections_opened(), 2);
}

TEST_F(S3ClientConnectionTest, ConcurrentRequestsShareAFewConnections) {
  ASSERT_TRUE(client_->PutObject(Key("k"), "v", {}).ok());
  constexpr int kThreads = 16;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) {
        if (!client_->GetObject(Key("k")).ok()) ++failures;
        if (!client_->PutObject(Key(absl::StrCat("w", t)), "x", {}).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(client_->requests_sent(), 1 + kThreads * 12);
  RecordProperty("connections_opened", static_cast<int>(client_->connections_opened()));
  EXPECT_LE(client_->connections_opened(), kThreads + 1);
}

TEST_F(S3ClientConnectionTest, PeerStatsSeeEveryKindOfRequest) {
  auto before = peer_->Stats();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(client_->PutObject(Key("s"), "x", {}).ok());
  ASSERT_TRUE(client_->GetObject(Key("s")).ok());
  ASSERT_TRUE(client_->HeadObject(Key("s")).ok());
  ASSERT_TRUE(client_->CopyObject(Key("s"), Key("s2")).ok());
  ASSERT_TRUE(client_->DeleteObject(Key("s")).ok());
  ASSERT_TRUE(client_->ListObjectsV2(Key(""), "").ok());
  auto after = peer_->Stats();
  ASSERT_TRUE(after.ok());
  for (const char* kind : {"PUT", "GET", "HEAD", "COPY", "DELETE", "LIST"}) {
    EXPECT_EQ(after->at(kind) - before->at(kind), 1) << kind;
  }
}

// With a peer of its own: it kills and restarts it.
TEST(S3ClientOutage, DeadPeerIsUnavailableAndTheClientRecovers) {
  ScratchDir scratch;
  auto peer = S3Peer::Start(scratch.path());
  ASSERT_TRUE(peer.ok()) << peer.status();
  ClientOptions options;
  options.endpoint = peer->endpoint();
  options.bucket = peer->bucket();
  options.access_key_id = peer->access_key_id();
  options.secret_access_key = peer->secret_access_key();
  options.ca_file = peer->ca_file();
  options.connect_timeout = absl::Seconds(5);
  auto client = S3Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->PutObject("pending/k", "v", {}).ok());  // leaves a warm pooled connection
  peer->Kill();
  absl::StatusOr<Object> down = (*client)->GetObject("pending/k");
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status();
  ASSERT_TRUE(peer->Restart().ok());
  EXPECT_EQ((*client)->GetObject("pending/k").status().code(),
            StatusCode::kNotFound);  // moto forgot it
  EXPECT_TRUE((*client)->PutObject("pending/k", "v", {}).ok());
}

}  // namespace
}  // namespace pocketmail::s3
