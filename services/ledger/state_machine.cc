#include "services/ledger/state_machine.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pocketmail::ledger {
namespace {

struct Edge {
  v1::State from;
  v1::State to;
};

// Every legal transition, and why it exists. ledger.proto's State comment
// lists the same table (state_machine_test checks it).
constexpr Edge kLegal[] = {
    // The usual path: recorded before the first SMTP byte, then Maddy's 2xx.
    {v1::STATE_PENDING, v1::STATE_INJECTING},
    {v1::STATE_INJECTING, v1::STATE_DELIVERED},
    {v1::STATE_DELIVERED, v1::STATE_DONE},
    // A temporary failure before injecting (S3 GET, router outage, content
    // check) backs off like one after.
    {v1::STATE_PENDING, v1::STATE_RETRY_WAIT},
    {v1::STATE_INJECTING, v1::STATE_RETRY_WAIT},
    {v1::STATE_RETRY_WAIT, v1::STATE_INJECTING},
    // A retry that failed again before injecting waits again: the one
    // transition that is applied when repeated.
    {v1::STATE_RETRY_WAIT, v1::STATE_RETRY_WAIT},
    // An ambiguous attempt that the delivery probe found in the mailbox.
    {v1::STATE_RETRY_WAIT, v1::STATE_DELIVERED},
    // Permanent failures: bad metadata or key (nothing to inject), Maddy's
    // 5xx, the retry budget spent while waiting.
    {v1::STATE_PENDING, v1::STATE_DEAD_LETTERING},
    {v1::STATE_INJECTING, v1::STATE_DEAD_LETTERING},
    {v1::STATE_RETRY_WAIT, v1::STATE_DEAD_LETTERING},
    {v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED},
    // "Retry now" of a waiting message, and the replay of a dead letter.
    {v1::STATE_RETRY_WAIT, v1::STATE_PENDING},
    {v1::STATE_DEAD_LETTERED, v1::STATE_PENDING},
};

}  // namespace

bool IsKnownState(int state) {
  return state >= v1::STATE_PENDING && state <= v1::STATE_DEAD_LETTERED;
}

bool IsLegalTransition(v1::State from, v1::State to) {
  for (const Edge& e : kLegal) {
    if (e.from == from && e.to == to) return true;
  }
  return false;
}

bool IsTerminal(v1::State state) {
  return state == v1::STATE_DONE || state == v1::STATE_DEAD_LETTERED;
}

std::string StateName(int state) {
  if (v1::State_IsValid(state)) {
    std::string name = v1::State_Name(static_cast<v1::State>(state));
    if (absl::StartsWith(name, "STATE_")) name.erase(0, 6);
    return name;
  }
  return absl::StrCat("STATE_", state);
}

}  // namespace pocketmail::ledger
