// Where the router learns which mailboxes exist.
//
// Names are returned as read (trimmed, blank lines and comments dropped); the
// RecipientRouter normalises them (full address or bare localpart).
#ifndef POCKETMAIL_SERVICES_ROUTER_ACCOUNT_SOURCE_H_
#define POCKETMAIL_SERVICES_ROUTER_ACCOUNT_SOURCE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pocketmail::router {

// Implementations must be thread-safe; ListAccounts may block (bounded).
class AccountSource {
 public:
  virtual ~AccountSource() = default;
  // The current account names. An error means "unknown", never "none".
  virtual absl::StatusOr<std::vector<std::string>> ListAccounts() = 0;
};

// Runs MAIL_ACCOUNTS_CMD (default `maddy imap-acct list`; on the phone a
// proot-distro wrapper) through `/bin/sh -c`, one username per stdout line.
// Maddy prints "No users." on stderr when there are none: exit 0 with no
// names on stdout is an empty list. A non-zero exit is UNAVAILABLE (with the
// first stderr line), a timeout DEADLINE_EXCEEDED; either way the caller keeps
// its last good list.
class CommandAccountSource final : public AccountSource {
 public:
  CommandAccountSource(std::string command, absl::Duration timeout);
  absl::StatusOr<std::vector<std::string>> ListAccounts() override;

 private:
  const std::string command_;
  const absl::Duration timeout_;
};

// MAIL_USERS_FILE: one username per line; '#' starts a comment at the start of
// a line or after whitespace (so a '#' inside a localpart survives). A missing
// or unreadable file is an error (NOT_FOUND / PERMISSION_DENIED).
class SeedFileAccountSource final : public AccountSource {
 public:
  explicit SeedFileAccountSource(std::string path);
  absl::StatusOr<std::vector<std::string>> ListAccounts() override;

 private:
  const std::string path_;
};

// Splits command or file output into names: trims each line (spaces, tabs,
// CR), drops blank lines and, when `comments` is set, '#' comments.
std::vector<std::string> ParseAccountLines(const std::string& text, bool comments);

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_ACCOUNT_SOURCE_H_
