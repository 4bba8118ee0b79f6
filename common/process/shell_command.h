// Runs a shell command line (`/bin/sh -c COMMAND`) with a deadline and
// captures its output. The child gets stdin from /dev/null, default signal
// dispositions (the service ignores SIGPIPE; the child must not inherit that)
// and its own process group, so on timeout the whole group — the shell and
// anything it started, e.g. proot and maddy — is SIGKILLed. The child is
// always reaped and every pipe closed: no zombies, no fd leaks. Stragglers
// left in the group after the shell exits are killed too.
//
// Thread-safe (no shared state); blocks the calling thread.
#ifndef POCKETMAIL_COMMON_PROCESS_SHELL_COMMAND_H_
#define POCKETMAIL_COMMON_PROCESS_SHELL_COMMAND_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pocketmail::process {

struct CommandResult {
  int exit_code = -1;   // exit status when the shell exited normally, else -1
  int term_signal = 0;  // the signal that killed it, else 0
  std::string stdout_text;
  std::string stderr_text;  // at most max_stderr_bytes; the rest is dropped
  bool succeeded() const { return exit_code == 0; }
};

struct CommandOptions {
  absl::Duration timeout = absl::Seconds(10);
  size_t max_stdout_bytes = 4 << 20;
  size_t max_stderr_bytes = 4096;
  // Added to (or overriding) the inherited environment, e.g. MAIL_ALERT_MSG:
  // data for the command goes here, never into the command line.
  std::map<std::string, std::string> extra_env;
};

// DEADLINE_EXCEEDED on timeout, RESOURCE_EXHAUSTED when stdout exceeds its
// limit (the child is killed in both cases), INTERNAL when the process can't
// be started. A non-zero exit is not an error here: see CommandResult.
absl::StatusOr<CommandResult> RunShellCommand(const std::string& command,
                                              const CommandOptions& options = {});

}  // namespace pocketmail::process

#endif  // POCKETMAIL_COMMON_PROCESS_SHELL_COMMAND_H_
