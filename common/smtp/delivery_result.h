// The outcome of one delivery attempt, classified the way the injector's
// contract (proto/pocketmail/injector/v1/injector.proto) needs it.
#ifndef POCKETMAIL_COMMON_SMTP_DELIVERY_RESULT_H_
#define POCKETMAIL_COMMON_SMTP_DELIVERY_RESULT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pocketmail::smtp {

enum class Outcome {
  kDelivered,  // 2xx to the final "."
  kTemporary,  // 4xx, or any failure before the final "." was completely written
  kPermanent,  // 5xx to MAIL, RCPT, DATA or the final "."
  kAmbiguous,  // the final "." was written, but no well-formed reply was read:
               // the message may or may not have been delivered
};

// Which step produced the outcome. Failures while streaming body bytes (before
// the final ".") are kData; kBody is the reply to the final ".".
enum class Stage { kConnect, kGreeting, kEhlo, kStartTls, kAuth, kMail, kRcpt, kData, kBody };

absl::string_view OutcomeName(Outcome o);  // "delivered", "temporary", ...
absl::string_view StageName(Stage s);      // "connect", "greeting", ...

inline constexpr size_t kMaxReplyTextBytes = 512;

struct DeliveryResult {
  Outcome outcome = Outcome::kTemporary;
  Stage stage = Stage::kConnect;
  int code = 0;            // 0 when no reply was read
  std::string enhanced;    // "5.1.1"; "" when the server sent none
  std::string reply_text;  // the server's text, at most kMaxReplyTextBytes
  std::string detail;      // local explanation; never contains secrets

  // "permanent stage=rcpt 501 5.1.1 ..." for logs and test failure messages.
  std::string DebugString() const;
};

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_DELIVERY_RESULT_H_
