// Maps sqlite3 result codes to absl::Status codes a caller can branch on:
//   SQLITE_BUSY / SQLITE_LOCKED          → UNAVAILABLE (retry later)
//   UNIQUE / PRIMARY KEY constraint      → ALREADY_EXISTS
//   other constraints (CHECK, NOT NULL,
//   FOREIGN KEY, ...)                    → FAILED_PRECONDITION
//   SQLITE_CORRUPT / SQLITE_NOTADB       → DATA_LOSS
//   SQLITE_FULL                          → RESOURCE_EXHAUSTED
//   SQLITE_IOERR                         → UNAVAILABLE (the disk may recover)
//   SQLITE_CANTOPEN                      → FAILED_PRECONDITION (bad path)
//   SQLITE_READONLY / SQLITE_PERM /
//   SQLITE_AUTH                          → PERMISSION_DENIED
//   anything else                        → INTERNAL
#ifndef POCKETMAIL_COMMON_SQLITE_SQLITE_STATUS_H_
#define POCKETMAIL_COMMON_SQLITE_SQLITE_STATUS_H_

#include <sqlite3.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pocketmail::sqlite {

absl::StatusCode CodeForSqliteResult(int extended_rc);

// A Status for a failed call: "<context>: <sqlite message> (<rc name>)".
// `db` may be null (then only the generic text for `rc` is used).
absl::Status SqliteError(int rc, sqlite3* db, absl::string_view context);

}  // namespace pocketmail::sqlite

#endif  // POCKETMAIL_COMMON_SQLITE_SQLITE_STATUS_H_
