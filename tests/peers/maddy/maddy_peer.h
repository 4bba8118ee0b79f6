// Test fixture: a real Maddy (the mail store pocketmail delivers into), set
// up by the installer itself and run from the installer's run script.
//
//   testing::ScratchDir dir;
//   auto maddy = MaddyPeer::Start(dir.path(), {.mailboxes = {"alice@example.org"}});
//   ... deliver over LMTP to (*maddy)->lmtp_socket() ...
//   auto messages = (*maddy)->ReadMailbox("alice@example.org");  // IMAP FETCH BODY[]
//
// Start runs deploy/install-email.sh into <dir>/maddy/p with `--init none
// install maddy`: the installer renders maddy.conf from deploy/maddy.conf.tmpl,
// generates the inject/inbox/admin credentials and provisions those accounts
// with `maddy creds create` / `imap-acct create` (password on stdin). More
// mailboxes are added with the installer's `add-mailbox` (also stdin). Then
// the installer's runit run script, etc/sv/pocketmail-maddy/run, is started:
// the Maddy under test is exactly what a phone would run, configured the same
// way, on free 127.0.0.1 ports and with its state in the scratch dir.
//
// The Maddy binary is PM_MADDY_BIN, built from the Go module proxy by
// tests/peers/maddy/build_maddy.sh (the README's test command does this and
// passes it with --test_env). Start fails, it does not skip, without it.
//
// Not thread-safe. The destructor SIGKILLs Maddy.
#ifndef POCKETMAIL_TESTS_PEERS_MADDY_MADDY_PEER_H_
#define POCKETMAIL_TESTS_PEERS_MADDY_MADDY_PEER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

struct MaddyOptions {
  std::string mail_domain = "example.org";
  // Mailboxes to add besides the installer's own inbox@ and admin@ (their
  // passwords: MaddyPeer::TestPassword).
  std::vector<std::string> mailboxes;
  // The .env's MAIL_MAX_MESSAGE_SIZE (Maddy's max_message_size), e.g. "32M".
  std::string max_message_size = "32M";
  // The .env's MAIL_INJECT_VIA: what the installer configures the injector for.
  std::string inject_via = "lmtp";
};

class MaddyPeer {
 public:
  static absl::StatusOr<std::unique_ptr<MaddyPeer>> Start(const std::string& scratch_dir,
                                                          MaddyOptions options = {});
  ~MaddyPeer();

  // The password tests give the mailboxes they add.
  static std::string TestPassword(const std::string& mailbox) { return "maddy-pw-" + mailbox; }

  // Adds a login and mailbox through the installer's add-mailbox, while Maddy
  // runs (the way the gateway provisions one just in time).
  absl::Status AddMailbox(const std::string& address);
  // The IMAP password of a mailbox: inbox@/admin@ from the installer's
  // generated secrets, TestPassword for the others.
  std::string PasswordOf(const std::string& mailbox) const;

  // What the installer wrote for the services: pocketmail.env plus the
  // generated mail-inject.env and mail-admin.env (MAIL_LMTP_SOCKET,
  // MAIL_ACCOUNTS_CMD, MAIL_ACCOUNTS_WATCH, INJECT_*, INBOX_*, ADMIN_*, ...).
  const std::map<std::string, std::string>& service_settings() const { return settings_; }

  const std::string& lmtp_socket() const { return lmtp_socket_; }
  int imap_port() const { return imap_port_; }
  int inject_port() const { return inject_port_; }             // the submission inject endpoint
  const std::string& state_dir() const { return state_dir_; }  // imapsql.db, messages/
  const std::string& version() const { return version_; }      // "0.8.1"
  const std::string& prefix() const { return prefix_; }        // the installer's --prefix
  std::string Log() const;                                     // Maddy's stderr so far

  // Every message in the mailbox's INBOX, in order, as IMAP FETCH BODY[] returns it.
  absl::StatusOr<std::vector<std::string>> ReadMailbox(const std::string& mailbox) const;

  void Kill();             // SIGKILL
  absl::Status Restart();  // Kill if running, then start the run script again

 private:
  MaddyPeer() = default;
  absl::Status Install();
  absl::Status RunInstaller(const std::vector<std::string>& args,
                            const std::string& stdin_line) const;
  absl::Status StartProcess();
  absl::Status WaitUntilReady(absl::Duration timeout);

  MaddyOptions options_;
  std::string dir_;
  std::string prefix_;
  std::string binary_;
  std::string version_;
  std::string state_dir_;
  std::string lmtp_socket_;
  std::string log_path_;
  int imap_port_ = 0;
  int inject_port_ = 0;
  int submission_port_ = 0;
  std::map<std::string, std::string> settings_;
  PeerProcess process_;
};

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_MADDY_MADDY_PEER_H_
