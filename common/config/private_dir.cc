#include "common/config/private_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pocketmail::config {

absl::Status EnsurePrivateDir(const std::string& dir, absl::string_view what) {
  if (dir.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  std::string partial = dir[0] == '/' ? "" : ".";
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    absl::StrAppend(&partial, "/", part);
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          absl::StrCat("mkdir ", partial, ": ", std::strerror(errno)));
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(what, " ", dir, " is not a directory"));
  }
  if (st.st_uid != geteuid()) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " ", dir, " is owned by uid ", st.st_uid));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " ", dir, " is accessible by group/other; chmod 700 it"));
  }
  return absl::OkStatus();
}

std::string DefaultStateDir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x != '\0') {
    return absl::StrCat(x, "/pocketmail");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return absl::StrCat(home, "/.local/state/pocketmail");
  }
  return "";
}

}  // namespace pocketmail::config
