#include "services/ledger/ledger_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mail/utf8.h"
#include "common/sqlite/transaction.h"
#include "services/ledger/ledger_schema.h"
#include "services/ledger/message_row.h"
#include "services/ledger/state_machine.h"

namespace pocketmail::ledger {
namespace {

// Bounds for free text that comes from mail metadata or peers: enough to be
// useful to an operator, small enough that one hostile value can't bloat rows.
constexpr size_t kMaxAddressText = 1024;
constexpr size_t kMaxSubject = 512;
constexpr size_t kMaxShortText = 128;
constexpr size_t kMaxMailbox = 512;
constexpr size_t kMaxReplyText = 2048;

std::string Bound(const std::string& text, size_t max_bytes) {
  return std::string(mail::TruncateUtf8(text, max_bytes));
}

// Builds "UPDATE messages SET a = ?2, b = b + 1, ... WHERE key = ?1" with only
// the columns a transition touches, and binds the values in order.
class UpdateBuilder {
 public:
  void Set(const char* column, int64_t value) {
    Add(absl::StrCat(column, " = ?", next_index_++));
    ints_.push_back({next_index_ - 1, value});
  }
  void Set(const char* column, std::string value) {
    Add(absl::StrCat(column, " = ?", next_index_++));
    texts_.push_back({next_index_ - 1, std::move(value)});
  }
  void Raw(const char* assignment) { Add(assignment); }

  absl::Status Run(sqlite::Database& db, const std::string& key) {
    absl::StatusOr<sqlite::Statement> stmt =
        db.Prepare(absl::StrCat("UPDATE messages SET ", sets_, " WHERE key = ?1"));
    if (!stmt.ok()) return stmt.status();
    stmt->BindText(1, key);
    for (const auto& [index, value] : ints_) stmt->BindInt64(index, value);
    for (const auto& [index, value] : texts_) stmt->BindText(index, value);
    return stmt->Run();
  }

 private:
  void Add(absl::string_view assignment) {
    absl::StrAppend(&sets_, sets_.empty() ? "" : ", ", assignment);
  }
  std::string sets_;
  int next_index_ = 2;
  std::vector<std::pair<int, int64_t>> ints_;
  std::vector<std::pair<int, std::string>> texts_;
};

// The record the gateway reads (MessageFacts): each field the fetcher learnt
// overwrites the row's, an empty one leaves it alone.
void SetFacts(const v1::MessageFacts& facts, UpdateBuilder& update) {
  if (!facts.recipient().empty())
    update.Set("recipient", Bound(facts.recipient(), kMaxAddressText));
  if (!facts.sender().empty()) update.Set("sender", Bound(facts.sender(), kMaxAddressText));
  if (!facts.subject().empty()) update.Set("subject", Bound(facts.subject(), kMaxSubject));
  if (!facts.sha256().empty()) update.Set("sha256", Bound(facts.sha256(), kMaxShortText));
  if (facts.received_ms() != 0) update.Set("received_ms", facts.received_ms());
  if (facts.size_bytes() != 0) update.Set("size_bytes", facts.size_bytes());
}

}  // namespace

absl::Status WriteResultStatus(const v1::WriteResult& result) {
  return absl::Status(static_cast<absl::StatusCode>(result.code()), result.error());
}

absl::StatusOr<std::unique_ptr<LedgerStore>> LedgerStore::Open(const std::string& path,
                                                               Clock* clock) {
  absl::StatusOr<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(path);
  if (!db.ok()) return db.status();
  if (absl::Status st = MigrateLedgerSchema(**db); !st.ok()) return st;
  absl::StatusOr<int64_t> last_seq =
      (*db)->QueryInt64("SELECT value FROM ledger_meta WHERE name = 'last_seq'");
  if (!last_seq.ok()) return last_seq.status();
  return std::unique_ptr<LedgerStore>(new LedgerStore(*std::move(db), clock, *last_seq));
}

LedgerStore::LedgerStore(std::unique_ptr<sqlite::Database> db, Clock* clock, int64_t last_seq)
    : db_(std::move(db)), clock_(clock), latest_seq_(last_seq) {}

LedgerStore::~LedgerStore() = default;

absl::StatusOr<v1::Message> LedgerStore::GetLocked(const std::string& key) {
  absl::StatusOr<sqlite::Statement> stmt =
      db_->Prepare(absl::StrCat("SELECT ", kMessageColumns, " FROM messages WHERE key = ?1"));
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, key);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no ledger entry for key ", key));
  return ReadMessageRow(*stmt);
}

absl::StatusOr<v1::Message> LedgerStore::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  return GetLocked(key);
}

absl::StatusOr<LedgerStore::BeginResult> LedgerStore::Begin(const v1::BeginRequest& request) {
  if (request.key().empty()) return absl::InvalidArgumentError("key is empty");
  {
    // A re-listed object is the common case; answer it without taking the write lock.
    absl::MutexLock lock(&mu_);
    absl::StatusOr<v1::Message> existing = GetLocked(request.key());
    if (existing.ok()) return BeginResult{*std::move(existing), false};
    if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
  }
  v1::ApplyRequest batch;
  *batch.add_ops()->mutable_begin() = request;
  absl::StatusOr<v1::WriteResult> result = ApplyOne(batch);
  if (!result.ok()) return result.status();
  return BeginResult{std::move(*result->mutable_message()), result->created()};
}

absl::StatusOr<v1::Message> LedgerStore::Advance(const v1::AdvanceRequest& request) {
  v1::ApplyRequest batch;
  *batch.add_ops()->mutable_advance() = request;
  absl::StatusOr<v1::WriteResult> result = ApplyOne(batch);
  if (!result.ok()) return result.status();
  return std::move(*result->mutable_message());
}

absl::StatusOr<v1::WriteResult> LedgerStore::ApplyOne(const v1::ApplyRequest& batch_of_one) {
  absl::StatusOr<v1::ApplyResponse> applied = Apply(batch_of_one);
  if (!applied.ok()) return applied.status();
  v1::WriteResult& result = *applied->mutable_results(0);
  if (result.code() != 0) return WriteResultStatus(result);
  return std::move(result);
}

absl::StatusOr<v1::ApplyResponse> LedgerStore::Apply(const v1::ApplyRequest& request) {
  v1::ApplyResponse response;
  int64_t delivered_seq = 0;
  {
    absl::MutexLock lock(&mu_);
    // One commit for the batch, fsync'd when any op needs it (see NeedsFsync;
    // Begin's insert never does).
    bool fsync = false;
    for (const v1::WriteOp& op : request.ops()) {
      if (op.has_advance() && NeedsFsync(op.advance().to_state())) fsync = true;
    }
    if (absl::Status st = SetSynchronous(fsync); !st.ok()) return st;
    absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(*db_);
    if (!tx.ok()) return tx.status();
    const int64_t now = absl::ToUnixMillis(clock_->Now());
    for (const v1::WriteOp& op : request.ops()) {
      v1::WriteResult* result = response.add_results();
      // A savepoint per op: one that fails halfway leaves nothing behind and
      // does not undo the others.
      if (absl::Status st = db_->Exec("SAVEPOINT write_op"); !st.ok()) return st;
      int64_t seq = 0;
      absl::Status st = op.has_begin()     ? BeginLocked(op.begin(), now, result)
                        : op.has_advance() ? AdvanceLocked(op.advance(), now, result, &seq)
                                           : absl::InvalidArgumentError("empty write op");
      if (!st.ok()) {
        if (absl::Status undo = db_->Exec("ROLLBACK TO write_op"); !undo.ok()) return undo;
        result->Clear();
        result->set_code(static_cast<int>(st.code()));
        result->set_error(std::string(st.message()));
      }
      if (absl::Status done = db_->Exec("RELEASE write_op"); !done.ok()) return done;
      if (st.ok() && seq > delivered_seq) delivered_seq = seq;
    }
    if (absl::Status st = tx->Commit(); !st.ok()) return st;
  }
  if (delivered_seq != 0) PublishDelivery(delivered_seq);
  return response;
}

absl::Status LedgerStore::BeginLocked(const v1::BeginRequest& request, int64_t now,
                                      v1::WriteResult* result) {
  if (request.key().empty()) return absl::InvalidArgumentError("key is empty");
  // A lost insert only means the row is created again on the next pass; the
  // INJECTING commit that justifies any side effect is fsync'd and, WAL being
  // ordered, makes this one durable with it.
  absl::StatusOr<sqlite::Statement> insert = db_->Prepare(
      "INSERT INTO messages (key, state, recipient, sender, size_bytes, sha256, received_ms, "
      "first_seen_ms, updated_ms, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9) "
      "ON CONFLICT (key) DO NOTHING");
  if (!insert.ok()) return insert.status();
  insert->BindText(1, request.key())
      .BindInt64(2, v1::STATE_PENDING)
      .BindText(3, Bound(request.recipient(), kMaxAddressText))
      .BindText(4, Bound(request.sender(), kMaxAddressText))
      .BindInt64(5, request.size_bytes())
      .BindText(6, Bound(request.sha256(), kMaxShortText))
      .BindInt64(7, request.received_ms())
      .BindInt64(8, now)
      .BindText(9, Bound(request.subject(), kMaxSubject));
  if (absl::Status st = insert->Run(); !st.ok()) return st;
  result->set_created(db_->Changes() == 1);
  absl::StatusOr<v1::Message> row = GetLocked(request.key());
  if (!row.ok()) return row.status();
  *result->mutable_message() = *std::move(row);
  return absl::OkStatus();
}

absl::Status LedgerStore::AdvanceLocked(const v1::AdvanceRequest& request, int64_t now,
                                        v1::WriteResult* result, int64_t* delivered_seq) {
  if (!IsKnownState(request.from_state()) || !IsKnownState(request.to_state())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown state in transition ",
                                                   StateName(request.from_state()), " → ",
                                                   StateName(request.to_state())));
  }
  if (!IsLegalTransition(request.from_state(), request.to_state())) {
    return absl::FailedPreconditionError(absl::StrCat("illegal transition ",
                                                      StateName(request.from_state()), " → ",
                                                      StateName(request.to_state())));
  }
  absl::StatusOr<v1::Message> row = GetLocked(request.key());
  if (!row.ok()) return row.status();
  // A transition already applied changes nothing (a retried write), except
  // RETRY_WAIT → RETRY_WAIT, which reschedules a wait and so always applies.
  const bool reschedule = request.from_state() == request.to_state();
  if (row->state() != request.to_state() || reschedule) {
    if (row->state() != request.from_state()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot move ", request.key(), " from ", StateName(request.from_state()), " to ",
          StateName(request.to_state()), ": it is in ", StateName(row->state())));
    }
    if (absl::Status st = ApplyTransition(request, now, delivered_seq); !st.ok()) return st;
    row = GetLocked(request.key());
    if (!row.ok()) return row.status();
  }
  *result->mutable_message() = *std::move(row);
  return absl::OkStatus();
}

absl::Status LedgerStore::ApplyTransition(const v1::AdvanceRequest& r, int64_t now_ms,
                                          int64_t* assigned_seq) {
  UpdateBuilder update;
  update.Set("state", r.to_state());
  update.Set("updated_ms", now_ms);
  // Fields a request gives overwrite the row; fields it leaves empty keep the
  // previous value, so a later step never erases what an earlier one learnt.
  if (r.smtp_code() != 0 || !r.smtp_reply().empty() || !r.enhanced_code().empty()) {
    update.Set("smtp_code", r.smtp_code());
    update.Set("enhanced_code", Bound(r.enhanced_code(), kMaxShortText));
    update.Set("smtp_reply", Bound(r.smtp_reply(), kMaxReplyText));
  }
  if (!r.error().empty()) update.Set("last_error", Bound(r.error(), kMaxReplyText));
  if (r.has_facts()) SetFacts(r.facts(), update);
  if (r.content_mismatch()) update.Raw("content_mismatches = content_mismatches + 1");
  if (r.to_state() != v1::STATE_RETRY_WAIT) update.Set("ambiguous", int64_t{0});
  switch (r.to_state()) {
    case v1::STATE_INJECTING:
      update.Raw("attempts = attempts + 1");
      update.Raw("total_attempts = total_attempts + 1");
      update.Set("next_attempt_ms", int64_t{0});
      if (!r.mailbox().empty()) update.Set("mailbox", Bound(r.mailbox(), kMaxMailbox));
      if (!r.route_rule().empty()) update.Set("route_rule", Bound(r.route_rule(), kMaxShortText));
      break;
    case v1::STATE_DELIVERED: {
      absl::Status st =
          db_->Exec("UPDATE ledger_meta SET value = value + 1 WHERE name = 'last_seq'");
      if (!st.ok()) return st;
      absl::StatusOr<int64_t> seq =
          db_->QueryInt64("SELECT value FROM ledger_meta WHERE name = 'last_seq'");
      if (!seq.ok()) return seq.status();
      *assigned_seq = *seq;
      update.Set("seq", *seq);
      update.Set("delivered_ms", now_ms);
      update.Set("delivery_path", r.delivery_path());
      update.Set("next_attempt_ms", int64_t{0});
      break;
    }
    case v1::STATE_RETRY_WAIT:
      update.Set("next_attempt_ms", r.next_attempt_ms());
      // Once ambiguous, a row stays so until an attempt settles it (the next
      // INJECTING, DELIVERED or a dead letter): a failed probe must not make
      // the next attempt forget to probe.
      if (r.ambiguous()) update.Set("ambiguous", int64_t{1});
      break;
    case v1::STATE_DEAD_LETTERING:
      update.Set("next_attempt_ms", int64_t{0});
      break;
    case v1::STATE_PENDING:
      update.Set("attempts", int64_t{0});
      update.Set("content_mismatches", int64_t{0});
      update.Set("next_attempt_ms", int64_t{0});
      if (r.from_state() == v1::STATE_DEAD_LETTERED) update.Raw("replays = replays + 1");
      break;
    default:  // DONE, DEAD_LETTERED: the state change is the record
      break;
  }
  absl::Status st = update.Run(*db_, r.key());
  if (!st.ok()) return st;
  if (db_->Changes() != 1) return absl::InternalError("ledger row vanished during Advance");
  return absl::OkStatus();
}

bool NeedsFsync(v1::State to_state) {
  // DONE is final bookkeeping: nothing follows it, and if a power cut loses
  // it the row stays DELIVERED (already counted, already in the watch
  // stream); should the object reappear, the fetcher repeats the idempotent
  // COPY/DELETE. Every other state justifies the next side effect (injecting,
  // copying to failed/, a replay's copy back to pending/) or records an
  // outcome that must not be forgotten, so it is fsync'd before returning.
  return to_state != v1::STATE_DONE;
}

absl::Status LedgerStore::SetSynchronous(bool full) {
  if (full == synchronous_full_) return absl::OkStatus();
  absl::Status st = db_->Exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  if (st.ok()) synchronous_full_ = full;
  return st;
}

void LedgerStore::PublishDelivery(int64_t seq) {
  absl::MutexLock lock(&seq_mu_);
  if (seq > latest_seq_) latest_seq_ = seq;
}

int64_t LedgerStore::LatestDeliverySeq() const {
  absl::MutexLock lock(&seq_mu_);
  return latest_seq_;
}

int64_t LedgerStore::WaitForDeliveryAfter(int64_t seq, absl::Duration timeout) const {
  absl::MutexLock lock(&seq_mu_);
  auto newer = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seq_mu_) { return latest_seq_ > seq; };
  seq_mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
  return latest_seq_;
}

}  // namespace pocketmail::ledger
