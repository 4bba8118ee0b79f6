// When an S3 request is tried again inside the call, and how long to wait
// first: the AWS SDKs' "standard" retry mode, without the token bucket.
//
// A phone (proot, flaky radio) loses a few percent of connections before any
// byte flows; without this, each such loss cost a message a pipeline backoff
// (RETRY_BASE_S). Pure functions: the loop that uses them is in S3Client, and
// tests inject the jitter.
#ifndef POCKETMAIL_COMMON_S3_RETRY_POLICY_H_
#define POCKETMAIL_COMMON_S3_RETRY_POLICY_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pocketmail::s3 {

// Whether sending a request twice can change its outcome.
enum class Idempotency {
  // GET, HEAD, LIST, DELETE, a plain PUT, a copy: a repeat does the same thing.
  kIdempotent,
  // PUT with If-None-Match: * — if the first attempt reached S3 and wrote the
  // object, the repeat would read 412 as "someone else's object is there". It is
  // retried only when it provably never left this machine (connect or TLS
  // handshake failed).
  kUnlessSent,
};

// What one attempt came to, as far as the retry decision needs.
struct AttemptResult {
  int curl_code = 0;          // a CURLcode; CURLE_OK when an HTTP response arrived
  long http_status = 0;       // when curl_code is CURLE_OK
  absl::string_view s3_code;  // <Error><Code> of a non-2xx body, if any
  // Headers or body bytes were handed to the caller's streaming callbacks: they
  // cannot be taken back, so such an attempt is never repeated.
  bool delivered_to_caller = false;
  bool connected = false;  // TCP and TLS were up (a timeout after that is not retried)
  // A callback said stop, a body was too large, or the request was never built.
  bool aborted_locally = false;
};

struct RetryOptions {
  int max_attempts = 3;  // 1 = no retry
  absl::Duration base_delay = absl::Milliseconds(100);
  absl::Duration max_delay = absl::Seconds(2);
};

// True when `result` is worth another attempt of a request of this kind
// (attempt counting is the caller's).
bool ShouldRetry(Idempotency idempotency, const AttemptResult& result);

// The wait before retry number `retry` (1 for the second attempt): full jitter,
// `jitter` (in [0, 1)) times min(max_delay, base_delay * 2^(retry-1)).
absl::Duration RetryDelay(const RetryOptions& options, int retry, double jitter);

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_RETRY_POLICY_H_
