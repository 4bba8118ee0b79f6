// Maps S3 failures to the status codes of the ObjectStore contract
// (object_store.h). Pure functions; the S3 client is their only user outside tests.
#ifndef POCKETMAIL_COMMON_S3_S3_ERRORS_H_
#define POCKETMAIL_COMMON_S3_S3_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pocketmail::s3 {

// The code for an S3 error: the S3 error code when it is decisive (SlowDown,
// InternalError, NoSuchKey, NoSuchBucket, AccessDenied, ...), else the HTTP status:
// 5xx, 429, 408 -> UNAVAILABLE; 404 -> NOT_FOUND; 401, 403 -> PERMISSION_DENIED;
// 412 -> ALREADY_EXISTS when `put_if_absent`, else FAILED_PRECONDITION;
// 400, 405, 411, 413, 414, 416 -> INVALID_ARGUMENT; other 3xx and 4xx ->
// FAILED_PRECONDITION. An error code under a 2xx (CopyObject) that is not
// recognised is UNAVAILABLE: the copy may be retried safely.
absl::StatusCode CodeForS3Error(long http_status, absl::string_view s3_code, bool put_if_absent);

// The status for a finished request that failed: `body` is the (possibly
// truncated, possibly empty) response body, whose <Error> is parsed if it can
// be. The message names the operation, the key, the HTTP status, the S3 code
// and message; hostile bytes are escaped.
absl::Status StatusForS3Error(absl::string_view operation, absl::string_view key, long http_status,
                              absl::string_view body, bool put_if_absent);

// UNAVAILABLE for a transport failure (connect, TLS, timeout, reset, truncated
// body...), INVALID_ARGUMENT for a request libcurl refused to build. `curl_code`
// is a CURLcode; `detail` is libcurl's error text.
absl::Status StatusForTransportError(absl::string_view operation, absl::string_view key,
                                     int curl_code, absl::string_view detail);

// "S3 <operation> key=\"<escaped key>\"" — the common prefix of every message.
std::string DescribeOperation(absl::string_view operation, absl::string_view key);

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_S3_ERRORS_H_
