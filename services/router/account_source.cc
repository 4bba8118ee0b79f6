#include "services/router/account_source.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/process/shell_command.h"

namespace pocketmail::router {
namespace {

constexpr size_t kMaxSeedFileBytes = 1 << 20;

std::string FirstLine(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  return std::string(text.substr(0, std::min(text.find('\n'), size_t{200})));
}

}  // namespace

std::vector<std::string> ParseAccountLines(const std::string& text, bool comments) {
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (comments) {
      for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
          line = line.substr(0, i);
          break;
        }
      }
    }
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) names.emplace_back(line);
  }
  return names;
}

CommandAccountSource::CommandAccountSource(std::string command, absl::Duration timeout)
    : command_(std::move(command)), timeout_(timeout) {}

absl::StatusOr<std::vector<std::string>> CommandAccountSource::ListAccounts() {
  process::CommandOptions limits;
  limits.timeout = timeout_;
  absl::StatusOr<process::CommandResult> result = process::RunShellCommand(command_, limits);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat("account command: ", result.status().message()));
  }
  if (!result->succeeded()) {
    std::string how = result->term_signal != 0
                          ? absl::StrCat("was killed by signal ", result->term_signal)
                          : absl::StrCat("exited with status ", result->exit_code);
    std::string why = FirstLine(result->stderr_text);
    return absl::UnavailableError(
        absl::StrCat("account command ", how, why.empty() ? "" : ": ", why));
  }
  return ParseAccountLines(result->stdout_text, /*comments=*/false);
}

SeedFileAccountSource::SeedFileAccountSource(std::string path) : path_(std::move(path)) {}

absl::StatusOr<std::vector<std::string>> SeedFileAccountSource::ListAccounts() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string message = absl::StrCat("cannot read users file ", path_, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::UnavailableError(message);
  }
  std::string text(kMaxSeedFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return absl::UnavailableError(absl::StrCat("cannot read users file ", path_));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxSeedFileBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("users file ", path_, " is over 1 MiB"));
  }
  return ParseAccountLines(text, /*comments=*/true);
}

}  // namespace pocketmail::router
