#include "common/mime/charset.h"

#include <iconv.h>

#include <cerrno>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pocketmail::mime {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Windows-1252 0x80..0x9F; the five unassigned bytes map to the C1 control of
// the same value, as WHATWG specifies.
constexpr uint16_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

std::string FromWindows1252(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    AppendCodePoint(c >= 0x80 && c < 0xA0 ? kCp1252High[c - 0x80] : c, &out);
  }
  return out;
}

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0.
size_t WellFormedLength(absl::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [](unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; };
  unsigned char c = byte(0);
  if (c < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (in(c, 0xC2, 0xDF)) {
    need = 2;
  } else if (in(c, 0xE0, 0xEF)) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (in(c, 0xF0, 0xF4)) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < need || !in(byte(1), lo, hi)) return 0;
  for (size_t i = 2; i < need; ++i) {
    if (!in(byte(i), 0x80, 0xBF)) return 0;
  }
  return need;
}

bool IsPlainToken(absl::string_view name) {
  if (name.empty() || name.size() > 40) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("-_.:+()").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::string> ConvertWithIconv(const std::string& charset, absl::string_view bytes) {
  iconv_t cd = iconv_open("UTF-8", charset.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return absl::NotFoundError(absl::StrCat("unknown charset ", charset));
  }
  std::string raw;
  std::string buffer(bytes.size() * 4 + 16, '\0');
  char* in = const_cast<char*>(bytes.data());
  size_t in_left = bytes.size();
  while (true) {
    char* out = buffer.data();
    size_t out_left = buffer.size();
    size_t rc = in_left == 0 ? iconv(cd, nullptr, nullptr, &out, &out_left)  // flush shift state
                             : iconv(cd, &in, &in_left, &out, &out_left);
    int err = errno;
    raw.append(buffer.data(), buffer.size() - out_left);
    if (rc != static_cast<size_t>(-1)) {
      if (in_left == 0) break;
      continue;
    }
    if (err == E2BIG) continue;  // drained `buffer` above; go on
    // EILSEQ (not a character) or EINVAL (truncated at the end): mark and skip a byte.
    raw.append(kReplacement);
    if (err == EINVAL || in_left == 0) break;
    ++in;
    --in_left;
    iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset shift state
  }
  iconv_close(cd);
  std::string clean;
  AppendSanitizedUtf8(raw, &clean);
  return clean;
}

}  // namespace

void AppendSanitizedUtf8(absl::string_view bytes, std::string* out) {
  while (!bytes.empty()) {
    size_t n = WellFormedLength(bytes);
    if (n == 0) {
      out->append(kReplacement);
      n = 1;
    } else {
      out->append(bytes.data(), n);
    }
    bytes.remove_prefix(n);
  }
}

absl::StatusOr<std::string> ConvertToUtf8(absl::string_view charset, absl::string_view bytes) {
  std::string name = absl::AsciiStrToLower(charset);
  if (name == "utf-8" || name == "utf8") {
    std::string out;
    AppendSanitizedUtf8(bytes, &out);
    return out;
  }
  if (name == "us-ascii" || name == "ascii" || name == "iso-8859-1" || name == "iso8859-1" ||
      name == "iso_8859-1" || name == "latin1" || name == "l1" || name == "windows-1252" ||
      name == "cp1252") {
    return FromWindows1252(bytes);
  }
  if (!IsPlainToken(name)) return absl::NotFoundError("charset name is not a plain token");
  return ConvertWithIconv(name, bytes);
}

}  // namespace pocketmail::mime
