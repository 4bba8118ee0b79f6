// Percent-encoding as AWS Signature V4 and S3 define it.
#ifndef POCKETMAIL_COMMON_S3_URI_ENCODE_H_
#define POCKETMAIL_COMMON_S3_URI_ENCODE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::s3 {

// Keeps the unreserved characters A-Z a-z 0-9 '-' '.' '_' '~' and encodes every
// other byte as %XX with upper-case hex (a UTF-8 character becomes one escape per
// byte). '/' is kept when `keep_slash` (object paths), encoded otherwise (query
// names and values, the copy source's key is a path and keeps it).
std::string UriEncode(absl::string_view bytes, bool keep_slash);

// Reverses percent-encoding. With `plus_as_space`, '+' means ' ' (the form S3
// uses for keys in an `EncodingType=url` listing). A '%' not followed by two hex
// digits is INVALID_ARGUMENT.
absl::StatusOr<std::string> UriDecode(absl::string_view text, bool plus_as_space);

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_URI_ENCODE_H_
