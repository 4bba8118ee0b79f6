#include "services/ledger/state_machine.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pocketmail::ledger {
namespace {

struct Edge {
  v1::State from;
  v1::State to;
};

constexpr Edge kLegal[] = {
    {v1::STATE_PENDING, v1::STATE_INJECTING},
    {v1::STATE_PENDING, v1::STATE_DEAD_LETTERING},
    // A temporary failure before injection (S3 GET, router outage) backs off too.
    {v1::STATE_PENDING, v1::STATE_RETRY_WAIT},
    {v1::STATE_INJECTING, v1::STATE_DELIVERED},
    {v1::STATE_INJECTING, v1::STATE_RETRY_WAIT},
    {v1::STATE_INJECTING, v1::STATE_DEAD_LETTERING},
    {v1::STATE_RETRY_WAIT, v1::STATE_INJECTING},
    // A retry that failed again before injecting (S3 GET, router, content
    // check) waits again: the one transition that is applied when repeated.
    {v1::STATE_RETRY_WAIT, v1::STATE_RETRY_WAIT},
    {v1::STATE_RETRY_WAIT, v1::STATE_DEAD_LETTERING},
    {v1::STATE_RETRY_WAIT, v1::STATE_PENDING},
    // An ambiguous attempt that the delivery probe found in the mailbox.
    {v1::STATE_RETRY_WAIT, v1::STATE_DELIVERED},
    {v1::STATE_DELIVERED, v1::STATE_DONE},
    {v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED},
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
