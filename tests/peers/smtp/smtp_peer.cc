#include "tests/peers/smtp/smtp_peer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace pocketmail::testing {
namespace {

absl::Status WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  if (chmod(path.c_str(), mode) != 0) return absl::InternalError(absl::StrCat("chmod ", path));
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::Status MakeSelfSignedCert(const std::string& cert, const std::string& key) {
  std::string cmd = absl::StrCat(
      "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
      " -keyout '", key, "' -out '", cert, "' -days 2 -subj /CN=localhost",
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) return absl::InternalError("openssl req failed");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SmtpPeer>> SmtpPeer::Start(const std::string& scratch_dir,
                                                          const std::vector<std::string>& mailboxes,
                                                          const std::string& user,
                                                          const std::string& pass,
                                                          const SmtpPeerOptions& options) {
  std::unique_ptr<SmtpPeer> peer(new SmtpPeer());
  std::string tmpl = scratch_dir + "/smtp-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  peer->dir_ = tmpl;
  peer->maildir_root_ = peer->dir_ + "/maildir";
  const std::string creds = peer->dir_ + "/credentials.env";
  const std::string boxes = peer->dir_ + "/mailboxes";
  if (auto s = WriteFile(creds, absl::StrCat("USER=", user, "\nPASS=", pass, "\n"), 0600);
      !s.ok()) {
    return s;
  }
  if (auto s = WriteFile(boxes, absl::StrJoin(mailboxes, "\n") + "\n", 0644); !s.ok()) return s;

  std::vector<std::string> argv = {
      "/usr/bin/python3",  RunfilePath("tests/peers/smtp/smtp_peer.py"),
      "--credentials",     creds,
      "--mailboxes",       boxes,
      "--maildir",         peer->maildir_root_,
      "--auth-mechanisms", options.auth_mechanisms};
  if (options.max_size > 0) {
    argv.insert(argv.end(), {"--max-size", std::to_string(options.max_size)});
  }
  if (options.tls) {
    peer->ca_file_ = peer->dir_ + "/cert.pem";
    const std::string key = peer->dir_ + "/key.pem";
    if (auto s = MakeSelfSignedCert(peer->ca_file_, key); !s.ok()) return s;
    argv.insert(argv.end(), {"--tls-cert", peer->ca_file_, "--tls-key", key});
  }
  if (options.lmtp) {
    peer->lmtp_socket_ = peer->dir_ + "/lmtp.sock";
    argv.insert(argv.end(), {"--lmtp-socket", peer->lmtp_socket_});
  }
  absl::StatusOr<PeerProcess> process = PeerProcess::StartAndWaitReady(argv, {});
  if (!process.ok()) return process.status();
  peer->process_ = std::move(*process);
  if (!absl::SimpleAtoi(peer->process_.field("port"), &peer->port_) ||
      !absl::SimpleAtoi(peer->process_.field("control_port"), &peer->control_port_)) {
    return absl::InternalError("smtp_peer.py printed no port");
  }
  return peer;
}

std::vector<std::string> SmtpPeer::Messages(const std::string& mailbox) const {
  std::filesystem::path dir =
      std::filesystem::path(maildir_root_) / absl::AsciiStrToLower(mailbox) / "new";
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  // Names start with the delivery time ("1795497302.020901.P..."), so they sort in order.
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const std::string& n : names) out.push_back(ReadFile((dir / n).string()));
  return out;
}

int SmtpPeer::Count(const std::string& mailbox) const {
  std::filesystem::path dir =
      std::filesystem::path(maildir_root_) / absl::AsciiStrToLower(mailbox) / "new";
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); ++it) {
    ++n;
  }
  return n;
}

std::vector<std::string> SmtpPeer::FindByKey(const std::string& mailbox,
                                             const std::string& key) const {
  std::vector<std::string> out;
  for (std::string& m : Messages(mailbox)) {
    if (HeaderValue(m, "X-Pocketmail-Key") == key) out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::string> SmtpPeer::Control(const std::string& line) {
  absl::StatusOr<std::string> exchanged = ControlExchange(control_port_, line, "SMTP peer");
  if (!exchanged.ok()) return exchanged.status();
  const std::string& reply = *exchanged;
  if (!absl::StartsWith(reply, "OK")) {
    return absl::InternalError(absl::StrCat("control '", line, "' → '", reply, "'"));
  }
  return reply;
}

absl::Status SmtpPeer::SetFaults(const std::string& knobs) {
  return Control("SET " + knobs).status();
}

absl::Status SmtpPeer::ResetFaults() { return Control("RESET").status(); }

absl::StatusOr<std::map<std::string, int64_t>> SmtpPeer::Stats() {
  absl::StatusOr<std::string> reply = Control("STATS");
  if (!reply.ok()) return reply.status();
  std::map<std::string, int64_t> stats;
  for (absl::string_view kv : absl::StrSplit(reply->substr(2), ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    int64_t v = 0;
    if (absl::SimpleAtoi(p.second, &v)) stats[p.first] = v;
  }
  return stats;
}

int SmtpPeer::Stop() { return process_.Stop(); }

std::string HeaderValue(const std::string& message, const std::string& name) {
  size_t end = message.find("\r\n\r\n");
  absl::string_view head = absl::string_view(message).substr(0, end);
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view l = lines[i];
    size_t colon = l.find(':');
    if (colon == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(l.substr(0, colon)), name)) continue;
    std::string value(l.substr(colon + 1));
    while (i + 1 < lines.size() && !lines[i + 1].empty() &&
           (lines[i + 1][0] == ' ' || lines[i + 1][0] == '\t')) {
      absl::StrAppend(&value, " ", lines[++i]);
    }
    return std::string(absl::StripAsciiWhitespace(value));
  }
  return "";
}

}  // namespace pocketmail::testing
