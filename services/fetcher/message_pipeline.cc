#include "services/fetcher/message_pipeline.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/mail/address.h"
#include "common/smtp/address.h"
#include "services/fetcher/content_check.h"
#include "services/fetcher/message_facts.h"
#include "services/fetcher/object_key.h"
#include "services/fetcher/outcome.h"

namespace pocketmail::fetcher {
namespace {

using ledgerpb::State;

int64_t ToMs(absl::Time t) { return absl::ToUnixMillis(t); }

// Dead-letter reasons travel as S3 metadata and into logs: printable ASCII only, bounded.
std::string Sanitize(absl::string_view text, size_t max = 256) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) break;
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : ' ');
  }
  return out;
}

// A sender we can put on MAIL FROM as-is: a well-formed address (RFC 5321 /
// 6531) that the injector's wire check also accepts. Anything odd falls back
// to the configured ingest address rather than bouncing the whole message.
bool UsableSender(absl::string_view from) {
  return !from.empty() && mail::ParseEnvelopeAddress(from).ok() &&
         smtp::ValidateEnvelopeAddress(from, /*allow_empty=*/false).ok();
}

// Every ledger write the saga makes is built here, so each field is filled
// (and bounded) in one place.
class AdvanceRequestBuilder {
 public:
  AdvanceRequestBuilder(const std::string& key, State from, State to) {
    req_.set_key(key);
    req_.set_from_state(from);
    req_.set_to_state(to);
  }
  AdvanceRequestBuilder& Error(absl::string_view why) {
    req_.set_error(Sanitize(why, 1024));
    return *this;
  }
  AdvanceRequestBuilder& NextAttempt(absl::Time at) {
    req_.set_next_attempt_ms(ToMs(at));
    return *this;
  }
  AdvanceRequestBuilder& Ambiguous() {
    req_.set_ambiguous(true);
    return *this;
  }
  AdvanceRequestBuilder& Route(const routerpb::ResolveResponse& route) {
    req_.set_mailbox(route.mailbox());
    req_.set_route_rule(routerpb::Rule_Name(route.rule()));
    return *this;
  }
  AdvanceRequestBuilder& Facts(const ledgerpb::MessageFacts& facts) {
    *req_.mutable_facts() = facts;
    return *this;
  }
  AdvanceRequestBuilder& Path(ledgerpb::DeliveryPath path) {
    req_.set_delivery_path(path);
    return *this;
  }
  // The step's notes: the mail server's reply, the record, the flags.
  AdvanceRequestBuilder& Notes(const StepNotes& notes) {
    req_.set_ambiguous(notes.ambiguous);
    req_.set_content_mismatch(notes.content_mismatch);
    if (notes.facts != nullptr) Facts(*notes.facts);
    if (notes.reply != nullptr) {
      req_.set_smtp_code(notes.reply->smtp_code());
      req_.set_enhanced_code(notes.reply->enhanced_code());
      req_.set_smtp_reply(Sanitize(notes.reply->reply_text(), 512));
    }
    return *this;
  }
  const ledgerpb::AdvanceRequest& request() const { return req_; }

 private:
  ledgerpb::AdvanceRequest req_;
};

ItemResult LedgerError(const absl::Status& status) {
  return {ItemOutcome::kError, absl::StrCat("ledger: ", status.message())};
}

}  // namespace

const char* ItemOutcomeName(ItemOutcome outcome) {
  switch (outcome) {
    case ItemOutcome::kDelivered:
      return "delivered";
    case ItemOutcome::kRetryLater:
      return "retry_later";
    case ItemOutcome::kDeadLettered:
      return "dead_lettered";
    case ItemOutcome::kSkipped:
      return "skipped";
    case ItemOutcome::kError:
      return "error";
  }
  return "unknown";
}

MessagePipeline::MessagePipeline(s3::ObjectStore& store, LedgerClient& ledger, RouterClient& router,
                                 InjectorClient& injector, PipelineOptions options)
    : store_(store),
      ledger_(ledger),
      router_(router),
      injector_(injector),
      options_(std::move(options)) {
  if (!options_.jitter) {
    options_.jitter = [] {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    };
  }
  if (options_.fallback_sender.empty())
    options_.fallback_sender = absl::StrCat("ingest@", options_.mail_domain);
}

absl::Time MessagePipeline::NextAttemptAt(int attempts) const {
  double base = absl::ToDoubleSeconds(options_.retry_base);
  double cap = absl::ToDoubleSeconds(options_.retry_max);
  double delay = std::min(cap, base * std::pow(2.0, std::min(std::max(attempts - 1, 0), 30)));
  // Full spread in [0.5, 1.5): many messages failing together don't retry in lockstep.
  delay *= 0.5 + options_.jitter();
  return options_.clock->Now() + absl::Seconds(delay);
}

ItemResult MessagePipeline::Process(const s3::ObjectSummary& object) {
  ledgerpb::BeginRequest begin;
  begin.set_key(object.key);
  begin.set_size_bytes(object.size);
  // When the Worker wrote the object; its `receivedms` metadata, read after
  // the download, is more exact and replaces it.
  if (object.last_modified > absl::UnixEpoch()) begin.set_received_ms(ToMs(object.last_modified));
  auto begun = ledger_.Begin(begin);
  if (!begun.ok())
    return {ItemOutcome::kError, absl::StrCat("ledger begin: ", begun.status().message())};
  const ledgerpb::Message& row = begun->message();

  switch (row.state()) {
    case State::STATE_DONE:
      return RemoveDuplicate(object.key, "already delivered");
    case State::STATE_DEAD_LETTERED:
      return RemoveDuplicate(object.key, "already dead-lettered");
    case State::STATE_DELIVERED:
      return FinishDelivery(object.key);
    case State::STATE_DEAD_LETTERING:
      return FinishDeadLetter(object.key, row.last_error(), nullptr);
    case State::STATE_RETRY_WAIT:
      if (ToMs(options_.clock->Now()) < row.next_attempt_ms()) {
        return {ItemOutcome::kSkipped, "waiting for backoff"};
      }
      if (row.ambiguous()) return ResolveAmbiguous(row);
      return Attempt(row, ledgerpb::DELIVERY_PATH_DIRECT);
    case State::STATE_INJECTING: {
      // We died (or the ledger lost our outcome) between recording INJECTING
      // and recording the reply: the mail may already be in the mailbox.
      // Give a server that was still committing it time to finish first.
      if (ToMs(options_.clock->Now()) - row.updated_ms() <
          absl::ToInt64Milliseconds(options_.probe_delay)) {
        return {ItemOutcome::kSkipped, "interrupted injection; probing shortly"};
      }
      log::Warn("interrupted injection; outcome unknown", {{"key", object.key}});
      auto moved = ledger_.Advance(
          AdvanceRequestBuilder(object.key, State::STATE_INJECTING, State::STATE_RETRY_WAIT)
              .Error("interrupted during injection; outcome unknown")
              .NextAttempt(options_.clock->Now())
              .Ambiguous()
              .request());
      if (!moved.ok()) return LedgerError(moved.status());
      return ResolveAmbiguous(*moved);
    }
    case State::STATE_PENDING:
      return Attempt(row, ledgerpb::DELIVERY_PATH_DIRECT);
    default:
      return {ItemOutcome::kError, absl::StrCat("unexpected ledger state ", row.state())};
  }
}

ItemResult MessagePipeline::ResolveAmbiguous(const ledgerpb::Message& row) {
  auto probe = injector_.Probe(row.key(), row.mailbox());
  if (!probe.ok() || probe->result() == injectorpb::PROBE_RESULT_FAILED ||
      probe->result() == injectorpb::PROBE_RESULT_UNSPECIFIED) {
    // Leave the row ambiguous: injecting now could duplicate, and the probe
    // is asked again on the next pass.
    std::string why = probe.ok() ? probe->detail() : std::string(probe.status().message());
    log::Warn("delivery probe failed; will ask again", {{"key", row.key()}, {"error", why}});
    return {ItemOutcome::kRetryLater, absl::StrCat("probe failed: ", why)};
  }
  switch (probe->result()) {
    case injectorpb::PROBE_RESULT_FOUND: {
      log::Info("probe found the message; not injecting again",
                {{"key", row.key()}, {"mailbox", row.mailbox()}});
      auto done = ledger_.Advance(
          AdvanceRequestBuilder(row.key(), State::STATE_RETRY_WAIT, State::STATE_DELIVERED)
              .Path(ledgerpb::DELIVERY_PATH_PROBE_FOUND)
              .request());
      if (!done.ok()) return LedgerError(done.status());
      return FinishDelivery(row.key());
    }
    case injectorpb::PROBE_RESULT_NOT_FOUND:
      return Attempt(row, ledgerpb::DELIVERY_PATH_PROBED_AND_INJECTED);
    default:  // NO_PROBE: no credentials for this mailbox
      log::Warn("no delivery probe for this mailbox; re-injecting (a duplicate is possible)",
                {{"key", row.key()}, {"mailbox", row.mailbox()}});
      return Attempt(row, ledgerpb::DELIVERY_PATH_REINJECTED);
  }
}

ItemResult MessagePipeline::Attempt(const ledgerpb::Message& row,
                                    ledgerpb::DeliveryPath path_if_delivered) {
  const std::string& key = row.key();
  const State from = row.state();

  auto parsed = ParsePendingKey(key);
  if (!parsed.ok()) {
    return DeadLetter(row, from, absl::StrCat("unrecognised key: ", parsed.status().message()),
                      nullptr);
  }

  auto got = GetAndHash(store_, key);
  if (absl::IsNotFound(got.status())) {
    log::Warn("object vanished before it was fetched", {{"key", key}});
    return {ItemOutcome::kSkipped, "object no longer in pending/"};
  }
  if (!got.ok()) return RetryLater(row, from, absl::StrCat("get: ", got.status().message()));
  const s3::Object& object = got->object;
  absl::Status content = CheckContent(*parsed, *got);
  const ledgerpb::MessageFacts facts = FactsFor(object, content.ok() ? got->sha256 : "");
  StepNotes notes;
  notes.facts = &facts;
  if (!content.ok()) return ContentMismatch(row, content, object.head, notes);

  std::string address = facts.recipient();
  if (address.empty()) {
    // Only Email Routing for MAIL_DOMAIN writes here, so mail with no
    // envelope recipient is still ours: deliver it to the catch-all.
    address = absl::StrCat(options_.catch_all_localpart, "@", options_.mail_domain);
    log::Warn("object has no `to` metadata; routing to the catch-all", {{"key", key}});
  }
  auto route = router_.Resolve(address);
  if (!route.ok()) {
    Decision decision = ClassifyRouteFailure(route.status());
    if (decision.verdict == Verdict::kDeadLetter) {
      return DeadLetter(row, from, decision.reason, &object.head, notes);
    }
    return RetryLater(row, from, decision.reason, notes);
  }

  // The record is complete from here on: the gateway sees who, from whom
  // and about what as soon as the message is on its way into Maddy.
  auto recorded = ledger_.Advance(AdvanceRequestBuilder(key, from, State::STATE_INJECTING)
                                      .Route(*route)
                                      .Facts(facts)
                                      .request());
  if (!recorded.ok()) return LedgerError(recorded.status());
  return Inject(*recorded, route->mailbox(), object, notes, path_if_delivered);
}

ItemResult MessagePipeline::Inject(const ledgerpb::Message& injecting, const std::string& rcpt_to,
                                   const s3::Object& object, StepNotes notes,
                                   ledgerpb::DeliveryPath path_if_delivered) {
  const std::string& key = injecting.key();
  std::string sender = object.head.MetadataValue("from");
  if (!UsableSender(sender)) sender = options_.fallback_sender;

  injectorpb::Envelope envelope;
  envelope.set_key(key);
  envelope.set_mail_from(sender);
  envelope.set_rcpt_to(rcpt_to);
  envelope.set_size_bytes(static_cast<int64_t>(object.body.size()));
  const InjectResult result = injector_.Inject(envelope, object.body);
  const Decision decision =
      Classify(result, injecting.attempts(), options_.untyped_failure_max_attempts);
  notes.facts = nullptr;  // recorded with INJECTING
  if (decision.record_reply) notes.reply = &result.reply;

  switch (decision.verdict) {
    case Verdict::kDelivered: {
      auto done =
          ledger_.Advance(AdvanceRequestBuilder(key, State::STATE_INJECTING, State::STATE_DELIVERED)
                              .Notes(notes)
                              .Path(path_if_delivered)
                              .request());
      if (!done.ok()) return LedgerError(done.status());
      log::Info("delivered", {{"key", key},
                              {"mailbox", rcpt_to},
                              {"rule", injecting.route_rule()},
                              {"code", result.reply.smtp_code()}});
      return FinishDelivery(key);
    }
    case Verdict::kDeadLetter:
      return DeadLetter(injecting, State::STATE_INJECTING, decision.reason, &object.head, notes);
    case Verdict::kProbeFirst:
      notes.ambiguous = true;
      return RetryLater(injecting, State::STATE_INJECTING, decision.reason, notes);
    case Verdict::kRetry:
      break;
  }
  return RetryLater(injecting, State::STATE_INJECTING, decision.reason, notes);
}

ItemResult MessagePipeline::ContentMismatch(const ledgerpb::Message& row, const absl::Status& why,
                                            const s3::ObjectHead& head, StepNotes notes) {
  notes.content_mismatch = true;
  const int downloads = row.content_mismatches() + 1;
  if (downloads < options_.content_mismatch_max_attempts) {
    log::Warn("downloaded bytes fail the content check; fetching again later",
              {{"key", row.key()}, {"error", std::string(why.message())}});
    return RetryLater(row, row.state(),
                      absl::StrCat(why.message(), " (download ", downloads, " of ",
                                   options_.content_mismatch_max_attempts, ")"),
                      notes);
  }
  return DeadLetter(row, row.state(), std::string(why.message()), &head, notes);
}

std::optional<ItemResult> MessagePipeline::MoveOutOfPending(
    const std::string& key, const std::string& copy_to, s3::MetadataDirective directive,
    const std::map<std::string, std::string>& metadata) {
  if (!copy_to.empty()) {
    absl::Status copied = store_.CopyObject(key, copy_to, directive, metadata);
    // NOT_FOUND: an earlier attempt already deleted pending/ (after copying)
    // but died before recording the final state.
    if (!copied.ok() && !absl::IsNotFound(copied)) {
      return ItemResult{ItemOutcome::kError,
                        absl::StrCat("copy to ", copy_to, ": ", copied.message())};
    }
  }
  absl::Status deleted = store_.DeleteObject(key);
  if (!deleted.ok() && !absl::IsNotFound(deleted)) {
    return ItemResult{ItemOutcome::kError, absl::StrCat("delete: ", deleted.message())};
  }
  return std::nullopt;
}

std::optional<ItemResult> MessagePipeline::Step(const std::string& key, State from, State to) {
  auto recorded = ledger_.Advance(AdvanceRequestBuilder(key, from, to).request());
  if (!recorded.ok()) return LedgerError(recorded.status());
  return std::nullopt;
}

ItemResult MessagePipeline::FinishDelivery(const std::string& key) {
  const std::string copy_to = options_.keep_processed_copy ? ProcessedKeyFor(key) : "";
  if (auto error = MoveOutOfPending(key, copy_to, s3::MetadataDirective::kCopy, {})) return *error;
  if (auto error = Step(key, State::STATE_DELIVERED, State::STATE_DONE)) return *error;
  return {ItemOutcome::kDelivered, ""};
}

ItemResult MessagePipeline::DeadLetter(const ledgerpb::Message& row, State from,
                                       const std::string& reason, const s3::ObjectHead* head,
                                       StepNotes notes) {
  auto recorded =
      ledger_.Advance(AdvanceRequestBuilder(row.key(), from, State::STATE_DEAD_LETTERING)
                          .Error(reason)
                          .Notes(notes)
                          .request());
  if (!recorded.ok()) return LedgerError(recorded.status());
  log::Warn("dead-lettering", {{"key", row.key()}, {"reason", reason}});
  return FinishDeadLetter(row.key(), reason, head);
}

ItemResult MessagePipeline::FinishDeadLetter(const std::string& key, const std::string& reason,
                                             const s3::ObjectHead* head) {
  s3::ObjectHead fetched;
  if (head == nullptr) {  // resuming after a crash: only the metadata is needed
    auto object = store_.HeadObject(key);
    if (!object.ok() && !absl::IsNotFound(object.status())) {
      return {ItemOutcome::kError,
              absl::StrCat("head for dead-letter: ", object.status().message())};
    }
    // NOT_FOUND: pending/ is deleted only after the failed/ copy succeeded.
    if (object.ok()) fetched = *std::move(object);
    head = &fetched;
  }
  std::map<std::string, std::string> metadata = head->metadata;
  metadata["reason"] = Sanitize(reason);
  metadata["failedms"] = std::to_string(ToMs(options_.clock->Now()));
  if (auto error =
          MoveOutOfPending(key, FailedKeyFor(key), s3::MetadataDirective::kReplace, metadata)) {
    return *error;
  }
  if (auto error = Step(key, State::STATE_DEAD_LETTERING, State::STATE_DEAD_LETTERED))
    return *error;
  return {ItemOutcome::kDeadLettered, reason};
}

ItemResult MessagePipeline::RetryLater(const ledgerpb::Message& row, State from,
                                       const std::string& error, StepNotes notes) {
  absl::Time next = notes.ambiguous
                        ? options_.clock->Now() + options_.probe_delay
                        : NextAttemptAt(row.attempts() + (from == State::STATE_INJECTING ? 0 : 1));
  auto recorded = ledger_.Advance(AdvanceRequestBuilder(row.key(), from, State::STATE_RETRY_WAIT)
                                      .Error(error)
                                      .NextAttempt(next)
                                      .Notes(notes)
                                      .request());
  if (!recorded.ok()) return LedgerError(recorded.status());
  log::Info("will retry",
            {{"key", row.key()},
             {"error", error},
             {"in_s", static_cast<long long>(absl::ToInt64Seconds(next - options_.clock->Now()))}});
  return {ItemOutcome::kRetryLater, error};
}

ItemResult MessagePipeline::RemoveDuplicate(const std::string& key, const char* why) {
  absl::Status deleted = store_.DeleteObject(key);
  if (!deleted.ok() && !absl::IsNotFound(deleted)) {
    return {ItemOutcome::kError, absl::StrCat("delete duplicate: ", deleted.message())};
  }
  log::Info("removed duplicate object", {{"key", key}, {"why", why}});
  return {ItemOutcome::kSkipped, why};
}

}  // namespace pocketmail::fetcher
