// Strict UTF-8 decoding/encoding and a small, documented case fold.
#ifndef POCKETMAIL_COMMON_MAIL_UTF8_H_
#define POCKETMAIL_COMMON_MAIL_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace pocketmail::mail {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 for ASCII), or
// 0 when it is malformed (see DecodeUtf8); stores the code point in
// *code_point. The one decoder the helpers below share. REQUIRES: i < s.size().
size_t DecodeUtf8Sequence(absl::string_view s, size_t i, char32_t* code_point);

// Decodes `in` into code points. Returns false on anything that is not
// well-formed UTF-8: stray continuation bytes, truncated sequences, overlong
// forms, surrogates (U+D800..U+DFFF) and values above U+10FFFF.
bool DecodeUtf8(absl::string_view in, std::u32string* out);

// Appends the UTF-8 form of `cp`. REQUIRES: cp is a Unicode scalar value.
void AppendUtf8(char32_t cp, std::string* out);
std::string EncodeUtf8(const std::u32string& in);

// Simple (1:1) lowercase mapping for ASCII, Latin-1, Latin Extended-A, basic
// Greek and Cyrillic capitals; every other code point maps to itself. This is
// not full Unicode case folding: it covers the scripts most mail domains and
// localparts use, and is applied identically to both sides of a comparison.
char32_t SimpleLowercase(char32_t cp);

// Lowercases valid UTF-8 with SimpleLowercase; invalid input is returned with
// only ASCII letters lowercased.
std::string LowercaseUtf8(absl::string_view in);

// The longest prefix of `in` that is at most `max_bytes` long and does not end
// inside a multi-byte sequence (cuts only at code point boundaries).
absl::string_view TruncateUtf8(absl::string_view in, size_t max_bytes);

// True when `in` is well-formed UTF-8 (see DecodeUtf8).
bool IsValidUtf8(absl::string_view in);

// `s` as valid UTF-8 of at most `max_bytes` bytes: malformed bytes become '?',
// and the cut falls on a character boundary. For text from peers (SMTP
// replies may carry any bytes) going into proto3 `string` fields and logs.
std::string ToBoundedUtf8(absl::string_view s, size_t max_bytes);

}  // namespace pocketmail::mail

#endif  // POCKETMAIL_COMMON_MAIL_UTF8_H_
