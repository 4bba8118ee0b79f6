#include "common/s3/s3_headers.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/mime/charset.h"
#include "common/mime/rfc2047.h"

namespace pocketmail::s3 {
namespace {

constexpr absl::string_view kMetaPrefix = "x-amz-meta-";

bool IsValidMetadataName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

bool NeedsEncoding(absl::string_view value) {
  if (value.empty()) return false;
  if (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
      value.back() == '\t') {
    return true;
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c >= 0x7F) return true;  // controls (tab included), DEL, 8-bit
  }
  return absl::StrContains(value, "=?");
}

}  // namespace

void ResponseHeaders::AddLine(absl::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty()) return;
  if (absl::StartsWith(line, "HTTP/")) {  // a new response (after 1xx or a retry)
    headers_.clear();
    last_name_.clear();
    return;
  }
  if (line.front() == ' ' || line.front() == '\t') {  // obsolete folding
    if (!last_name_.empty()) {
      absl::StrAppend(&headers_[last_name_], " ", absl::StripAsciiWhitespace(line));
    }
    return;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) return;
  std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
  absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  auto [it, inserted] = headers_.emplace(name, std::string(value));
  if (!inserted) absl::StrAppend(&it->second, ",", value);
  last_name_ = std::move(name);
}

std::string ResponseHeaders::Get(absl::string_view lower_name) const {
  auto it = headers_.find(std::string(lower_name));
  return it == headers_.end() ? "" : it->second;
}

bool ResponseHeaders::Has(absl::string_view lower_name) const {
  return headers_.count(std::string(lower_name)) > 0;
}

absl::StatusOr<ObjectHead> ObjectHeadFromHeaders(const ResponseHeaders& headers) {
  ObjectHead head;
  if (headers.Has("content-length")) {
    if (!absl::SimpleAtoi(headers.Get("content-length"), &head.size) || head.size < 0) {
      return absl::InvalidArgumentError("malformed Content-Length");
    }
  }
  head.etag = headers.Get("etag");
  head.content_type = headers.Get("content-type");
  for (const auto& [name, value] : headers.all()) {
    if (!absl::StartsWith(name, kMetaPrefix) || name.size() == kMetaPrefix.size()) continue;
    absl::StatusOr<std::string> decoded = mime::DecodeRfc2047(value);
    std::string text;
    if (decoded.ok()) {
      text = *std::move(decoded);
    } else {
      mime::AppendSanitizedUtf8(value, &text);
    }
    head.metadata[name.substr(kMetaPrefix.size())] = std::move(text);
  }
  return head;
}

absl::StatusOr<HeaderList> MetadataRequestHeaders(
    const std::map<std::string, std::string>& metadata) {
  HeaderList headers;
  std::set<std::string> seen;
  size_t total = 0;
  for (const auto& [name, value] : metadata) {
    if (!IsValidMetadataName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata name \"", absl::CHexEscape(name), "\" is not [A-Za-z0-9._-]+"));
    }
    std::string lower = absl::AsciiStrToLower(name);
    if (!seen.insert(lower).second) {
      return absl::InvalidArgumentError(absl::StrCat("metadata name \"", lower, "\" given twice"));
    }
    std::string wire = NeedsEncoding(value) ? mime::EncodeRfc2047B(value) : value;
    total += lower.size() + wire.size();
    headers.emplace_back(absl::StrCat(kMetaPrefix, lower), std::move(wire));
  }
  if (total > kMaxMetadataBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata of ", total, " bytes exceeds ", kMaxMetadataBytes));
  }
  return headers;
}

}  // namespace pocketmail::s3
