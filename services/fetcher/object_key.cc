#include "services/fetcher/object_key.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace pocketmail::fetcher {
namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Rebase(absl::string_view key, absl::string_view new_prefix) {
  absl::string_view rest = key;
  if (absl::StartsWith(rest, kPendingPrefix)) rest.remove_prefix(kPendingPrefix.size());
  return absl::StrCat(new_prefix, rest);
}

}  // namespace

absl::StatusOr<PendingKey> ParsePendingKey(absl::string_view key) {
  absl::string_view name = key;
  if (!absl::ConsumePrefix(&name, kPendingPrefix)) {
    return absl::InvalidArgumentError("key is not under pending/");
  }
  if (!absl::ConsumeSuffix(&name, ".eml")) {
    return absl::InvalidArgumentError("key does not end in .eml");
  }
  if (name.size() == 64 && IsLowerHex(name)) {
    return PendingKey{KeyFormat::kLegacy, std::string(name), ""};
  }
  if (name.size() == 64 + 1 + 16 && name[64] == '-' && IsLowerHex(name.substr(0, 64)) &&
      IsLowerHex(name.substr(65))) {
    return PendingKey{KeyFormat::kPerRecipient, std::string(name.substr(0, 64)),
                      std::string(name.substr(65))};
  }
  return absl::InvalidArgumentError(
      "key matches neither pending/<sha256>-<rcpt16>.eml nor pending/<sha256>.eml");
}

std::string ProcessedKeyFor(absl::string_view pending_key) {
  return Rebase(pending_key, kProcessedPrefix);
}
std::string FailedKeyFor(absl::string_view pending_key) {
  return Rebase(pending_key, kFailedPrefix);
}

}  // namespace pocketmail::fetcher
