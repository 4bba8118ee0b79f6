#include "common/sqlite/sqlite_status.h"

#include "absl/strings/str_cat.h"

namespace pocketmail::sqlite {

absl::StatusCode CodeForSqliteResult(int extended_rc) {
  switch (extended_rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::StatusCode::kAlreadyExists;
    default:
      break;
  }
  switch (extended_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return absl::StatusCode::kOk;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status SqliteError(int rc, sqlite3* db, absl::string_view context) {
  absl::StatusCode code = CodeForSqliteResult(rc);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  // sqlite3_errmsg describes the most recent failure on this connection, which
  // is the one we are reporting when the caller passes the connection.
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return absl::Status(code, absl::StrCat(context, ": ", detail ? detail : "unknown error", " (",
                                         sqlite3_errstr(rc), ", rc=", rc, ")"));
}

}  // namespace pocketmail::sqlite
