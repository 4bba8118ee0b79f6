#include "common/s3/s3_errors.h"

#include <curl/curl.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/s3/listing_parser.h"

namespace pocketmail::s3 {
namespace {

constexpr size_t kMaxMessageChars = 200;

// Error text comes from the server and from keys: keep it on one line and
// printable, but leave ordinary punctuation (quotes, apostrophes) readable.
std::string Escaped(absl::string_view text) {
  std::string out;
  for (unsigned char c : text.substr(0, kMaxMessageChars)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

std::string DescribeOperation(absl::string_view operation, absl::string_view key) {
  if (key.empty()) return absl::StrCat("S3 ", operation);
  return absl::StrCat("S3 ", operation, " key=\"", Escaped(key), "\"");
}

absl::StatusCode CodeForS3Error(long http_status, absl::string_view s3_code, bool put_if_absent) {
  using absl::StatusCode;
  if (s3_code == "SlowDown" || s3_code == "InternalError" || s3_code == "ServiceUnavailable" ||
      s3_code == "RequestTimeout" || s3_code == "OperationAborted" ||
      s3_code == "ConditionalRequestConflict" || s3_code == "TooManyRequests") {
    return StatusCode::kUnavailable;
  }
  if (s3_code == "NoSuchKey") return StatusCode::kNotFound;
  // Never NOT_FOUND: the caller would take it for a vanished object.
  if (s3_code == "NoSuchBucket") return StatusCode::kFailedPrecondition;
  if (s3_code == "AccessDenied" || s3_code == "SignatureDoesNotMatch" ||
      s3_code == "InvalidAccessKeyId" || s3_code == "ExpiredToken" ||
      s3_code == "RequestTimeTooSkewed") {
    return StatusCode::kPermissionDenied;
  }
  if (s3_code == "PreconditionFailed" && put_if_absent) return StatusCode::kAlreadyExists;

  if (http_status >= 200 && http_status < 300) return StatusCode::kUnavailable;
  if (http_status >= 500 || http_status == 429 || http_status == 408)
    return StatusCode::kUnavailable;
  if (http_status == 404) return StatusCode::kNotFound;
  if (http_status == 401 || http_status == 403) return StatusCode::kPermissionDenied;
  if (http_status == 412)
    return put_if_absent ? StatusCode::kAlreadyExists : StatusCode::kFailedPrecondition;
  if (http_status == 400 || http_status == 405 || http_status == 411 || http_status == 413 ||
      http_status == 414 || http_status == 416) {
    return StatusCode::kInvalidArgument;
  }
  if (http_status >= 300 && http_status < 500) return StatusCode::kFailedPrecondition;
  return StatusCode::kUnavailable;  // 1xx or nonsense: treat as a broken exchange
}

absl::Status StatusForS3Error(absl::string_view operation, absl::string_view key, long http_status,
                              absl::string_view body, bool put_if_absent) {
  S3ErrorBody error;
  if (!body.empty()) {
    absl::StatusOr<S3ErrorBody> parsed = ParseS3Error(body);
    if (parsed.ok()) error = *std::move(parsed);
  }
  std::string message = absl::StrCat(DescribeOperation(operation, key), ": HTTP ", http_status);
  if (!error.code.empty()) absl::StrAppend(&message, " ", Escaped(error.code));
  if (!error.message.empty()) absl::StrAppend(&message, ": ", Escaped(error.message));
  return absl::Status(CodeForS3Error(http_status, error.code, put_if_absent), message);
}

absl::Status StatusForTransportError(absl::string_view operation, absl::string_view key,
                                     int curl_code, absl::string_view detail) {
  std::string message = absl::StrCat(DescribeOperation(operation, key), ": ");
  switch (curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
      absl::StrAppend(&message, "timed out");
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
      absl::StrAppend(&message, "TLS certificate verification failed");
      break;
    default:
      absl::StrAppend(&message, "transport error ", curl_code);
      break;
  }
  if (!detail.empty()) absl::StrAppend(&message, " (", Escaped(detail), ")");
  switch (curl_code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return absl::InvalidArgumentError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace pocketmail::s3
