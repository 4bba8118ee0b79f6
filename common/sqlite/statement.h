// A prepared statement leased from a Database's statement cache.
//
//   ASSIGN stmt = db.Prepare("SELECT state FROM messages WHERE key = ?1");
//   stmt.BindText(1, key);
//   absl::StatusOr<bool> row = stmt.Step();   // true: a row; false: done
//   if (row.ok() && *row) state = stmt.ColumnInt64(0);
//
// Bind errors are remembered and reported by the next Step()/Run(), so binds
// can be chained without checking each one. Indexes are 1-based for binds and
// 0-based for columns, as in sqlite3. On destruction the statement is reset,
// its bindings cleared, and it goes back to the cache (a half-stepped SELECT
// therefore never keeps a read snapshot open).
//
// Not thread-safe; REQUIRES: the owning Database outlives the Statement.
#ifndef POCKETMAIL_COMMON_SQLITE_STATEMENT_H_
#define POCKETMAIL_COMMON_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::sqlite {

class Database;

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& BindInt64(int index, int64_t value);
  Statement& BindDouble(int index, double value);
  // Text is copied (SQLITE_TRANSIENT), so temporaries are fine.
  Statement& BindText(int index, absl::string_view value);
  Statement& BindBlob(int index, absl::string_view value);
  Statement& BindNull(int index);

  // Advances to the next row: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps until done, ignoring any rows (for INSERT/UPDATE/DELETE/DDL).
  absl::Status Run();
  // Ready to run again with fresh bindings.
  void Reset();

  int ColumnCount() const;
  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;  // NULL reads as 0
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;  // NULL reads as ""
  std::string ColumnBlob(int column) const;

  const std::string& sql() const { return sql_; }

 private:
  friend class Database;
  Statement(Database* owner, std::string sql, sqlite3_stmt* stmt);
  void NoteBind(int rc, int index);

  Database* owner_ = nullptr;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status bind_status_;
};

}  // namespace pocketmail::sqlite

#endif  // POCKETMAIL_COMMON_SQLITE_STATEMENT_H_
