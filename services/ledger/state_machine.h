// The ledger's transition table, exactly as drawn in ledger.proto plus three
// explicit additions (marked *):
//
//   PENDING        → INJECTING, DEAD_LETTERING*   (* bad metadata: nothing to inject)
//   INJECTING      → DELIVERED, RETRY_WAIT, DEAD_LETTERING
//   RETRY_WAIT     → INJECTING, DEAD_LETTERING*, PENDING*
//                    (* retry budget exhausted while waiting / "retry now" or re-route)
//   DELIVERED      → DONE
//   DEAD_LETTERING → DEAD_LETTERED
//   DEAD_LETTERED  → PENDING (replay)
//   DONE           → (nothing: terminal)
//
// Anything not listed is illegal, including X → X and anything involving
// STATE_UNSPECIFIED or an out-of-range value.
#ifndef POCKETMAIL_SERVICES_LEDGER_STATE_MACHINE_H_
#define POCKETMAIL_SERVICES_LEDGER_STATE_MACHINE_H_

#include <string>

#include "pocketmail/ledger/v1/ledger.pb.h"

namespace pocketmail::ledger {

bool IsKnownState(int state);  // STATE_PENDING .. STATE_DEAD_LETTERED
bool IsLegalTransition(v1::State from, v1::State to);
// True for DONE and DEAD_LETTERED: no further work unless replayed.
bool IsTerminal(v1::State state);
// "PENDING", "DEAD_LETTERED", ... ("STATE_42" for unknown values).
std::string StateName(int state);

}  // namespace pocketmail::ledger

#endif  // POCKETMAIL_SERVICES_LEDGER_STATE_MACHINE_H_
