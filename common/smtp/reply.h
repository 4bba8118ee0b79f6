// SMTP / LMTP replies (RFC 5321 §4.2) and their enhanced status codes (RFC 3463).
//
//   250-mail.example.org greets you      a multi-line reply: every line but the
//   250-SIZE 33554432                    last has '-' after the code, the last a
//   250 2.0.0 OK                         space (or nothing); all share one code.
//
// The parser is strict: a line that is not `DDD`, `DDD text` or `DDD-text`, a code
// outside 2xx-5xx, a code that changes between lines, or a reply over the size
// bounds is an error (the caller treats the server as garbled), never a crash.
#ifndef POCKETMAIL_COMMON_SMTP_REPLY_H_
#define POCKETMAIL_COMMON_SMTP_REPLY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::smtp {

// Bounds on what a server may send as one reply.
inline constexpr size_t kMaxReplyLineBytes = 2048;  // RFC says 512; be lenient
inline constexpr size_t kMaxReplyLines = 128;
inline constexpr size_t kMaxReplyBytes = size_t{32} * 1024;

// What a reply code means for the message in flight.
enum class ReplyClass {
  kSuccess,       // 2xx: done (for the final reply to ".": delivered)
  kIntermediate,  // 3xx: go on (354 after DATA, 334 during AUTH)
  kTemporary,     // 4xx: try again later
  kPermanent,     // 5xx: will not succeed as is
};

ReplyClass ClassOf(int code);
absl::string_view ReplyClassName(ReplyClass c);

struct Reply {
  int code = 0;                    // 200..599
  std::string enhanced;            // "5.1.1"; empty when the server sent none
  std::string text;                // lines' texts without code/enhanced code, '\n'-joined
  std::vector<std::string> lines;  // each line's text after "DDD-"/"DDD " (raw)

  ReplyClass reply_class() const { return ClassOf(code); }
  // "501 5.1.1 User does not exist" (first line only), for details and logs.
  std::string Summary() const;
};

// Assembles one reply from lines (CRLF already stripped), one at a time.
// Not thread-safe; reusable after Take().
class ReplyAssembler {
 public:
  // Returns true when `line` completed the reply, false when more lines follow,
  // or an InvalidArgument error for a malformed line or an oversized reply.
  absl::StatusOr<bool> AddLine(absl::string_view line);
  // REQUIRES: the last AddLine returned true. Resets the assembler.
  Reply Take();

 private:
  Reply reply_;
  size_t bytes_ = 0;
};

// Parses a complete reply given as its lines (a convenience for tests and for
// callers that already split lines). Fails unless exactly the last line ends it.
absl::StatusOr<Reply> ParseReply(const std::vector<std::string>& lines);

// The RFC 3463 code at the start of `text` ("5.1.1 User unknown" → "5.1.1") when
// its class digit equals `class_digit` ('2', '4' or '5'); else "".
std::string ExtractEnhancedCode(absl::string_view text, char class_digit);

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_REPLY_H_
