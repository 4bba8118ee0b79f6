// The mailboxes the delivery probe may log into, and with which password.
//
// Sources (see main.cc): INBOX_USER/INBOX_PASS (mail-inject.env),
// ADMIN_USER/ADMIN_PASS (mail-admin.env) and an optional
// PROBE_CREDENTIALS_FILE of `mailbox=password` lines. The IMAP login name is
// the mailbox as configured: Maddy's account names are the full addresses.
// Lookups compare mailboxes case-insensitively (ASCII), as Maddy does.
//
// Holds secrets: nothing here logs, and errors name the file and line number,
// never a line's content. Not thread-safe to mutate; const use is.
#ifndef POCKETMAIL_SERVICES_INJECTOR_PROBE_CREDENTIALS_H_
#define POCKETMAIL_SERVICES_INJECTOR_PROBE_CREDENTIALS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pocketmail::injector {

class ProbeCredentials {
 public:
  struct Login {
    std::string user;  // the mailbox as configured
    std::string password;
  };

  // Adds `mailbox`, or replaces its password. INVALID_ARGUMENT for an empty
  // password, or a mailbox that is empty or holds whitespace or control
  // characters.
  absl::Status Set(const std::string& mailbox, const std::string& password);
  // nullptr when `mailbox` has no credentials.
  const Login* Find(absl::string_view mailbox) const;
  // The configured mailboxes (for start-up logs; never the passwords).
  std::vector<std::string> Mailboxes() const;
  bool empty() const { return by_lower_.empty(); }

 private:
  std::map<std::string, Login> by_lower_;
};

// Parses the body of a PROBE_CREDENTIALS_FILE into `out`: one
// `mailbox=password` per line, split at the first '=' (a password may hold
// '='; a mailbox may not); surrounding whitespace trimmed from both and one
// pair of matching quotes removed from the password, as in the env files;
// blank lines and lines starting with '#' ignored. Later lines win.
// INVALID_ARGUMENT names `source` and the line number.
absl::Status ParseProbeCredentials(absl::string_view content, absl::string_view source,
                                   ProbeCredentials* out);

// Reads and parses `path`. PERMISSION_DENIED when it is accessible by group
// or other (the installer writes secrets 0600); NOT_FOUND when unreadable.
absl::Status LoadProbeCredentialsFile(const std::string& path, ProbeCredentials* out);

}  // namespace pocketmail::injector

#endif  // POCKETMAIL_SERVICES_INJECTOR_PROBE_CREDENTIALS_H_
