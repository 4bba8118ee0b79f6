// LedgerStore's leases: single-instance draining where flock(2) is missing.
#include "absl/strings/str_cat.h"
#include "common/sqlite/transaction.h"
#include "services/ledger/ledger_store.h"

namespace pocketmail::ledger {
namespace {

constexpr int64_t kMaxTtlMs = 24LL * 3600 * 1000;
constexpr size_t kMaxNameBytes = 256;

}  // namespace

absl::StatusOr<v1::AcquireLeaseResponse> LedgerStore::AcquireLease(
    const v1::AcquireLeaseRequest& request) {
  if (request.name().empty() || request.holder().empty() || request.name().size() > kMaxNameBytes ||
      request.holder().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("lease name and holder are required (at most 256 bytes)");
  }
  if (request.ttl_ms() <= 0 || request.ttl_ms() > kMaxTtlMs) {
    return absl::InvalidArgumentError("ttl_ms must be in (0, 1 day]");
  }
  const int64_t now = absl::ToUnixMillis(clock_->Now());
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(*db_);
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> read =
      db_->Prepare("SELECT holder, expires_ms FROM leases WHERE name = ?1");
  if (!read.ok()) return read.status();
  read->BindText(1, request.name());
  absl::StatusOr<bool> found = read->Step();
  if (!found.ok()) return found.status();
  v1::AcquireLeaseResponse response;
  if (*found) {
    std::string holder = read->ColumnText(0);
    int64_t expires = read->ColumnInt64(1);
    if (holder != request.holder() && expires > now) {
      response.set_granted(false);
      response.set_holder(holder);
      response.set_expires_ms(expires);
      return response;
    }
  }
  read->Reset();
  absl::StatusOr<sqlite::Statement> write = db_->Prepare(
      "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3) "
      "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms");
  if (!write.ok()) return write.status();
  write->BindText(1, request.name())
      .BindText(2, request.holder())
      .BindInt64(3, now + request.ttl_ms());
  if (absl::Status st = write->Run(); !st.ok()) return st;
  if (absl::Status st = tx->Commit(); !st.ok()) return st;
  response.set_granted(true);
  response.set_holder(request.holder());
  response.set_expires_ms(now + request.ttl_ms());
  return response;
}

absl::Status LedgerStore::ReleaseLease(const std::string& name, const std::string& holder) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> del =
      db_->Prepare("DELETE FROM leases WHERE name = ?1 AND holder = ?2");
  if (!del.ok()) return del.status();
  del->BindText(1, name).BindText(2, holder);
  return del->Run();
}

}  // namespace pocketmail::ledger
