// One sqlite3 connection, opened for durable single-writer use: WAL journal,
// synchronous=FULL (a COMMIT is on disk before it returns), a busy timeout so
// a concurrent writer yields SQLITE_BUSY → UNAVAILABLE only after waiting, and
// foreign keys enforced.
//
// Statements come from a small cache keyed by SQL text (Prepare), so a hot
// query is compiled once. Errors are absl::Status as mapped in sqlite_status.h.
//
// Not thread-safe: callers serialise access (e.g. one mutex per Database).
// REQUIRES: every Statement and Transaction from a Database is destroyed
// before the Database.
#ifndef POCKETMAIL_COMMON_SQLITE_DATABASE_H_
#define POCKETMAIL_COMMON_SQLITE_DATABASE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite/statement.h"

namespace pocketmail::sqlite {

struct DatabaseOptions {
  bool read_only = false;  // SQLITE_OPEN_READONLY; no pragmas that write
  bool create_if_missing = true;
  int busy_timeout_ms = 5000;
  bool wal = true;               // journal_mode=WAL (ignored for :memory:)
  bool synchronous_full = true;  // synchronous=FULL, else NORMAL
  bool foreign_keys = true;
  size_t statement_cache_size = 64;
};

class Database {
 public:
  // Opens (or creates) `path`; ":memory:" gives a private in-memory database.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        const DatabaseOptions& options = {});
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more ';'-separated statements that return no rows of interest.
  absl::Status Exec(absl::string_view sql);

  // A statement for `sql`, from the cache when an idle one exists.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  // Runs a query expected to yield one integer (first column of the first
  // row); NOT_FOUND when it yields no row.
  absl::StatusOr<int64_t> QueryInt64(absl::string_view sql);

  // PRAGMA user_version: the schema version migrations key on.
  absl::StatusOr<int64_t> UserVersion();
  absl::Status SetUserVersion(int64_t version);

  int64_t Changes() const;  // rows changed by the last INSERT/UPDATE/DELETE
  int64_t LastInsertRowId() const;
  bool InTransaction() const;
  const std::string& path() const { return path_; }
  sqlite3* raw() const { return db_; }

 private:
  friend class Statement;
  Database(sqlite3* db, std::string path, size_t cache_size)
      : db_(db), path_(std::move(path)), cache_size_(cache_size) {}
  void ReturnToCache(std::string sql, sqlite3_stmt* stmt);

  sqlite3* db_;
  std::string path_;
  size_t cache_size_;
  std::unordered_map<std::string, sqlite3_stmt*> idle_;  // one idle statement per SQL
};

}  // namespace pocketmail::sqlite

#endif  // POCKETMAIL_COMMON_SQLITE_DATABASE_H_
