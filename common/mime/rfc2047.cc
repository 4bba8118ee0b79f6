#include "common/mime/rfc2047.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/mime/charset.h"

namespace pocketmail::mime {
namespace {

constexpr size_t kMaxCharsetLength = 64;
// 45 input bytes -> 60 base64 characters -> 72-character word (limit 75).
constexpr size_t kBytesPerWord = 45;

bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool IsCharsetChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("-_.:+!#$%&'^`{}~*").find(c) != absl::string_view::npos;
}

bool IsEncodedTextChar(char c) { return c > ' ' && c < 0x7F && c != '?'; }

struct EncodedWord {
  size_t length = 0;  // of the whole =?...?= token
  absl::string_view charset;
  char encoding = 0;  // 'b' or 'q'
  absl::string_view text;
};

// Syntax only: `s` starts with =?charset?E?text?= (RFC 2047 §2).
std::optional<EncodedWord> ParseWord(absl::string_view s) {
  if (s.size() < 2 || s[0] != '=' || s[1] != '?') return std::nullopt;
  size_t i = 2;
  while (i < s.size() && i - 2 < kMaxCharsetLength && IsCharsetChar(s[i])) ++i;
  if (i == 2 || i + 2 >= s.size() || s[i] != '?' || s[i + 2] != '?') return std::nullopt;
  EncodedWord word;
  word.charset = s.substr(2, i - 2);
  word.encoding = absl::ascii_tolower(static_cast<unsigned char>(s[i + 1]));
  if (word.encoding != 'b' && word.encoding != 'q') return std::nullopt;
  size_t text_start = i + 3;
  size_t j = text_start;
  while (j < s.size() && IsEncodedTextChar(s[j])) ++j;
  if (j + 1 >= s.size() || s[j] != '?' || s[j + 1] != '=') return std::nullopt;
  word.text = s.substr(text_start, j - text_start);
  word.length = j + 2;
  return word;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<std::string> DecodeQ(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=') {
      int hi = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64, except that missing '=' padding is accepted (common in the wild).
std::optional<std::string> DecodeB(absl::string_view text) {
  size_t padding = 0;
  while (!text.empty() && text.back() == '=' && padding < 2) {
    text.remove_suffix(1);
    ++padding;
  }
  if (text.size() % 4 == 1) return std::nullopt;
  if (padding > 0 && (text.size() + padding) % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int nbits = 0;
  for (char c : text) {
    int v = Base64Value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xFF));
    }
  }
  return out;
}

// The bytes a word's encoded text stands for, or nullopt when it is malformed.
std::optional<std::string> DecodeWordBytes(const EncodedWord& word) {
  return word.encoding == 'b' ? DecodeB(word.text) : DecodeQ(word.text);
}

std::string CharsetOf(const EncodedWord& word) {
  return absl::AsciiStrToLower(
      word.charset.substr(0, word.charset.find('*')));  // RFC 2231 language
}

bool AllWhitespace(absl::string_view s) {
  for (char c : s) {
    if (!IsWhitespace(c)) return false;
  }
  return true;
}

// Decodes one value. Adjacent encoded-words in the same charset are converted
// together: RFC 2047 wants each word to hold whole characters, but encoders
// that split a UTF-8 sequence across two words are common, and this way the
// character survives.
class Decoder {
 public:
  explicit Decoder(absl::string_view value) : value_(value) {}

  absl::StatusOr<std::string> Run() {
    size_t i = 0;
    while (i < value_.size()) {
      if (value_[i] == '=') {
        std::optional<EncodedWord> word = ParseWord(value_.substr(i));
        std::optional<std::string> bytes = word ? DecodeWordBytes(*word) : std::nullopt;
        if (bytes) {
          AddWord(i, *word, *bytes);
          i += word->length;
          if (!CheckBound()) return Exhausted();
          continue;
        }
      }
      plain_.push_back(value_[i]);
      ++i;
    }
    FlushRun();
    FlushPlain();
    if (!CheckBound()) return Exhausted();
    return std::move(out_);
  }

 private:
  void AddWord(size_t at, const EncodedWord& word, const std::string& bytes) {
    std::string charset = CharsetOf(word);
    bool adjacent = run_active_ && AllWhitespace(plain_);
    if (adjacent) {
      plain_.clear();  // whitespace between encoded-words is not text (§6.2)
      if (charset == run_charset_) {
        run_bytes_.append(bytes);
        run_end_ = at + word.length;
        return;
      }
      FlushRun();
    } else {
      FlushRun();
      FlushPlain();
    }
    run_active_ = true;
    run_charset_ = std::move(charset);
    run_bytes_ = bytes;
    run_begin_ = at;
    run_end_ = at + word.length;
  }

  void FlushRun() {
    if (!run_active_) return;
    absl::StatusOr<std::string> text = ConvertToUtf8(run_charset_, run_bytes_);
    if (text.ok()) {
      out_.append(*text);
    } else {  // unknown charset: the words stay as they were written
      AppendSanitizedUtf8(value_.substr(run_begin_, run_end_ - run_begin_), &out_);
    }
    run_active_ = false;
    run_bytes_.clear();
  }

  void FlushPlain() {
    AppendSanitizedUtf8(plain_, &out_);
    plain_.clear();
  }

  bool CheckBound() const {
    return out_.size() + plain_.size() + run_bytes_.size() <= kMaxRfc2047OutputBytes;
  }

  static absl::Status Exhausted() {
    return absl::ResourceExhaustedError("decoded RFC 2047 value exceeds the output bound");
  }

  absl::string_view value_;
  std::string out_;
  std::string plain_;  // raw text after the last word, sanitized when flushed
  bool run_active_ = false;
  std::string run_charset_;
  std::string run_bytes_;
  size_t run_begin_ = 0;
  size_t run_end_ = 0;
};

}  // namespace

absl::StatusOr<std::string> DecodeRfc2047(absl::string_view value) {
  if (value.size() > kMaxRfc2047InputBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("RFC 2047 value of ", value.size(), " bytes exceeds ", kMaxRfc2047InputBytes));
  }
  return Decoder(value).Run();
}

std::string EncodeRfc2047B(absl::string_view text) {
  std::string out;
  do {
    size_t take = std::min(text.size(), kBytesPerWord);
    if (take < text.size()) {
      // Back off to a character boundary: never end a word before a continuation byte.
      size_t cut = take;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      if (cut > 0) take = cut;
    }
    if (!out.empty()) out.push_back(' ');
    absl::StrAppend(&out, "=?UTF-8?B?", absl::Base64Escape(text.substr(0, take)), "?=");
    text.remove_prefix(take);
  } while (!text.empty());
  return out;
}

}  // namespace pocketmail::mime
