#include "common/sqlite/transaction.h"

#include <utility>

namespace pocketmail::sqlite {

absl::StatusOr<Transaction> Transaction::Begin(Database& db) {
  absl::Status st = db.Exec("BEGIN IMMEDIATE");
  if (!st.ok()) return st;
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)Rollback();
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already finished");
  absl::Status st = db_->Exec("COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); then the
  // destructor rolls it back. If sqlite already rolled it back, we are done.
  if (st.ok() || !db_->InTransaction()) db_ = nullptr;
  return st;
}

absl::Status Transaction::Rollback() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already finished");
  absl::Status st = absl::OkStatus();
  if (db_->InTransaction()) st = db_->Exec("ROLLBACK");
  db_ = nullptr;
  return st;
}

}  // namespace pocketmail::sqlite
