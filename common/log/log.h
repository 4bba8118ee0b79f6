// One-line structured logs on stderr, in logfmt:
//   ts=2026-11-24T04:50:36.123Z level=info svc=fetcher msg="pass finished" listed=3
// Values are quoted when they contain spaces, quotes or '='; control characters
// (CR, LF, NUL...) are escaped so one event is always one line, even when a value
// comes from hostile mail metadata. Thread-safe. Never log secrets.
#ifndef POCKETMAIL_COMMON_LOG_LOG_H_
#define POCKETMAIL_COMMON_LOG_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace pocketmail::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// A key=value pair. Numbers and bools convert implicitly.
struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(v) {}
  Field(absl::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(absl::string_view k, long long v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, long v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, unsigned long v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, unsigned v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, double v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  std::string key;
  std::string value;
};

// Sets the `svc=` name stamped on every line (once, at start-up).
void SetService(absl::string_view name);
// Lines below this level are dropped. Default kInfo; POCKETMAIL_LOG_LEVEL=debug.
void SetMinLevel(Level level);

void Write(Level level, absl::string_view msg, std::initializer_list<Field> fields = {});

inline void Debug(absl::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, msg, f);
}
inline void Info(absl::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, msg, f);
}
inline void Warn(absl::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, msg, f);
}
inline void Error(absl::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kError, msg, f);
}

// Formats one line without the trailing newline (exposed for tests).
std::string FormatLine(Level level, absl::string_view service, absl::string_view msg,
                       std::initializer_list<Field> fields, absl::string_view timestamp);

}  // namespace pocketmail::log

#endif  // POCKETMAIL_COMMON_LOG_LOG_H_
