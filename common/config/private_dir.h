// Directories that hold sockets, mail metadata or secrets: created mode 0700,
// and refused when someone else owns them or group/other can get in.
#ifndef POCKETMAIL_COMMON_CONFIG_PRIVATE_DIR_H_
#define POCKETMAIL_COMMON_CONFIG_PRIVATE_DIR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pocketmail::config {

// mkdir -p with mode 0700, then checks `dir` is a directory owned by us with
// no group/other access. `what` names it in errors ("runtime dir").
absl::Status EnsurePrivateDir(const std::string& dir, absl::string_view what);

// $XDG_STATE_HOME/pocketmail, else ~/.local/state/pocketmail, else "".
std::string DefaultStateDir();

}  // namespace pocketmail::config

#endif  // POCKETMAIL_COMMON_CONFIG_PRIVATE_DIR_H_
