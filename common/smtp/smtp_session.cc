#include "common/smtp/smtp_session.h"

#include <arpa/inet.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/mail/utf8.h"
#include "common/smtp/address.h"

namespace pocketmail::smtp {

bool IsLoopbackHost(const std::string& host) {
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Extensions ParseExtensions(const Reply& ehlo_reply) {
  Extensions ext;
  for (size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    std::vector<std::string> words =
        absl::StrSplit(absl::AsciiStrToUpper(ehlo_reply.lines[i]), ' ', absl::SkipEmpty());
    if (words.empty()) continue;
    const std::string& kw = words[0];
    if (kw == "STARTTLS") ext.starttls = true;
    if (kw == "8BITMIME") ext.eightbitmime = true;
    if (kw == "SMTPUTF8") ext.smtputf8 = true;
    if (kw == "PIPELINING") ext.pipelining = true;
    if (kw == "SIZE") {
      ext.size = true;
      if (words.size() > 1 && !absl::SimpleAtoi(words[1], &ext.max_size)) ext.max_size = 0;
    }
    // "AUTH PLAIN LOGIN", or the pre-standard "AUTH=PLAIN LOGIN".
    if (kw == "AUTH" || absl::StartsWith(kw, "AUTH=")) {
      if (kw.size() > 5) words.push_back(kw.substr(5));
      for (size_t w = 1; w < words.size(); ++w) {
        if (words[w] == "PLAIN") ext.auth_plain = true;
        if (words[w] == "LOGIN") ext.auth_login = true;
      }
    }
  }
  return ext;
}

SmtpSession::SmtpSession(SessionOptions options) : options_(std::move(options)) {}

SmtpSession::~SmtpSession() { Disconnect(); }

void SmtpSession::Disconnect() {
  transport_.reset();  // closes without QUIT: also how a message in flight is aborted
  state_ = State::kDisconnected;
}

void SmtpSession::AbortMessage() {
  if (state_ == State::kInData) Disconnect();
}

absl::StatusOr<Reply> SmtpSession::ReadReply(absl::Duration timeout) {
  if (transport_ == nullptr) return absl::UnavailableError("not connected");
  absl::Time deadline = options_.clock->Now() + timeout;
  ReplyAssembler assembler;
  while (true) {
    absl::StatusOr<std::string> line =
        transport_->ReadLine(kMaxReplyLineBytes, deadline - options_.clock->Now());
    if (!line.ok()) return line.status();
    absl::StatusOr<bool> done = assembler.AddLine(*line);
    if (!done.ok()) return done.status();
    if (*done) return assembler.Take();
  }
}

absl::StatusOr<Reply> SmtpSession::Command(absl::string_view line) {
  if (line.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos) {
    return absl::InternalError("refusing to send a command containing CR, LF or NUL");
  }
  if (transport_ == nullptr) return absl::UnavailableError("not connected");
  absl::Status s = transport_->WriteAll(absl::StrCat(line, "\r\n"), options_.command_timeout);
  if (!s.ok()) return s;
  return ReadReply(options_.command_timeout);
}

DeliveryResult SmtpSession::Fail(Stage stage, Outcome outcome, const absl::Status& error) {
  Disconnect();
  DeliveryResult r;
  r.outcome = outcome;
  r.stage = stage;
  r.detail = mail::ToBoundedUtf8(error.message(), kMaxReplyTextBytes);
  return r;
}

DeliveryResult SmtpSession::FromReply(Stage stage, const Reply& reply, bool before_mail) {
  DeliveryResult r;
  r.stage = stage;
  r.code = reply.code;
  r.enhanced = reply.enhanced;
  r.reply_text = mail::ToBoundedUtf8(reply.text, kMaxReplyTextBytes);
  ReplyClass cls = reply.reply_class();
  bool drop = before_mail || reply.code == 421;
  if (stage == Stage::kBody && cls == ReplyClass::kSuccess) {
    r.outcome = Outcome::kDelivered;
  } else if (before_mail) {
    r.outcome = Outcome::kTemporary;
    r.detail = absl::StrCat("server refused ", StageName(stage), " before the message was sent");
  } else if (cls == ReplyClass::kTemporary) {
    r.outcome = Outcome::kTemporary;
  } else if (cls == ReplyClass::kPermanent) {
    r.outcome = Outcome::kPermanent;
  } else if (stage == Stage::kBody) {
    r.outcome = Outcome::kAmbiguous;  // a 3xx to "." — who knows what happened
    r.detail = "unexpected reply to the end of data";
    drop = true;
  } else {
    r.outcome = Outcome::kTemporary;
    r.detail = absl::StrCat("unexpected reply to ", StageName(stage));
    drop = true;
  }
  if (drop) Disconnect();
  return r;
}

std::optional<DeliveryResult> SmtpSession::Hello() {
  absl::StatusOr<Reply> r =
      Command(absl::StrCat(options_.lmtp ? "LHLO " : "EHLO ", options_.helo_name));
  if (!r.ok()) return Fail(Stage::kEhlo, Outcome::kTemporary, r.status());
  if (r->code != 250) return FromReply(Stage::kEhlo, *r, /*before_mail=*/true);
  extensions_ = ParseExtensions(*r);
  return std::nullopt;
}

std::optional<DeliveryResult> SmtpSession::Authenticate() {
  if (options_.user.empty()) return std::nullopt;
  absl::StatusOr<Reply> r;
  if (extensions_.auth_plain) {
    // RFC 4616: authzid NUL authcid NUL password.
    r = Command(absl::StrCat("AUTH PLAIN ", absl::Base64Escape(absl::StrCat(
                                                absl::string_view("\0", 1), options_.user,
                                                absl::string_view("\0", 1), options_.password))));
  } else if (extensions_.auth_login) {
    r = Command("AUTH LOGIN");
    if (r.ok() && r->code == 334) r = Command(absl::Base64Escape(options_.user));
    if (r.ok() && r->code == 334) r = Command(absl::Base64Escape(options_.password));
  } else {
    return Fail(Stage::kAuth, Outcome::kTemporary,
                absl::FailedPreconditionError("server offers neither AUTH PLAIN nor AUTH LOGIN"));
  }
  if (!r.ok()) return Fail(Stage::kAuth, Outcome::kTemporary, r.status());
  if (r->code != 235) {
    DeliveryResult failed = FromReply(Stage::kAuth, *r, /*before_mail=*/true);
    failed.detail = "authentication rejected (check INJECT_USER / INJECT_PASS)";
    return failed;
  }
  return std::nullopt;
}

std::optional<DeliveryResult> SmtpSession::Connect() {
  Disconnect();
  const bool on_unix = !options_.unix_socket.empty();
  absl::StatusOr<std::unique_ptr<net::Transport>> t =
      on_unix ? net::Transport::ConnectUnix(options_.unix_socket, options_.connect_timeout)
              : net::Transport::ConnectTcp(options_.host, options_.port, options_.connect_timeout);
  if (!t.ok()) return Fail(Stage::kConnect, Outcome::kTemporary, t.status());
  transport_ = std::move(*t);
  ++connections_opened_;

  absl::StatusOr<Reply> greeting = ReadReply(options_.command_timeout);
  if (!greeting.ok()) return Fail(Stage::kGreeting, Outcome::kTemporary, greeting.status());
  if (greeting->code != 220) return FromReply(Stage::kGreeting, *greeting, true);
  if (auto failed = Hello()) return failed;

  const bool loopback = on_unix || IsLoopbackHost(options_.host);
  const bool tls_required = !on_unix && (!options_.ca_file.empty() || !loopback);
  if (!on_unix && extensions_.starttls) {
    absl::StatusOr<Reply> r = Command("STARTTLS");
    if (!r.ok()) return Fail(Stage::kStartTls, Outcome::kTemporary, r.status());
    if (r->code != 220) return FromReply(Stage::kStartTls, *r, true);
    net::TlsOptions tls;
    tls.verify = tls_required;
    tls.ca_file = options_.ca_file;
    tls.server_name = options_.tls_server_name.empty() ? options_.host : options_.tls_server_name;
    absl::Status s = transport_->StartTls(tls, options_.command_timeout);
    if (!s.ok()) return Fail(Stage::kStartTls, Outcome::kTemporary, s);
    if (auto failed = Hello()) return failed;  // RFC 3207: forget what was said before
  } else if (tls_required) {
    return Fail(Stage::kStartTls, Outcome::kTemporary,
                absl::FailedPreconditionError(
                    "server does not offer STARTTLS, which this configuration requires"));
  }
  if (auto failed = Authenticate()) return failed;
  state_ = State::kIdle;
  return std::nullopt;
}

std::optional<DeliveryResult> SmtpSession::BeginMessage(const Envelope& envelope) {
  AbortMessage();
  if (absl::Status s = ValidateEnvelopeAddress(envelope.mail_from, /*allow_empty=*/true); !s.ok()) {
    DeliveryResult r;
    r.outcome = Outcome::kPermanent;
    r.stage = Stage::kMail;
    r.detail = absl::StrCat("invalid sender: ", s.message());
    return r;
  }
  if (absl::Status s = ValidateEnvelopeAddress(envelope.rcpt_to, /*allow_empty=*/false); !s.ok()) {
    DeliveryResult r;
    r.outcome = Outcome::kPermanent;
    r.stage = Stage::kRcpt;
    r.detail = absl::StrCat("invalid recipient: ", s.message());
    return r;
  }
  if (state_ == State::kIdle) {
    // Reuse: a connection the server has closed (or talks on unasked) is
    // replaced; RSET clears any half-done transaction and proves it alive.
    if (transport_->IdleConnectionIsStale()) {
      Disconnect();
    } else {
      absl::StatusOr<Reply> r = Command("RSET");
      if (!r.ok() || r->reply_class() != ReplyClass::kSuccess) Disconnect();
    }
  }
  if (state_ == State::kDisconnected) {
    if (auto failed = Connect()) return failed;
  }

  std::string mail = absl::StrCat("MAIL FROM:<", envelope.mail_from, ">");
  if (extensions_.size && envelope.size_hint > 0)
    absl::StrAppend(&mail, " SIZE=", envelope.size_hint);
  if (extensions_.eightbitmime) absl::StrAppend(&mail, " BODY=8BITMIME");
  if (extensions_.smtputf8 && (!IsAscii(envelope.mail_from) || !IsAscii(envelope.rcpt_to))) {
    absl::StrAppend(&mail, " SMTPUTF8");
  }
  absl::StatusOr<Reply> r = Command(mail);
  if (!r.ok()) return Fail(Stage::kMail, Outcome::kTemporary, r.status());
  if (r->reply_class() != ReplyClass::kSuccess) return FromReply(Stage::kMail, *r, false);

  r = Command(absl::StrCat("RCPT TO:<", envelope.rcpt_to, ">"));
  if (!r.ok()) return Fail(Stage::kRcpt, Outcome::kTemporary, r.status());
  if (r->reply_class() != ReplyClass::kSuccess) return FromReply(Stage::kRcpt, *r, false);

  r = Command("DATA");
  if (!r.ok()) return Fail(Stage::kData, Outcome::kTemporary, r.status());
  if (r->code != 354) return FromReply(Stage::kData, *r, false);

  state_ = State::kInData;
  encoder_ = BodyEncoder();
  return std::nullopt;
}

std::optional<DeliveryResult> SmtpSession::SendBody(absl::string_view bytes) {
  if (state_ != State::kInData) {
    return Fail(Stage::kData, Outcome::kTemporary,
                absl::FailedPreconditionError("no message in progress"));
  }
  out_.clear();
  encoder_.Encode(bytes, &out_);
  absl::Status s = transport_->WriteAll(out_, options_.command_timeout);
  if (!s.ok()) {
    return Fail(Stage::kData, Outcome::kTemporary,
                absl::Status(s.code(), absl::StrCat("while sending the body: ", s.message())));
  }
  return std::nullopt;
}

DeliveryResult SmtpSession::FinishMessage() {
  if (state_ != State::kInData) {
    return Fail(Stage::kData, Outcome::kTemporary,
                absl::FailedPreconditionError("no message in progress"));
  }
  out_.clear();
  encoder_.Finish(&out_);
  absl::Status s = transport_->WriteAll(out_, options_.command_timeout);
  if (!s.ok()) {
    // The terminator did not get out completely: the server cannot have accepted.
    return Fail(Stage::kData, Outcome::kTemporary,
                absl::Status(s.code(), absl::StrCat("while ending the body: ", s.message())));
  }
  state_ = State::kIdle;
  absl::StatusOr<Reply> r = ReadReply(options_.final_reply_timeout);
  if (!r.ok()) {
    return Fail(Stage::kBody, Outcome::kAmbiguous,
                absl::Status(r.status().code(), absl::StrCat("no reply after the final \".\": ",
                                                             r.status().message())));
  }
  return FromReply(Stage::kBody, *r, false);
}

DeliveryResult SmtpSession::Deliver(const Envelope& envelope, absl::string_view message) {
  if (auto failed = BeginMessage(envelope)) return *failed;
  if (auto failed = SendBody(message)) return *failed;
  return FinishMessage();
}

}  // namespace pocketmail::smtp
