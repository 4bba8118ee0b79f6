#include "common/log/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pocketmail::log {
namespace {

std::mutex g_mu;
std::string* g_service = new std::string("pocketmail");
std::atomic<int> g_min_level{[] {
  const char* env = std::getenv("POCKETMAIL_LOG_LEVEL");
  if (env == nullptr) return static_cast<int>(Level::kInfo);
  std::string v = absl::AsciiStrToLower(env);
  if (v == "debug") return static_cast<int>(Level::kDebug);
  if (v == "warn") return static_cast<int>(Level::kWarn);
  if (v == "error") return static_cast<int>(Level::kError);
  return static_cast<int>(Level::kInfo);
}()};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
  }
  return false;
}

void AppendValue(std::string* out, absl::string_view v) {
  if (!NeedsQuotes(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (unsigned char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(out, "\\x%02x", c);
        } else {
          out->push_back(static_cast<char>(c));  // UTF-8 passes through
        }
    }
  }
  out->push_back('"');
}

}  // namespace

void SetService(absl::string_view name) {
  std::lock_guard<std::mutex> lock(g_mu);
  *g_service = std::string(name);
}

void SetMinLevel(Level level) { g_min_level = static_cast<int>(level); }

std::string FormatLine(Level level, absl::string_view service, absl::string_view msg,
                       std::initializer_list<Field> fields, absl::string_view timestamp) {
  std::string line;
  line.reserve(128);
  absl::StrAppend(&line, "ts=", timestamp, " level=", LevelName(level), " svc=");
  AppendValue(&line, service);
  line.append(" msg=");
  AppendValue(&line, msg);
  for (const Field& f : fields) {
    line.push_back(' ');
    line.append(f.key);
    line.push_back('=');
    AppendValue(&line, f.value);
  }
  return line;
}

void Write(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    line = FormatLine(level, *g_service, msg, fields, ts);
  }
  line.push_back('\n');
  // One write(2) per line so concurrent processes sharing stderr don't interleave.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace pocketmail::log
