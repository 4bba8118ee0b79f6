#include "common/sqlite/database.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/sqlite/sqlite_status.h"

namespace pocketmail::sqlite {

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         const DatabaseOptions& options) {
  int flags = SQLITE_OPEN_NOMUTEX;  // access is serialised by the owner
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status error = SqliteError(rc, raw, absl::StrCat("open ", path));
    sqlite3_close_v2(raw);  // a handle is allocated even on failure
    return error;
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  std::unique_ptr<Database> db(new Database(raw, path, options.statement_cache_size));

  // Reading the header here turns "not a database" into an error at open time
  // instead of at the first query.
  absl::StatusOr<int64_t> probe = db->QueryInt64("PRAGMA schema_version");
  if (!probe.ok()) return probe.status();

  if (!options.read_only) {
    if (options.wal) {
      absl::StatusOr<Statement> mode = db->Prepare("PRAGMA journal_mode=WAL");
      if (!mode.ok()) return mode.status();
      absl::StatusOr<bool> row = mode->Step();
      if (!row.ok()) return row.status();
      std::string got = *row ? absl::AsciiStrToLower(mode->ColumnText(0)) : "";
      if (got != "wal" && got != "memory") {
        return absl::FailedPreconditionError(
            absl::StrCat("open ", path, ": could not enable WAL (journal_mode=", got, ")"));
      }
    }
    absl::Status st = db->Exec(options.synchronous_full ? "PRAGMA synchronous=FULL"
                                                        : "PRAGMA synchronous=NORMAL");
    if (!st.ok()) return st;
  }
  absl::Status st =
      db->Exec(options.foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF");
  if (!st.ok()) return st;
  return db;
}

Database::~Database() {
  for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
  idle_.clear();
  sqlite3_close_v2(db_);
}

absl::Status Database::Exec(absl::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string detail = message != nullptr ? message : "";
  sqlite3_free(message);
  return absl::Status(
      CodeForSqliteResult(sqlite3_extended_errcode(db_)),
      absl::StrCat("exec [", text, "]: ", detail, " (rc=", sqlite3_extended_errcode(db_), ")"));
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  std::string text(sql);
  auto it = idle_.find(text);
  if (it != idle_.end()) {
    sqlite3_stmt* stmt = it->second;
    idle_.erase(it);
    return Statement(this, std::move(text), stmt);
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, text.data(), static_cast<int>(text.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(sqlite3_extended_errcode(db_), db_, absl::StrCat("prepare [", text, "]"));
  }
  if (stmt == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("prepare [", text, "]: no statement"));
  }
  return Statement(this, std::move(text), stmt);
}

void Database::ReturnToCache(std::string sql, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (idle_.size() >= cache_size_ || idle_.count(sql) != 0) {
    sqlite3_finalize(stmt);
    return;
  }
  idle_.emplace(std::move(sql), stmt);
}

absl::StatusOr<int64_t> Database::QueryInt64(absl::string_view sql) {
  absl::StatusOr<Statement> stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no row from [", sql, "]"));
  return stmt->ColumnInt64(0);
}

absl::StatusOr<int64_t> Database::UserVersion() { return QueryInt64("PRAGMA user_version"); }

absl::Status Database::SetUserVersion(int64_t version) {
  return Exec(absl::StrCat("PRAGMA user_version=", version));
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace pocketmail::sqlite
