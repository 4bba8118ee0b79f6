#include "common/mail/utf8.h"

#include "absl/strings/ascii.h"

namespace pocketmail::mail {

bool DecodeUtf8(absl::string_view in, std::u32string* out) {
  out->clear();
  size_t i = 0;
  while (i < in.size()) {
    unsigned char lead = static_cast<unsigned char>(in[i]);
    if (lead < 0x80) {
      out->push_back(lead);
      ++i;
      continue;
    }
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
      return false;  // continuation byte or 0xF8..0xFF as a lead
    }
    if (in.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      unsigned char cont = static_cast<unsigned char>(in[i + k]);
      if ((cont & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cont & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    out->push_back(cp);
    i += length;
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
  std::u32string ignored;
  return DecodeUtf8(in, &ignored);
}

}  // namespace pocketmail::mail
