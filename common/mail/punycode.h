// Punycode (RFC 3492): the Bootstring encoding IDNA uses to turn a Unicode
// domain label into its ASCII "A-label" (with the "xn--" prefix added by the
// caller). Both directions check every arithmetic step for overflow and fail
// with INVALID_ARGUMENT rather than produce a wrong result; they never crash.
#ifndef POCKETMAIL_COMMON_MAIL_PUNYCODE_H_
#define POCKETMAIL_COMMON_MAIL_PUNYCODE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::mail {

// Encodes code points (without the "xn--" prefix). Fails on values that are
// not Unicode scalar values and on inputs longer than kMaxPunycodeInput.
absl::StatusOr<std::string> PunycodeEncode(const std::u32string& input);

// Decodes an encoded label body (without "xn--"). Case-insensitive digits;
// basic code points before the last '-' are copied as given.
absl::StatusOr<std::u32string> PunycodeDecode(absl::string_view input);

// Labels are ≤ 63 octets; this generous bound keeps the O(n²) decoder cheap.
inline constexpr size_t kMaxPunycodeInput = 1024;

}  // namespace pocketmail::mail

#endif  // POCKETMAIL_COMMON_MAIL_PUNYCODE_H_
