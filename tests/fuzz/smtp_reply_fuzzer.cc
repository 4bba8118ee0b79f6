// Fuzzes the SMTP/LMTP reply parser (common/smtp/reply.h) with whatever a
// server might send, and the envelope checks (common/smtp/address.h, utf8.h)
// with each line of it.
//
// The input is split into lines at '\n' (a trailing '\r' is dropped, as the
// transport does). Properties besides "no crash, no leak, no UB":
//  - a parsed reply has a code in 200..599, one entry in `lines` per input
//    line, a class matching its first digit, a well-formed enhanced code of
//    the same class (or none), and text without CR, NUL or other controls;
//  - a ReplyAssembler fed a stream of several replies (and garbage between
//    them) yields only replies with those properties, and recovers after errors;
//  - ExtractEnhancedCode returns "" or a "C.SSS.DDD" prefix of its input;
//  - an envelope address that ValidateEnvelopeAddress accepts has no control
//    characters (CR/LF/NUL included), space, '<' or '>', is valid UTF-8 and
//    within kMaxAddressBytes; an accepted trace key is printable ASCII;
//  - ToBoundedUtf8 returns valid UTF-8 within its bound.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/mail/utf8.h"
#include "common/smtp/address.h"
#include "common/smtp/reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace mail = pocketmail::mail;
namespace smtp = pocketmail::smtp;
using pocketmail::fuzz::HasLineBreakOrNul;
using pocketmail::fuzz::IsStrictUtf8;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// "C.SSS.DDD" with 1-3 digit subject and detail (RFC 3463).
bool IsEnhancedCode(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  if (parts.size() != 3 || parts[0].size() != 1) return false;
  for (absl::string_view p : parts) {
    if (p.empty() || p.size() > 3) return false;
    for (char c : p) {
      if (!IsDigit(c)) return false;
    }
  }
  return true;
}

void CheckReply(const smtp::Reply& reply, size_t expected_lines) {
  FUZZ_CHECK(reply.code >= 200 && reply.code <= 599);
  FUZZ_CHECK(reply.lines.size() == expected_lines);
  const smtp::ReplyClass cls = reply.reply_class();
  switch (reply.code / 100) {
    case 2:
      FUZZ_CHECK(cls == smtp::ReplyClass::kSuccess);
      break;
    case 3:
      FUZZ_CHECK(cls == smtp::ReplyClass::kIntermediate);
      break;
    case 4:
      FUZZ_CHECK(cls == smtp::ReplyClass::kTemporary);
      break;
    default:
      FUZZ_CHECK(cls == smtp::ReplyClass::kPermanent);
      break;
  }
  if (!reply.enhanced.empty()) {
    FUZZ_CHECK(IsEnhancedCode(reply.enhanced));
    FUZZ_CHECK(reply.enhanced[0] - '0' == reply.code / 100);
    FUZZ_CHECK(absl::StartsWith(reply.lines.front(), reply.enhanced));
  }
  // '\n' joins the lines; nothing else below 0x20 but TAB may appear.
  size_t newlines = 0;
  for (unsigned char c : reply.text) {
    if (c == '\n') {
      ++newlines;
    } else {
      FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7F));
    }
  }
  FUZZ_CHECK(newlines + 1 == reply.lines.size());
  for (const std::string& line : reply.lines) FUZZ_CHECK(!HasLineBreakOrNul(line));
  FUZZ_CHECK(absl::StartsWith(reply.Summary(), std::to_string(reply.code)));
  FUZZ_CHECK(!HasLineBreakOrNul(reply.Summary()));
  (void)smtp::ReplyClassName(cls);
}

void CheckEnhanced(absl::string_view text) {
  for (char cls : {'2', '4', '5', '3', 'x'}) {
    const std::string code = smtp::ExtractEnhancedCode(text, cls);
    if (code.empty()) continue;
    FUZZ_CHECK(cls == '2' || cls == '4' || cls == '5');
    FUZZ_CHECK(code[0] == cls);
    FUZZ_CHECK(IsEnhancedCode(code));
    FUZZ_CHECK(absl::StartsWith(text, code));
  }
}

void CheckEnvelope(absl::string_view value) {
  for (bool allow_empty : {false, true}) {
    if (!smtp::ValidateEnvelopeAddress(value, allow_empty).ok()) continue;
    FUZZ_CHECK(value.size() <= smtp::kMaxAddressBytes);
    FUZZ_CHECK(!value.empty() || allow_empty);
    FUZZ_CHECK(IsStrictUtf8(value));
    for (size_t i = 0; i < value.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(value[i]);
      FUZZ_CHECK(c >= 0x20 && c != 0x7F && c != ' ' && c != '<' && c != '>');
      // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
      if (c == 0xC2 && i + 1 < value.size()) {
        FUZZ_CHECK(static_cast<unsigned char>(value[i + 1]) > 0x9F);
      }
    }
  }
  bool ascii = true;
  for (unsigned char c : value) ascii = ascii && c < 0x80;
  FUZZ_CHECK(smtp::IsAscii(value) == ascii);

  if (smtp::ValidateTraceKey(value).ok()) {
    FUZZ_CHECK(!value.empty() && value.size() <= smtp::kMaxTraceKeyBytes);
    for (unsigned char c : value) FUZZ_CHECK(c >= 0x20 && c <= 0x7E);
    FUZZ_CHECK(value.front() != ' ' && value.back() != ' ');
  }

  for (size_t bound : {size_t{0}, size_t{1}, size_t{5}, size_t{64}, size_t{4096}}) {
    const std::string bounded = mail::ToBoundedUtf8(value, bound);
    FUZZ_CHECK(bounded.size() <= bound);
    FUZZ_CHECK(IsStrictUtf8(bounded));
    if (value.size() <= bound && IsStrictUtf8(value)) FUZZ_CHECK(bounded == value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (absl::EndsWith(input, "\n")) input.remove_suffix(1);
  std::vector<std::string> lines = absl::StrSplit(input, '\n');
  for (std::string& line : lines) {
    if (absl::EndsWith(line, "\r")) line.pop_back();
  }

  // The whole input as exactly one reply.
  absl::StatusOr<smtp::Reply> reply = smtp::ParseReply(lines);
  if (reply.ok()) {
    CheckReply(*reply, lines.size());
  } else {
    FUZZ_CHECK(reply.status().code() == absl::StatusCode::kInvalidArgument);
  }

  // The input as a stream, the way a session reads it: several replies,
  // pipelined, with malformed lines in between.
  smtp::ReplyAssembler assembler;
  size_t pending = 0;
  for (const std::string& line : lines) {
    absl::StatusOr<bool> done = assembler.AddLine(line);
    if (!done.ok()) {
      FUZZ_CHECK(done.status().code() == absl::StatusCode::kInvalidArgument);
      pending = 0;  // the assembler starts over
      continue;
    }
    ++pending;
    if (*done) {
      CheckReply(assembler.Take(), pending);
      pending = 0;
    }
  }

  for (const std::string& line : lines) {
    CheckEnhanced(line);
    CheckEnvelope(line);
    if (line.size() > 4) CheckEnhanced(absl::string_view(line).substr(4));
  }
  return 0;
}
