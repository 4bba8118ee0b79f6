// RFC 2047 "encoded-words" in header values (=?charset?B|Q?text?=), the form in
// which S3/R2 return non-ASCII x-amz-meta-* values and mail carries a non-ASCII
// Subject.
//
// The decoder takes hostile input (anything a sender put in a header): it never
// throws or crashes, runs in time linear in its input, and bounds its output.
// Both functions are pure and thread-safe.
#ifndef POCKETMAIL_COMMON_MIME_RFC2047_H_
#define POCKETMAIL_COMMON_MIME_RFC2047_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::mime {

// Longest input DecodeRfc2047 accepts; longer input is RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxRfc2047InputBytes = size_t{64} * 1024;
// Longest output DecodeRfc2047 produces; more is RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxRfc2047OutputBytes = size_t{256} * 1024;

// Decodes every well-formed encoded-word in `value` to UTF-8:
//  - B (base64) and Q encodings, charset and encoding letters in any case, an
//    RFC 2231 language suffix (=?utf-8*en?Q?...?=) ignored;
//  - whitespace that only separates two encoded-words is dropped (RFC 2047 §6.2),
//    so a value split over several words joins back exactly;
//  - UTF-8, US-ASCII, ISO-8859-1, Windows-1252 natively, other charsets via iconv;
//  - a malformed word (bad base64, bad =XX, unknown charset, unterminated) is
//    kept verbatim, like any other text.
// The result is always valid UTF-8 (ill-formed bytes, in words or around them,
// become U+FFFD). It may contain control characters (CR, LF, NUL) that a word
// encoded: callers that log or re-emit it must escape them.
absl::StatusOr<std::string> DecodeRfc2047(absl::string_view value);

// Encodes `text` (meant to be UTF-8) as B encoded-words labelled UTF-8, each at
// most 75 characters, separated by single spaces. A UTF-8 character is never
// split across two words, so DecodeRfc2047 returns `text` unchanged when it was
// valid UTF-8. The result is printable ASCII without '\r' or '\n'.
std::string EncodeRfc2047B(absl::string_view text);

}  // namespace pocketmail::mime

#endif  // POCKETMAIL_COMMON_MIME_RFC2047_H_
