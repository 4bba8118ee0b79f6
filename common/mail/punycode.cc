#include "common/mail/punycode.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"

namespace pocketmail::mail {
namespace {

// RFC 3492 section 5 parameters for IDNA.
constexpr uint32_t kBase = 36;
constexpr uint32_t kTMin = 1;
constexpr uint32_t kTMax = 26;
constexpr uint32_t kSkew = 38;
constexpr uint32_t kDamp = 700;
constexpr uint32_t kInitialBias = 72;
constexpr uint32_t kInitialN = 0x80;
constexpr char kDelimiter = '-';
constexpr uint32_t kMaxInt = std::numeric_limits<uint32_t>::max();

uint32_t Adapt(uint32_t delta, uint32_t num_points, bool first_time) {
  delta = first_time ? delta / kDamp : delta / 2;
  delta += delta / num_points;
  uint32_t k = 0;
  while (delta > ((kBase - kTMin) * kTMax) / 2) {
    delta /= kBase - kTMin;
    k += kBase;
  }
  return k + (kBase - kTMin + 1) * delta / (delta + kSkew);
}

uint32_t Threshold(uint32_t k, uint32_t bias) {
  if (k <= bias) return kTMin;
  if (k >= bias + kTMax) return kTMax;
  return k - bias;
}

char EncodeDigit(uint32_t d) { return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26)); }

// Returns kBase for a character that is not a digit.
uint32_t DecodeDigit(char c) {
  if (c >= '0' && c <= '9') return 26 + (c - '0');
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  return kBase;
}

bool IsScalarValue(char32_t cp) { return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

}  // namespace

absl::StatusOr<std::string> PunycodeEncode(const std::u32string& input) {
  if (input.size() > kMaxPunycodeInput)
    return absl::InvalidArgumentError("punycode: input too long");
  std::string output;
  for (char32_t cp : input) {
    if (!IsScalarValue(cp))
      return absl::InvalidArgumentError("punycode: not a Unicode scalar value");
    if (cp < kInitialN) output.push_back(static_cast<char>(cp));
  }
  const uint32_t basic = static_cast<uint32_t>(output.size());
  uint32_t handled = basic;
  if (basic > 0) output.push_back(kDelimiter);

  uint32_t n = kInitialN;
  uint32_t delta = 0;
  uint32_t bias = kInitialBias;
  while (handled < input.size()) {
    uint32_t m = kMaxInt;
    for (char32_t cp : input) {
      if (cp >= n && cp < m) m = cp;
    }
    if (m - n > (kMaxInt - delta) / (handled + 1))
      return absl::InvalidArgumentError("punycode: overflow");
    delta += (m - n) * (handled + 1);
    n = m;
    for (char32_t cp : input) {
      if (cp < n && ++delta == 0) return absl::InvalidArgumentError("punycode: overflow");
      if (cp != n) continue;
      uint32_t q = delta;
      for (uint32_t k = kBase;; k += kBase) {
        uint32_t t = Threshold(k, bias);
        if (q < t) break;
        output.push_back(EncodeDigit(t + (q - t) % (kBase - t)));
        q = (q - t) / (kBase - t);
      }
      output.push_back(EncodeDigit(q));
      bias = Adapt(delta, handled + 1, handled == basic);
      delta = 0;
      ++handled;
    }
    ++delta;
    ++n;
  }
  return output;
}

absl::StatusOr<std::u32string> PunycodeDecode(absl::string_view input) {
  if (input.size() > kMaxPunycodeInput)
    return absl::InvalidArgumentError("punycode: input too long");
  std::u32string output;
  size_t last_delimiter = input.rfind(kDelimiter);
  size_t pos = 0;
  if (last_delimiter != absl::string_view::npos && last_delimiter > 0) {
    for (size_t j = 0; j < last_delimiter; ++j) {
      unsigned char c = static_cast<unsigned char>(input[j]);
      if (c >= kInitialN)
        return absl::InvalidArgumentError("punycode: non-basic code point before delimiter");
      output.push_back(c);
    }
    pos = last_delimiter + 1;
  }

  uint32_t n = kInitialN;
  uint32_t i = 0;
  uint32_t bias = kInitialBias;
  while (pos < input.size()) {
    uint32_t old_i = i;
    uint32_t w = 1;
    for (uint32_t k = kBase;; k += kBase) {
      if (pos >= input.size()) return absl::InvalidArgumentError("punycode: truncated input");
      uint32_t digit = DecodeDigit(input[pos++]);
      if (digit >= kBase) return absl::InvalidArgumentError("punycode: invalid digit");
      if (digit > (kMaxInt - i) / w) return absl::InvalidArgumentError("punycode: overflow");
      i += digit * w;
      uint32_t t = Threshold(k, bias);
      if (digit < t) break;
      if (w > kMaxInt / (kBase - t)) return absl::InvalidArgumentError("punycode: overflow");
      w *= kBase - t;
    }
    uint32_t length = static_cast<uint32_t>(output.size()) + 1;
    bias = Adapt(i - old_i, length, old_i == 0);
    if (i / length > kMaxInt - n) return absl::InvalidArgumentError("punycode: overflow");
    n += i / length;
    i %= length;
    if (n < kInitialN || !IsScalarValue(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("punycode: decodes to invalid code point ", n));
    }
    output.insert(output.begin() + i, static_cast<char32_t>(n));
    ++i;
  }
  return output;
}

}  // namespace pocketmail::mail
