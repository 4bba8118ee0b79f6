// Fuzzes the RFC 2047 decoder and the charset conversion behind it
// (common/mime/rfc2047.h, charset.h) with arbitrary header values.
//
// Properties besides "no crash, no leak, no UB":
//  - DecodeRfc2047 succeeds (inputs here are under its input bound) and
//    returns valid UTF-8 of at most kMaxRfc2047OutputBytes;
//  - text without "=?" decodes to itself (sanitized);
//  - EncodeRfc2047B emits printable ASCII words of <= 75 characters, and
//    decoding it returns the input whenever the input was valid UTF-8;
//  - AppendSanitizedUtf8 and ConvertToUtf8 always produce valid UTF-8, and
//    leave valid UTF-8 labelled UTF-8 unchanged.
// The input's first line (up to '\n', if short) is also tried as a charset
// name for ConvertToUtf8, with the rest as the bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/mime/charset.h"
#include "common/mime/rfc2047.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pocketmail::fuzz::IsStrictUtf8;

void CheckDecode(absl::string_view value) {
  absl::StatusOr<std::string> decoded = pocketmail::mime::DecodeRfc2047(value);
  if (value.size() > pocketmail::mime::kMaxRfc2047InputBytes) {
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kResourceExhausted);
    return;
  }
  if (!decoded.ok()) {
    // Only the output bound may refuse an input below the input bound.
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kResourceExhausted);
    return;
  }
  FUZZ_CHECK(IsStrictUtf8(*decoded));
  FUZZ_CHECK(decoded->size() <= pocketmail::mime::kMaxRfc2047OutputBytes);
  if (!absl::StrContains(value, "=?")) {
    std::string sanitized;
    pocketmail::mime::AppendSanitizedUtf8(value, &sanitized);
    FUZZ_CHECK(*decoded == sanitized);
  }
  // Decoding is not recursive, but it must be deterministic.
  absl::StatusOr<std::string> again = pocketmail::mime::DecodeRfc2047(value);
  FUZZ_CHECK(again.ok() && *again == *decoded);
}

void CheckEncodeRoundTrip(absl::string_view text) {
  const std::string encoded = pocketmail::mime::EncodeRfc2047B(text);
  for (char c : encoded) FUZZ_CHECK(c >= 0x20 && c < 0x7F);
  for (absl::string_view word : absl::StrSplit(encoded, ' ')) {
    FUZZ_CHECK(word.size() <= 75);
    FUZZ_CHECK(absl::StartsWith(word, "=?UTF-8?B?") && absl::EndsWith(word, "?="));
  }
  if (!IsStrictUtf8(text) || encoded.size() > pocketmail::mime::kMaxRfc2047InputBytes) return;
  absl::StatusOr<std::string> decoded = pocketmail::mime::DecodeRfc2047(encoded);
  FUZZ_CHECK(decoded.ok());
  FUZZ_CHECK(*decoded == text);
}

void CheckSanitize(absl::string_view bytes) {
  std::string out = "prefix";
  pocketmail::mime::AppendSanitizedUtf8(bytes, &out);
  FUZZ_CHECK(absl::StartsWith(out, "prefix"));  // appends, never replaces
  absl::string_view appended = absl::string_view(out).substr(6);
  FUZZ_CHECK(IsStrictUtf8(appended));
  if (IsStrictUtf8(bytes)) FUZZ_CHECK(appended == bytes);
}

void CheckConvert(absl::string_view input) {
  const size_t nl = input.find('\n');
  if (nl == absl::string_view::npos || nl > 48) return;
  const absl::string_view charset = input.substr(0, nl);
  const absl::string_view bytes = input.substr(nl + 1);
  absl::StatusOr<std::string> converted = pocketmail::mime::ConvertToUtf8(charset, bytes);
  if (!converted.ok()) {
    FUZZ_CHECK(converted.status().code() == absl::StatusCode::kNotFound);
    return;
  }
  FUZZ_CHECK(IsStrictUtf8(*converted));
  if ((absl::EqualsIgnoreCase(charset, "utf-8") || absl::EqualsIgnoreCase(charset, "utf8")) &&
      IsStrictUtf8(bytes)) {
    FUZZ_CHECK(*converted == bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckDecode(input);
  CheckEncodeRoundTrip(input);
  CheckSanitize(input);
  CheckConvert(input);
  return 0;
}
