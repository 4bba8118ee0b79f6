#include "common/s3/retry_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>

namespace pocketmail::s3 {
namespace {

// Failures before the request could have been sent: nothing reached S3.
bool FailedBeforeSending(const AttemptResult& r) {
  switch (r.curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    case CURLE_OPERATION_TIMEDOUT:
      // Only a connect (or handshake) timeout: that costs connect_timeout. A
      // request that timed out after connecting already spent request_timeout,
      // and the pipeline's backoff is the better place to wait again.
      return !r.connected;
    default:
      return false;
  }
}

// The connection broke after the request went out and before the whole answer
// was in: S3 may have acted on it.
bool LostAfterSending(int curl_code) {
  switch (curl_code) {
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    default:
      return false;
  }
}

// The AWS SDKs' transient statuses and throttling codes that S3/R2 send.
bool IsTransientResponse(long status, absl::string_view s3_code) {
  if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429) {
    return true;
  }
  return s3_code == "SlowDown" || s3_code == "RequestTimeout";
}

}  // namespace

bool ShouldRetry(Idempotency idempotency, const AttemptResult& result) {
  if (result.delivered_to_caller || result.aborted_locally) return false;
  if (result.curl_code != CURLE_OK) {
    if (FailedBeforeSending(result)) return true;
    return idempotency == Idempotency::kIdempotent && LostAfterSending(result.curl_code);
  }
  return idempotency == Idempotency::kIdempotent &&
         IsTransientResponse(result.http_status, result.s3_code);
}

absl::Duration RetryDelay(const RetryOptions& options, int retry, double jitter) {
  const int doublings = std::clamp(retry - 1, 0, 30);
  const absl::Duration ceiling =
      std::min(options.max_delay, options.base_delay * std::ldexp(1.0, doublings));
  return ceiling * std::clamp(jitter, 0.0, 1.0);
}

}  // namespace pocketmail::s3
