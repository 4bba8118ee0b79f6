#include "services/injector/probe_credentials.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pocketmail::injector {
namespace {

absl::string_view Unquote(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return v;
}

}  // namespace

absl::Status ProbeCredentials::Set(const std::string& mailbox, const std::string& password) {
  if (mailbox.empty()) return absl::InvalidArgumentError("mailbox is empty");
  for (char c : mailbox) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError("mailbox holds whitespace or control characters");
    }
  }
  if (password.empty()) return absl::InvalidArgumentError("password is empty");
  by_lower_[absl::AsciiStrToLower(mailbox)] = Login{mailbox, password};
  return absl::OkStatus();
}

const ProbeCredentials::Login* ProbeCredentials::Find(absl::string_view mailbox) const {
  auto it = by_lower_.find(absl::AsciiStrToLower(mailbox));
  return it == by_lower_.end() ? nullptr : &it->second;
}

std::vector<std::string> ProbeCredentials::Mailboxes() const {
  std::vector<std::string> out;
  for (const auto& [lower, login] : by_lower_) out.push_back(login.user);
  return out;
}

absl::Status ParseProbeCredentials(absl::string_view content, absl::string_view source,
                                   ProbeCredentials* out) {
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": expected mailbox=password"));
    }
    absl::Status s = out->Set(std::string(absl::StripAsciiWhitespace(line.substr(0, eq))),
                              std::string(Unquote(line.substr(eq + 1))));
    if (!s.ok())
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status LoadProbeCredentialsFile(const std::string& path, ProbeCredentials* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, " is accessible by group/other (mode ",
                                                    absl::StrFormat("%04o", st.st_mode & 07777),
                                                    "); chmod 600 it"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseProbeCredentials(ss.str(), path, out);
}

}  // namespace pocketmail::injector
