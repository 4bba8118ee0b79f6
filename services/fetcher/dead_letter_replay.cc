#include "services/fetcher/dead_letter_replay.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "services/fetcher/object_key.h"

namespace pocketmail::fetcher {

namespace fetcherpb = ::pocketmail::fetcher::v1;
using ledgerpb::State;

fetcherpb::ReplayOutcome DeadLetterReplay::ReplayOne(const std::string& key) {
  fetcherpb::ReplayOutcome out;
  absl::string_view name = key;
  if (!absl::ConsumePrefix(&name, kFailedPrefix)) absl::ConsumePrefix(&name, kPendingPrefix);
  const std::string failed_key = absl::StrCat(kFailedPrefix, name);
  const std::string pending_key = absl::StrCat(kPendingPrefix, name);
  out.set_key(pending_key);
  auto fail = [&](absl::string_view why) {
    out.set_ok(false);
    out.set_error(std::string(why));
    log::Warn("replay failed", {{"key", pending_key}, {"error", why}});
    return out;
  };
  if (name.empty()) return fail("empty key");

  auto object = store_.GetObject(failed_key);
  if (!object.ok()) return fail(absl::StrCat("get ", failed_key, ": ", object.status().message()));

  ledgerpb::BeginRequest begin;  // a ledger restored from an older backup may lack the row
  begin.set_key(pending_key);
  begin.set_size_bytes(object->head.size);
  auto row = ledger_.Begin(begin);
  if (!row.ok()) return fail(absl::StrCat("ledger: ", row.status().message()));
  State state = row->message().state();
  if (state == State::STATE_DEAD_LETTERED) {
    ledgerpb::AdvanceRequest req;
    req.set_key(pending_key);
    req.set_from_state(State::STATE_DEAD_LETTERED);
    req.set_to_state(State::STATE_PENDING);
    auto moved = ledger_.Advance(req);
    if (!moved.ok()) return fail(absl::StrCat("ledger: ", moved.status().message()));
  } else if (state != State::STATE_PENDING) {
    return fail(absl::StrCat("ledger says ", ledgerpb::State_Name(state), "; not replaying"));
  }

  std::map<std::string, std::string> metadata = object->head.metadata;
  metadata.erase("reason");
  metadata.erase("failedms");
  absl::Status copied =
      store_.CopyObject(failed_key, pending_key, s3::MetadataDirective::kReplace, metadata);
  if (!copied.ok()) return fail(absl::StrCat("copy to pending/: ", copied.message()));
  absl::Status deleted = store_.DeleteObject(failed_key);
  if (!deleted.ok() && !absl::IsNotFound(deleted)) {
    return fail(absl::StrCat("delete ", failed_key, ": ", deleted.message()));
  }
  log::Info("replayed dead letter", {{"key", pending_key}});
  out.set_ok(true);
  return out;
}

fetcherpb::ReplayResponse DeadLetterReplay::ReplayAll() {
  fetcherpb::ReplayResponse response;
  std::string token;
  std::vector<std::string> keys;
  do {
    auto page = store_.ListObjectsV2(std::string(kFailedPrefix), token, 1000);
    if (!page.ok()) {
      auto* o = response.add_outcomes();
      o->set_key(std::string(kFailedPrefix));
      o->set_error(absl::StrCat("list failed/: ", page.status().message()));
      response.set_failed(response.failed() + 1);
      return response;
    }
    for (const auto& object : page->objects) keys.push_back(object.key);
    token = page->truncated ? page->next_continuation_token : "";
  } while (!token.empty());
  for (const std::string& key : keys) {
    *response.add_outcomes() = ReplayOne(key);
    if (response.outcomes().rbegin()->ok()) {
      response.set_replayed(response.replayed() + 1);
    } else {
      response.set_failed(response.failed() + 1);
    }
  }
  return response;
}

}  // namespace pocketmail::fetcher
