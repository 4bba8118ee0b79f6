// Envelope addresses and trace values that end up inside SMTP command lines or
// headers. This is where SMTP command injection must die: the session refuses
// to write any value that has not passed these checks.
#ifndef POCKETMAIL_COMMON_SMTP_ADDRESS_H_
#define POCKETMAIL_COMMON_SMTP_ADDRESS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pocketmail::smtp {

// RFC 5321 caps a path at 256 octets; leave room for long UTF-8 local parts.
inline constexpr size_t kMaxAddressBytes = 512;
inline constexpr size_t kMaxTraceKeyBytes = 512;

// OK when `address` may be written as `<address>` in MAIL FROM / RCPT TO.
// Refused (InvalidArgument, permanent for this input): any ASCII control
// character (CR, LF, NUL, ..., DEL and the C1 range), space, '<', '>', more than
// kMaxAddressBytes, bytes that are not valid UTF-8, and "" unless
// `allow_empty` (the null sender). Spaces are refused although a quoted local
// part may contain one: a space is how ESMTP parameters are smuggled in, and
// such addresses do not occur in practice.
absl::Status ValidateEnvelopeAddress(absl::string_view address, bool allow_empty);

// True when every byte is 7-bit ASCII (else the address needs SMTPUTF8).
bool IsAscii(absl::string_view s);

// OK when `key` may be written as the value of the X-Pocketmail-Key header:
// 1..kMaxTraceKeyBytes bytes of printable ASCII (0x20-0x7E), not starting or
// ending with a space.
absl::Status ValidateTraceKey(absl::string_view key);

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_ADDRESS_H_
