#include "common/config/settings.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace pocketmail::config {
namespace {

std::string FlagName(absl::string_view env_name) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(env_name), {{"_", "-"}});
}

// A secrets file readable by anyone but its owner is refused outright: the
// installer writes them 0600, so anything looser means something went wrong.
absl::Status CheckPrivate(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, " is accessible by group/other (mode ",
                                                    absl::StrFormat("%04o", st.st_mode & 07777),
                                                    "); chmod 600 it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Unquote(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 &&
      ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\''))) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ReadEnvFile(const std::string& path) {
  if (absl::Status s = CheckPrivate(path); !s.ok()) return s;
  auto content = ReadWholeFile(path);
  if (!content.ok()) return content.status();
  std::map<std::string, std::string> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(*content, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    absl::ConsumePrefix(&line, "export ");
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": expected KEY=VALUE"));
    }
    out[std::string(absl::StripAsciiWhitespace(line.substr(0, eq)))] = Unquote(line.substr(eq + 1));
  }
  return out;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  if (absl::Status s = CheckPrivate(path); !s.ok()) return s;
  auto content = ReadWholeFile(path);
  if (!content.ok()) return content.status();
  std::string secret(absl::StripAsciiWhitespace(*content));
  if (secret.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  return secret;
}

absl::StatusOr<Settings> Settings::Load(int argc, char** argv, const std::vector<Spec>& specs) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != absl::string_view::npos)
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  auto s = LoadFrom(args, env, specs);
  if (absl::IsNotFound(s.status()) && absl::StartsWith(s.status().message(), "usage")) {
    return absl::NotFoundError(Usage(argc > 0 ? argv[0] : "service", specs));
  }
  return s;
}

absl::StatusOr<Settings> Settings::LoadFrom(const std::vector<std::string>& args,
                                            const std::map<std::string, std::string>& env,
                                            const std::vector<Spec>& specs) {
  Settings settings;
  std::map<std::string, const Spec*> by_flag;
  for (const Spec& spec : specs) {
    settings.values_[spec.name] = Value{spec.default_value, false, spec.secret};
    by_flag[FlagName(spec.name)] = &spec;
  }

  std::map<std::string, std::string> flags;
  std::vector<std::string> env_files;
  if (auto it = env.find("POCKETMAIL_ENV_FILES"); it != env.end()) {
    for (absl::string_view f : absl::StrSplit(it->second, ':', absl::SkipEmpty()))
      env_files.emplace_back(f);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") return absl::NotFoundError("usage");
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument: ", arg));
    }
    std::string name, value;
    size_t eq = arg.find('=');
    if (eq != absl::string_view::npos) {
      name = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
    } else {
      name = std::string(arg);
      if (i + 1 >= args.size())
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
    }
    if (name == "env-file") {
      env_files.push_back(value);
      continue;
    }
    auto spec = by_flag.find(name);
    if (spec == by_flag.end())
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    if (spec->second->secret) {
      // Refuse even to echo the value back.
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " is a secret and is never accepted on the command line; set ",
                       spec->second->name, " in the environment or a 0600 env file"));
    }
    flags[spec->second->name] = value;
  }

  // Lowest precedence first, so later layers overwrite.
  for (const std::string& file : env_files) {
    auto kv = ReadEnvFile(file);
    if (!kv.ok()) return kv.status();
    for (const auto& [k, v] : *kv) {
      auto it = settings.values_.find(k);
      if (it != settings.values_.end()) it->second = Value{v, true, it->second.secret};
    }
  }
  for (auto& [name, value] : settings.values_) {
    if (auto it = env.find(name); it != env.end()) value = Value{it->second, true, value.secret};
  }
  for (const auto& [name, v] : flags) settings.values_[name] = Value{v, true, false};
  return settings;
}

std::string Settings::Get(absl::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? "" : it->second.value;
}

bool Settings::IsSet(absl::string_view name) const {
  auto it = values_.find(name);
  return it != values_.end() && it->second.is_set;
}

absl::StatusOr<int64_t> Settings::GetInt(absl::string_view name) const {
  std::string v = Get(name);
  int64_t out;
  if (!absl::SimpleAtoi(v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not an integer: \"", v, "\""));
  }
  return out;
}

absl::StatusOr<int64_t> Settings::GetIntInRange(absl::string_view name, int64_t min,
                                                int64_t max) const {
  absl::StatusOr<int64_t> value = GetInt(name);
  if (value.ok() && (*value < min || *value > max)) {
    const std::string range = max == std::numeric_limits<int64_t>::max()
                                  ? absl::StrCat(">= ", min)
                                  : absl::StrCat(min, "..", max);
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be ", range, " (got ", *value, ")"));
  }
  return value;
}

absl::StatusOr<int64_t> Settings::GetIntAtLeast(absl::string_view name, int64_t min) const {
  return GetIntInRange(name, min, std::numeric_limits<int64_t>::max());
}

absl::StatusOr<double> Settings::GetDouble(absl::string_view name) const {
  std::string v = Get(name);
  double out;
  if (!absl::SimpleAtod(v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not a number: \"", v, "\""));
  }
  return out;
}

absl::StatusOr<bool> Settings::GetBool(absl::string_view name) const {
  std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(Get(name)));
  if (v.empty() || v == "0" || v == "false" || v == "no" || v == "off") return false;
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  return absl::InvalidArgumentError(absl::StrCat(name, ": not a boolean: \"", v, "\""));
}

std::vector<std::string> Settings::Describe() const {
  std::vector<std::string> out;
  for (const auto& [name, v] : values_) {
    if (v.secret) {
      out.push_back(absl::StrCat(name, "=", v.value.empty() ? "(unset)" : "(set)"));
    } else {
      out.push_back(absl::StrCat(name, "=", v.value));
    }
  }
  return out;
}

std::string Settings::Usage(absl::string_view program, const std::vector<Spec>& specs) {
  std::string out =
      absl::StrCat("usage: ", program, " [--flag=value ...] [--env-file=PATH ...]\n\n",
                   "Each setting is read from the environment (NAME) and can be\n",
                   "overridden by --name-in-lowercase. Secrets are never flags.\n\n");
  for (const Spec& s : specs) {
    absl::StrAppend(&out, "  ", s.name, s.secret ? "" : absl::StrCat(" / --", FlagName(s.name)),
                    s.default_value.empty() ? "" : absl::StrCat(" (default ", s.default_value, ")"),
                    s.secret ? " [secret: env or 0600 env file only]" : "", "\n      ", s.help,
                    "\n");
  }
  return out;
}

}  // namespace pocketmail::config
