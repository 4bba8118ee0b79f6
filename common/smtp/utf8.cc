#include "common/smtp/utf8.h"

namespace pocketmail::smtp {

size_t Utf8SequenceLength(absl::string_view s, size_t i, unsigned int* code_point) {
  unsigned char c = s[i];
  size_t n;
  unsigned int cp;
  *code_point = c;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  *code_point = cp;
  return n;
}

std::string ToBoundedUtf8(absl::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  for (size_t i = 0; i < s.size();) {
    unsigned int cp;
    size_t n = Utf8SequenceLength(s, i, &cp);
    size_t emit = n == 0 ? 1 : n;
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

}  // namespace pocketmail::smtp
