#include "services/ledger/state_machine.h"

#include <set>
#include <utility>

#include "gtest/gtest.h"

namespace pocketmail::ledger {
namespace {

using v1::State;

const std::set<std::pair<State, State>> kExpectedLegal = {
    {v1::STATE_PENDING, v1::STATE_INJECTING},
    {v1::STATE_PENDING, v1::STATE_DEAD_LETTERING},
    {v1::STATE_PENDING, v1::STATE_RETRY_WAIT},
    {v1::STATE_INJECTING, v1::STATE_DELIVERED},
    {v1::STATE_INJECTING, v1::STATE_RETRY_WAIT},
    {v1::STATE_INJECTING, v1::STATE_DEAD_LETTERING},
    {v1::STATE_RETRY_WAIT, v1::STATE_INJECTING},
    {v1::STATE_RETRY_WAIT, v1::STATE_RETRY_WAIT},
    {v1::STATE_RETRY_WAIT, v1::STATE_DEAD_LETTERING},
    {v1::STATE_RETRY_WAIT, v1::STATE_PENDING},
    {v1::STATE_RETRY_WAIT, v1::STATE_DELIVERED},
    {v1::STATE_DELIVERED, v1::STATE_DONE},
    {v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED},
    {v1::STATE_DEAD_LETTERED, v1::STATE_PENDING},
};

TEST(StateMachineTest, EveryPairOfStatesMatchesTheDocumentedTable) {
  for (int from = 0; from <= 8; ++from) {
    for (int to = 0; to <= 8; ++to) {
      State f = static_cast<State>(from);
      State t = static_cast<State>(to);
      EXPECT_EQ(IsLegalTransition(f, t), kExpectedLegal.count({f, t}) == 1)
          << StateName(from) << " → " << StateName(to);
    }
  }
}

TEST(StateMachineTest, DoneIsTerminalAndHasNoExits) {
  EXPECT_TRUE(IsTerminal(v1::STATE_DONE));
  for (int to = 0; to <= 8; ++to) {
    EXPECT_FALSE(IsLegalTransition(v1::STATE_DONE, static_cast<State>(to)));
  }
}

TEST(StateMachineTest, DeadLetteredIsTerminalUntilReplay) {
  EXPECT_TRUE(IsTerminal(v1::STATE_DEAD_LETTERED));
  EXPECT_TRUE(IsLegalTransition(v1::STATE_DEAD_LETTERED, v1::STATE_PENDING));
  EXPECT_FALSE(IsTerminal(v1::STATE_DELIVERED));  // the object may still be in pending/
}

TEST(StateMachineTest, KnownStatesExcludeUnspecifiedAndOutOfRange) {
  EXPECT_FALSE(IsKnownState(0));
  EXPECT_TRUE(IsKnownState(1));
  EXPECT_TRUE(IsKnownState(7));
  EXPECT_FALSE(IsKnownState(8));
  EXPECT_FALSE(IsKnownState(-1));
}

TEST(StateMachineTest, NamesStatesWithoutPrefix) {
  EXPECT_EQ(StateName(v1::STATE_DEAD_LETTERED), "DEAD_LETTERED");
  EXPECT_EQ(StateName(42), "STATE_42");
}

}  // namespace
}  // namespace pocketmail::ledger

#include "services/ledger/ledger_store.h"

namespace pocketmail::ledger {
namespace {

TEST(DurabilityPolicyTest, EveryStateThatJustifiesASideEffectIsFsynced) {
  EXPECT_TRUE(NeedsFsync(v1::STATE_INJECTING));       // before the first SMTP byte
  EXPECT_TRUE(NeedsFsync(v1::STATE_DELIVERED));       // before COPY/DELETE
  EXPECT_TRUE(NeedsFsync(v1::STATE_RETRY_WAIT));      // an outcome (ambiguity) to remember
  EXPECT_TRUE(NeedsFsync(v1::STATE_DEAD_LETTERING));  // before the copy to failed/
  EXPECT_TRUE(NeedsFsync(v1::STATE_DEAD_LETTERED));   // replay requires it
  EXPECT_TRUE(NeedsFsync(v1::STATE_PENDING));         // a replay's copy back to pending/ follows
  EXPECT_FALSE(NeedsFsync(v1::STATE_DONE));
}

}  // namespace
}  // namespace pocketmail::ledger
