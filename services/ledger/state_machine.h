// The ledger's transition table. The one source is kLegal in
// state_machine.cc, with the reason for each edge; ledger.proto's State
// comment lists the same table for API users, and state_machine_test checks
// that the two agree. Anything not in the table is illegal, including every
// X → X but RETRY_WAIT → RETRY_WAIT, and anything involving
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
