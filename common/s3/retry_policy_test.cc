#include "common/s3/retry_policy.h"

#include <curl/curl.h>

#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

AttemptResult Transport(CURLcode code, bool connected = false) {
  AttemptResult r;
  r.curl_code = code;
  r.connected = connected;
  return r;
}

AttemptResult Http(long status, absl::string_view s3_code = "") {
  AttemptResult r;
  r.curl_code = CURLE_OK;
  r.http_status = status;
  r.s3_code = s3_code;
  r.connected = true;
  return r;
}

TEST(RetryPolicyTest, FailuresBeforeAnyByteWasSentAreRetriedForEveryRequest) {
  for (CURLcode code :
       {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_SSL_CONNECT_ERROR}) {
    EXPECT_TRUE(ShouldRetry(Idempotency::kIdempotent, Transport(code))) << code;
    EXPECT_TRUE(ShouldRetry(Idempotency::kUnlessSent, Transport(code))) << code;
  }
}

TEST(RetryPolicyTest, ConnectTimeoutIsRetriedButATimeoutAfterConnectingIsNot) {
  EXPECT_TRUE(ShouldRetry(Idempotency::kIdempotent, Transport(CURLE_OPERATION_TIMEDOUT, false)));
  EXPECT_TRUE(ShouldRetry(Idempotency::kUnlessSent, Transport(CURLE_OPERATION_TIMEDOUT, false)));
  EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, Transport(CURLE_OPERATION_TIMEDOUT, true)));
}

TEST(RetryPolicyTest, ConnectionLostAfterSendingIsRetriedOnlyForIdempotentRequests) {
  for (CURLcode code :
       {CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE}) {
    EXPECT_TRUE(ShouldRetry(Idempotency::kIdempotent, Transport(code, true))) << code;
    EXPECT_FALSE(ShouldRetry(Idempotency::kUnlessSent, Transport(code, true))) << code;
  }
}

TEST(RetryPolicyTest, NothingIsRetriedOnceTheCallerHasSeenPartOfTheAnswer) {
  for (CURLcode code : {CURLE_RECV_ERROR, CURLE_PARTIAL_FILE, CURLE_OPERATION_TIMEDOUT}) {
    AttemptResult r = Transport(code, true);
    r.delivered_to_caller = true;
    EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, r)) << code;
  }
}

TEST(RetryPolicyTest, LocalAbortsAndPermanentTransportErrorsAreNotRetried) {
  AttemptResult aborted = Transport(CURLE_WRITE_ERROR, true);
  aborted.aborted_locally = true;
  EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, aborted));
  for (CURLcode code : {CURLE_PEER_FAILED_VERIFICATION, CURLE_URL_MALFORMAT, CURLE_WRITE_ERROR,
                        CURLE_UNSUPPORTED_PROTOCOL}) {
    EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, Transport(code))) << code;
  }
}

TEST(RetryPolicyTest, TransientStatusesAndThrottlingAreRetriedForIdempotentRequests) {
  for (long status : {500L, 502L, 503L, 504L, 429L}) {
    EXPECT_TRUE(ShouldRetry(Idempotency::kIdempotent, Http(status))) << status;
    // A conditional PUT that reached S3 may have been applied: not repeated.
    EXPECT_FALSE(ShouldRetry(Idempotency::kUnlessSent, Http(status))) << status;
  }
  EXPECT_TRUE(ShouldRetry(Idempotency::kIdempotent, Http(503, "SlowDown")));
  EXPECT_TRUE(ShouldRetry(Idempotency::kIdempotent, Http(400, "RequestTimeout")));
}

TEST(RetryPolicyTest, SuccessAndPermanentStatusesAreNotRetried) {
  for (long status : {200L, 204L, 400L, 401L, 403L, 404L, 409L, 412L, 501L}) {
    EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, Http(status))) << status;
  }
  EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, Http(403, "AccessDenied")));
  EXPECT_FALSE(ShouldRetry(Idempotency::kIdempotent, Http(404, "NoSuchKey")));
}

TEST(RetryPolicyTest, DelayIsFullJitterUnderADoublingCeiling) {
  RetryOptions o;  // 100 ms doubling, capped at 2 s
  EXPECT_EQ(RetryDelay(o, 1, 0.0), absl::ZeroDuration());
  EXPECT_EQ(RetryDelay(o, 1, 0.5), absl::Milliseconds(50));
  EXPECT_EQ(RetryDelay(o, 1, 1.0), absl::Milliseconds(100));
  EXPECT_EQ(RetryDelay(o, 2, 1.0), absl::Milliseconds(200));
  EXPECT_EQ(RetryDelay(o, 3, 0.25), absl::Milliseconds(100));
  EXPECT_EQ(RetryDelay(o, 5, 1.0), absl::Seconds(1.6));
  EXPECT_EQ(RetryDelay(o, 6, 1.0), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(o, 60, 1.0), absl::Seconds(2));
}

TEST(RetryPolicyTest, DelayStaysInBoundsForOutOfRangeJitter) {
  RetryOptions o;
  EXPECT_EQ(RetryDelay(o, 2, -3.0), absl::ZeroDuration());
  EXPECT_EQ(RetryDelay(o, 2, 7.0), absl::Milliseconds(200));
  EXPECT_EQ(RetryDelay(o, 0, 1.0), absl::Milliseconds(100));
}

}  // namespace
}  // namespace pocketmail::s3
