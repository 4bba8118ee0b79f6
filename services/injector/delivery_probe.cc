#include "services/injector/delivery_probe.h"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/imap/imap_client.h"
#include "common/imap/response.h"

namespace pocketmail::injector {
namespace {

ProbeOutcome Failed(absl::string_view step, const absl::Status& s) {
  ProbeOutcome out;
  out.verdict = ProbeVerdict::kFailed;
  out.detail = absl::StrCat(step, ": ", absl::StatusCodeToString(s.code()), ": ", s.message());
  return out;
}

ProbeOutcome Warned(absl::string_view step, const std::vector<std::string>& warnings) {
  ProbeOutcome out;
  out.verdict = ProbeVerdict::kFailed;
  out.detail = absl::StrCat(step, ": the server warned: ", absl::StrJoin(warnings, "; "));
  return out;
}

}  // namespace

const char* ProbeVerdictName(ProbeVerdict v) {
  switch (v) {
    case ProbeVerdict::kFound:
      return "found";
    case ProbeVerdict::kNotFound:
      return "not_found";
    case ProbeVerdict::kNoProbe:
      return "no_probe";
    case ProbeVerdict::kFailed:
      return "failed";
  }
  return "unknown";
}

ProbeOutcome DeliveryProbe::Probe(const std::string& key, const std::string& mailbox,
                                  absl::Time deadline) const {
  if (absl::Status s = imap::ValidateSearchValue(key); !s.ok()) return Failed("key", s);
  const ProbeCredentials::Login* login = credentials_.Find(mailbox);
  if (login == nullptr) {
    ProbeOutcome out;
    out.verdict = ProbeVerdict::kNoProbe;
    out.detail = "no IMAP credentials configured for this mailbox";
    return out;
  }
  deadline = std::min(deadline, options_.clock->Now() + options_.timeout);
  imap::ClientOptions client_options;
  client_options.host = options_.host;
  client_options.port = options_.port;
  client_options.connect_timeout = options_.timeout;
  client_options.command_timeout = options_.timeout;

  absl::StatusOr<std::unique_ptr<imap::ImapClient>> client =
      imap::ImapClient::Connect(client_options, deadline);
  if (!client.ok()) return Failed("connect", client.status());
  imap::ImapClient& imap = **client;
  if (absl::Status s = imap.Login(login->user, login->password); !s.ok()) return Failed("login", s);
  absl::StatusOr<imap::MailboxInfo> box = imap.Examine(options_.folder);
  if (!box.ok()) return Failed("examine", box.status());
  if (!imap.warnings().empty()) return Warned("examine", imap.warnings());
  absl::StatusOr<std::vector<uint32_t>> seqs = imap.SearchHeader(kTraceHeader, key);
  if (!seqs.ok()) return Failed("search", seqs.status());
  if (!imap.warnings().empty()) return Warned("search", imap.warnings());

  ProbeOutcome out;
  int substring_only = 0;
  if (!seqs->empty()) {
    absl::StatusOr<std::map<uint32_t, std::string>> headers =
        imap.FetchHeaderField(*seqs, kTraceHeader);
    if (!headers.ok()) return Failed("fetch", headers.status());
    if (!imap.warnings().empty()) return Warned("fetch", imap.warnings());
    for (const auto& [seq, header] : *headers) {
      std::vector<std::string> values = imap::HeaderFieldValues(header, kTraceHeader);
      if (std::find(values.begin(), values.end(), key) != values.end()) {
        ++out.matches;
      } else {
        ++substring_only;
      }
    }
  }
  imap.Logout().IgnoreError();  // the answer is known; a slow goodbye changes nothing

  out.verdict = out.matches > 0 ? ProbeVerdict::kFound : ProbeVerdict::kNotFound;
  out.detail = absl::StrCat("searched ", box->exists, " messages in ", options_.folder);
  if (substring_only > 0) {
    absl::StrAppend(&out.detail, "; ", substring_only, " carry a different key containing it");
  }
  return out;
}

}  // namespace pocketmail::injector
