// Test fixture: the SMTP test peer (smtp_peer.py, a stand-in for Maddy's
// authenticated inject endpoint) as a child process, plus helpers to read
// back what it delivered and to drive its fault knobs.
//
//   testing::ScratchDir dir;
//   auto peer = SmtpPeer::Start(dir.path(), {"inbox@example.org"}, "inject", "secret");
//   ... deliver to 127.0.0.1:(*peer)->port() ...
//   EXPECT_EQ((*peer)->Count("inbox@example.org"), 1);
//
// Delivered messages land in <maildir_root>/<lowercased recipient>/new/, each
// prefixed by the peer with "Return-Path: <sender>" and "Delivered-To: rcpt".
// See smtp_peer.py for the replies it mimics and the fault knobs.
#ifndef POCKETMAIL_TESTS_PEERS_SMTP_SMTP_PEER_H_
#define POCKETMAIL_TESTS_PEERS_SMTP_SMTP_PEER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

struct SmtpPeerOptions {
  int64_t max_size = 0;  // bytes; 0 = the peer's default (32 MiB, like Maddy)
  bool tls = false;      // offer STARTTLS with a fresh self-signed cert (see ca_file())
  bool lmtp = false;     // also serve LMTP on lmtp_socket()
  std::string auth_mechanisms = "PLAIN,LOGIN";  // which AUTH mechanisms to offer
};

class SmtpPeer {
 public:
  // Starts the peer with its files in a new directory under `scratch_dir`.
  // `mailboxes` are the known recipients (full addresses).
  static absl::StatusOr<std::unique_ptr<SmtpPeer>> Start(const std::string& scratch_dir,
                                                         const std::vector<std::string>& mailboxes,
                                                         const std::string& user,
                                                         const std::string& pass,
                                                         const SmtpPeerOptions& options = {});

  int port() const { return port_; }
  const std::string& maildir_root() const { return maildir_root_; }
  // The self-signed certificate, which is its own CA (only with options.tls).
  const std::string& ca_file() const { return ca_file_; }
  const std::string& lmtp_socket() const { return lmtp_socket_; }

  // Raw bytes of every message delivered to `mailbox`, in delivery order.
  std::vector<std::string> Messages(const std::string& mailbox) const;
  int Count(const std::string& mailbox) const;
  // Messages whose X-Pocketmail-Key header equals `key`.
  std::vector<std::string> FindByKey(const std::string& mailbox, const std::string& key) const;

  // Fault knobs, e.g. SetFaults("fail_pct=100 fail_code=451"); see smtp_peer.py.
  absl::Status SetFaults(const std::string& knobs);
  absl::Status ResetFaults();
  // Counters: connections, auth_ok, auth_failed, mail, rcpt, data, delivered,
  // faults, drops, tls.
  absl::StatusOr<std::map<std::string, int64_t>> Stats();

  // SIGTERM and wait (the port then refuses connections). Returns the wait status.
  int Stop();

 private:
  SmtpPeer() = default;
  absl::StatusOr<std::string> Control(const std::string& line);

  PeerProcess process_;
  int port_ = 0;
  int control_port_ = 0;
  std::string dir_;
  std::string maildir_root_;
  std::string ca_file_;
  std::string lmtp_socket_;
};

// The value of the first `name:` header in `message` ("" when absent);
// case-insensitive name, unfolded, surrounding whitespace trimmed.
std::string HeaderValue(const std::string& message, const std::string& name);

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_PEERS_SMTP_SMTP_PEER_H_
