// An SMTP (or LMTP) client session that delivers one message at a time into a
// local mail server and classifies every attempt (see delivery_result.h).
//
//   SmtpSession session(options);
//   if (auto failed = session.BeginMessage(envelope)) return *failed;
//   for (chunk : body) if (auto failed = session.SendBody(chunk)) return *failed;
//   return session.FinishMessage();     // or AbortMessage() to give up before "."
//
// Connection set-up happens on demand inside BeginMessage: connect (TCP with a
// timeout, or a unix socket), greeting, EHLO (LHLO for LMTP), STARTTLS, EHLO
// again, AUTH PLAIN (LOGIN when only LOGIN is offered). A connection is reused
// across messages with RSET in between; a broken one is dropped and reopened.
//
// Classification:
//   * Anything that fails before MAIL FROM (connect, greeting, EHLO, STARTTLS,
//     AUTH — including 5xx replies such as 535 bad credentials) is TEMPORARY:
//     it says nothing about the message, and a wrong password or a server in
//     maintenance must not dead-letter mail.
//   * MAIL, RCPT, DATA and the final "." reply: 2xx ok / 4xx TEMPORARY / 5xx
//     PERMANENT. Timeouts, connection loss and garbled replies before the final
//     ".\r\n" is completely written are TEMPORARY; after it, AMBIGUOUS.
//   * An invalid envelope address is PERMANENT and is never written.
//
// TLS policy:
//   * MAIL_INJECT_CA_FILE set (options.ca_file): STARTTLS is required and the
//     server certificate must chain to that CA and match tls_server_name (or
//     host). This is how a loopback Maddy with a self-signed cert is trusted.
//   * No CA file, loopback host (127.0.0.0/8, ::1, localhost): STARTTLS is used
//     when offered, without certificate verification (the traffic never
//     leaves the device; a rogue local listener is out of scope).
//   * No CA file, any other host: STARTTLS is required and verified against
//     the system trust store; credentials are never sent in clear text.
//   * Unix sockets (LMTP): no TLS.
// The password is never logged or put into results.
//
// Not thread-safe: one session per thread at a time (see SessionPool).
#ifndef POCKETMAIL_COMMON_SMTP_SMTP_SESSION_H_
#define POCKETMAIL_COMMON_SMTP_SMTP_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net/transport.h"
#include "common/smtp/body_encoder.h"
#include "common/smtp/delivery_result.h"
#include "common/smtp/reply.h"
#include "common/time/clock.h"

namespace pocketmail::smtp {

struct SessionOptions {
  bool lmtp = false;               // LHLO and LMTP semantics (one reply per recipient)
  std::string host = "127.0.0.1";  // TCP server (ignored when unix_socket is set)
  int port = 25;
  std::string unix_socket;  // connect here instead of host:port
  std::string helo_name = "localhost";
  std::string user;             // "" = no AUTH
  std::string password;         // secret
  std::string ca_file;          // see the TLS policy above
  std::string tls_server_name;  // name the certificate must match; "" = host
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration command_timeout = absl::Seconds(60);      // each command/reply and write
  absl::Duration final_reply_timeout = absl::Seconds(60);  // reply to the final "."
  // Reads the reply deadlines and the pool's Acquire deadline (not owned).
  // The socket waits themselves are common/net's, in real time.
  Clock* clock = RealClock::Get();
};

struct Envelope {
  std::string mail_from;  // "" = the null sender <>
  std::string rcpt_to;
  uint64_t size_hint = 0;  // announced as SIZE= when the server supports it; 0 = unknown
};

// What the server announced in its EHLO/LHLO reply.
struct Extensions {
  bool starttls = false;
  bool auth_plain = false;
  bool auth_login = false;
  bool size = false;
  uint64_t max_size = 0;  // 0 = no limit announced
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool pipelining = false;
};
Extensions ParseExtensions(const Reply& ehlo_reply);

class SmtpSession {
 public:
  explicit SmtpSession(SessionOptions options);
  ~SmtpSession();
  SmtpSession(const SmtpSession&) = delete;
  SmtpSession& operator=(const SmtpSession&) = delete;

  // Opens (or reuses) the connection and runs MAIL, RCPT and DATA. Returns
  // nullopt when the server is ready for body bytes; otherwise the attempt's
  // result (never kDelivered or kAmbiguous). A message in flight is aborted.
  std::optional<DeliveryResult> BeginMessage(const Envelope& envelope);
  // Sends raw message bytes (normalized and dot-stuffed on the fly).
  // REQUIRES: BeginMessage returned nullopt and no later call failed.
  std::optional<DeliveryResult> SendBody(absl::string_view bytes);
  // Terminates the body and reads the final reply.
  // REQUIRES: as for SendBody.
  DeliveryResult FinishMessage();
  // Gives up on the message in flight without ever sending the final "."
  // (drops the connection). Safe to call in any state.
  void AbortMessage();

  // BeginMessage + SendBody + FinishMessage for a message held in memory.
  DeliveryResult Deliver(const Envelope& envelope, absl::string_view message);

  bool in_message() const { return state_ == State::kInData; }
  bool connected() const { return transport_ != nullptr; }
  int connections_opened() const { return connections_opened_; }
  const Extensions& extensions() const { return extensions_; }

 private:
  enum class State { kDisconnected, kIdle, kInData };

  std::optional<DeliveryResult> Connect();
  std::optional<DeliveryResult> Hello();  // EHLO/LHLO, parses extensions
  std::optional<DeliveryResult> Authenticate();
  absl::StatusOr<Reply> ReadReply(absl::Duration timeout);
  // Writes `line` + CRLF (refusing CR/LF/NUL inside it) and reads the reply.
  absl::StatusOr<Reply> Command(absl::string_view line);
  // A failure result for `stage` from a local error; drops the connection.
  DeliveryResult Fail(Stage stage, Outcome outcome, const absl::Status& error);
  // The result a reply means at `stage`; `before_mail` forces TEMPORARY (see the
  // classification above). Drops the connection when it can't be reused.
  DeliveryResult FromReply(Stage stage, const Reply& reply, bool before_mail);
  void Disconnect();

  SessionOptions options_;
  std::unique_ptr<net::Transport> transport_;
  State state_ = State::kDisconnected;
  Extensions extensions_;
  BodyEncoder encoder_;
  std::string out_;  // reused encoding buffer
  int connections_opened_ = 0;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_SMTP_SESSION_H_
