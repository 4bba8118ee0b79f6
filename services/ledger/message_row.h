// Internal to the ledger store: the column list every SELECT of a messages row
// uses, and the reader that turns such a row into a ledger.v1.Message.
#ifndef POCKETMAIL_SERVICES_LEDGER_MESSAGE_ROW_H_
#define POCKETMAIL_SERVICES_LEDGER_MESSAGE_ROW_H_

#include "common/sqlite/statement.h"
#include "pocketmail/ledger/v1/ledger.pb.h"

namespace pocketmail::ledger {

inline constexpr const char kMessageColumns[] =
    "key, state, recipient, sender, mailbox, route_rule, size_bytes, sha256, received_ms, "
    "first_seen_ms, updated_ms, delivered_ms, attempts, next_attempt_ms, smtp_code, "
    "enhanced_code, smtp_reply, last_error, delivery_path, seq, subject, ambiguous, "
    "content_mismatches";

// Reads the current row of a statement that selected kMessageColumns first.
v1::Message ReadMessageRow(const sqlite::Statement& stmt);

}  // namespace pocketmail::ledger

#endif  // POCKETMAIL_SERVICES_LEDGER_MESSAGE_ROW_H_
