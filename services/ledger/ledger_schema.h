// The ledger's on-disk schema and its migrations, keyed by PRAGMA user_version.
//
// Version 1:
//   messages     one row per bucket object key with every field of
//                ledger.v1.Message, plus two history columns the API does not
//                expose: total_attempts (never reset) and replays.
//   ledger_meta  name → integer; "last_seq" is the last delivery sequence
//                number handed out (never reused, even if rows were purged).
//   indexes      listing newest-first (first_seen_ms, key), by mailbox, by
//                state, deliveries by seq and by delivered_ms.
// Version 2: leases (the single-instance fallback) and messages.ambiguous.
// Version 3: messages.content_mismatches.
#ifndef POCKETMAIL_SERVICES_LEDGER_LEDGER_SCHEMA_H_
#define POCKETMAIL_SERVICES_LEDGER_LEDGER_SCHEMA_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/sqlite/database.h"

namespace pocketmail::ledger {

inline constexpr int64_t kLedgerSchemaVersion = 3;

// Brings `db` to kLedgerSchemaVersion in one transaction (a crash mid-way
// leaves the old version intact). FAILED_PRECONDITION when the file was
// written by a newer build (user_version > kLedgerSchemaVersion).
absl::Status MigrateLedgerSchema(sqlite::Database& db);

}  // namespace pocketmail::ledger

#endif  // POCKETMAIL_SERVICES_LEDGER_LEDGER_SCHEMA_H_
