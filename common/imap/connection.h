// A plain TCP byte stream to an IMAP server where every operation has a
// deadline. IMAP needs exact byte counts for literals ("{n}\r\n" followed by n
// octets), which a line-only reader cannot give, hence ReadExact.
//
// Plain text only: the probe talks to Maddy's IMAP endpoint on loopback.
//
// Errors: DEADLINE_EXCEEDED when the deadline passes, UNAVAILABLE when the
// connection fails, is reset or closed by the peer, DATA_LOSS for a line
// longer than allowed. After any error the connection is unusable.
// Not thread-safe. Never raises SIGPIPE.
#ifndef POCKETMAIL_COMMON_IMAP_CONNECTION_H_
#define POCKETMAIL_COMMON_IMAP_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pocketmail::imap {

class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(const std::string& host, int port,
                                                             absl::Time deadline);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  absl::Status WriteAll(absl::string_view data, absl::Time deadline);
  // One line without its CRLF (a bare LF is tolerated). Longer than
  // `max_bytes` is DATA_LOSS.
  absl::StatusOr<std::string> ReadLine(size_t max_bytes, absl::Time deadline);
  // Exactly `n` bytes, whatever they contain.
  absl::StatusOr<std::string> ReadExact(size_t n, absl::Time deadline);
  void Close();

 private:
  explicit Connection(int fd) : fd_(fd) {}
  absl::Status Fill(absl::Time deadline);  // appends at least one byte to buffer_

  int fd_ = -1;
  std::string buffer_;
  size_t pos_ = 0;  // start of unread input in buffer_
};

}  // namespace pocketmail::imap

#endif  // POCKETMAIL_COMMON_IMAP_CONNECTION_H_
