// Turns raw message bytes into the DATA stream (RFC 5321 §4.5.2), chunk by
// chunk, without ever holding the whole message:
//   * every line ending becomes CRLF: CRLF stays, a lone LF becomes CRLF, and a
//     lone CR becomes CRLF too (RFC 5322 allows CR and LF only as a pair; a CR
//     followed by LF in the next chunk is still one line ending);
//   * a line that starts with '.' gets one more '.' (the server removes it);
//   * Finish() adds a CRLF when the message did not end with a line ending, then
//     the terminating ".\r\n" — so the wire ends in CRLF "." CRLF.
// The output does not depend on how the input is split into chunks.
// Not thread-safe; one encoder per message.
#ifndef POCKETMAIL_COMMON_SMTP_BODY_ENCODER_H_
#define POCKETMAIL_COMMON_SMTP_BODY_ENCODER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace pocketmail::smtp {

class BodyEncoder {
 public:
  // Appends the encoding of `chunk` to *out.
  void Encode(absl::string_view chunk, std::string* out);
  // Appends the end of the message (missing CRLF, then ".\r\n") to *out.
  // REQUIRES: called once, after the last Encode.
  void Finish(std::string* out);

  uint64_t input_bytes() const { return input_bytes_; }

 private:
  bool at_line_start_ = true;  // the next byte starts a line
  bool swallow_lf_ = false;    // the previous byte was a CR already sent as CRLF
  uint64_t input_bytes_ = 0;
};

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_BODY_ENCODER_H_
