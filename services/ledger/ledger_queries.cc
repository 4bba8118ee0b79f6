// LedgerStore's read side: List (keyset paging), Stats, DeliveriesAfter, and
// the page token format.
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/ledger/ledger_store.h"
#include "services/ledger/message_row.h"
#include "services/ledger/state_machine.h"

namespace pocketmail::ledger {
namespace {

constexpr char kTokenVersion[] = "1";
constexpr int64_t kHourMs = int64_t{3600} * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

// Positional arguments for a query whose WHERE clause is assembled from the
// filters present, so each variant can use the best index.
class QueryArgs {
 public:
  std::string Int(int64_t v) {
    ints_.push_back({++count_, v});
    return absl::StrCat("?", count_);
  }
  std::string Text(std::string v) {
    texts_.push_back({++count_, std::move(v)});
    return absl::StrCat("?", count_);
  }
  void BindTo(sqlite::Statement& stmt) const {
    for (const auto& [i, v] : ints_) stmt.BindInt64(i, v);
    for (const auto& [i, v] : texts_) stmt.BindText(i, v);
  }

 private:
  int count_ = 0;
  std::vector<std::pair<int, int64_t>> ints_;
  std::vector<std::pair<int, std::string>> texts_;
};

}  // namespace

std::string EncodePageToken(int64_t first_seen_ms, const std::string& key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenVersion, "|", first_seen_ms, "|", key));
}

absl::Status DecodePageToken(const std::string& token, int64_t* first_seen_ms, std::string* key) {
  const absl::Status malformed = absl::InvalidArgumentError("malformed page_token");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return malformed;
  size_t first = raw.find('|');
  if (first == std::string::npos || raw.substr(0, first) != kTokenVersion) return malformed;
  size_t second = raw.find('|', first + 1);
  if (second == std::string::npos) return malformed;
  if (!absl::SimpleAtoi(raw.substr(first + 1, second - first - 1), first_seen_ms)) return malformed;
  *key = raw.substr(second + 1);
  if (key->empty()) return malformed;
  return absl::OkStatus();
}

absl::StatusOr<v1::ListResponse> LedgerStore::List(const v1::ListRequest& request) {
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size is negative");
  const int page_size =
      request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  QueryArgs args;
  std::string where = "1";
  if (!request.mailbox().empty()) {
    absl::StrAppend(&where, " AND mailbox = ", args.Text(request.mailbox()));
  }
  if (request.states_size() > 0) {
    int64_t mask = 0;
    for (int state : request.states()) {
      if (!IsKnownState(state)) {
        return absl::InvalidArgumentError(absl::StrCat("unknown state ", state, " in filter"));
      }
      mask |= int64_t{1} << state;
    }
    absl::StrAppend(&where, " AND ((", args.Int(mask), " >> state) & 1) = 1");
  }
  if (request.since_ms() > 0) {
    absl::StrAppend(&where, " AND first_seen_ms >= ", args.Int(request.since_ms()));
  }
  if (request.until_ms() > 0) {
    absl::StrAppend(&where, " AND first_seen_ms < ", args.Int(request.until_ms()));
  }
  if (!request.page_token().empty()) {
    int64_t after_ms = 0;
    std::string after_key;
    if (absl::Status st = DecodePageToken(request.page_token(), &after_ms, &after_key); !st.ok()) {
      return st;
    }
    std::string ms = args.Int(after_ms);
    absl::StrAppend(&where, " AND (first_seen_ms < ", ms, " OR (first_seen_ms = ", ms,
                    " AND key < ", args.Text(after_key), "))");
  }
  // One row more than the page tells whether another page exists.
  std::string sql =
      absl::StrCat("SELECT ", kMessageColumns, " FROM messages WHERE ", where,
                   " ORDER BY first_seen_ms DESC, key DESC LIMIT ", args.Int(page_size + 1));

  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> stmt = db_->Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  args.BindTo(*stmt);
  v1::ListResponse response;
  bool more = false;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (response.messages_size() == page_size) {
      more = true;
      break;
    }
    *response.add_messages() = ReadMessageRow(*stmt);
  }
  if (more) {
    const v1::Message& last = response.messages(response.messages_size() - 1);
    response.set_next_page_token(EncodePageToken(last.first_seen_ms(), last.key()));
  }
  return response;
}

absl::StatusOr<v1::StatsResponse> LedgerStore::Stats(const std::string& mailbox) {
  const int64_t now = absl::ToUnixMillis(clock_->Now());
  v1::StatsResponse response;
  absl::MutexLock lock(&mu_);

  int64_t counts[v1::STATE_DEAD_LETTERED + 1] = {};
  {
    absl::StatusOr<sqlite::Statement> stmt = db_->Prepare(
        mailbox.empty() ? "SELECT state, COUNT(*) FROM messages GROUP BY state"
                        : "SELECT state, COUNT(*) FROM messages WHERE mailbox = ?1 GROUP BY state");
    if (!stmt.ok()) return stmt.status();
    if (!mailbox.empty()) stmt->BindText(1, mailbox);
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      int64_t state = stmt->ColumnInt64(0);
      if (IsKnownState(static_cast<int>(state))) counts[state] = stmt->ColumnInt64(1);
    }
  }
  int64_t total = 0;
  for (int state = v1::STATE_PENDING; state <= v1::STATE_DEAD_LETTERED; ++state) {
    v1::StateCount* c = response.add_by_state();
    c->set_state(static_cast<v1::State>(state));
    c->set_count(counts[state]);
    total += counts[state];
  }
  response.set_total(total);

  auto mailbox_clause = [&](QueryArgs& args) {
    return mailbox.empty() ? std::string() : absl::StrCat(" AND mailbox = ", args.Text(mailbox));
  };
  auto scalar = [&](const std::string& sql, const QueryArgs& args) -> absl::StatusOr<int64_t> {
    absl::StatusOr<sqlite::Statement> stmt = db_->Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    args.BindTo(*stmt);
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    return *row ? stmt->ColumnInt64(0) : 0;
  };
  auto delivered_since = [&](int64_t since_ms) {
    QueryArgs args;
    std::string sql =
        absl::StrCat("SELECT COUNT(*) FROM messages WHERE delivered_ms > 0 AND delivered_ms >= ",
                     args.Int(since_ms));
    sql += mailbox_clause(args);
    return scalar(sql, args);
  };
  absl::StatusOr<int64_t> hour = delivered_since(now - kHourMs);
  if (!hour.ok()) return hour.status();
  absl::StatusOr<int64_t> day = delivered_since(now - kDayMs);
  if (!day.ok()) return day.status();
  QueryArgs oldest_args;
  std::string oldest_sql = absl::StrCat(
      "SELECT COALESCE(MIN(first_seen_ms), 0) FROM messages WHERE state NOT IN (",
      oldest_args.Int(v1::STATE_DONE), ", ", oldest_args.Int(v1::STATE_DEAD_LETTERED), ")");
  oldest_sql += mailbox_clause(oldest_args);
  absl::StatusOr<int64_t> oldest = scalar(oldest_sql, oldest_args);
  if (!oldest.ok()) return oldest.status();
  response.set_delivered_last_hour(*hour);
  response.set_delivered_last_day(*day);
  response.set_oldest_unfinished_ms(*oldest);
  return response;
}

absl::StatusOr<std::vector<v1::Message>> LedgerStore::DeliveriesAfter(int64_t after_seq,
                                                                      const std::string& mailbox,
                                                                      int limit) {
  QueryArgs args;
  std::string sql =
      absl::StrCat("SELECT ", kMessageColumns, " FROM messages WHERE seq > ", args.Int(after_seq));
  if (!mailbox.empty()) absl::StrAppend(&sql, " AND mailbox = ", args.Text(mailbox));
  absl::StrAppend(&sql, " ORDER BY seq LIMIT ", args.Int(limit));
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> stmt = db_->Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  args.BindTo(*stmt);
  std::vector<v1::Message> out;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadMessageRow(*stmt));
  }
  return out;
}

}  // namespace pocketmail::ledger
