// Fuzzes envelope address parsing, domain normalisation and punycode
// (common/mail/address.h, punycode.h, utf8.h).
//
// Properties besides "no crash, no leak, no UB":
//  - an address that parsed came from input without CR, LF, NUL or '<' '>',
//    of at most 254 octets; its parts are valid UTF-8 without CR/LF/NUL; the
//    localpart is 1..64 octets; the ASCII domain is lowercase LDH labels and
//    dots, at most 253 octets, with one Unicode label per ASCII label;
//  - normalisation is idempotent and both domain forms are equivalent:
//    NormalizeDomain(unicode) and NormalizeDomain(ascii) give the same pair;
//  - every "xn--" label decodes (punycode) to its Unicode label;
//  - ToString() parses back to the same address (when it fits in 254 octets);
//  - lookup_localpart() is valid UTF-8 and lowercasing it again is a no-op;
//  - SimpleLowercase is idempotent; LowercaseUtf8 keeps valid UTF-8 valid;
//    TruncateUtf8 cuts valid UTF-8 only at character boundaries;
//  - punycode round trip: for any sequence of scalar values x that encodes,
//    PunycodeDecode(PunycodeEncode(x)) == x, and the encoding is ASCII; for
//    any input that decodes, the canonical re-encoding decodes to the same.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/mail/address.h"
#include "common/mail/punycode.h"
#include "common/mail/utf8.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace mail = pocketmail::mail;
using pocketmail::fuzz::HasLineBreakOrNul;
using pocketmail::fuzz::IsStrictUtf8;

bool SameDomain(const mail::Domain& a, const mail::Domain& b) {
  return a.unicode == b.unicode && a.ascii == b.ascii;
}

void CheckDomain(const mail::Domain& d) {
  FUZZ_CHECK(!d.ascii.empty() && d.ascii.size() <= mail::kMaxDomainOctets);
  FUZZ_CHECK(IsStrictUtf8(d.unicode));
  FUZZ_CHECK(!HasLineBreakOrNul(d.unicode));
  for (char c : d.ascii) {
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  }
  const std::vector<absl::string_view> ascii = absl::StrSplit(d.ascii, '.');
  const std::vector<absl::string_view> unicode = absl::StrSplit(d.unicode, '.');
  FUZZ_CHECK(ascii.size() == unicode.size());
  for (size_t i = 0; i < ascii.size(); ++i) {
    FUZZ_CHECK(!ascii[i].empty() && ascii[i].size() <= mail::kMaxLabelOctets);
    FUZZ_CHECK(ascii[i].front() != '-' && ascii[i].back() != '-');
    if (absl::StartsWith(ascii[i], "xn--")) {
      absl::StatusOr<std::u32string> decoded = mail::PunycodeDecode(ascii[i].substr(4));
      FUZZ_CHECK(decoded.ok());
      FUZZ_CHECK(mail::EncodeUtf8(*decoded) == unicode[i]);
    } else {
      FUZZ_CHECK(ascii[i] == unicode[i]);
    }
  }
  // Either form normalises to the same pair: the forms are interchangeable.
  for (const std::string& form : {d.unicode, d.ascii}) {
    absl::StatusOr<mail::Domain> again = mail::NormalizeDomain(form);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SameDomain(*again, d));
  }
}

void CheckAddress(absl::string_view input) {
  absl::StatusOr<mail::EnvelopeAddress> parsed = mail::ParseEnvelopeAddress(input);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(input.size() <= mail::kMaxAddressOctets);
  FUZZ_CHECK(!HasLineBreakOrNul(input));
  FUZZ_CHECK(input.find_first_of("<>") == absl::string_view::npos);
  FUZZ_CHECK(IsStrictUtf8(input));

  const mail::EnvelopeAddress& a = *parsed;
  FUZZ_CHECK(!a.localpart.empty() && a.localpart.size() <= mail::kMaxLocalpartOctets);
  FUZZ_CHECK(IsStrictUtf8(a.localpart));
  FUZZ_CHECK(!HasLineBreakOrNul(a.localpart));
  CheckDomain(a.domain);

  const std::string lookup = a.lookup_localpart();
  FUZZ_CHECK(IsStrictUtf8(lookup));
  FUZZ_CHECK(mail::LowercaseUtf8(lookup) == lookup);

  const std::string text = a.ToString();
  FUZZ_CHECK(!HasLineBreakOrNul(text));
  if (text.size() <= mail::kMaxAddressOctets) {
    absl::StatusOr<mail::EnvelopeAddress> reparsed = mail::ParseEnvelopeAddress(text);
    FUZZ_CHECK(reparsed.ok());
    FUZZ_CHECK(reparsed->localpart == a.localpart);
    FUZZ_CHECK(SameDomain(reparsed->domain, a.domain));
    FUZZ_CHECK(reparsed->ToString() == text);
  }
}

void CheckNormalizeDomain(absl::string_view input) {
  absl::StatusOr<mail::Domain> d = mail::NormalizeDomain(input);
  if (!d.ok()) {
    FUZZ_CHECK(d.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(!HasLineBreakOrNul(input));
  CheckDomain(*d);
}

void CheckPunycode(absl::string_view input) {
  // decode(encode(x)) == x for Unicode x (the IDN direction).
  std::u32string cps;
  if (mail::DecodeUtf8(input, &cps)) {
    FUZZ_CHECK(IsStrictUtf8(input));
    FUZZ_CHECK(mail::EncodeUtf8(cps) == input);
    absl::StatusOr<std::string> encoded = mail::PunycodeEncode(cps);
    if (cps.size() > mail::kMaxPunycodeInput) {
      FUZZ_CHECK(!encoded.ok());
    } else if (encoded.ok()) {
      for (unsigned char c : *encoded) FUZZ_CHECK(c < 0x80);
      absl::StatusOr<std::u32string> decoded = mail::PunycodeDecode(*encoded);
      FUZZ_CHECK(decoded.ok());
      FUZZ_CHECK(*decoded == cps);
    }
  } else {
    FUZZ_CHECK(!IsStrictUtf8(input));
  }

  // Any label body that decodes has a canonical form that decodes the same.
  absl::StatusOr<std::u32string> decoded = mail::PunycodeDecode(input);
  if (!decoded.ok()) return;
  for (char32_t cp : *decoded) FUZZ_CHECK(cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF));
  absl::StatusOr<std::string> canonical = mail::PunycodeEncode(*decoded);
  if (!canonical.ok()) return;
  absl::StatusOr<std::u32string> again = mail::PunycodeDecode(*canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *decoded);
}

void CheckUtf8Helpers(absl::string_view input) {
  const bool valid = mail::IsValidUtf8(input);
  FUZZ_CHECK(valid == IsStrictUtf8(input));
  const std::string lower = mail::LowercaseUtf8(input);
  if (valid) {
    FUZZ_CHECK(IsStrictUtf8(lower));
    FUZZ_CHECK(mail::LowercaseUtf8(lower) == lower);
    std::u32string cps;
    FUZZ_CHECK(mail::DecodeUtf8(input, &cps));
    for (char32_t cp : cps) {
      const char32_t once = mail::SimpleLowercase(cp);
      FUZZ_CHECK(mail::SimpleLowercase(once) == once);
      FUZZ_CHECK((cp < 0x80) == (once < 0x80));  // never maps across the ASCII boundary
    }
  } else {
    FUZZ_CHECK(lower.size() == input.size());
  }
  for (size_t bound : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}}) {
    const absl::string_view cut = mail::TruncateUtf8(input, bound);
    FUZZ_CHECK(cut.size() <= bound);
    FUZZ_CHECK(input.substr(0, cut.size()) == cut);
    if (input.size() <= bound) FUZZ_CHECK(cut == input);
    if (valid) {
      FUZZ_CHECK(IsStrictUtf8(cut));
      FUZZ_CHECK(cut.size() + 3 >= std::min(bound, input.size()));  // drops < one character
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckAddress(input);
  CheckNormalizeDomain(input);
  CheckPunycode(input);
  CheckUtf8Helpers(input);
  // The domain part alone, as the parser would see it.
  const size_t at = input.rfind('@');
  if (at != absl::string_view::npos) CheckNormalizeDomain(input.substr(at + 1));
  return 0;
}
