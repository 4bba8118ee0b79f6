// Envelope addresses: RFC 5321 Mailbox (Local-part "@" Domain) with RFC 6531
// UTF-8 localparts and internationalised (IDN) domains.
//
// ParseEnvelopeAddress splits at the LAST '@' and rejects, with
// INVALID_ARGUMENT and a message saying why: empty parts; CR, LF, NUL or any
// other control character; '<' or '>'; spaces outside a quoted localpart; a
// localpart over 64 octets or an address over 254; "..", leading or trailing
// dots in an unquoted localpart; malformed quoted strings; address literals
// ("[192.0.2.1]"); and domains that are not valid host names.
//
// Domains are lowercased and kept in two forms: Unicode (U-labels) and ASCII
// (A-labels, "xn--..."). Either form may be given, so `user@bücher.example`
// and `user@xn--bcher-kva.example` have the same ascii_domain; compare domains
// with ascii_domain. (Case folding is SimpleLowercase in utf8.h, not full
// UTS #46 mapping.)
//
// Pure functions; thread-safe; never crash on any input (fuzzed).
#ifndef POCKETMAIL_COMMON_MAIL_ADDRESS_H_
#define POCKETMAIL_COMMON_MAIL_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::mail {

inline constexpr size_t kMaxLocalpartOctets = 64;
inline constexpr size_t kMaxAddressOctets = 254;
inline constexpr size_t kMaxLabelOctets = 63;
inline constexpr size_t kMaxDomainOctets = 253;  // ASCII form, no trailing dot

struct Domain {
  std::string unicode;  // lowercased, U-labels, e.g. "bücher.example"
  std::string ascii;    // lowercased, A-labels, e.g. "xn--bcher-kva.example"
};

struct EnvelopeAddress {
  // The localpart with quoting removed and quoted-pairs unescaped, case kept:
  // `"john doe"@x` → `john doe`.
  std::string localpart;
  bool quoted = false;  // the localpart was a quoted string
  Domain domain;

  // The localpart lowercased: what mailbox lookups compare.
  std::string lookup_localpart() const;
  // `localpart@unicode-domain`, re-quoting the localpart when it needs it.
  std::string ToString() const;
};

absl::StatusOr<EnvelopeAddress> ParseEnvelopeAddress(absl::string_view input);

// Validates and normalises a domain given in Unicode or A-label form.
absl::StatusOr<Domain> NormalizeDomain(absl::string_view domain);

}  // namespace pocketmail::mail

#endif  // POCKETMAIL_COMMON_MAIL_ADDRESS_H_
