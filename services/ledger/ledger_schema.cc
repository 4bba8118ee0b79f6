#include "services/ledger/ledger_schema.h"

#include "absl/strings/str_cat.h"
#include "common/sqlite/transaction.h"

namespace pocketmail::ledger {
namespace {

// Step i upgrades from version i to i + 1. Append; never edit a shipped step.
constexpr const char* kSteps[] = {
    // 0 → 1
    R"sql(
CREATE TABLE messages (
  key             TEXT    NOT NULL PRIMARY KEY,
  state           INTEGER NOT NULL CHECK (state BETWEEN 1 AND 7),
  recipient       TEXT    NOT NULL DEFAULT '',
  sender          TEXT    NOT NULL DEFAULT '',
  mailbox         TEXT    NOT NULL DEFAULT '',
  route_rule      TEXT    NOT NULL DEFAULT '',
  size_bytes      INTEGER NOT NULL DEFAULT 0,
  sha256          TEXT    NOT NULL DEFAULT '',
  received_ms     INTEGER NOT NULL DEFAULT 0,
  first_seen_ms   INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL,
  delivered_ms    INTEGER NOT NULL DEFAULT 0,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  smtp_code       INTEGER NOT NULL DEFAULT 0,
  enhanced_code   TEXT    NOT NULL DEFAULT '',
  smtp_reply      TEXT    NOT NULL DEFAULT '',
  last_error      TEXT    NOT NULL DEFAULT '',
  delivery_path   INTEGER NOT NULL DEFAULT 0,
  seq             INTEGER,
  subject         TEXT    NOT NULL DEFAULT '',
  total_attempts  INTEGER NOT NULL DEFAULT 0,
  replays         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_first_seen ON messages (first_seen_ms DESC, key DESC);
CREATE INDEX messages_by_mailbox ON messages (mailbox, first_seen_ms DESC, key DESC);
CREATE INDEX messages_by_state ON messages (state, first_seen_ms);
CREATE UNIQUE INDEX messages_by_seq ON messages (seq);
CREATE INDEX messages_by_delivered ON messages (delivered_ms);
CREATE TABLE ledger_meta (
  name  TEXT    NOT NULL PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO ledger_meta (name, value) VALUES ('last_seq', 0);
)sql",
    // 1 → 2: leases, the single-instance fallback where flock is unavailable.
    R"sql(
CREATE TABLE leases (
  name       TEXT    NOT NULL PRIMARY KEY,
  holder     TEXT    NOT NULL,
  expires_ms INTEGER NOT NULL
);
ALTER TABLE messages ADD COLUMN ambiguous INTEGER NOT NULL DEFAULT 0;
)sql",
    // 2 → 3: downloads that failed the content check (sha256 / rawsize).
    R"sql(
ALTER TABLE messages ADD COLUMN content_mismatches INTEGER NOT NULL DEFAULT 0;
)sql",
};

constexpr int64_t kStepCount = sizeof(kSteps) / sizeof(kSteps[0]);
static_assert(kStepCount == kLedgerSchemaVersion, "one migration step per schema version");

}  // namespace

absl::Status MigrateLedgerSchema(sqlite::Database& db) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db);
  if (!tx.ok()) return tx.status();
  absl::StatusOr<int64_t> version = db.UserVersion();
  if (!version.ok()) return version.status();
  if (*version > kLedgerSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("ledger database ", db.path(), " has schema version ", *version,
                     ", newer than this build understands (", kLedgerSchemaVersion, ")"));
  }
  if (*version < 0) {
    return absl::DataLossError(absl::StrCat("ledger database has schema version ", *version));
  }
  for (int64_t v = *version; v < kLedgerSchemaVersion; ++v) {
    if (absl::Status st = db.Exec(kSteps[v]); !st.ok()) return st;
  }
  if (*version != kLedgerSchemaVersion) {
    if (absl::Status st = db.SetUserVersion(kLedgerSchemaVersion); !st.ok()) return st;
  }
  return tx->Commit();
}

}  // namespace pocketmail::ledger
