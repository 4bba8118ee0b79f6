#include "common/mail/utf8.h"

#include "absl/strings/ascii.h"

namespace pocketmail::mail {

size_t DecodeUtf8Sequence(absl::string_view s, size_t i, char32_t* code_point) {
  const unsigned char lead = static_cast<unsigned char>(s[i]);
  *code_point = lead;
  if (lead < 0x80) return 1;
  size_t length;
  char32_t cp;
  char32_t min;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return 0;  // continuation byte or 0xF8..0xFF as a lead
  }
  if (s.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    unsigned char cont = static_cast<unsigned char>(s[i + k]);
    if ((cont & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cont & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *code_point = cp;
  return length;
}

bool DecodeUtf8(absl::string_view in, std::u32string* out) {
  out->clear();
  for (size_t i = 0; i < in.size();) {
    char32_t cp;
    const size_t n = DecodeUtf8Sequence(in, i, &cp);
    if (n == 0) return false;
    out->push_back(cp);
    i += n;
  }
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(const std::u32string& in) {
  std::string out;
  out.reserve(in.size());
  for (char32_t cp : in) AppendUtf8(cp, &out);
  return out;
}

char32_t SimpleLowercase(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
  if (cp < 0xC0) return cp;
  if (cp <= 0xDE) return cp == 0xD7 ? cp : cp + 0x20;  // Latin-1 (× is not a letter)
  if (cp >= 0x100 && cp <= 0x137) return (cp % 2 == 0) ? cp + 1 : cp;
  if (cp >= 0x139 && cp <= 0x148) return (cp % 2 == 1) ? cp + 1 : cp;
  if (cp >= 0x14A && cp <= 0x177) return (cp % 2 == 0) ? cp + 1 : cp;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x179 && cp <= 0x17E) return (cp % 2 == 1) ? cp + 1 : cp;
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;  // Greek
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;                 // Cyrillic Ѐ..Џ
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;                 // Cyrillic А..Я
  return cp;
}

std::string LowercaseUtf8(absl::string_view in) {
  std::u32string cps;
  if (!DecodeUtf8(in, &cps)) return absl::AsciiStrToLower(in);
  std::string out;
  out.reserve(in.size());
  for (char32_t cp : cps) AppendUtf8(SimpleLowercase(cp), &out);
  return out;
}

absl::string_view TruncateUtf8(absl::string_view in, size_t max_bytes) {
  if (in.size() <= max_bytes) return in;
  size_t end = max_bytes;
  // Back off over continuation bytes to the start of the cut sequence.
  while (end > 0 && (static_cast<unsigned char>(in[end]) & 0xC0) == 0x80) --end;
  return in.substr(0, end);
}

bool IsValidUtf8(absl::string_view in) {
  for (size_t i = 0; i < in.size();) {
    char32_t cp;
    const size_t n = DecodeUtf8Sequence(in, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ToBoundedUtf8(absl::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    const size_t n = DecodeUtf8Sequence(s, i, &cp);
    const size_t emit = n == 0 ? 1 : n;
    if (out.size() + emit > max_bytes) break;
    if (n == 0) {
      out.push_back('?');
    } else {
      out.append(s.data() + i, n);
    }
    i += emit;
  }
  return out;
}

}  // namespace pocketmail::mail
