#include "services/ledger/message_row.h"

namespace pocketmail::ledger {

v1::Message ReadMessageRow(const sqlite::Statement& stmt) {
  v1::Message m;
  m.set_key(stmt.ColumnText(0));
  m.set_state(static_cast<v1::State>(stmt.ColumnInt64(1)));
  m.set_recipient(stmt.ColumnText(2));
  m.set_sender(stmt.ColumnText(3));
  m.set_mailbox(stmt.ColumnText(4));
  m.set_route_rule(stmt.ColumnText(5));
  m.set_size_bytes(stmt.ColumnInt64(6));
  m.set_sha256(stmt.ColumnText(7));
  m.set_received_ms(stmt.ColumnInt64(8));
  m.set_first_seen_ms(stmt.ColumnInt64(9));
  m.set_updated_ms(stmt.ColumnInt64(10));
  m.set_delivered_ms(stmt.ColumnInt64(11));
  m.set_attempts(static_cast<int32_t>(stmt.ColumnInt64(12)));
  m.set_next_attempt_ms(stmt.ColumnInt64(13));
  m.set_smtp_code(static_cast<int32_t>(stmt.ColumnInt64(14)));
  m.set_enhanced_code(stmt.ColumnText(15));
  m.set_smtp_reply(stmt.ColumnText(16));
  m.set_last_error(stmt.ColumnText(17));
  m.set_delivery_path(static_cast<v1::DeliveryPath>(stmt.ColumnInt64(18)));
  m.set_seq(stmt.ColumnInt64(19));  // NULL (not yet delivered) reads as 0
  m.set_subject(stmt.ColumnText(20));
  m.set_ambiguous(stmt.ColumnInt64(21) != 0);
  m.set_content_mismatches(static_cast<int32_t>(stmt.ColumnInt64(22)));
  return m;
}

}  // namespace pocketmail::ledger
