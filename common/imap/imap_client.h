// A minimal IMAP4rev1 client: just enough to log in, open a mailbox read-only
// and find messages by a header value (the delivery probe's needs).
//
//   auto client = ImapClient::Connect(options);          // reads the greeting
//   client->Login(user, password);                        // never logged, never in errors
//   client->Examine("INBOX");                             // read-only: no \Seen, no expunge
//   auto seqs = client->SearchHeader("X-Pocketmail-Key", key);
//   auto headers = client->FetchHeaderField(*seqs, "X-Pocketmail-Key");
//   client->Logout();
//
// Every read and write is bounded by options.command_timeout and by the
// overall deadline (set_deadline). Errors:
//   UNAVAILABLE        connection refused, reset or closed, or the server said BYE
//   DEADLINE_EXCEEDED  a deadline passed
//   PERMISSION_DENIED  LOGIN refused (NO)
//   FAILED_PRECONDITION another command refused (NO), e.g. no such mailbox
//   INTERNAL           the server called our command malformed (BAD)
//   DATA_LOSS          the server's response could not be parsed
//   INVALID_ARGUMENT   a value that cannot be sent safely (refused before any I/O)
// After an I/O or protocol error the client is unusable (only destroy it).
// Untagged responses are consumed per command; literals in them are read by
// their announced size, so an unexpected one never desynchronizes the stream.
// Not thread-safe; one client is one connection.
#ifndef POCKETMAIL_COMMON_IMAP_IMAP_CLIENT_H_
#define POCKETMAIL_COMMON_IMAP_IMAP_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/imap/response.h"
#include "common/net/transport.h"

namespace pocketmail::imap {

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 143;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration command_timeout = absl::Seconds(30);  // each read/write of a command
  size_t max_line_bytes = 1 << 20;      // a SEARCH result over many messages is one line
  size_t max_literal_bytes = 16 << 20;  // bounds memory for unexpected literals
};

struct MailboxInfo {
  uint32_t exists = 0;  // number of messages
  bool read_only = false;
};

class ImapClient {
 public:
  // Connects and reads the greeting. A "* BYE" greeting is UNAVAILABLE;
  // PREAUTH is accepted (Login then is not needed).
  static absl::StatusOr<std::unique_ptr<ImapClient>> Connect(
      const ClientOptions& options, absl::Time deadline = absl::InfiniteFuture());

  // All later I/O also stops at `deadline`.
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }

  // LOGIN with user and password as quoted strings, or literals when they
  // hold 8-bit bytes or CR/LF. The password never appears in an error.
  absl::Status Login(const std::string& user, const std::string& password);

  // EXAMINE: selects `mailbox` read-only.
  absl::StatusOr<MailboxInfo> Examine(const std::string& mailbox);

  // SEARCH HEADER <field> "<value>" in the selected mailbox: sequence numbers
  // of the messages whose `field` contains `value`. IMAP matches substrings,
  // case-insensitively; use FetchHeaderField for an exact comparison.
  // REQUIRES: `field` is a header name (letters, digits, '-');
  // `value` passes ValidateSearchValue.
  absl::StatusOr<std::vector<uint32_t>> SearchHeader(const std::string& field,
                                                     const std::string& value);

  // FETCH <seqs> (BODY.PEEK[HEADER.FIELDS (<field>)]): the raw header lines of
  // `field` for each message, by sequence number. Sets no flags.
  absl::StatusOr<std::map<uint32_t, std::string>> FetchHeaderField(
      const std::vector<uint32_t>& seqs, const std::string& field);

  // FETCH <seqs> (BODY.PEEK[]): each whole message, as the server stores it,
  // by sequence number. Sets no flags. Bounded by options.max_literal_bytes.
  absl::StatusOr<std::map<uint32_t, std::string>> FetchMessages(const std::vector<uint32_t>& seqs);

  // LOGOUT, then closes the connection.
  absl::Status Logout();

  bool preauthenticated() const { return preauth_; }

  // Untagged NO/BAD texts the server sent during the last command, e.g.
  // Dovecot's "Internal mailbox synchronization failure, showing only old
  // mails." on an EXAMINE that still ends in OK. A caller that must not act
  // on a partial view (the probe) treats them as a failure.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  ImapClient(const ClientOptions& options, std::unique_ptr<net::Transport> conn,
             absl::Time deadline)
      : options_(options), conn_(std::move(conn)), deadline_(deadline) {}

  absl::Duration OpTimeout() const;
  // Reads one response, with all its literals.
  absl::StatusOr<Response> ReadResponse();
  // Sends `segments` (waiting for "+" between them), collects the untagged
  // responses until the tagged one, and maps a NO to `no_code`.
  // `what` names the command in errors (never its arguments).
  absl::StatusOr<std::vector<Response>> Run(const std::vector<std::string>& segments,
                                            const std::string& tag, absl::string_view what,
                                            absl::StatusCode no_code);
  // FETCH <seqs> (BODY.PEEK[<section>]) and the octets of that item per message.
  absl::StatusOr<std::map<uint32_t, std::string>> FetchSection(const std::vector<uint32_t>& seqs,
                                                               const std::string& section);
  std::string NextTag() { return "p" + std::to_string(++tag_counter_); }
  absl::Status Broken(absl::Status s);  // closes the connection, returns s

  const ClientOptions options_;
  std::unique_ptr<net::Transport> conn_;
  absl::Time deadline_;
  int tag_counter_ = 0;
  bool preauth_ = false;
  std::vector<std::string> warnings_;
};

}  // namespace pocketmail::imap

#endif  // POCKETMAIL_COMMON_IMAP_IMAP_CLIENT_H_
