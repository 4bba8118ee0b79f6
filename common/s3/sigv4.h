// AWS Signature Version 4 (header-based), as S3 and R2 check it.
//
// A pure function of its inputs: no clock, no I/O, thread-safe. The intermediate
// strings are returned so tests can say which line of a canonical request is
// wrong, rather than only that a signature differs.
#ifndef POCKETMAIL_COMMON_S3_SIGV4_H_
#define POCKETMAIL_COMMON_S3_SIGV4_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pocketmail::s3 {

inline constexpr char kUnsignedPayload[] = "UNSIGNED-PAYLOAD";
inline constexpr char kEmptyPayloadSha256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Secrets: never log these.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // optional; signed as x-amz-security-token when set
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;
using QueryList = std::vector<std::pair<std::string, std::string>>;

// How the request path becomes the canonical URI.
enum class CanonicalUriMode {
  // S3: the path is used exactly as sent on the wire, which must be the
  // object's name URI-encoded once (UriEncode(name, keep_slash=true)). No
  // normalization: "a//b" and "./x" are distinct S3 keys. botocore's S3SigV4Auth.
  kS3,
  // Every other AWS service, and the generic AWS test suite: the wire path is
  // normalized (empty, "." and ".." segments removed) and then URI-encoded again,
  // so "%20" on the wire signs as "%2520" ("double encoding"). botocore's SigV4Auth.
  kGeneric,
};

struct SigningRequest {
  std::string method;        // "GET", "PUT", ...
  std::string path;          // as on the wire, e.g. "/bucket/a%20b" (see CanonicalUriMode)
  QueryList query;           // decoded names and values; encoded and sorted by the signer
  HeaderList headers;        // every header to sign, including "host"; any case, repeats allowed
  std::string payload_hash;  // lower-case hex SHA-256 of the body, or kUnsignedPayload
};

struct SigningParams {
  std::string region;   // "auto" for R2
  std::string service;  // "s3"
  absl::Time time;      // becomes x-amz-date and the scope's date (UTC)
  CanonicalUriMode uri_mode = CanonicalUriMode::kS3;
  // S3 requires x-amz-content-sha256 on every request; the generic suite omits it.
  bool add_content_sha256_header = true;
};

struct Signature {
  // Headers the signer added and signed; the caller must send them as they are
  // (x-amz-date, x-amz-content-sha256 when asked, x-amz-security-token when set).
  HeaderList added_headers;
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string authorization;  // the Authorization header value
};

// Signs `request`. REQUIRES: `request.headers` holds "host" and none of
// authorization, x-amz-date, x-amz-content-sha256, x-amz-security-token (the
// signer owns those). INVALID_ARGUMENT for a missing host, a header the signer
// owns, an empty method or payload hash, or a header name or value holding CR,
// LF or NUL (it could not be sent as signed).
absl::StatusOr<Signature> SignRequest(const SigningRequest& request, const Credentials& credentials,
                                      const SigningParams& params);

// The canonical query string: each name and value UriEncode'd ('/' encoded too),
// pairs sorted by encoded name then encoded value, joined with '&'. The S3
// client sends exactly this string, so what is signed is what goes out.
std::string CanonicalQueryString(const QueryList& query);

// The canonical URI for `wire_path` under `mode`.
std::string CanonicalUri(absl::string_view wire_path, CanonicalUriMode mode);

// "20150830T123600Z".
std::string FormatAmzDate(absl::Time time);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_SIGV4_H_
