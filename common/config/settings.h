// Service configuration: the environment names of the original installer's
// .env (docs/DESIGN.md "Configuration names"), overridable by command-line flags.
//
// Precedence, highest first: --flags, the process environment, KEY=VALUE env
// files (--env-file=PATH, repeatable, or POCKETMAIL_ENV_FILES=a:b), defaults.
// The flag for MAIL_POLL is --mail-poll (lowercase, '_' → '-').
//
// Secrets (Spec::secret) are never accepted on argv: a flag naming one is an
// error, so a secret can't leak through /proc/<pid>/cmdline or `ps`. They come
// from the environment or from env files, which must be mode 0600 or stricter.
#ifndef POCKETMAIL_COMMON_CONFIG_SETTINGS_H_
#define POCKETMAIL_COMMON_CONFIG_SETTINGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::config {

struct Spec {
  std::string name;           // environment name, e.g. "MAIL_POLL"
  std::string default_value;  // used when nothing else sets it
  std::string help;           // one line for --help
  bool secret = false;        // never from argv, never logged
};

class Settings {
 public:
  // Parses argv (argv[0] skipped) against `specs`. Unknown flags, flags naming a
  // secret, and env files that are readable by group/other are errors.
  // `--help` returns a NotFound status whose message is the usage text.
  static absl::StatusOr<Settings> Load(int argc, char** argv, const std::vector<Spec>& specs);
  // For tests: explicit environment instead of the process environment.
  static absl::StatusOr<Settings> LoadFrom(const std::vector<std::string>& args,
                                           const std::map<std::string, std::string>& env,
                                           const std::vector<Spec>& specs);

  // Value of a declared name. A name that was not declared is a programming
  // error and returns "".
  std::string Get(absl::string_view name) const;
  // Parses the value; InvalidArgument names the setting and the bad value.
  absl::StatusOr<int64_t> GetInt(absl::string_view name) const;
  // GetInt, and InvalidArgument "NAME must be MIN..MAX (got V)" for a value
  // outside [min, max]; GetIntAtLeast has no upper bound ("NAME must be >= MIN").
  absl::StatusOr<int64_t> GetIntInRange(absl::string_view name, int64_t min, int64_t max) const;
  absl::StatusOr<int64_t> GetIntAtLeast(absl::string_view name, int64_t min) const;
  absl::StatusOr<double> GetDouble(absl::string_view name) const;
  // true/false, 1/0, yes/no, on/off (case-insensitive); "" is false.
  absl::StatusOr<bool> GetBool(absl::string_view name) const;
  bool IsSet(absl::string_view name) const;  // set by flag, env or file

  // "NAME=value" lines for start-up logs, secrets shown as "(set)"/"(unset)".
  std::vector<std::string> Describe() const;

  static std::string Usage(absl::string_view program, const std::vector<Spec>& specs);

 private:
  struct Value {
    std::string value;
    bool is_set = false;
    bool secret = false;
  };
  std::map<std::string, Value, std::less<>> values_;
};

// Reads a KEY=VALUE file (comments with '#', optional `export `, optional
// single/double quotes). Fails when the file is group/other-accessible.
absl::StatusOr<std::map<std::string, std::string>> ReadEnvFile(const std::string& path);

// Reads a whole-file secret (e.g. the gRPC bearer token), trimming whitespace.
// Fails when the file is group/other-accessible or empty.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace pocketmail::config

#endif  // POCKETMAIL_COMMON_CONFIG_SETTINGS_H_
