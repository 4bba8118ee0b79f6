// Charset conversion to UTF-8 for decoded MIME header text.
//
// Both functions always return valid UTF-8: bytes that do not form a character
// in the source charset become U+FFFD, so the output is safe to hand to code
// (protobuf strings, JSON, logs) that requires well-formed UTF-8.
#ifndef POCKETMAIL_COMMON_MIME_CHARSET_H_
#define POCKETMAIL_COMMON_MIME_CHARSET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::mime {

// Appends `bytes` to `out`, replacing every ill-formed UTF-8 sequence (stray
// continuation bytes, overlong forms, surrogates, > U+10FFFF, truncation) by U+FFFD.
void AppendSanitizedUtf8(absl::string_view bytes, std::string* out);

// Converts `bytes` in the MIME charset named `charset` (case-insensitive, e.g.
// "UTF-8", "iso-8859-1", "windows-1252", "koi8-r") to UTF-8.
// UTF-8, US-ASCII, ISO-8859-1 and Windows-1252 are handled here; as in the WHATWG
// Encoding Standard (what mail clients and browsers do), US-ASCII and ISO-8859-1
// labels decode as Windows-1252. Other charsets go through glibc iconv.
// Returns NOT_FOUND when the charset is unknown (or its name is not a plain token).
absl::StatusOr<std::string> ConvertToUtf8(absl::string_view charset, absl::string_view bytes);

}  // namespace pocketmail::mime

#endif  // POCKETMAIL_COMMON_MIME_CHARSET_H_
