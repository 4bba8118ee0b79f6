#include "services/fetcher/message_facts.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "common/mail/utf8.h"
#include "common/mime/rfc2047.h"

namespace pocketmail::fetcher {
namespace {

// A header section larger than this is hostile; a Subject past it is not
// worth finding.
constexpr size_t kMaxHeaderScanBytes = size_t{256} * 1024;
// The ledger keeps 512 bytes of subject; decode a little more than that.
constexpr size_t kMaxSubjectBytes = 2048;

// One line of the header section starting at `pos`, without its line end;
// `next` is where the following line starts.
absl::string_view LineAt(absl::string_view text, size_t pos, size_t* next) {
  size_t lf = text.find('\n', pos);
  size_t end = lf == absl::string_view::npos ? text.size() : lf;
  *next = lf == absl::string_view::npos ? text.size() : lf + 1;
  absl::string_view line = text.substr(pos, end - pos);
  if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
  return line;
}

// Text for a one-line display: valid UTF-8, no control characters, runs of
// white space collapsed (an unfolded or decoded value may hold CR, LF, TAB).
std::string DisplayText(absl::string_view text) {
  std::string utf8 = mail::ToBoundedUtf8(text, kMaxSubjectBytes);
  std::string out;
  for (char c : utf8) {
    bool space = static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ';
    if (space) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

std::string Subject(const s3::Object& object) {
  std::string subject = object.head.MetadataValue("subject");
  if (subject.empty()) {
    // The original Worker wrote no subject: read the message's own field.
    std::optional<std::string> field = HeaderFieldValue(object.body, "Subject");
    if (!field) return "";
    absl::StatusOr<std::string> decoded = mime::DecodeRfc2047(*field);
    subject = decoded.ok() ? *std::move(decoded) : *std::move(field);
  }
  return DisplayText(subject);
}

int64_t ReceivedMs(const s3::ObjectHead& head) {
  int64_t ms = 0;
  return absl::SimpleAtoi(head.MetadataValue("receivedms"), &ms) && ms > 0 ? ms : 0;
}

}  // namespace

std::optional<std::string> HeaderFieldValue(absl::string_view message, absl::string_view name) {
  absl::string_view header = message.substr(0, kMaxHeaderScanBytes);
  std::optional<std::string> value;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t next = 0;
    absl::string_view line = LineAt(header, pos, &next);
    if (line.empty()) break;  // the blank line: the body starts
    bool continuation = line.front() == ' ' || line.front() == '\t';
    if (value && !continuation) break;  // the field we wanted has ended
    if (value) {
      value->append(line.data(), line.size());  // unfold: drop only the line end
    } else if (!continuation) {
      size_t colon = line.find(':');
      // RFC 5322 §4.5.3 (obsolete syntax) allows white space before the colon.
      if (colon != absl::string_view::npos &&
          absl::EqualsIgnoreCase(absl::StripTrailingAsciiWhitespace(line.substr(0, colon)), name)) {
        value = std::string(line.substr(colon + 1));
      }
    }
    pos = next;
  }
  return value;
}

ledger::v1::MessageFacts FactsFor(const s3::Object& object, absl::string_view verified_sha256) {
  ledger::v1::MessageFacts facts;
  facts.set_recipient(mail::ToBoundedUtf8(object.head.MetadataValue("to"), 1024));
  // A `from` that is there but empty is the null reverse-path of a bounce:
  // the record says so instead of looking unknown. No `from` at all (the
  // original Worker) is unknown and stays empty.
  if (object.head.metadata.count("from") != 0) {
    std::string sender = object.head.MetadataValue("from");
    facts.set_sender(sender.empty() ? "<>" : mail::ToBoundedUtf8(sender, 1024));
  }
  facts.set_subject(Subject(object));
  facts.set_sha256(std::string(verified_sha256));
  facts.set_received_ms(ReceivedMs(object.head));
  facts.set_size_bytes(static_cast<int64_t>(object.body.size()));
  return facts;
}

}  // namespace pocketmail::fetcher
