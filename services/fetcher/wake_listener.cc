#include "services/fetcher/wake_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace pocketmail::fetcher {
namespace {

constexpr size_t kMaxRequestBytes = 8192;  // a ping is ~150 bytes
constexpr int kReadTimeoutMs = 5000;

bool AllDigits(absl::string_view s) {
  if (s.empty() || s.size() > 12) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

void Reply(int fd, int code, absl::string_view reason) {
  std::string response = absl::StrCat("HTTP/1.1 ", code, " ", reason,
                                      "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  ssize_t unused = ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  (void)unused;
}

}  // namespace

std::string SignWakePing(absl::string_view secret, absl::string_view timestamp,
                         absl::string_view key) {
  std::string message = absl::StrCat(timestamp, "\n", key);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back("0123456789abcdef"[mac[i] >> 4]);
    hex.push_back("0123456789abcdef"[mac[i] & 15]);
  }
  return hex;
}

absl::StatusOr<std::string> VerifyWakePing(absl::string_view timestamp_header,
                                           absl::string_view signature_header,
                                           absl::string_view body, absl::string_view secret,
                                           absl::Time now) {
  if (!IsHex64(signature_header))
    return absl::PermissionDeniedError("missing or malformed signature");
  if (!AllDigits(timestamp_header)) return absl::InvalidArgumentError("bad timestamp header");
  int64_t ts = 0;
  absl::SimpleAtoi(timestamp_header, &ts);
  if (absl::AbsDuration(now - absl::FromUnixSeconds(ts)) > kWakeFreshness) {
    return absl::PermissionDeniedError("timestamp outside the 5-minute window");
  }
  google::protobuf::Struct parsed;
  if (!google::protobuf::util::JsonStringToMessage(std::string(body), &parsed).ok()) {
    return absl::InvalidArgumentError("body is not JSON");
  }
  const auto& fields = parsed.fields();
  auto key_it = fields.find("key");
  auto ts_it = fields.find("ts");
  if (key_it == fields.end() || !key_it->second.has_string_value() || ts_it == fields.end() ||
      !ts_it->second.has_number_value() ||
      static_cast<int64_t>(ts_it->second.number_value()) != ts) {
    return absl::InvalidArgumentError("body must be {\"key\": string, \"ts\": <the header's ts>}");
  }
  const std::string& key = key_it->second.string_value();
  std::string expected = SignWakePing(secret, timestamp_header, key);
  std::string given = absl::AsciiStrToLower(signature_header);
  if (CRYPTO_memcmp(expected.data(), given.data(), expected.size()) != 0) {
    return absl::PermissionDeniedError("signature mismatch");
  }
  return key;
}

absl::StatusOr<std::unique_ptr<WakeListener>> WakeListener::Start(
    const std::string& address, std::string secret, std::function<void(const std::string&)> on_wake,
    Clock* clock) {
  if (secret.size() < 16)
    return absl::InvalidArgumentError("WAKE_SECRET must be at least 16 bytes");
  std::vector<std::string> parts = absl::StrSplit(address, absl::MaxSplits(':', 1));
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError("WAKE_LISTEN must be 127.0.0.1:PORT");
  }
  if (parts[0] != "127.0.0.1" && parts[0] != "localhost") {
    // The tunnel connector runs on the phone; nothing else should reach this port.
    return absl::InvalidArgumentError("WAKE_LISTEN is loopback-only");
  }
  auto l = std::unique_ptr<WakeListener>(new WakeListener());
  l->secret_ = std::move(secret);
  l->on_wake_ = std::move(on_wake);
  l->clock_ = clock;
  l->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(l->listen_fd_, 16) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", std::strerror(errno)));
  }
  socklen_t len = sizeof addr;
  getsockname(l->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  l->port_ = ntohs(addr.sin_port);
  if (pipe2(l->stop_pipe_, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  l->thread_ = std::thread([p = l.get()] { p->Serve(); });
  log::Info("wake listener up", {{"address", absl::StrCat("127.0.0.1:", l->port_)}});
  return l;
}

WakeListener::~WakeListener() {
  if (thread_.joinable()) {
    char b = 1;
    ssize_t unused = ::write(stop_pipe_[1], &b, 1);
    (void)unused;
    thread_.join();
  }
  for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]})
    if (fd >= 0) close(fd);
}

void WakeListener::Serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // One connection at a time: pings are tiny and rare; a slow client is
    // bounded by the read timeout.
    HandleConnection(fd);
    close(fd);
  }
}

void WakeListener::HandleConnection(int fd) {
  std::string request;
  size_t header_end = std::string::npos;
  size_t content_length = 0;
  char buf[2048];
  while (true) {
    if (header_end != std::string::npos && request.size() >= header_end + 4 + content_length) break;
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, kReadTimeoutMs) <= 0) return Reply(fd, 408, "Request Timeout");
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    request.append(buf, n);
    if (request.size() > kMaxRequestBytes) return Reply(fd, 413, "Payload Too Large");
    if (header_end == std::string::npos &&
        (header_end = request.find("\r\n\r\n")) != std::string::npos) {
      for (absl::string_view line :
           absl::StrSplit(absl::string_view(request).substr(0, header_end), "\r\n")) {
        if (absl::StartsWithIgnoreCase(line, "content-length:")) {
          if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &content_length) ||
              content_length > kMaxRequestBytes) {
            return Reply(fd, 400, "Bad Request");
          }
        }
      }
    }
  }
  absl::string_view head = absl::string_view(request).substr(0, header_end);
  absl::string_view body = absl::string_view(request).substr(header_end + 4, content_length);
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  if (lines.empty() || !absl::StartsWith(lines[0], "POST "))
    return Reply(fd, 405, "Method Not Allowed");
  std::string ts, sig;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "x-pocketmail-timestamp") ts = value;
    if (name == "x-pocketmail-signature") sig = value;
  }
  auto key = VerifyWakePing(ts, sig, body, secret_, clock_->Now());
  if (!key.ok()) {
    log::Warn("wake ping rejected", {{"error", key.status().message()}});
    return Reply(fd, absl::IsPermissionDenied(key.status()) ? 401 : 400, "Rejected");
  }
  on_wake_(*key);  // only signals the poll loop, so the Worker isn't kept waiting
  Reply(fd, 204, "No Content");
}

}  // namespace pocketmail::fetcher
