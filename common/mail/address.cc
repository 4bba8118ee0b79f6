#include "common/mail/address.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/mail/punycode.h"
#include "common/mail/utf8.h"

namespace pocketmail::mail {
namespace {

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid envelope address: ", why));
}

// RFC 5322 atext, plus any non-ASCII byte (RFC 6531 UTF8-non-ascii; the
// whole input has already been checked to be valid UTF-8).
bool IsAtext(unsigned char c) {
  if (c >= 0x80) return true;
  if (absl::ascii_isalnum(c)) return true;
  return absl::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
         absl::string_view::npos;
}

bool IsLdh(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// Code points that may not appear in a Unicode label: controls, spaces and
// format characters that make look-alike or invisible names.
bool IsForbiddenInULabel(char32_t c) {
  if (c < 0x80) return !IsLdh(c);  // the label is already lowercased
  if (c <= 0x9F) return true;      // C1 controls
  if (c == 0xA0 || c == 0xAD || c == 0x1680 || c == 0x3000 || c == 0xFEFF) return true;
  if (c >= 0x2000 && c <= 0x200F) return true;
  if (c >= 0x2028 && c <= 0x202F) return true;
  if (c >= 0x205F && c <= 0x206F) return true;
  if (c >= 0xFFF0) return c <= 0xFFFF || (c & 0xFFFE) == 0xFFFE;  // specials, nonchars
  return false;
}

absl::Status CheckLdhLabel(absl::string_view label) {
  for (char c : label) {
    if (!IsLdh(static_cast<unsigned char>(c))) {
      return Invalid(
          absl::StrCat("domain label has a character other than letters, digits "
                       "and '-' (0x",
                       absl::Hex(static_cast<unsigned char>(c)), ")"));
    }
  }
  if (label.front() == '-' || label.back() == '-') {
    return Invalid("domain label starts or ends with '-'");
  }
  return absl::OkStatus();
}

// The rules a Unicode label obeys whichever form it arrived in. REQUIRES:
// `label` is lowercased and non-empty.
absl::Status CheckULabel(const std::u32string& label) {
  for (char32_t c : label) {
    if (IsForbiddenInULabel(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("domain label has a forbidden character U+", absl::Hex(c)));
    }
  }
  if (label.front() == '-' || label.back() == '-') {
    return absl::InvalidArgumentError("domain label starts or ends with '-'");
  }
  return absl::OkStatus();
}

// Normalises one label; fills its Unicode and ASCII forms.
absl::Status NormalizeLabel(absl::string_view raw, std::string* unicode, std::string* ascii) {
  if (raw.empty()) return Invalid("empty domain label (\"..\", or a leading or trailing dot)");
  std::u32string cps;
  if (!DecodeUtf8(raw, &cps)) return Invalid("domain is not valid UTF-8");
  bool all_ascii = true;
  for (char32_t& c : cps) {
    if (c >= 0x80) all_ascii = false;
    c = SimpleLowercase(c);
  }

  if (all_ascii) {
    std::string label = absl::AsciiStrToLower(raw);
    if (label.size() > kMaxLabelOctets) return Invalid("domain label longer than 63 octets");
    if (absl::StartsWith(label, "xn--")) {
      // An A-label: it must decode, and re-encode to exactly itself.
      absl::StatusOr<std::u32string> decoded = PunycodeDecode(absl::string_view(label).substr(4));
      if (!decoded.ok()) return Invalid(absl::StrCat("bad A-label: ", decoded.status().message()));
      bool has_non_ascii = false;
      for (char32_t& c : *decoded) {
        if (c >= 0x80) has_non_ascii = true;
        c = SimpleLowercase(c);
      }
      if (!has_non_ascii) return Invalid("A-label has no non-ASCII characters");
      if (absl::Status st = CheckULabel(*decoded); !st.ok()) {
        return Invalid(absl::StrCat("bad A-label: ", st.message()));
      }
      absl::StatusOr<std::string> again = PunycodeEncode(*decoded);
      if (!again.ok() || absl::StrCat("xn--", *again) != label) {
        return Invalid("A-label is not in canonical form");
      }
      *unicode = EncodeUtf8(*decoded);
      *ascii = label;
      return absl::OkStatus();
    }
    absl::Status st = CheckLdhLabel(label);
    if (!st.ok()) return st;
    *unicode = label;
    *ascii = label;
    return absl::OkStatus();
  }

  if (absl::Status st = CheckULabel(cps); !st.ok()) return Invalid(st.message());
  absl::StatusOr<std::string> encoded = PunycodeEncode(cps);
  if (!encoded.ok()) return Invalid(encoded.status().message());
  *ascii = absl::StrCat("xn--", *encoded);
  if (ascii->size() > kMaxLabelOctets)
    return Invalid("domain label longer than 63 octets as an A-label");
  *unicode = EncodeUtf8(cps);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParseLocalpart(absl::string_view raw, bool* quoted) {
  if (raw.empty()) return Invalid("empty localpart");
  if (raw.size() > kMaxLocalpartOctets) return Invalid("localpart longer than 64 octets");
  if (raw.front() == '"') {
    if (raw.size() < 2 || raw.back() != '"') return Invalid("unterminated quoted localpart");
    std::string out;
    absl::string_view body = raw.substr(1, raw.size() - 2);
    for (size_t i = 0; i < body.size(); ++i) {
      char c = body[i];
      if (c == '\\') {
        if (i + 1 >= body.size()) return Invalid("dangling '\\' in quoted localpart");
        out.push_back(body[++i]);  // any printable ASCII (controls were rejected earlier)
      } else if (c == '"') {
        return Invalid("unescaped '\"' inside quoted localpart");
      } else {
        out.push_back(c);
      }
    }
    if (out.empty()) return Invalid("empty quoted localpart");
    *quoted = true;
    return out;
  }
  if (raw.front() == '.' || raw.back() == '.') return Invalid("localpart starts or ends with '.'");
  if (absl::StrContains(raw, "..")) return Invalid("localpart contains \"..\"");
  for (char c : raw) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == ' ') return Invalid("space outside a quoted localpart");
    if (c != '.' && !IsAtext(u)) {
      return Invalid(absl::StrCat("character '", std::string(1, c),
                                  "' is not allowed in an unquoted localpart"));
    }
  }
  *quoted = false;
  return std::string(raw);
}

bool NeedsQuoting(absl::string_view localpart) {
  if (localpart.empty() || localpart.front() == '.' || localpart.back() == '.') return true;
  if (absl::StrContains(localpart, "..")) return true;
  for (char c : localpart) {
    if (c != '.' && !IsAtext(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<Domain> NormalizeDomain(absl::string_view domain) {
  if (domain.empty()) return Invalid("empty domain");
  if (domain.front() == '[') return Invalid("address literals are not accepted");
  Domain out;
  std::vector<std::string> unicode_labels;
  std::vector<std::string> ascii_labels;
  for (absl::string_view raw : absl::StrSplit(domain, '.')) {
    std::string unicode, ascii;
    absl::Status st = NormalizeLabel(raw, &unicode, &ascii);
    if (!st.ok()) return st;
    unicode_labels.push_back(std::move(unicode));
    ascii_labels.push_back(std::move(ascii));
  }
  out.unicode = absl::StrJoin(unicode_labels, ".");
  out.ascii = absl::StrJoin(ascii_labels, ".");
  if (out.ascii.size() > kMaxDomainOctets) return Invalid("domain longer than 253 octets");
  return out;
}

absl::StatusOr<EnvelopeAddress> ParseEnvelopeAddress(absl::string_view input) {
  if (input.empty()) return Invalid("empty address");
  if (input.size() > kMaxAddressOctets) return Invalid("address longer than 254 octets");
  for (char c : input) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') return Invalid("contains CR or LF");
    if (c == '\0') return Invalid("contains NUL");
    if (u < 0x20 || u == 0x7F) return Invalid("contains a control character");
    if (c == '<' || c == '>') return Invalid("contains '<' or '>' (give the bare address)");
  }
  std::u32string cps;
  if (!DecodeUtf8(input, &cps)) return Invalid("not valid UTF-8");
  for (char32_t c : cps) {
    if (c >= 0x80 && c <= 0x9F) return Invalid("contains a control character");
  }
  size_t at = input.rfind('@');
  if (at == absl::string_view::npos) return Invalid("missing '@'");
  absl::string_view local = input.substr(0, at);
  absl::string_view domain = input.substr(at + 1);
  if (domain.empty()) return Invalid("empty domain");
  for (char c : domain) {
    if (c == ' ') return Invalid("space in domain");
  }

  EnvelopeAddress out;
  absl::StatusOr<std::string> localpart = ParseLocalpart(local, &out.quoted);
  if (!localpart.ok()) return localpart.status();
  out.localpart = *std::move(localpart);
  absl::StatusOr<Domain> normalized = NormalizeDomain(domain);
  if (!normalized.ok()) return normalized.status();
  out.domain = *std::move(normalized);
  return out;
}

std::string EnvelopeAddress::lookup_localpart() const { return LowercaseUtf8(localpart); }

std::string EnvelopeAddress::ToString() const {
  if (!NeedsQuoting(localpart)) return absl::StrCat(localpart, "@", domain.unicode);
  std::string quoted = "\"";
  for (char c : localpart) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return absl::StrCat(quoted, "\"@", domain.unicode);
}

}  // namespace pocketmail::mail
