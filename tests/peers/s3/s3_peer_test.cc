// The S3 peer itself: it starts, hands out working credentials, keeps
// connections alive, survives a restart with the same identity, and stops on
// SIGTERM. (The S3 client's behaviour against it: common/s3/s3_client_integration_test.cc.)
#include "tests/peers/s3/s3_peer.h"

#include <curl/curl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace pocketmail::testing {
namespace {

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

// Performs GET `url` on `curl` (reused across calls); returns the HTTP status.
long Get(CURL* curl, const std::string& url, const std::string& ca_file) {
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Discard);
  if (curl_easy_perform(curl) != CURLE_OK) return -1;
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

class S3PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    S3Peer::Options options;
    options.count_requests = true;
    auto peer = S3Peer::Start(scratch_.path(), options);
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = std::make_unique<S3Peer>(*std::move(peer));
  }

  ScratchDir scratch_;
  std::unique_ptr<S3Peer> peer_;
};

TEST_F(S3PeerTest, HandsOutEndpointCredentialsAndCa) {
  EXPECT_EQ(peer_->endpoint(), "https://127.0.0.1:" + std::to_string(peer_->port()));
  EXPECT_EQ(peer_->bucket(), "pocketmail");
  EXPECT_EQ(peer_->access_key_id().substr(0, 4), "AKIA");
  EXPECT_FALSE(peer_->secret_access_key().empty());
  std::map<std::string, std::string> env = peer_->env();
  EXPECT_EQ(env.at("R2_ENDPOINT"), peer_->endpoint());
  EXPECT_EQ(env.at("R2_CA_FILE"), peer_->ca_file());
  EXPECT_EQ(env.size(), 5u);
  struct stat st;
  ASSERT_EQ(stat((scratch_.path() + "/s3peer/creds.env").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(S3PeerTest, UnsignedRequestsAreForbidden) {
  CURL* curl = curl_easy_init();
  EXPECT_EQ(Get(curl, peer_->endpoint() + "/pocketmail?list-type=2", peer_->ca_file()), 403);
  curl_easy_cleanup(curl);
}

TEST_F(S3PeerTest, KeepsConnectionsAlive) {
  CURL* curl = curl_easy_init();
  long connects = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Get(curl, peer_->endpoint() + "/pocketmail/missing", peer_->ca_file()), 403);
    long n = 0;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &n);
    connects += n;
  }
  curl_easy_cleanup(curl);
  EXPECT_EQ(connects, 1);
}

TEST_F(S3PeerTest, CountsRequestsByKind) {
  CURL* curl = curl_easy_init();
  Get(curl, peer_->endpoint() + "/pocketmail?list-type=2", peer_->ca_file());
  Get(curl, peer_->endpoint() + "/pocketmail/some/key", peer_->ca_file());
  curl_easy_cleanup(curl);
  auto stats = peer_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->at("LIST"), 1);
  EXPECT_EQ(stats->at("GET"), 1);
  EXPECT_EQ(stats->at("PUT"), 0);
  EXPECT_EQ(stats->at("FAULTS"), 0);
  EXPECT_EQ(stats->size(), 7u);
}

TEST_F(S3PeerTest, RestartKeepsPortCertificateAndCredentials) {
  const std::string endpoint = peer_->endpoint();
  const std::string key = peer_->access_key_id();
  const std::string secret = peer_->secret_access_key();
  const pid_t before = peer_->pid();
  peer_->Kill();
  EXPECT_FALSE(peer_->running());
  ASSERT_TRUE(peer_->Restart().ok());
  EXPECT_NE(peer_->pid(), before);
  EXPECT_EQ(peer_->endpoint(), endpoint);
  EXPECT_EQ(peer_->access_key_id(), key);
  EXPECT_EQ(peer_->secret_access_key(), secret);
  EXPECT_TRUE(peer_->Stats().ok());  // the same CA file still verifies it
}

TEST(S3PeerStop, ExitsCleanlyOnSigterm) {
  ScratchDir scratch;
  auto peer = S3Peer::Start(scratch.path());
  ASSERT_TRUE(peer.ok()) << peer.status();
  int status = peer->Stop(absl::Seconds(10));
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(peer->running());
}

}  // namespace
}  // namespace pocketmail::testing
