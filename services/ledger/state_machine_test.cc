#include "services/ledger/state_machine.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace pocketmail::ledger {
namespace {

using v1::State;

// The table API users read: the "FROM → A, B" lines of ledger.proto's State
// comment. It must say exactly what the code enforces.
std::set<std::pair<State, State>> TableInLedgerProto() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  std::ifstream proto(absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "pocketmail",
                                   "/proto/pocketmail/ledger/v1/ledger.proto"));
  std::set<std::pair<State, State>> table;
  std::string line;
  while (std::getline(proto, line)) {
    std::vector<std::string> sides = absl::StrSplit(line, " \u2192 ");  // "→"
    if (sides.size() != 2 || !absl::StartsWith(sides[0], "//   ")) continue;
    State from;
    if (!v1::State_Parse(absl::StrCat("STATE_", absl::StripAsciiWhitespace(sides[0].substr(2))),
                         &from))
      continue;
    for (absl::string_view to_name : absl::StrSplit(sides[1], ", ")) {
      State to;
      if (v1::State_Parse(absl::StrCat("STATE_", absl::StripAsciiWhitespace(to_name)), &to))
        table.insert({from, to});
    }
  }
  return table;
}

TEST(StateMachineTest, EveryPairOfStatesMatchesTheTableInLedgerProto) {
  const std::set<std::pair<State, State>> documented = TableInLedgerProto();
  ASSERT_GE(documented.size(), 10u) << "the table in ledger.proto was not found";
  for (int from = 0; from <= 8; ++from) {
    for (int to = 0; to <= 8; ++to) {
      State f = static_cast<State>(from);
      State t = static_cast<State>(to);
      EXPECT_EQ(IsLegalTransition(f, t), documented.count({f, t}) == 1)
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
