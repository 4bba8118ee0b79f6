#include "common/smtp/delivery_result.h"

#include "absl/strings/str_cat.h"

namespace pocketmail::smtp {

absl::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kDelivered:
      return "delivered";
    case Outcome::kTemporary:
      return "temporary";
    case Outcome::kPermanent:
      return "permanent";
    case Outcome::kAmbiguous:
      return "ambiguous";
  }
  return "unknown";
}

absl::string_view StageName(Stage s) {
  switch (s) {
    case Stage::kConnect:
      return "connect";
    case Stage::kGreeting:
      return "greeting";
    case Stage::kEhlo:
      return "ehlo";
    case Stage::kStartTls:
      return "starttls";
    case Stage::kAuth:
      return "auth";
    case Stage::kMail:
      return "mail";
    case Stage::kRcpt:
      return "rcpt";
    case Stage::kData:
      return "data";
    case Stage::kBody:
      return "body";
  }
  return "unknown";
}

std::string DeliveryResult::DebugString() const {
  std::string out = absl::StrCat(OutcomeName(outcome), " stage=", StageName(stage));
  if (code != 0) absl::StrAppend(&out, " ", code);
  if (!enhanced.empty()) absl::StrAppend(&out, " ", enhanced);
  if (!reply_text.empty()) absl::StrAppend(&out, " \"", reply_text, "\"");
  if (!detail.empty()) absl::StrAppend(&out, " (", detail, ")");
  return out;
}

}  // namespace pocketmail::smtp
