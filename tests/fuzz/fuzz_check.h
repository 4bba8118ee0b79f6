// Helpers shared by the fuzz targets in tests/fuzz.
//
// FUZZ_CHECK states a property the code under test promises. A violation is a
// bug exactly like a crash: it prints the property and traps, so libFuzzer
// saves the input as a crash artifact and the gcc corpus-replay test dies of
// SIGILL. (Not assert(): that disappears under NDEBUG, e.g. in `-c opt`.)
#ifndef POCKETMAIL_TESTS_FUZZ_FUZZ_CHECK_H_
#define POCKETMAIL_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdio>

#include "absl/strings/string_view.h"

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::fflush(stderr);                                                                     \
      __builtin_trap();                                                                        \
    }                                                                                          \
  } while (0)

namespace pocketmail::fuzz {

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF, no truncated sequences. Written here independently of the code
// under test so the two can disagree.
inline bool IsStrictUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
    } else {
      return false;
    }
    if (s.size() - i < n) return false;
    const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k < n; ++k) {
      const unsigned char ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += n;
  }
  return true;
}

// True when `s` holds CR, LF or NUL: the bytes that split a header or an SMTP
// command line, or cut a C string.
inline bool HasLineBreakOrNul(absl::string_view s) {
  return s.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos;
}

}  // namespace pocketmail::fuzz

#endif  // POCKETMAIL_TESTS_FUZZ_FUZZ_CHECK_H_
