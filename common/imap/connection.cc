#include "common/imap/connection.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pocketmail::imap {
namespace {

int RemainingMs(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms < 0) return 0;
  return ms > (1 << 30) ? (1 << 30) : static_cast<int>(ms);
}

// Waits until `fd` is readable/writable. OK also when poll reports an error
// condition: the following read/write reports it precisely.
absl::Status WaitFor(int fd, short events, absl::Time deadline, absl::string_view what) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("poll: ", std::strerror(errno)));
    if (n == 0) return absl::DeadlineExceededError(absl::StrCat("timed out ", what));
    return absl::OkStatus();
  }
}

absl::Status ConnectFd(int fd, const addrinfo* ai, absl::Time deadline, const std::string& what) {
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return absl::OkStatus();
  if (errno != EINPROGRESS && errno != EINTR) {
    return absl::UnavailableError(absl::StrCat("connect to ", what, ": ", std::strerror(errno)));
  }
  absl::Status s = WaitFor(fd, POLLOUT, deadline, absl::StrCat("connecting to ", what));
  if (!s.ok()) return s;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    return absl::UnavailableError(absl::StrCat("connect to ", what, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(const std::string& host, int port,
                                                                absl::Time deadline) {
  const std::string what = absl::StrCat(host, ":", port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0)
    return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  absl::Status last = absl::UnavailableError(absl::StrCat("no address for ", host));
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
      continue;
    }
    last = ConnectFd(fd, ai, deadline, what);
    if (last.ok()) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo(res);
      return std::unique_ptr<Connection>(new Connection(fd));
    }
    close(fd);
  }
  freeaddrinfo(res);
  return last;
}

Connection::~Connection() { Close(); }

void Connection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buffer_.clear();
  pos_ = 0;
}

absl::Status Connection::WriteAll(absl::string_view data, absl::Time deadline) {
  while (!data.empty()) {
    if (fd_ < 0) return absl::UnavailableError("connection is closed");
    ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::Status s = WaitFor(fd_, POLLOUT, deadline, "writing to the server");
      if (!s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(absl::StrCat("write to server: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Connection::Fill(absl::Time deadline) {
  if (fd_ < 0) return absl::UnavailableError("connection is closed");
  if (pos_ > 0 && pos_ * 2 >= buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  char tmp[16384];
  while (true) {
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buffer_.append(tmp, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by the server");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat("read from server: ", std::strerror(errno)));
    }
    absl::Status s = WaitFor(fd_, POLLIN, deadline, "waiting for the server's response");
    if (!s.ok()) return s;
  }
}

absl::StatusOr<std::string> Connection::ReadLine(size_t max_bytes, absl::Time deadline) {
  size_t scanned = 0;  // bytes after pos_ known to hold no LF
  while (true) {
    size_t nl = buffer_.find('\n', pos_ + scanned);
    if (nl != std::string::npos) {
      size_t end = nl;
      if (end > pos_ && buffer_[end - 1] == '\r') --end;
      if (end - pos_ > max_bytes) return absl::DataLossError("server sent an overlong line");
      std::string line = buffer_.substr(pos_, end - pos_);
      pos_ = nl + 1;
      return line;
    }
    scanned = buffer_.size() - pos_;
    if (scanned > max_bytes + 1) return absl::DataLossError("server sent an overlong line");
    absl::Status s = Fill(deadline);
    if (!s.ok()) return s;
  }
}

absl::StatusOr<std::string> Connection::ReadExact(size_t n, absl::Time deadline) {
  while (buffer_.size() - pos_ < n) {
    absl::Status s = Fill(deadline);
    if (!s.ok()) return s;
  }
  std::string out = buffer_.substr(pos_, n);
  pos_ += n;
  return out;
}

}  // namespace pocketmail::imap
