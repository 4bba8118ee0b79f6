#include "common/net/transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pocketmail::net {
namespace {

// OpenSSL writes to the socket with write(2), which raises SIGPIPE on a reset
// connection. Block it for the calling thread around TLS calls and swallow a
// SIGPIPE raised meanwhile, so a library never changes process-wide handlers.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

std::string Errno(int err) { return std::strerror(err); }

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool IsIpLiteral(const std::string& s) {
  unsigned char addr[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), addr) == 1 || inet_pton(AF_INET6, s.c_str(), addr) == 1;
}

int RemainingMs(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms < 0) return 0;
  return ms > 1 << 30 ? 1 << 30 : static_cast<int>(ms);
}

// Non-blocking connect of `fd` to `addr`, waiting until `deadline`.
absl::Status ConnectFd(int fd, const sockaddr* addr, socklen_t len, absl::Time deadline,
                       const std::string& what) {
  if (connect(fd, addr, len) == 0) return absl::OkStatus();
  if (errno != EINPROGRESS && errno != EINTR) {
    return absl::UnavailableError(absl::StrCat("connect to ", what, ": ", Errno(errno)));
  }
  while (true) {
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return absl::DeadlineExceededError(absl::StrCat("connect to ", what, " timed out"));
    break;
  }
  int err = 0;
  socklen_t err_len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
  if (err != 0) return absl::UnavailableError(absl::StrCat("connect to ", what, ": ", Errno(err)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> Transport::ConnectTcp(const std::string& host, int port,
                                                                 absl::Duration timeout) {
  const std::string what = absl::StrCat(host, ":", port);
  absl::Time deadline = absl::Now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError(absl::StrCat("no address for ", host));
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = absl::UnavailableError(absl::StrCat("socket: ", Errno(errno)));
      continue;
    }
    last = ConnectFd(fd, ai->ai_addr, ai->ai_addrlen, deadline, what);
    if (last.ok()) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo(res);
      return std::unique_ptr<Transport>(new Transport(fd));
    }
    close(fd);
  }
  freeaddrinfo(res);
  return last;
}

absl::StatusOr<std::unique_ptr<Transport>> Transport::ConnectUnix(const std::string& path,
                                                                  absl::Duration timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return absl::FailedPreconditionError(absl::StrCat("unix socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", Errno(errno)));
  absl::Status s =
      ConnectFd(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, absl::Now() + timeout, path);
  if (!s.ok()) {
    close(fd);
    return s;
  }
  return std::unique_ptr<Transport>(new Transport(fd));
}

Transport::~Transport() { Close(); }

void Transport::Close() {
  if (ssl_ != nullptr) {
    ScopedSigpipeBlock no_sigpipe;
    SSL_shutdown(ssl_);  // best effort, non-blocking
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ssl_ctx_ != nullptr) {
    SSL_CTX_free(ssl_ctx_);
    ssl_ctx_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  buffer_.clear();
  buffer_pos_ = 0;
}

absl::Status Transport::WaitFor(bool readable, absl::Time deadline) {
  while (true) {
    pollfd p{fd_, static_cast<short>(readable ? POLLIN : POLLOUT), 0};
    int n = poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("poll: ", Errno(errno)));
    if (n == 0) {
      return absl::DeadlineExceededError(readable ? "timed out waiting for the server's reply"
                                                  : "timed out writing to the server");
    }
    return absl::OkStatus();  // ready, or an error the next read/write reports
  }
}

absl::Status Transport::StartTls(const TlsOptions& options, absl::Duration timeout) {
  if (fd_ < 0) return absl::FailedPreconditionError("connection is closed");
  if (ssl_ != nullptr) return absl::FailedPreconditionError("TLS is already active");
  if (HasBufferedInput()) {
    return absl::UnavailableError("server sent data after its STARTTLS reply (injection?)");
  }
  if (options.verify && options.server_name.empty()) {
    return absl::FailedPreconditionError("TLS verification needs a server name");
  }
  ssl_ctx_ = SSL_CTX_new(TLS_client_method());
  if (ssl_ctx_ == nullptr) return absl::InternalError("SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
  if (options.verify) {
    int ok = options.ca_file.empty()
                 ? SSL_CTX_set_default_verify_paths(ssl_ctx_)
                 : SSL_CTX_load_verify_locations(ssl_ctx_, options.ca_file.c_str(), nullptr);
    if (ok != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load CA file ", options.ca_file, ": ", OpenSslError()));
    }
    SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_PEER, nullptr);
  }
  SSL* ssl = SSL_new(ssl_ctx_);
  if (ssl == nullptr) return absl::InternalError("SSL_new: " + OpenSslError());
  SSL_set_fd(ssl, fd_);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const std::string& name = options.server_name;
  if (!name.empty() && !IsIpLiteral(name)) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (options.verify) {
    int ok = IsIpLiteral(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                               : SSL_set1_host(ssl, name.c_str());
    if (ok != 1) {
      SSL_free(ssl);
      return absl::FailedPreconditionError(absl::StrCat("bad TLS server name: ", name));
    }
  }
  absl::Time deadline = absl::Now() + timeout;
  ScopedSigpipeBlock no_sigpipe;
  while (true) {
    ERR_clear_error();
    int rc = SSL_connect(ssl);
    if (rc == 1) break;
    int err = SSL_get_error(ssl, rc);
    absl::Status wait;
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      wait = WaitFor(err == SSL_ERROR_WANT_READ, deadline);
      if (wait.ok()) continue;
    }
    long verify = SSL_get_verify_result(ssl);
    std::string why = wait.ok() ? OpenSslError() : std::string(wait.message());
    SSL_free(ssl);
    if (verify != X509_V_OK) {
      return absl::UnavailableError(absl::StrCat("TLS certificate verification failed: ",
                                                 X509_verify_cert_error_string(verify)));
    }
    return wait.ok() ? absl::UnavailableError("TLS handshake failed: " + why) : wait;
  }
  ssl_ = ssl;
  return absl::OkStatus();
}

absl::StatusOr<size_t> Transport::WriteSome(absl::string_view data, bool* want_read) {
  *want_read = false;
  if (ssl_ == nullptr) {
    while (true) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return absl::UnavailableError(absl::StrCat("write to server: ", Errno(errno)));
    }
  }
  ScopedSigpipeBlock no_sigpipe;
  ERR_clear_error();
  int len = data.size() > (1 << 30) ? (1 << 30) : static_cast<int>(data.size());
  int n = SSL_write(ssl_, data.data(), len);
  if (n > 0) return static_cast<size_t>(n);
  int err = SSL_get_error(ssl_, n);
  if (err == SSL_ERROR_WANT_WRITE) return 0;
  if (err == SSL_ERROR_WANT_READ) {
    *want_read = true;
    return 0;
  }
  if (err == SSL_ERROR_SYSCALL && errno != 0) {
    return absl::UnavailableError(absl::StrCat("write to server: ", Errno(errno)));
  }
  return absl::UnavailableError("TLS write failed: " + OpenSslError());
}

absl::Status Transport::WriteAll(absl::string_view data, absl::Duration idle_timeout) {
  if (fd_ < 0) return absl::UnavailableError("connection is closed");
  while (!data.empty()) {
    bool want_read = false;
    absl::StatusOr<size_t> n = WriteSome(data, &want_read);
    if (!n.ok()) return n.status();
    if (*n > 0) {
      data.remove_prefix(*n);
      continue;
    }
    absl::Status s = WaitFor(want_read, absl::Now() + idle_timeout);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Transport::Fill(absl::Time deadline) {
  if (fd_ < 0) return absl::UnavailableError("connection is closed");
  if (buffer_pos_ > 0 && buffer_pos_ * 2 >= buffer_.size()) {
    buffer_.erase(0, buffer_pos_);
    buffer_pos_ = 0;
  }
  char tmp[16384];
  while (true) {
    if (ssl_ == nullptr) {
      ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n > 0) {
        buffer_.append(tmp, n);
        return absl::OkStatus();
      }
      if (n == 0) return absl::UnavailableError("connection closed by the server");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return absl::UnavailableError(absl::StrCat("read from server: ", Errno(errno)));
      }
      absl::Status s = WaitFor(true, deadline);
      if (!s.ok()) return s;
      continue;
    }
    ScopedSigpipeBlock no_sigpipe;
    ERR_clear_error();
    int n = SSL_read(ssl_, tmp, sizeof tmp);
    if (n > 0) {
      buffer_.append(tmp, n);
      return absl::OkStatus();
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      absl::Status s = WaitFor(err == SSL_ERROR_WANT_READ, deadline);
      if (!s.ok()) return s;
      continue;
    }
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0)) {
      return absl::UnavailableError("connection closed by the server");
    }
    if (err == SSL_ERROR_SYSCALL) {
      return absl::UnavailableError(absl::StrCat("read from server: ", Errno(errno)));
    }
    return absl::UnavailableError("TLS read failed: " + OpenSslError());
  }
}

absl::StatusOr<std::string> Transport::ReadLine(size_t max_bytes, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  size_t scanned = buffer_pos_;
  while (true) {
    size_t nl = buffer_.find('\n', scanned);
    if (nl != std::string::npos) {
      size_t end = nl;
      if (end > buffer_pos_ && buffer_[end - 1] == '\r') --end;
      if (end - buffer_pos_ > max_bytes) return absl::DataLossError("server sent an overlong line");
      std::string line = buffer_.substr(buffer_pos_, end - buffer_pos_);
      buffer_pos_ = nl + 1;
      return line;
    }
    if (buffer_.size() - buffer_pos_ > max_bytes + 2) {
      return absl::DataLossError("server sent an overlong line");
    }
    size_t offset = buffer_.size() - buffer_pos_;
    absl::Status s = Fill(deadline);
    if (!s.ok()) return s;
    scanned = buffer_pos_ + offset;  // Fill may have compacted the buffer
  }
}

absl::StatusOr<std::string> Transport::ReadExact(size_t n, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (buffer_.size() - buffer_pos_ < n) {
    absl::Status s = Fill(deadline);
    if (!s.ok()) return s;
  }
  std::string out = buffer_.substr(buffer_pos_, n);
  buffer_pos_ += n;
  return out;
}

bool Transport::HasBufferedInput() const {
  return buffer_pos_ < buffer_.size() || (ssl_ != nullptr && SSL_pending(ssl_) > 0);
}

bool Transport::IdleConnectionIsStale() {
  if (fd_ < 0 || HasBufferedInput()) return true;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (ssl_ == nullptr) return true;  // EOF or unsolicited bytes
  // TLS: the readable bytes may be a record without application data (e.g. a
  // TLS 1.3 session ticket). Only application data or a close makes it stale.
  ScopedSigpipeBlock no_sigpipe;
  ERR_clear_error();
  char tmp[4096];
  int n = SSL_read(ssl_, tmp, sizeof tmp);
  if (n > 0) {
    buffer_.append(tmp, n);
    return true;
  }
  int err = SSL_get_error(ssl_, n);
  return !(err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE);
}

}  // namespace pocketmail::net
