// The per-object saga: ledger → GET → router → injector → ledger → move.
//
// The ordering is the durability contract (docs/DESIGN.md "Guarantees"): every side
// effect (injecting, copying, deleting) happens only after the ledger has
// durably recorded the state that justifies it, so a crash at any point leaves
// a row that says what to do next:
//
//   ledger state on entry   what Process() does
//   ─────────────────────   ───────────────────────────────────────────────
//   PENDING / RETRY_WAIT    GET, route, INJECTING, inject, record the outcome
//   INJECTING               we died mid-delivery: the outcome is unknown, so
//                           mark it ambiguous (below)
//   RETRY_WAIT, ambiguous   ask the injector's delivery probe (IMAP SEARCH for
//                           the trace header): found → DELIVERED (PROBE_FOUND);
//                           not found → inject (PROBED_AND_INJECTED); no probe
//                           possible for that mailbox → inject (REINJECTED: a
//                           possible duplicate beats a lost mail); probe failed
//                           → leave it ambiguous and ask again next pass
//   DELIVERED               finish the move: COPY to processed/, DELETE, DONE
//   DONE                    the object came back (a Worker retry re-put it
//                           after we deleted it): delete it, deliver nothing
//   DEAD_LETTERING          finish the dead-lettering: COPY to failed/, DELETE
//   DEAD_LETTERED           same as DONE: a re-put duplicate, delete it
//
// Thread-safe: Process() may run for different keys concurrently. The caller
// guarantees one key is never processed by two threads at once.
#ifndef POCKETMAIL_SERVICES_FETCHER_MESSAGE_PIPELINE_H_
#define POCKETMAIL_SERVICES_FETCHER_MESSAGE_PIPELINE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/s3/object_store.h"
#include "common/time/clock.h"
#include "services/fetcher/pipeline_clients.h"

namespace pocketmail::fetcher {

struct PipelineOptions {
  std::string mail_domain;                    // MAIL_DOMAIN
  std::string catch_all_localpart = "inbox";  // where mail without a `to` goes
  std::string fallback_sender;                // MAIL FROM when `from` is missing/invalid
  bool keep_processed_copy = true;            // COPY to processed/ before DELETE
  absl::Duration retry_base = absl::Seconds(30);
  absl::Duration retry_max = absl::Hours(1);
  // An ambiguous attempt is probed only after this long, so a server still
  // committing the message when our connection died has finished.
  absl::Duration probe_delay = absl::Seconds(5);
  // A 5xx whose enhanced code is X.0.0 (or absent) is an untyped failure:
  // go-smtp gives every internal error Maddy did not classify 5.0.0 (a locked
  // database, a broken message store, an over-long line). It may pass, so it
  // is retried this many attempts in all before it is dead-lettered.
  int untyped_failure_max_attempts = 3;
  // Downloads whose bytes fail the content check (services/fetcher/
  // content_check.h) before the object is dead-lettered: a damaged transfer
  // passes on a later one, a replaced object never does.
  int content_mismatch_max_attempts = 3;
  Clock* clock = RealClock::Get();  // not owned
  std::function<double()> jitter;   // in [0,1); default: random
};

enum class ItemOutcome {
  kDelivered,     // injected (or found delivered) and moved out of pending/
  kRetryLater,    // temporary failure, backoff recorded
  kDeadLettered,  // permanent failure, now in failed/
  kSkipped,       // nothing to do now (backoff not elapsed, object vanished, duplicate removed)
  kError,         // the pipeline could not make progress (e.g. ledger down); retried next pass
};

struct ItemResult {
  ItemOutcome outcome;
  std::string detail;
};

const char* ItemOutcomeName(ItemOutcome outcome);

// What a pipeline step records besides its state and its reason.
struct StepNotes {
  const injectorpb::InjectResponse* reply = nullptr;  // the mail server's answer
  const ledgerpb::MessageFacts* facts = nullptr;      // the record, once downloaded
  bool ambiguous = false;                             // the outcome is unknown
  bool content_mismatch = false;                      // the bytes failed the check
};

class MessagePipeline {
 public:
  MessagePipeline(s3::ObjectStore& store, LedgerClient& ledger, RouterClient& router,
                  InjectorClient& injector, PipelineOptions options);

  ItemResult Process(const s3::ObjectSummary& object);

 private:
  ItemResult Attempt(const ledgerpb::Message& row, ledgerpb::DeliveryPath path_if_delivered);
  ItemResult ResolveAmbiguous(const ledgerpb::Message& row);
  ItemResult FinishDelivery(const std::string& key);
  ItemResult Inject(const ledgerpb::Message& injecting, const std::string& rcpt_to,
                    const s3::Object& object, StepNotes notes,
                    ledgerpb::DeliveryPath path_if_delivered);
  ItemResult ContentMismatch(const ledgerpb::Message& row, const absl::Status& why,
                             const s3::ObjectHead& head, StepNotes notes);
  ItemResult DeadLetter(const ledgerpb::Message& row, ledgerpb::State from,
                        const std::string& reason, const s3::ObjectHead* head,
                        StepNotes notes = {});
  ItemResult FinishDeadLetter(const std::string& key, const std::string& reason,
                              const s3::ObjectHead* head);
  ItemResult RetryLater(const ledgerpb::Message& row, ledgerpb::State from,
                        const std::string& error, StepNotes notes = {});
  ItemResult RemoveDuplicate(const std::string& key, const char* why);
  // COPY to `copy_to` (skipped when empty), then DELETE; an error result on failure.
  std::optional<ItemResult> MoveOutOfPending(const std::string& key, const std::string& copy_to,
                                             s3::MetadataDirective directive,
                                             const std::map<std::string, std::string>& metadata);
  // Records a transition with no details; an error result on failure.
  std::optional<ItemResult> Step(const std::string& key, ledgerpb::State from, ledgerpb::State to);
  absl::Time NextAttemptAt(int attempts) const;

  s3::ObjectStore& store_;
  LedgerClient& ledger_;
  RouterClient& router_;
  InjectorClient& injector_;
  PipelineOptions options_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_MESSAGE_PIPELINE_H_
