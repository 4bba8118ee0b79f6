// Test fixture: a real Dovecot IMAP server (Debian's dovecot-imapd) serving
// the Maildirs another peer writes — typically the SMTP peer's
// <maildir_root>/<lowercased full address>/ — so tests can read delivered
// mail back over IMAP and exercise the delivery probe.
//
//   testing::ScratchDir dir;
//   auto smtp = SmtpPeer::Start(dir.path(), {"inbox@example.org"}, "inject", "pw");
//   auto imap = DovecotPeer::Start(dir.path(), (*smtp)->maildir_root(),
//                                  {{"inbox@example.org", "imap-pw"}});
//   ... IMAP on 127.0.0.1:(*imap)->port(), LOGIN inbox@example.org imap-pw ...
//
// Everything Dovecot writes (config, sockets, logs, its UID lists) lives in a
// new directory under `scratch_dir`; nothing in /etc is read or touched.
// Users log in with their full address (case-insensitive: %Lu); each one's
// INBOX is the Maildir <maildir_root>/<lowercased address>.
//
// Ownership (the tests run as root; Dovecot must not): when started by root,
// Dovecot runs as nobody:nogroup through setpriv. The Maildirs stay owned by
// whoever writes them (the SMTP peer, as root) and Dovecot only reads them:
//  - Start creates each user's Maildir (cur/new/tmp, mode 0755) when missing,
//    since Dovecot as nobody could not create it, and adds o+x to every
//    ancestor of maildir_root and of its own dir (mkdtemp makes them 0700);
//  - the writer must leave files world-readable: Start fails unless the umask
//    keeps o+r (e.g. the default 022), which the SMTP peer inherits;
//  - Dovecot keeps its indexes and UID lists under its own dir (INDEX=...,
//    CONTROL=...), so it never needs to write into a Maildir.
//    It treats those Maildirs as read-only and leaves messages in new/, where
//    SmtpPeer::Messages() looks for them.
// When not started by root, Dovecot runs as the current user (and then may
// move messages from new/ to cur/).
//
// Tests that start it need `tags = ["no-sandbox"]`: setpriv inside Bazel's
// sandbox (user namespaces) cannot switch users.
#ifndef POCKETMAIL_TESTS_PEERS_IMAP_DOVECOT_PEER_H_
#define POCKETMAIL_TESTS_PEERS_IMAP_DOVECOT_PEER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

class DovecotPeer {
 public:
  // Starts Dovecot on 127.0.0.1 (a free port; retried on a conflict) and
  // waits for its IMAP greeting. `users` maps full address → password. An
  // address may not hold ':', '#', quotes, braces, whitespace or control
  // characters; a password anything printable (UTF-8 too) but ':'.
  static absl::StatusOr<std::unique_ptr<DovecotPeer>> Start(
      const std::string& scratch_dir, const std::string& maildir_root,
      const std::map<std::string, std::string>& users);

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // Dovecot's own log (login failures, mailbox errors), for test diagnostics.
  std::string Log() const;

  // SIGTERM and wait (the port then refuses connections). Returns the wait status.
  int Stop();
  // SIGKILL Dovecot and all its processes (the port then refuses connections).
  void Kill();

 private:
  DovecotPeer() = default;

  PeerProcess process_;
  int port_ = 0;
  std::string dir_;
};

// Makes `maildir_root` servable by a Dovecot running as nobody: creates it
// and each mailbox's Maildir (0755) when missing, and adds o+x to the
// ancestors. Start calls it; exposed for harnesses that add mailboxes later.
absl::Status PrepareMaildirsForDovecot(const std::string& maildir_root,
                                       const std::vector<std::string>& mailboxes);

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_IMAP_DOVECOT_PEER_H_
