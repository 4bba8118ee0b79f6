#include "common/smtp/address.h"

#include "absl/strings/str_cat.h"
#include "common/mail/utf8.h"

namespace pocketmail::smtp {

bool IsAscii(absl::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

absl::Status ValidateEnvelopeAddress(absl::string_view address, bool allow_empty) {
  if (address.empty()) {
    return allow_empty ? absl::OkStatus() : absl::InvalidArgumentError("empty envelope address");
  }
  if (address.size() > kMaxAddressBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope address longer than ", kMaxAddressBytes, " bytes"));
  }
  for (size_t i = 0; i < address.size();) {
    char32_t c;
    size_t n = mail::DecodeUtf8Sequence(address, i, &c);
    if (n == 0) return absl::InvalidArgumentError("envelope address is not valid UTF-8");
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {  // C0, DEL and C1 controls
      return absl::InvalidArgumentError(absl::StrCat(
          "control character 0x", absl::Hex(static_cast<uint32_t>(c)), " in envelope address"));
    }
    if (c == ' ' || c == '<' || c == '>') {
      return absl::InvalidArgumentError(
          absl::StrCat("'", std::string(1, static_cast<char>(c)), "' in envelope address"));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateTraceKey(absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("empty trace key");
  if (key.size() > kMaxTraceKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace key longer than ", kMaxTraceKeyBytes, " bytes"));
  }
  for (unsigned char c : key) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("trace key must be printable ASCII");
    }
  }
  if (key.front() == ' ' || key.back() == ' ') {
    return absl::InvalidArgumentError("trace key starts or ends with a space");
  }
  return absl::OkStatus();
}

}  // namespace pocketmail::smtp
