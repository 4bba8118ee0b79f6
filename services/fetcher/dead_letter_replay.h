// Re-drives dead letters: failed/<name> goes back to pending/<name> with its
// original metadata, and its ledger row from DEAD_LETTERED back to PENDING, so
// the next pass delivers it. For use after fixing whatever made it fail.
//
// Order, so a crash at any point loses nothing and can be re-run:
//   1. ledger DEAD_LETTERED → PENDING   (a PENDING row is taken as a replay
//                                        already under way and continued)
//   2. COPY failed/ → pending/ (REPLACE: the dead-letter fields removed)
//   3. DELETE failed/
// Were step 2 done first, a pass could find the object while the row still
// says DEAD_LETTERED and remove it as a duplicate.
#ifndef POCKETMAIL_SERVICES_FETCHER_DEAD_LETTER_REPLAY_H_
#define POCKETMAIL_SERVICES_FETCHER_DEAD_LETTER_REPLAY_H_

#include <string>

#include "common/s3/object_store.h"
#include "pocketmail/fetcher/v1/fetcher.pb.h"
#include "services/fetcher/pipeline_clients.h"

namespace pocketmail::fetcher {

class DeadLetterReplay {
 public:
  DeadLetterReplay(s3::ObjectStore& store, LedgerClient& ledger) : store_(store), ledger_(ledger) {}

  // `key` may name the dead letter as failed/<name> or by its pending/<name>.
  ::pocketmail::fetcher::v1::ReplayOutcome ReplayOne(const std::string& key);
  // Every object under failed/.
  ::pocketmail::fetcher::v1::ReplayResponse ReplayAll();

 private:
  s3::ObjectStore& store_;
  LedgerClient& ledger_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_DEAD_LETTER_REPLAY_H_
