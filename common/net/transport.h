// A byte stream to a mail server — TCP or a unix socket, optionally upgraded
// to TLS in place (STARTTLS) — where every operation has a deadline. This is
// the seam between the SMTP session and the network, and the IMAP client's
// connection for the delivery probe.
//
// Errors: DEADLINE_EXCEEDED when a deadline passes, UNAVAILABLE when the
// connection fails, is reset or closed by the peer, DATA_LOSS when the peer
// sends a line longer than allowed, FAILED_PRECONDITION / UNAVAILABLE for TLS
// failures (a certificate that does not verify is UNAVAILABLE: the server is
// not the one we mean to talk to, which is a deployment problem, not the
// message's). After any error the transport is unusable; Close() it.
// Not thread-safe. Never raises SIGPIPE.
#ifndef POCKETMAIL_COMMON_NET_TRANSPORT_H_
#define POCKETMAIL_COMMON_NET_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// OpenSSL's types, kept out of this header.
struct ssl_st;
struct ssl_ctx_st;

namespace pocketmail::net {

struct TlsOptions {
  // When true, the certificate must chain to `ca_file` (or, when that is "",
  // to the system trust store) and match `server_name`.
  bool verify = true;
  std::string ca_file;
  // The name the certificate must carry: a DNS name (also sent as SNI) or an
  // IP literal (matched against IP SANs).
  std::string server_name;
};

class Transport {
 public:
  static absl::StatusOr<std::unique_ptr<Transport>> ConnectTcp(const std::string& host, int port,
                                                               absl::Duration timeout);
  static absl::StatusOr<std::unique_ptr<Transport>> ConnectUnix(const std::string& path,
                                                                absl::Duration timeout);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Runs the TLS client handshake on the open connection.
  // REQUIRES: no TLS yet and no buffered input (a server that sent bytes after
  // its "220 ready" is trying STARTTLS response injection).
  absl::Status StartTls(const TlsOptions& options, absl::Duration timeout);

  // Writes all of `data`; fails when no progress is made for `idle_timeout`.
  absl::Status WriteAll(absl::string_view data, absl::Duration idle_timeout);

  // Reads one line, returned without its line ending (CRLF, or a bare LF).
  // Lines longer than `max_bytes` are DATA_LOSS.
  absl::StatusOr<std::string> ReadLine(size_t max_bytes, absl::Duration timeout);

  // Exactly `n` bytes, whatever they contain (IMAP literals: "{n}" then n
  // octets, which a line reader cannot give).
  absl::StatusOr<std::string> ReadExact(size_t n, absl::Duration timeout);

  // True when input is already buffered (read but not yet returned).
  bool HasBufferedInput() const;
  // For an idle connection: true when the peer has closed it or sent
  // something unsolicited (e.g. a 421 on idle timeout), so it must not be reused.
  bool IdleConnectionIsStale();

  bool tls_active() const { return ssl_ != nullptr; }
  void Close();

 private:
  explicit Transport(int fd) : fd_(fd) {}
  // Reads at least one byte into buffer_, waiting until `deadline`.
  absl::Status Fill(absl::Time deadline);
  // One write/SSL_write attempt; returns bytes written, 0 when it would block
  // (then *want_read tells which direction to wait for), or an error.
  absl::StatusOr<size_t> WriteSome(absl::string_view data, bool* want_read);
  absl::Status WaitFor(bool readable, absl::Time deadline);

  int fd_ = -1;
  ::ssl_st* ssl_ = nullptr;
  ::ssl_ctx_st* ssl_ctx_ = nullptr;
  std::string buffer_;
  size_t buffer_pos_ = 0;
};

}  // namespace pocketmail::net

#endif  // POCKETMAIL_COMMON_NET_TRANSPORT_H_
