// A write transaction: BEGIN IMMEDIATE on creation (the write lock is taken up
// front, so a busy database fails here, as UNAVAILABLE, and never halfway
// through the work), COMMIT on Commit(), ROLLBACK on destruction if neither
// Commit() nor Rollback() succeeded. With the Database's synchronous=FULL a
// successful Commit() is durable.
//
// Not thread-safe; REQUIRES: the Database outlives the Transaction and no
// other transaction is open on it.
#ifndef POCKETMAIL_COMMON_SQLITE_TRANSACTION_H_
#define POCKETMAIL_COMMON_SQLITE_TRANSACTION_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sqlite/database.h"

namespace pocketmail::sqlite {

class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database& db);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  absl::Status Commit();
  absl::Status Rollback();
  bool active() const { return db_ != nullptr; }

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once finished
};

}  // namespace pocketmail::sqlite

#endif  // POCKETMAIL_COMMON_SQLITE_TRANSACTION_H_
