// S3Client behaviour that needs no server: option validation, argument checks
// made before any request, and transport failures. The exchange with a real S3
// peer is in s3_client_integration_test.cc.
#include "common/s3/s3_client.h"

#include <mutex>
#include <vector>

#include "common/s3/retry_policy.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

using absl::StatusCode;

ClientOptions Valid() {
  ClientOptions o;
  o.endpoint = "https://127.0.0.1:1";  // nothing listens on port 1
  o.bucket = "mail";
  o.access_key_id = "AK";
  o.secret_access_key = "SK";
  o.connect_timeout = absl::Seconds(2);
  o.request_timeout = absl::Seconds(5);
  return o;
}

StatusCode CreateCode(ClientOptions o) { return S3Client::Create(std::move(o)).status().code(); }

TEST(S3ClientCreate, AcceptsHttpsEndpoints) {
  EXPECT_EQ(CreateCode(Valid()), StatusCode::kOk);
  ClientOptions o = Valid();
  o.endpoint = "HTTPS://ACCOUNT.r2.cloudflarestorage.com/";
  EXPECT_EQ(CreateCode(o), StatusCode::kOk);
}

TEST(S3ClientCreate, RefusesPlainHttpAndOddEndpoints) {
  for (const char* endpoint : {"http://127.0.0.1:9000", "ftp://x", "127.0.0.1:9000", "https://",
                               "https://host/path", "https://user@host", "https://host?x=1", ""}) {
    ClientOptions o = Valid();
    o.endpoint = endpoint;
    EXPECT_EQ(CreateCode(o), StatusCode::kInvalidArgument) << endpoint;
  }
}

TEST(S3ClientCreate, RefusesBadBucketsCredentialsCaFileAndTimeouts) {
  for (const char* bucket : {"", "ab", "Upper", "a_b", "-ab", "ab-", "a/b"}) {
    ClientOptions o = Valid();
    o.bucket = bucket;
    EXPECT_EQ(CreateCode(o), StatusCode::kInvalidArgument) << bucket;
  }
  ClientOptions o = Valid();
  o.secret_access_key = "";
  EXPECT_EQ(CreateCode(o), StatusCode::kInvalidArgument);
  o = Valid();
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(CreateCode(o), StatusCode::kInvalidArgument);
  o = Valid();
  o.request_timeout = absl::ZeroDuration();
  EXPECT_EQ(CreateCode(o), StatusCode::kInvalidArgument);
}

TEST(S3ClientCreate, MaxAttemptsMustBeOneToTen) {
  for (int attempts : {0, -1, 11}) {
    ClientOptions o = Valid();
    o.max_attempts = attempts;
    EXPECT_EQ(CreateCode(o), StatusCode::kInvalidArgument) << attempts;
  }
  for (int attempts : {1, 10}) {
    ClientOptions o = Valid();
    o.max_attempts = attempts;
    EXPECT_EQ(CreateCode(o), StatusCode::kOk) << attempts;
  }
}

TEST(S3ClientCreate, ErrorsNeverContainTheSecret) {
  ClientOptions o = Valid();
  o.secret_access_key = "very-secret-value";
  o.endpoint = "http://x";
  EXPECT_EQ(std::string(S3Client::Create(o).status().message()).find("very-secret"),
            std::string::npos);
}

TEST(DefaultEndpoint, IsTheAccountsR2Host) {
  EXPECT_EQ(DefaultEndpoint("0123abcd"), "https://0123abcd.r2.cloudflarestorage.com");
}

// A FakeClock whose sleeps return at once, having moved its time by what they
// asked for, and are recorded.
class SleepRecorder final : public Clock {
 public:
  absl::Time Now() override { return time_.Now(); }
  void SleepFor(absl::Duration d) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      sleeps_.push_back(d);
    }
    time_.Advance(d);
  }
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
               absl::Duration timeout, const std::function<bool()>& done) override {
    return time_.WaitFor(lock, cv, timeout, done);
  }
  std::vector<absl::Duration> sleeps() {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }

 private:
  FakeClock time_;
  std::mutex mu_;
  std::vector<absl::Duration> sleeps_;
};

class S3ClientOffline : public ::testing::Test {
 protected:
  void SetUp() override {
    ClientOptions o = Valid();
    o.clock = &clock_;
    auto client = S3Client::Create(o);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  SleepRecorder clock_;
  std::unique_ptr<S3Client> client_;
};

TEST_F(S3ClientOffline, BadArgumentsFailBeforeAnyRequest) {
  EXPECT_EQ(client_->GetObject("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->GetObject(std::string(1025, 'k')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ListObjectsV2("p/", "", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ListObjectsV2("p/", "", 1001).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->PutObject("k", "b", {{"bad name", "v"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->PutObject("k", "b", {}, false, "text/plain\r\nX-Evil: 1").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->CopyObject("a", "b", MetadataDirective::kCopy, {{"x", "y"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->CopyObject("", "b").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->GetObjectStreaming("k", nullptr, nullptr).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->requests_sent(), 0);
}

TEST_F(S3ClientOffline, RefusedConnectionIsUnavailable) {
  absl::StatusOr<Object> got = client_->GetObject("pending/x.eml");
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("S3 GetObject key=\"pending/x.eml\""),
            absl::string_view::npos);
  EXPECT_EQ(client_->DeleteObject("k").code(), StatusCode::kUnavailable);
  EXPECT_EQ(client_->ListObjectsV2("pending/", "").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(client_->requests_sent(), 9);  // each tried max_attempts (3) times
  EXPECT_EQ(client_->retries(), 6);
}

TEST_F(S3ClientOffline, RetriesBackOffOnTheClockWithJitteredExponentialDelays) {
  EXPECT_EQ(client_->GetObject("pending/x.eml").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(client_->ListObjectsV2("pending/", "").status().code(), StatusCode::kUnavailable);
  const std::vector<absl::Duration> sleeps = clock_.sleeps();
  ASSERT_EQ(sleeps.size(), 4u);  // two retries per call
  const RetryOptions policy;     // the client's: max_attempts 3, base 100 ms
  for (size_t i = 0; i < sleeps.size(); ++i) {
    const int retry = static_cast<int>(i % 2) + 1;
    EXPECT_GE(sleeps[i], absl::ZeroDuration()) << i;
    EXPECT_LE(sleeps[i], RetryDelay(policy, retry, 1.0)) << i;  // 100 ms, then 200 ms at most
  }
}

}  // namespace
}  // namespace pocketmail::s3
