// The S3 peer's fault knobs (POST /__peer/faults): what a client sees when
// each one is on, checked through our own S3 client (which maps S3 errors to
// status codes, see common/s3/object_store.h) and through raw HTTPS.
#include <curl/curl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/s3/s3_client.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/s3/s3_peer.h"

namespace pocketmail::testing {
namespace {

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

struct RawReply {
  long status = 0;
  std::string body;
};

// An unsigned GET: faults fire before signature checks, so it sees them.
RawReply RawGet(const std::string& url, const std::string& ca_file) {
  RawReply reply;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  }
  curl_easy_cleanup(curl);
  return reply;
}

class S3PeerFaultsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    auto peer = S3Peer::Start(scratch_->path());
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = new S3Peer(*std::move(peer));
  }
  static void TearDownTestSuite() {
    delete peer_;
    delete scratch_;
  }

  void SetUp() override {
    ASSERT_NE(peer_, nullptr);
    ASSERT_TRUE(SetFaults("{}").ok());
    s3::ClientOptions o;
    o.endpoint = peer_->endpoint();
    o.bucket = peer_->bucket();
    o.access_key_id = peer_->access_key_id();
    o.secret_access_key = peer_->secret_access_key();
    o.ca_file = peer_->ca_file();
    o.connect_timeout = absl::Seconds(5);
    o.request_timeout = absl::Seconds(30);
    o.max_attempts = 1;  // the peer's faults are under test here, not the client's retries
    auto client = s3::S3Client::Create(o);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    faults_before_ = Faults();
  }
  void TearDown() override { EXPECT_TRUE(SetFaults("{}").ok()); }

  static absl::Status SetFaults(const std::string& json) {
    return SetS3PeerFaults(peer_->endpoint(), peer_->ca_file(), json);
  }
  // Faults fired since the peer started.
  static int64_t Faults() {
    auto body = S3PeerStats(peer_->endpoint(), peer_->ca_file());
    EXPECT_TRUE(body.ok()) << body.status();
    if (!body.ok()) return -1;
    auto stats = ParseS3PeerStats(*body);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->at("FAULTS") : -1;
  }
  int64_t FaultsFired() const { return Faults() - faults_before_; }

  std::string Key(const std::string& suffix) const {
    return std::string("t/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
           "/" + suffix;
  }
  void Put(const std::string& key) {
    ASSERT_TRUE(client_->PutObject(key, "body of " + key, {{"to", "a@example.org"}}).ok());
  }

  static inline ScratchDir* scratch_ = nullptr;
  static inline S3Peer* peer_ = nullptr;
  std::unique_ptr<s3::S3Client> client_;
  int64_t faults_before_ = 0;
};

TEST_F(S3PeerFaultsTest, ErrorPctFailsEveryNthMatchingRequestCyclingThroughTheCodes) {
  const std::string key = Key("m.eml");
  Put(key);
  ASSERT_TRUE(SetFaults(R"({"error_pct": 25, "error_codes": [500, 503, 429]})").ok());
  std::vector<std::string> failures;
  for (int i = 1; i <= 12; ++i) {
    auto got = client_->GetObject(key);
    if (i % 4 == 0) {
      ASSERT_FALSE(got.ok()) << "request " << i;
      EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
      failures.push_back(std::string(got.status().message()));
    } else {
      ASSERT_TRUE(got.ok()) << "request " << i << ": " << got.status();
      EXPECT_EQ(got->body, "body of " + key);
    }
  }
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_TRUE(absl::StrContains(failures[0], "HTTP 500 InternalError")) << failures[0];
  EXPECT_TRUE(absl::StrContains(failures[1], "HTTP 503 ServiceUnavailable")) << failures[1];
  EXPECT_TRUE(absl::StrContains(failures[2], "HTTP 429 SlowDown")) << failures[2];
  EXPECT_EQ(FaultsFired(), 3);
}

TEST_F(S3PeerFaultsTest, ErrorsAreS3XmlErrorBodiesWithTheirStatus) {
  ASSERT_TRUE(SetFaults(R"({"error_pct": 100, "error_codes": [503]})").ok());
  RawReply reply = RawGet(peer_->endpoint() + "/pocketmail/any/key", peer_->ca_file());
  EXPECT_EQ(reply.status, 503);
  EXPECT_TRUE(absl::StrContains(reply.body, "<Error><Code>ServiceUnavailable</Code>"))
      << reply.body;
  EXPECT_TRUE(absl::StrContains(reply.body, "<RequestId>")) << reply.body;
}

TEST_F(S3PeerFaultsTest, ErrorOpsLimitWhichRequestsFail) {
  const std::string key = Key("m.eml");
  Put(key);
  ASSERT_TRUE(SetFaults(R"({"error_pct": 100, "error_ops": ["DELETE", "COPY"]})").ok());
  EXPECT_TRUE(client_->GetObject(key).ok());
  EXPECT_TRUE(client_->HeadObject(key).ok());
  EXPECT_TRUE(client_->ListObjectsV2(Key(""), "").ok());
  EXPECT_TRUE(client_->PutObject(Key("other.eml"), "x", {}).ok());
  EXPECT_EQ(client_->CopyObject(key, Key("copy.eml")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client_->DeleteObject(key).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FaultsFired(), 2);
  ASSERT_TRUE(SetFaults("{}").ok());
  EXPECT_TRUE(client_->DeleteObject(key).ok());
}

TEST_F(S3PeerFaultsTest, DeniedKeysAreForbiddenToGetHeadAndCopyFrom) {
  const std::string denied = Key("denied key+1@x.eml");
  const std::string allowed = Key("allowed.eml");
  Put(denied);
  Put(allowed);
  ASSERT_TRUE(SetFaults(R"({"deny_keys": [")" + denied + R"("]})").ok());
  EXPECT_EQ(client_->GetObject(denied).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client_->HeadObject(denied).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client_->CopyObject(denied, Key("copy.eml")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(client_->GetObject(allowed).ok());
  EXPECT_TRUE(client_->CopyObject(allowed, Key("copy.eml")).ok());
  EXPECT_TRUE(client_->DeleteObject(denied).ok());  // only reads are denied
  EXPECT_EQ(FaultsFired(), 3);
}

TEST_F(S3PeerFaultsTest, DuplicateListingRepeatsTheFirstEntryOfEachPage) {
  for (const char* name : {"a.eml", "b.eml", "c.eml"}) Put(Key(name));
  ASSERT_TRUE(SetFaults(R"({"listing": "duplicate"})").ok());
  auto first = client_->ListObjectsV2(Key(""), "", 2);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->objects.size(), 3u);
  EXPECT_EQ(first->objects[0].key, Key("a.eml"));
  EXPECT_EQ(first->objects[1].key, Key("a.eml"));
  EXPECT_EQ(first->objects[2].key, Key("b.eml"));
  ASSERT_TRUE(first->truncated);
  auto second = client_->ListObjectsV2(Key(""), first->next_continuation_token, 2);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->objects.size(), 2u);
  EXPECT_EQ(second->objects[0].key, Key("c.eml"));
  EXPECT_EQ(second->objects[1].key, Key("c.eml"));
  EXPECT_EQ(FaultsFired(), 2);
}

TEST_F(S3PeerFaultsTest, MalformedListingIsNotXml) {
  Put(Key("a.eml"));
  ASSERT_TRUE(SetFaults(R"({"listing": "malformed"})").ok());
  auto page = client_->ListObjectsV2(Key(""), "");
  EXPECT_EQ(page.status().code(), absl::StatusCode::kUnavailable) << page.status();
  EXPECT_TRUE(client_->GetObject(Key("a.eml")).ok());  // only listings are affected
  EXPECT_EQ(FaultsFired(), 1);
}

TEST_F(S3PeerFaultsTest, TruncatedListingIsCutMidXml) {
  for (const char* name : {"a.eml", "b.eml"}) Put(Key(name));
  ASSERT_TRUE(SetFaults(R"({"listing": "truncated"})").ok());
  auto page = client_->ListObjectsV2(Key(""), "");
  EXPECT_EQ(page.status().code(), absl::StatusCode::kUnavailable) << page.status();
  EXPECT_EQ(FaultsFired(), 1);
}

TEST_F(S3PeerFaultsTest, LatencyDelaysEveryResponse) {
  Put(Key("a.eml"));
  ASSERT_TRUE(SetFaults(R"({"latency_ms": 300})").ok());
  absl::Time start = absl::Now();
  ASSERT_TRUE(client_->GetObject(Key("a.eml")).ok());
  ASSERT_TRUE(client_->HeadObject(Key("a.eml")).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(600));
  EXPECT_EQ(FaultsFired(), 0);  // a slow answer is not a failure
}

TEST_F(S3PeerFaultsTest, AnEmptyConfigurationTurnsEveryFaultOff) {
  Put(Key("a.eml"));
  ASSERT_TRUE(SetFaults(R"({"error_pct": 100, "listing": "malformed",
                            "deny_keys": [")" +
                        Key("a.eml") + R"("]})")
                  .ok());
  ASSERT_FALSE(client_->GetObject(Key("a.eml")).ok());
  ASSERT_TRUE(SetFaults("{}").ok());
  EXPECT_TRUE(client_->GetObject(Key("a.eml")).ok());
  EXPECT_TRUE(client_->ListObjectsV2(Key(""), "").ok());
}

TEST_F(S3PeerFaultsTest, ABadConfigurationIsRefusedAndChangesNothing) {
  Put(Key("a.eml"));
  ASSERT_TRUE(SetFaults(R"({"error_pct": 100, "error_ops": ["LIST"]})").ok());
  for (const char* bad :
       {R"({"error_pct": 150})", R"({"listing": "sideways"})", R"({"error_ops": ["FROB"]})",
        R"({"error_codes": [200]})", R"({"surprise": 1})", "[1, 2]", "{not json"}) {
    absl::Status s = SetFaults(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad << ": " << s;
  }
  EXPECT_EQ(client_->ListObjectsV2(Key(""), "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(client_->GetObject(Key("a.eml")).ok());
}

TEST_F(S3PeerFaultsTest, StatsCountFaultsWithoutRequestCounting) {
  ASSERT_TRUE(SetFaults(R"({"error_pct": 50})").ok());
  for (int i = 0; i < 4; ++i) RawGet(peer_->endpoint() + "/pocketmail/k", peer_->ca_file());
  auto body = S3PeerStats(peer_->endpoint(), peer_->ca_file());
  ASSERT_TRUE(body.ok()) << body.status();
  auto stats = ParseS3PeerStats(*body);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->size(), 1u) << *body;  // started without count_requests: FAULTS only
  EXPECT_EQ(FaultsFired(), 2);
}

}  // namespace
}  // namespace pocketmail::testing
