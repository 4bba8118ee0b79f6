// The IMAP4rev1 wire format, without any I/O: classifying server responses,
// tokenizing them (quoted strings, literals, lists, bracketed sections),
// parsing the untagged data the probe needs (EXISTS, SEARCH, FETCH), and
// encoding command arguments (quoted strings with escapes, or literals).
//
// A response that announced literals ("... {12}\r\n<12 octets>...") is handed
// to these functions as a RawResponse: the literal octets are taken out into
// `literals` and the text keeps only the "{12}" markers, so text never holds
// a line break and a literal can never be mistaken for a response line.
#ifndef POCKETMAIL_COMMON_IMAP_RESPONSE_H_
#define POCKETMAIL_COMMON_IMAP_RESPONSE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::imap {

inline constexpr size_t kMaxSearchValueBytes = 512;

struct RawResponse {
  std::string text;                   // the response, literal markers kept, line breaks removed
  std::vector<std::string> literals;  // the octets of each "{n}" marker, in order
};

// The size announced by a literal marker ending `line` ("{12}", or "{12+}"),
// or nullopt when the line does not end with one.
std::optional<size_t> TrailingLiteralSize(absl::string_view line);

enum class ResponseKind { kUntagged, kTagged, kContinuation };

struct Response {
  ResponseKind kind = ResponseKind::kUntagged;
  std::string tag;   // kTagged only
  std::string rest;  // what follows "* ", "<tag> " or "+ "
  std::vector<std::string> literals;
};

// DATA_LOSS for a line that is none of "* ...", "+ ..." or "<tag> ...".
absl::StatusOr<Response> ClassifyResponse(RawResponse raw);

// A status response: "OK [READ-ONLY] done" → {"OK", "READ-ONLY", "done"}.
struct StatusLine {
  std::string condition;  // OK, NO, BAD, BYE or PREAUTH, upper-cased
  std::string code;       // text inside the leading [...], "" when none
  std::string text;
};
// nullopt when `rest` does not start with a status condition.
std::optional<StatusLine> ParseStatusLine(absl::string_view rest);

struct Token {
  enum class Type { kAtom, kString, kNil, kOpen, kClose };
  Type type;
  std::string value;  // atoms and strings (quoted or literal); empty otherwise
};

// Splits response text into tokens. An atom keeps a bracketed section whole,
// spaces and parentheses included ("BODY[HEADER.FIELDS (X-A)]"). A "{n}"
// marker becomes a kString holding the next literal. DATA_LOSS for an
// unterminated quoted string, an unbalanced bracket or a marker without its
// literal (or with one of another size).
absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view text,
                                            const std::vector<std::string>& literals);

// "SEARCH 2 5 9" (the rest of an untagged response) → {2, 5, 9}. Nullopt when
// `rest` is not SEARCH data; DATA_LOSS when it is, but malformed.
std::optional<absl::StatusOr<std::vector<uint32_t>>> ParseSearchData(absl::string_view rest);

// "17 EXISTS" → 17; nullopt for anything else.
std::optional<uint32_t> ParseExists(absl::string_view rest);

struct FetchData {
  uint32_t seq = 0;
  // String-valued items by upper-cased name (e.g. "BODY[HEADER.FIELDS (X-A)]");
  // NIL is "". Items with list values (FLAGS, ENVELOPE...) are left out.
  std::map<std::string, std::string> items;
};
// "3 FETCH (...)" → its data. Nullopt when `rest` is not FETCH data;
// DATA_LOSS when it is, but malformed.
std::optional<absl::StatusOr<FetchData>> ParseFetchData(absl::string_view rest,
                                                        const std::vector<std::string>& literals);

// Appends `value` to a command as an IMAP astring: a quoted string (with '"'
// and '\' escaped) when it is 7-bit without CR/LF, else a synchronizing
// literal. `segments` is the command so far; a literal ends the current
// segment with "{n}\r\n" and starts the next one with the literal's octets,
// so the sender knows where to wait for the server's "+". NUL cannot be sent
// in IMAP at all: INVALID_ARGUMENT.
absl::Status AppendAstring(absl::string_view value, std::vector<std::string>* segments);

// OK when `value` may be sent as a quoted SEARCH argument without escaping:
// 1..kMaxSearchValueBytes of printable ASCII, no '"' and no '\'.
absl::Status ValidateSearchValue(absl::string_view value);

// The values of every `name:` field in a message header block (unfolded,
// surrounding whitespace trimmed; the name compared case-insensitively).
std::vector<std::string> HeaderFieldValues(absl::string_view header, absl::string_view name);

}  // namespace pocketmail::imap

#endif  // POCKETMAIL_COMMON_IMAP_RESPONSE_H_
