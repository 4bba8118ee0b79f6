#include "common/smtp/body_encoder.h"

namespace pocketmail::smtp {

void BodyEncoder::Encode(absl::string_view chunk, std::string* out) {
  input_bytes_ += chunk.size();
  out->reserve(out->size() + chunk.size() + chunk.size() / 32 + 8);
  size_t i = 0;
  const size_t n = chunk.size();
  while (i < n) {
    char c = chunk[i];
    if (swallow_lf_) {
      swallow_lf_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\r' || c == '\n') {
      out->append("\r\n");
      at_line_start_ = true;
      swallow_lf_ = (c == '\r');
      ++i;
      continue;
    }
    if (at_line_start_ && c == '.') out->push_back('.');
    at_line_start_ = false;
    // Copy the rest of the line in one go.
    size_t end = i;
    while (end < n && chunk[end] != '\r' && chunk[end] != '\n') ++end;
    out->append(chunk.data() + i, end - i);
    i = end;
  }
}

void BodyEncoder::Finish(std::string* out) {
  if (!at_line_start_) out->append("\r\n");
  out->append(".\r\n");
  at_line_start_ = true;
  swallow_lf_ = false;
}

}  // namespace pocketmail::smtp
