#include "common/imap/imap_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace pocketmail::imap {
namespace {

constexpr size_t kMaxServerTextInErrors = 200;

// Server text quoted in an error: bounded and printable, so a hostile server
// cannot fill logs or break a log line.
std::string Sanitize(absl::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxServerTextInErrors)) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

absl::Status ValidateFieldName(const std::string& field) {
  if (field.empty() || field.size() > 76) {
    return absl::InvalidArgumentError("header field name must be 1..76 bytes");
  }
  for (char c : field) {
    if (!absl::ascii_isalnum(c) && c != '-') {
      return absl::InvalidArgumentError("header field name may hold only letters, digits and '-'");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ImapClient>> ImapClient::Connect(const ClientOptions& options,
                                                                absl::Time deadline) {
  absl::StatusOr<std::unique_ptr<net::Transport>> conn = net::Transport::ConnectTcp(
      options.host, options.port, std::min(deadline - absl::Now(), options.connect_timeout));
  if (!conn.ok()) return conn.status();
  std::unique_ptr<ImapClient> client(new ImapClient(options, std::move(*conn), deadline));
  absl::StatusOr<Response> greeting = client->ReadResponse();
  if (!greeting.ok()) return greeting.status();
  std::optional<StatusLine> status = ParseStatusLine(greeting->rest);
  if (greeting->kind != ResponseKind::kUntagged || !status.has_value()) {
    return absl::DataLossError("the server's greeting is not an IMAP greeting");
  }
  if (status->condition == "BYE") {
    return absl::UnavailableError(
        absl::StrCat("server refused the connection: ", Sanitize(status->text)));
  }
  if (status->condition != "OK" && status->condition != "PREAUTH") {
    return absl::DataLossError("the server's greeting is not OK");
  }
  client->preauth_ = status->condition == "PREAUTH";
  return client;
}

absl::Duration ImapClient::OpTimeout() const {
  return std::min(deadline_ - absl::Now(), options_.command_timeout);
}

absl::Status ImapClient::Broken(absl::Status s) {
  if (conn_) conn_->Close();
  conn_.reset();
  return s;
}

absl::StatusOr<Response> ImapClient::ReadResponse() {
  if (!conn_) return absl::FailedPreconditionError("the IMAP connection is closed");
  RawResponse raw;
  size_t literal_bytes = 0;
  while (true) {
    absl::StatusOr<std::string> line = conn_->ReadLine(options_.max_line_bytes, OpTimeout());
    if (!line.ok()) return Broken(line.status());
    std::optional<size_t> n = TrailingLiteralSize(*line);
    raw.text.append(*line);
    if (!n.has_value()) break;
    literal_bytes += *n;
    if (literal_bytes > options_.max_literal_bytes || raw.text.size() > options_.max_line_bytes) {
      return Broken(absl::DataLossError("IMAP response is too large"));
    }
    absl::StatusOr<std::string> literal = conn_->ReadExact(*n, OpTimeout());
    if (!literal.ok()) return Broken(literal.status());
    raw.literals.push_back(std::move(*literal));
  }
  absl::StatusOr<Response> response = ClassifyResponse(std::move(raw));
  if (!response.ok()) return Broken(response.status());
  return response;
}

absl::StatusOr<std::vector<Response>> ImapClient::Run(const std::vector<std::string>& segments,
                                                      const std::string& tag,
                                                      absl::string_view what,
                                                      absl::StatusCode no_code) {
  if (!conn_) return absl::FailedPreconditionError("the IMAP connection is closed");
  std::vector<Response> untagged;
  warnings_.clear();
  std::string bye;  // the text of a "* BYE", when the server announced it is leaving
  // Reads until `want_continuation` is satisfied or the tagged reply arrives.
  // Returns true when the tagged reply is in `*tagged`.
  auto read_until = [&](bool want_continuation, Response* tagged) -> absl::StatusOr<bool> {
    while (true) {
      absl::StatusOr<Response> r = ReadResponse();
      if (!r.ok()) {
        if (!bye.empty() && absl::IsUnavailable(r.status())) {
          return absl::UnavailableError(absl::StrCat("server said BYE: ", Sanitize(bye)));
        }
        return r.status();
      }
      switch (r->kind) {
        case ResponseKind::kContinuation:
          if (want_continuation) return false;
          return Broken(absl::DataLossError(absl::StrCat("unexpected continuation during ", what)));
        case ResponseKind::kTagged:
          if (r->tag != tag) {
            return Broken(absl::DataLossError(absl::StrCat("unexpected tag during ", what)));
          }
          *tagged = std::move(*r);
          return true;
        case ResponseKind::kUntagged: {
          std::optional<StatusLine> status = ParseStatusLine(r->rest);
          if (status.has_value() && status->condition == "BYE") {
            bye = status->text.empty() ? "(no text)" : status->text;
          } else if (status.has_value() &&
                     (status->condition == "NO" || status->condition == "BAD")) {
            warnings_.push_back(Sanitize(status->text));
          }
          untagged.push_back(std::move(*r));
          break;
        }
      }
    }
  };

  Response tagged;
  bool done = false;
  for (size_t i = 0; i < segments.size() && !done; ++i) {
    absl::Status w = conn_->WriteAll(segments[i], OpTimeout());
    if (!w.ok()) return Broken(w);
    if (i + 1 < segments.size()) {  // a synchronizing literal follows: wait for "+"
      absl::StatusOr<bool> r = read_until(/*want_continuation=*/true, &tagged);
      if (!r.ok()) return r.status();
      done = *r;  // the server refused the command before its literal
    }
  }
  if (!done) {
    absl::StatusOr<bool> r = read_until(/*want_continuation=*/false, &tagged);
    if (!r.ok()) return r.status();
  }
  std::optional<StatusLine> status = ParseStatusLine(tagged.rest);
  if (!status.has_value()) {
    return Broken(absl::DataLossError(absl::StrCat("malformed tagged reply to ", what)));
  }
  if (status->condition == "OK") {
    untagged.push_back(std::move(tagged));  // last: the tagged reply itself
    return untagged;
  }
  std::string text = Sanitize(
      status->code.empty() ? status->text : absl::StrCat("[", status->code, "] ", status->text));
  if (status->condition == "NO") {
    return absl::Status(no_code, absl::StrCat(what, " refused: ", text));
  }
  if (status->condition == "BAD") {
    return absl::InternalError(absl::StrCat(what, " rejected as malformed: ", text));
  }
  return Broken(absl::DataLossError(absl::StrCat("unexpected tagged reply to ", what)));
}

absl::Status ImapClient::Login(const std::string& user, const std::string& password) {
  if (preauth_) return absl::FailedPreconditionError("the server pre-authenticated the session");
  const std::string tag = NextTag();
  std::vector<std::string> segments = {tag + " LOGIN"};
  if (absl::Status s = AppendAstring(user, &segments); !s.ok()) return s;
  if (absl::Status s = AppendAstring(password, &segments); !s.ok()) {
    return absl::InvalidArgumentError("the password cannot be sent over IMAP (NUL byte)");
  }
  segments.back().append("\r\n");
  return Run(segments, tag, "LOGIN", absl::StatusCode::kPermissionDenied).status();
}

absl::StatusOr<MailboxInfo> ImapClient::Examine(const std::string& mailbox) {
  const std::string tag = NextTag();
  std::vector<std::string> segments = {tag + " EXAMINE"};
  if (absl::Status s = AppendAstring(mailbox, &segments); !s.ok()) return s;
  segments.back().append("\r\n");
  absl::StatusOr<std::vector<Response>> responses =
      Run(segments, tag, "EXAMINE", absl::StatusCode::kFailedPrecondition);
  if (!responses.ok()) return responses.status();
  MailboxInfo info;
  for (const Response& r : *responses) {
    if (r.kind == ResponseKind::kUntagged) {
      if (std::optional<uint32_t> n = ParseExists(r.rest)) info.exists = *n;
    } else if (std::optional<StatusLine> s = ParseStatusLine(r.rest)) {
      info.read_only = absl::EqualsIgnoreCase(s->code, "READ-ONLY");
    }
  }
  return info;
}

absl::StatusOr<std::vector<uint32_t>> ImapClient::SearchHeader(const std::string& field,
                                                               const std::string& value) {
  if (absl::Status s = ValidateFieldName(field); !s.ok()) return s;
  if (absl::Status s = ValidateSearchValue(value); !s.ok()) return s;
  const std::string tag = NextTag();
  std::vector<std::string> segments = {absl::StrCat(tag, " SEARCH HEADER ", field)};
  if (absl::Status s = AppendAstring(value, &segments); !s.ok()) return s;
  segments.back().append("\r\n");
  absl::StatusOr<std::vector<Response>> responses =
      Run(segments, tag, "SEARCH", absl::StatusCode::kFailedPrecondition);
  if (!responses.ok()) return responses.status();
  std::vector<uint32_t> seqs;
  for (const Response& r : *responses) {
    if (r.kind != ResponseKind::kUntagged) continue;
    if (auto data = ParseSearchData(r.rest)) {
      if (!data->ok()) return Broken(data->status());
      seqs.insert(seqs.end(), (*data)->begin(), (*data)->end());
    }
  }
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  return seqs;
}

absl::StatusOr<std::map<uint32_t, std::string>> ImapClient::FetchHeaderField(
    const std::vector<uint32_t>& seqs, const std::string& field) {
  if (absl::Status s = ValidateFieldName(field); !s.ok()) return s;
  return FetchSection(seqs, absl::StrCat("HEADER.FIELDS (", field, ")"));
}

absl::StatusOr<std::map<uint32_t, std::string>> ImapClient::FetchMessages(
    const std::vector<uint32_t>& seqs) {
  return FetchSection(seqs, "");
}

absl::StatusOr<std::map<uint32_t, std::string>> ImapClient::FetchSection(
    const std::vector<uint32_t>& seqs, const std::string& section) {
  std::map<uint32_t, std::string> out;
  if (seqs.empty()) return out;
  for (uint32_t n : seqs) {
    if (n == 0) return absl::InvalidArgumentError("sequence numbers start at 1");
  }
  const std::string tag = NextTag();
  const std::vector<std::string> segments = {
      absl::StrCat(tag, " FETCH ", absl::StrJoin(seqs, ","), " (BODY.PEEK[", section, "])\r\n")};
  absl::StatusOr<std::vector<Response>> responses =
      Run(segments, tag, "FETCH", absl::StatusCode::kFailedPrecondition);
  if (!responses.ok()) return responses.status();
  // The item comes back named BODY[] or BODY[HEADER.FIELDS (...)], its field
  // list spelled as the server likes: match up to the section's first word.
  const std::string item =
      section.empty()
          ? "BODY[]"
          : absl::StrCat("BODY[", absl::AsciiStrToUpper(section.substr(0, section.find(' '))));
  for (const Response& r : *responses) {
    if (r.kind != ResponseKind::kUntagged) continue;
    auto data = ParseFetchData(r.rest, r.literals);
    if (!data.has_value()) continue;
    if (!data->ok()) return Broken(data->status());
    // Unsolicited FETCH responses (flag updates) carry no BODY item.
    for (const auto& [name, value] : (*data)->items) {
      if (absl::StartsWith(name, item)) out[(*data)->seq] = value;
    }
  }
  return out;
}

absl::Status ImapClient::Logout() {
  if (!conn_) return absl::OkStatus();
  const std::string tag = NextTag();
  absl::StatusOr<std::vector<Response>> responses =
      Run({tag + " LOGOUT\r\n"}, tag, "LOGOUT", absl::StatusCode::kFailedPrecondition);
  if (conn_) conn_->Close();
  conn_.reset();
  // The server may close right after its BYE, before the tagged OK.
  if (!responses.ok() && absl::IsUnavailable(responses.status()) &&
      absl::StartsWith(responses.status().message(), "server said BYE")) {
    return absl::OkStatus();
  }
  return responses.status();
}

}  // namespace pocketmail::imap
