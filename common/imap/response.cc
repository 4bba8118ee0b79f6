#include "common/imap/response.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pocketmail::imap {
namespace {

bool IsAtomChar(char c) {
  // RFC 3501 ATOM-CHAR: any CHAR except atom-specials; ']' is resp-special but
  // allowed in the atoms servers send (flags, sections are handled apart).
  unsigned char u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f) return false;
  return c != '(' && c != ')' && c != '{' && c != '"' && c != '%' && c != '*';
}

// Splits off the first space-separated word of `*s`.
absl::string_view NextWord(absl::string_view* s) {
  size_t sp = s->find(' ');
  absl::string_view word = s->substr(0, sp);
  s->remove_prefix(sp == absl::string_view::npos ? s->size() : sp + 1);
  return word;
}

}  // namespace

std::optional<size_t> TrailingLiteralSize(absl::string_view line) {
  if (!absl::ConsumeSuffix(&line, "}")) return std::nullopt;
  absl::ConsumeSuffix(&line, "+");
  size_t open = line.rfind('{');
  if (open == absl::string_view::npos) return std::nullopt;
  absl::string_view digits = line.substr(open + 1);
  if (digits.empty() || digits.size() > 10) return std::nullopt;
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(digits, &n)) return std::nullopt;
  return static_cast<size_t>(n);
}

absl::StatusOr<Response> ClassifyResponse(RawResponse raw) {
  Response r;
  r.literals = std::move(raw.literals);
  absl::string_view text = raw.text;
  if (text == "+" || absl::StartsWith(text, "+ ")) {
    r.kind = ResponseKind::kContinuation;
    r.rest = std::string(text.size() > 2 ? text.substr(2) : "");
    return r;
  }
  if (absl::StartsWith(text, "* ")) {
    r.kind = ResponseKind::kUntagged;
    r.rest = std::string(text.substr(2));
    return r;
  }
  size_t sp = text.find(' ');
  absl::string_view tag = text.substr(0, sp);
  bool valid_tag = !tag.empty() && sp != absl::string_view::npos;
  for (char c : tag) valid_tag = valid_tag && IsAtomChar(c) && c != '+';
  if (!valid_tag) {
    return absl::DataLossError(
        absl::StrCat("unparsable IMAP response line (", text.size(), " bytes)"));
  }
  r.kind = ResponseKind::kTagged;
  r.tag = std::string(tag);
  r.rest = std::string(text.substr(sp + 1));
  return r;
}

std::optional<StatusLine> ParseStatusLine(absl::string_view rest) {
  absl::string_view s = rest;
  std::string condition = absl::AsciiStrToUpper(NextWord(&s));
  if (condition != "OK" && condition != "NO" && condition != "BAD" && condition != "BYE" &&
      condition != "PREAUTH") {
    return std::nullopt;
  }
  StatusLine out;
  out.condition = std::move(condition);
  if (absl::StartsWith(s, "[")) {
    size_t close = s.find(']');
    if (close != absl::string_view::npos) {
      out.code = std::string(s.substr(1, close - 1));
      s.remove_prefix(close + 1);
      s = absl::StripLeadingAsciiWhitespace(s);
    }
  }
  out.text = std::string(s);
  return out;
}

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view text,
                                            const std::vector<std::string>& literals) {
  std::vector<Token> out;
  size_t next_literal = 0;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ') {
      ++i;
    } else if (c == '(' || c == ')') {
      out.push_back({c == '(' ? Token::Type::kOpen : Token::Type::kClose, ""});
      ++i;
    } else if (c == '"') {
      std::string value;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char q = text[i++];
        if (q == '"') {
          closed = true;
          break;
        }
        if (q == '\\' && i < text.size()) q = text[i++];
        value.push_back(q);
      }
      if (!closed) return absl::DataLossError("unterminated quoted string in IMAP response");
      out.push_back({Token::Type::kString, std::move(value)});
    } else if (c == '{') {
      size_t close = text.find('}', i);
      if (close == absl::string_view::npos) return absl::DataLossError("bad literal marker");
      std::optional<size_t> n = TrailingLiteralSize(text.substr(i, close - i + 1));
      if (!n.has_value()) return absl::DataLossError("bad literal marker");
      if (next_literal >= literals.size() || literals[next_literal].size() != *n) {
        return absl::DataLossError("literal marker without its literal");
      }
      out.push_back({Token::Type::kString, literals[next_literal++]});
      i = close + 1;
    } else {
      size_t start = i;
      int depth = 0;
      while (i < text.size()) {
        char a = text[i];
        if (a == '[') {
          ++depth;
        } else if (a == ']') {
          if (depth > 0) --depth;
        } else if (depth == 0 && (a == ' ' || a == '(' || a == ')' || a == '"' || a == '{')) {
          break;
        }
        ++i;
      }
      if (depth != 0) return absl::DataLossError("unbalanced '[' in IMAP response");
      absl::string_view atom = text.substr(start, i - start);
      if (absl::EqualsIgnoreCase(atom, "NIL")) {
        out.push_back({Token::Type::kNil, ""});
      } else {
        out.push_back({Token::Type::kAtom, std::string(atom)});
      }
    }
  }
  return out;
}

std::optional<absl::StatusOr<std::vector<uint32_t>>> ParseSearchData(absl::string_view rest) {
  absl::string_view s = rest;
  if (!absl::EqualsIgnoreCase(NextWord(&s), "SEARCH")) return std::nullopt;
  std::vector<uint32_t> out;
  for (absl::string_view word : absl::StrSplit(s, ' ', absl::SkipEmpty())) {
    if (absl::StartsWith(word, "(")) break;  // a trailing "(MODSEQ n)" (CONDSTORE)
    uint32_t n = 0;
    if (!absl::SimpleAtoi(word, &n) || n == 0) {
      return absl::StatusOr<std::vector<uint32_t>>(
          absl::DataLossError("malformed SEARCH response"));
    }
    out.push_back(n);
  }
  return absl::StatusOr<std::vector<uint32_t>>(std::move(out));
}

std::optional<uint32_t> ParseExists(absl::string_view rest) {
  absl::string_view s = rest;
  uint32_t n = 0;
  if (!absl::SimpleAtoi(NextWord(&s), &n)) return std::nullopt;
  if (!absl::EqualsIgnoreCase(s, "EXISTS")) return std::nullopt;
  return n;
}

std::optional<absl::StatusOr<FetchData>> ParseFetchData(absl::string_view rest,
                                                        const std::vector<std::string>& literals) {
  using Result = absl::StatusOr<FetchData>;
  absl::string_view s = rest;
  FetchData data;
  if (!absl::SimpleAtoi(NextWord(&s), &data.seq)) return std::nullopt;
  if (!absl::EqualsIgnoreCase(NextWord(&s), "FETCH")) return std::nullopt;
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(s, literals);
  if (!tokens.ok()) return Result(tokens.status());
  const std::vector<Token>& t = *tokens;
  if (t.size() < 2 || t.front().type != Token::Type::kOpen ||
      t.back().type != Token::Type::kClose) {
    return Result(absl::DataLossError("malformed FETCH response"));
  }
  size_t i = 1;
  const size_t end = t.size() - 1;
  while (i < end) {
    if (t[i].type != Token::Type::kAtom || i + 1 >= end) {
      return Result(absl::DataLossError("malformed FETCH item"));
    }
    std::string name = absl::AsciiStrToUpper(t[i].value);
    const Token& value = t[i + 1];
    if (value.type == Token::Type::kOpen) {  // a list value: skip it whole
      int depth = 0;
      for (i = i + 1; i < end; ++i) {
        if (t[i].type == Token::Type::kOpen) ++depth;
        if (t[i].type == Token::Type::kClose && --depth == 0) break;
      }
      if (depth != 0) return Result(absl::DataLossError("unbalanced list in FETCH response"));
      ++i;
      continue;
    }
    if (value.type == Token::Type::kClose)
      return Result(absl::DataLossError("FETCH item without value"));
    data.items[name] = value.value;  // atom, string or NIL ("")
    i += 2;
  }
  return Result(std::move(data));
}

absl::Status AppendAstring(absl::string_view value, std::vector<std::string>* segments) {
  if (segments->empty()) segments->emplace_back();
  bool quotable = true;
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u == 0) return absl::InvalidArgumentError("NUL cannot be sent over IMAP");
    if (u >= 0x80 || c == '\r' || c == '\n') quotable = false;
  }
  std::string& current = segments->back();
  if (quotable) {
    current.append(" \"");
    for (char c : value) {
      if (c == '"' || c == '\\') current.push_back('\\');
      current.push_back(c);
    }
    current.push_back('"');
    return absl::OkStatus();
  }
  absl::StrAppend(&current, " {", value.size(), "}\r\n");
  segments->emplace_back(value);
  return absl::OkStatus();
}

absl::Status ValidateSearchValue(absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError("search value is empty");
  if (value.size() > kMaxSearchValueBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("search value is longer than ", kMaxSearchValueBytes, " bytes"));
  }
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return absl::InvalidArgumentError("search value must be printable ASCII");
    }
    if (c == '"' || c == '\\') {
      return absl::InvalidArgumentError("search value must not contain '\"' or '\\'");
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> HeaderFieldValues(absl::string_view header, absl::string_view name) {
  std::vector<std::string> out;
  std::vector<absl::string_view> lines = absl::StrSplit(header, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = absl::StripSuffix(lines[i], "\r");
    if (line.empty()) break;  // end of the header block
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || line[0] == ' ' || line[0] == '\t') continue;
    if (!absl::EqualsIgnoreCase(absl::StripTrailingAsciiWhitespace(line.substr(0, colon)), name)) {
      continue;
    }
    std::string value(line.substr(colon + 1));
    while (i + 1 < lines.size()) {
      absl::string_view next = absl::StripSuffix(lines[i + 1], "\r");
      if (next.empty() || (next[0] != ' ' && next[0] != '\t')) break;
      absl::StrAppend(&value, next);  // unfolding removes only the line break
      ++i;
    }
    out.emplace_back(absl::StripAsciiWhitespace(value));
  }
  return out;
}

}  // namespace pocketmail::imap
