// S3 object headers: reading a response's header block into an ObjectHead, and
// turning user metadata into x-amz-meta-* request headers.
#ifndef POCKETMAIL_COMMON_S3_S3_HEADERS_H_
#define POCKETMAIL_COMMON_S3_S3_HEADERS_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/s3/object_store.h"
#include "common/s3/sigv4.h"

namespace pocketmail::s3 {

// R2's limit on all of an object's custom metadata (S3's is 2 KiB).
inline constexpr size_t kMaxMetadataBytes = 8192;

// The header block of one HTTP response, fed line by line as libcurl's header
// callback delivers it. A new status line ("HTTP/1.1 200 OK", e.g. after a
// "100 Continue") starts over. Names are lowercased; a repeated header's values
// are joined with ","; obsolete line folding is unfolded. Not thread-safe.
class ResponseHeaders {
 public:
  void AddLine(absl::string_view line);
  // "" when absent.
  std::string Get(absl::string_view lower_name) const;
  bool Has(absl::string_view lower_name) const;
  const std::map<std::string, std::string>& all() const { return headers_; }

 private:
  std::map<std::string, std::string> headers_;
  std::string last_name_;
};

// Size (Content-Length; 0 when absent), ETag, Content-Type and metadata
// (x-amz-meta-* without the prefix, values RFC 2047-decoded; a value that does
// not decode is kept as valid UTF-8 text). A malformed Content-Length is
// INVALID_ARGUMENT.
absl::StatusOr<ObjectHead> ObjectHeadFromHeaders(const ResponseHeaders& headers);

// x-amz-meta-<lowercased name> headers for `metadata`. Values that are not
// plain printable ASCII, that have leading or trailing whitespace, or that
// contain "=?" are RFC 2047 B-encoded, so every value reads back exactly as
// given. INVALID_ARGUMENT for an empty name or one outside [A-Za-z0-9._-],
// two names equal ignoring case, or more than kMaxMetadataBytes in all.
absl::StatusOr<HeaderList> MetadataRequestHeaders(
    const std::map<std::string, std::string>& metadata);

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_S3_HEADERS_H_
