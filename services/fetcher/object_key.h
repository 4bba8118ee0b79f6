// The bucket contract's object keys (docs/DESIGN.md "The bucket contract"):
//   pending/<sha256 hex>-<first 16 hex of sha256(lower(rcpt))>.eml   one object per recipient
//   pending/<sha256 hex>.eml                                         the original worker (legacy)
// and where an object goes when it leaves pending/.
#ifndef POCKETMAIL_SERVICES_FETCHER_OBJECT_KEY_H_
#define POCKETMAIL_SERVICES_FETCHER_OBJECT_KEY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::fetcher {

inline constexpr absl::string_view kPendingPrefix = "pending/";
inline constexpr absl::string_view kProcessedPrefix = "processed/";
inline constexpr absl::string_view kFailedPrefix = "failed/";

enum class KeyFormat { kPerRecipient, kLegacy };

struct PendingKey {
  KeyFormat format;
  std::string sha256;          // 64 lowercase hex
  std::string recipient_hash;  // 16 lowercase hex; empty for kLegacy
};

// INVALID_ARGUMENT, naming what is wrong, for anything outside both formats
// (other prefixes, "../", spaces, unicode, upper-case hex, wrong suffix...).
absl::StatusOr<PendingKey> ParsePendingKey(absl::string_view key);

// "pending/x.eml" → "processed/x.eml" / "failed/x.eml". Keys outside the
// formats keep their whole name after the prefix so nothing collides.
std::string ProcessedKeyFor(absl::string_view pending_key);
std::string FailedKeyFor(absl::string_view pending_key);

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_OBJECT_KEY_H_
