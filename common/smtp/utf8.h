// Small UTF-8 helpers for values that cross into protos and logs.
#ifndef POCKETMAIL_COMMON_SMTP_UTF8_H_
#define POCKETMAIL_COMMON_SMTP_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace pocketmail::smtp {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 for ASCII), or 0
// when it is malformed (truncated, overlong, a surrogate, above U+10FFFF).
// Stores the code point in *code_point. REQUIRES: i < s.size().
size_t Utf8SequenceLength(absl::string_view s, size_t i, unsigned int* code_point);

// `s` as valid UTF-8 of at most `max_bytes` bytes: malformed bytes become '?',
// and the cut falls on a character boundary. Server replies may carry any
// bytes, but proto3 `string` fields must be UTF-8.
std::string ToBoundedUtf8(absl::string_view s, size_t max_bytes);

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_UTF8_H_
