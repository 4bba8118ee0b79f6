// Test fixture: an S3Client against one real S3 peer (moto over HTTPS, SigV4
// enforced; see tests/peers/s3) shared by every test of a suite, since moto
// takes a second or two to start. Tests need PM_MOTO_PYTHON (or a python3 with
// moto on PATH): bazel test --test_env=PM_MOTO_PYTHON=$(command -v python3) ...
#ifndef POCKETMAIL_COMMON_S3_S3_PEER_FIXTURE_H_
#define POCKETMAIL_COMMON_S3_S3_PEER_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/s3/s3_client.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/s3/s3_peer.h"

namespace pocketmail::s3 {

class S3PeerFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new pocketmail::testing::ScratchDir();
    pocketmail::testing::S3Peer::Options options;
    options.count_requests = true;
    auto peer = pocketmail::testing::S3Peer::Start(scratch_->path(), options);
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = new pocketmail::testing::S3Peer(*std::move(peer));
  }
  static void TearDownTestSuite() {
    delete peer_;
    peer_ = nullptr;
    delete scratch_;
    scratch_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(peer_, nullptr);
    client_ = NewClient(Options());
  }

  // Options that reach the peer with its real credentials and CA.
  static ClientOptions Options() {
    ClientOptions o;
    o.endpoint = peer_->endpoint();
    o.bucket = peer_->bucket();
    o.access_key_id = peer_->access_key_id();
    o.secret_access_key = peer_->secret_access_key();
    o.ca_file = peer_->ca_file();
    o.connect_timeout = absl::Seconds(5);
    o.request_timeout = absl::Seconds(60);
    return o;
  }

  static std::unique_ptr<S3Client> NewClient(ClientOptions options) {
    auto client = S3Client::Create(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A key under a prefix no other test uses.
  static std::string Key(absl::string_view suffix) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return absl::StrCat("t/", info->name(), "/", suffix);
  }

  static std::string RandomBytes(size_t n, uint32_t seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (char& c : out) c = static_cast<char>(gen());
    return out;
  }

  static inline pocketmail::testing::ScratchDir* scratch_ = nullptr;
  static inline pocketmail::testing::S3Peer* peer_ = nullptr;
  std::unique_ptr<S3Client> client_;
};

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_S3_PEER_FIXTURE_H_
