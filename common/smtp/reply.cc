#include "common/smtp/reply.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pocketmail::smtp {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Text bytes: HT, printable ASCII and 8-bit (servers with SMTPUTF8 send UTF-8).
bool IsTextByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// 1 to 3 digits at s[*pos]; advances *pos.
bool ConsumeDigits(absl::string_view s, size_t* pos) {
  size_t start = *pos;
  while (*pos < s.size() && IsDigit(s[*pos]) && *pos - start < 4) ++*pos;
  size_t n = *pos - start;
  return n >= 1 && n <= 3;
}

}  // namespace

ReplyClass ClassOf(int code) {
  if (code >= 200 && code < 300) return ReplyClass::kSuccess;
  if (code >= 300 && code < 400) return ReplyClass::kIntermediate;
  if (code >= 400 && code < 500) return ReplyClass::kTemporary;
  return ReplyClass::kPermanent;
}

absl::string_view ReplyClassName(ReplyClass c) {
  switch (c) {
    case ReplyClass::kSuccess:
      return "success";
    case ReplyClass::kIntermediate:
      return "intermediate";
    case ReplyClass::kTemporary:
      return "temporary";
    case ReplyClass::kPermanent:
      return "permanent";
  }
  return "unknown";
}

std::string ExtractEnhancedCode(absl::string_view text, char class_digit) {
  if (text.size() < 5 || text[0] != class_digit || text[1] != '.') return "";
  if (class_digit != '2' && class_digit != '4' && class_digit != '5') return "";
  size_t pos = 2;
  if (!ConsumeDigits(text, &pos) || pos >= text.size() || text[pos] != '.') return "";
  ++pos;
  if (!ConsumeDigits(text, &pos)) return "";
  if (pos < text.size() && text[pos] != ' ' && text[pos] != '\t') return "";
  return std::string(text.substr(0, pos));
}

std::string Reply::Summary() const {
  std::string first = lines.empty() ? "" : lines.front();
  return first.empty() ? std::to_string(code) : absl::StrCat(code, " ", first);
}

absl::StatusOr<bool> ReplyAssembler::AddLine(absl::string_view line) {
  auto fail = [this](absl::string_view why) {
    reply_ = Reply();
    bytes_ = 0;
    return absl::InvalidArgumentError(absl::StrCat("malformed SMTP reply: ", why));
  };
  if (line.size() > kMaxReplyLineBytes) return fail("line too long");
  if (line.size() < 3 || !IsDigit(line[0]) || !IsDigit(line[1]) || !IsDigit(line[2])) {
    return fail("line does not start with a 3-digit code");
  }
  if (line[0] < '2' || line[0] > '5' || line[1] > '5') return fail("code out of range");
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  bool last;
  if (line.size() == 3 || line[3] == ' ') {
    last = true;
  } else if (line[3] == '-') {
    last = false;
  } else {
    return fail("code not followed by space or '-'");
  }
  absl::string_view text = line.size() > 4 ? line.substr(4) : absl::string_view();
  for (unsigned char c : text) {
    if (!IsTextByte(c)) return fail("control character in text");
  }
  if (!reply_.lines.empty() && code != reply_.code) return fail("code changed between lines");
  if (reply_.lines.size() >= kMaxReplyLines) return fail("too many lines");
  bytes_ += line.size() + 2;
  if (bytes_ > kMaxReplyBytes) return fail("reply too large");

  if (reply_.lines.empty()) {
    reply_.code = code;
    reply_.enhanced = ExtractEnhancedCode(text, line[0]);
  }
  reply_.lines.emplace_back(text);
  return last;
}

Reply ReplyAssembler::Take() {
  Reply out = std::move(reply_);
  reply_ = Reply();
  bytes_ = 0;
  std::vector<std::string> texts;
  texts.reserve(out.lines.size());
  for (const std::string& l : out.lines) {
    absl::string_view t = l;
    // RFC 2034: each line of a multi-line reply repeats the enhanced code.
    if (!out.enhanced.empty() && ExtractEnhancedCode(t, out.enhanced[0]) == out.enhanced) {
      t.remove_prefix(out.enhanced.size());
      t = absl::StripLeadingAsciiWhitespace(t);
    }
    texts.emplace_back(t);
  }
  out.text = absl::StrJoin(texts, "\n");
  return out;
}

absl::StatusOr<Reply> ParseReply(const std::vector<std::string>& lines) {
  if (lines.empty()) return absl::InvalidArgumentError("malformed SMTP reply: no lines");
  ReplyAssembler assembler;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::StatusOr<bool> done = assembler.AddLine(lines[i]);
    if (!done.ok()) return done.status();
    if (*done != (i + 1 == lines.size())) {
      return absl::InvalidArgumentError(*done ? "malformed SMTP reply: ends before the last line"
                                              : "malformed SMTP reply: last line continues");
    }
  }
  return assembler.Take();
}

}  // namespace pocketmail::smtp
