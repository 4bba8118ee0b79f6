// LedgerStore: the durable record behind the Ledger gRPC service. One SQLite
// file (WAL, synchronous=FULL); one row per bucket object key.
//
// Durability contract: every write (Begin, Advance, or a batch of them via
// Apply) is one BEGIN IMMEDIATE transaction committed before the call
// returns, so once a write returns OK the row survives a process crash, and
// the caller may take its next side effect. Transitions that justify a side
// effect (INJECTING, DELIVERED, RETRY_WAIT, DEAD_LETTERING, DEAD_LETTERED,
// PENDING) also survive power loss: their commit is fsync'd
// (synchronous=FULL). Begin's insert and DONE skip the fsync; see BeginLocked
// and NeedsFsync for why that is safe.
//
// Advance follows the table in state_machine.h. A request naming an illegal
// transition is FAILED_PRECONDITION. A repeat of an applied transition (the
// row is already in to_state) succeeds and changes nothing. A row in any other
// state than from_state is FAILED_PRECONDITION naming both states. What each
// target state records:
//   INJECTING       attempts+1 (and the history counter total_attempts+1);
//                   mailbox / route_rule when given; clears next_attempt_ms.
//   DELIVERED       the next delivery seq, delivered_ms = now, SMTP reply,
//                   delivery_path; wakes WatchDeliveries waiters.
//   RETRY_WAIT      next_attempt_ms, SMTP reply, last_error = error; sets
//                   `ambiguous` when asked (kept until another state clears it).
//   DEAD_LETTERING  SMTP reply (when given), last_error = error (the reason).
//   DEAD_LETTERED   last_error = error when given.
//   PENDING         (replay / retry now) attempts = 0 so the retry budget
//                   starts afresh; total_attempts keeps the history and
//                   replays+1 counts replays.
//   DONE            nothing beyond updated_ms.
// Free-text fields are cut (at a UTF-8 boundary) to bounded sizes.
//
// Thread-safe: calls are serialised on one connection.
#ifndef POCKETMAIL_SERVICES_LEDGER_LEDGER_STORE_H_
#define POCKETMAIL_SERVICES_LEDGER_LEDGER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/sqlite/database.h"
#include "common/time/clock.h"
#include "pocketmail/ledger/v1/ledger.pb.h"

namespace pocketmail::ledger {

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

class LedgerStore {
 public:
  // Opens or creates the database at `path` and migrates it. `clock` (the
  // ms stamps: first_seen, updated, delivered, lease expiry, Stats' windows)
  // is not owned and must outlive the store.
  static absl::StatusOr<std::unique_ptr<LedgerStore>> Open(const std::string& path,
                                                           Clock* clock = RealClock::Get());

  struct BeginResult {
    v1::Message message;
    bool created = false;  // false: the row already existed and is returned unchanged
  };
  // Inserts a PENDING row for request.key unless one exists.
  absl::StatusOr<BeginResult> Begin(const v1::BeginRequest& request);

  // NOT_FOUND for an unknown key; see the class comment for the rest.
  absl::StatusOr<v1::Message> Advance(const v1::AdvanceRequest& request);

  // Group commit: the ops in order, in one transaction, one outcome each (a
  // failed op is rolled back to its savepoint and leaves the others alone).
  // Begin and Advance are batches of one. An error status means the batch as
  // a whole failed (e.g. the commit) and nothing in it was applied.
  absl::StatusOr<v1::ApplyResponse> Apply(const v1::ApplyRequest& request);

  absl::StatusOr<v1::Message> Get(const std::string& key);

  // Newest first by (first_seen_ms, key); page_size 0 → 100, capped at 1000.
  // INVALID_ARGUMENT for a malformed page token or a negative page size.
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request);

  // Counts for every state (zeros included), deliveries in the last hour and
  // day (by delivered_ms), the oldest non-terminal first_seen_ms, the total.
  absl::StatusOr<v1::StatsResponse> Stats(const std::string& mailbox);

  // Delivered rows with seq > after_seq, ascending by seq, at most `limit`,
  // optionally only for `mailbox` ("" = all).
  absl::StatusOr<std::vector<v1::Message>> DeliveriesAfter(int64_t after_seq,
                                                           const std::string& mailbox, int limit);

  // Leases (ledger_leases.cc): named, expiring ownership, for single-instance
  // draining on filesystems without flock. Acquire grants when the lease is
  // free, expired, or already `holder`'s (so it also renews). INVALID_ARGUMENT
  // for an empty name/holder or a ttl outside (0, 1 day].
  absl::StatusOr<v1::AcquireLeaseResponse> AcquireLease(const v1::AcquireLeaseRequest& request);
  // Releases only when `holder` holds it; otherwise does nothing.
  absl::Status ReleaseLease(const std::string& name, const std::string& holder);

  // The highest delivery seq handed out so far (0 when none).
  int64_t LatestDeliverySeq() const;
  // Blocks until LatestDeliverySeq() > seq or `timeout` passes; returns the
  // latest seq. For WatchDeliveries: wakes as soon as a delivery commits.
  int64_t WaitForDeliveryAfter(int64_t seq, absl::Duration timeout) const;

  ~LedgerStore();

 private:
  LedgerStore(std::unique_ptr<sqlite::Database> db, Clock* clock, int64_t last_seq);
  absl::StatusOr<v1::Message> GetLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Apply for a single op, its failure as the status.
  absl::StatusOr<v1::WriteResult> ApplyOne(const v1::ApplyRequest& batch_of_one);
  absl::Status BeginLocked(const v1::BeginRequest& request, int64_t now, v1::WriteResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AdvanceLocked(const v1::AdvanceRequest& request, int64_t now,
                             v1::WriteResult* result, int64_t* delivered_seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyTransition(const v1::AdvanceRequest& request, int64_t now_ms,
                               int64_t* assigned_seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishDelivery(int64_t seq);
  // synchronous=FULL (fsync at commit) or NORMAL for the next transaction.
  absl::Status SetSynchronous(bool full) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool synchronous_full_ ABSL_GUARDED_BY(mu_) = true;  // the connection's setting

  mutable absl::Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);
  Clock* const clock_;

  mutable absl::Mutex seq_mu_;
  int64_t latest_seq_ ABSL_GUARDED_BY(seq_mu_);
};

// The status a WriteResult records (OK when code is 0).
absl::Status WriteResultStatus(const v1::WriteResult& result);

// Whether a transition into `to_state` must be fsync'd before it returns.
bool NeedsFsync(v1::State to_state);

// Page tokens are opaque to clients: web-safe base64 of (first_seen_ms, key)
// of the last row returned. Exposed for tests.
std::string EncodePageToken(int64_t first_seen_ms, const std::string& key);
absl::Status DecodePageToken(const std::string& token, int64_t* first_seen_ms, std::string* key);

}  // namespace pocketmail::ledger

#endif  // POCKETMAIL_SERVICES_LEDGER_LEDGER_STORE_H_
