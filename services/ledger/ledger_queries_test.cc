// The read path: List paging and filters, Stats, deliveries and their waiters.
#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/ledger/ledger_store.h"
#include "services/ledger/ledger_test_util.h"

namespace pocketmail::ledger {
namespace {

using ledger_testing::BeginFor;
using ledger_testing::FreshPath;
using ledger_testing::kT0;
using ledger_testing::LedgerStoreTest;
using ledger_testing::Step;

std::vector<std::string> ListAllKeys(LedgerStore& store, v1::ListRequest request) {
  std::vector<std::string> keys;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = store.List(request);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (const auto& m : page->messages()) keys.push_back(m.key());
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  return keys;
}

TEST_F(LedgerStoreTest, ListPagesNewestFirstAcrossTiesInFirstSeen) {
  // 25 rows, four per millisecond, so page boundaries fall inside ties.
  std::vector<std::pair<int64_t, std::string>> expected;
  for (int i = 0; i < 25; ++i) {
    clock_.Set(absl::FromUnixMillis(kT0 + (i / 4)));
    std::string letter(1, static_cast<char>('a' + (i * 7) % 25));
    std::string key = absl::StrCat("pending/", letter, ".eml");
    MustBegin(key);
    expected.push_back({kT0 + (i / 4), key});
  }
  std::sort(expected.begin(), expected.end(), std::greater<>());
  v1::ListRequest request;
  request.set_page_size(3);
  auto first = store_->List(request);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->messages_size(), 3);
  // A row arriving mid-paging is newer than the cursor: it does not shift pages.
  clock_.Set(absl::FromUnixMillis(kT0 + 1000));
  MustBegin("pending/zz-late.eml");
  request.set_page_token(first->next_page_token());
  std::vector<std::string> keys;
  for (const auto& m : first->messages()) keys.push_back(m.key());
  for (const std::string& k : ListAllKeys(*store_, request)) keys.push_back(k);
  ASSERT_EQ(keys.size(), expected.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(keys[i], expected[i].second) << i;
}

TEST_F(LedgerStoreTest, ListLastPageHasNoToken) {
  MustBegin("a");
  MustBegin("b");
  v1::ListRequest request;
  request.set_page_size(2);
  auto page = store_->List(request);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->messages_size(), 2);
  EXPECT_TRUE(page->next_page_token().empty());
}

TEST_F(LedgerStoreTest, ListFiltersByMailboxStatesAndTime) {
  auto routed = [&](const std::string& key, const std::string& mailbox, int64_t at) {
    clock_.Set(absl::FromUnixMillis(at));
    MustBegin(key);
    v1::AdvanceRequest r = Step(key, v1::STATE_PENDING, v1::STATE_INJECTING);
    r.set_mailbox(mailbox);
    MustAdvance(r);
  };
  routed("a1", "alice@example.org", kT0 + 10);
  routed("b1", "bob@example.org", kT0 + 20);
  routed("a2", "alice@example.org", kT0 + 30);
  MustAdvance(Step("a2", v1::STATE_INJECTING, v1::STATE_DELIVERED));

  v1::ListRequest by_mailbox;
  by_mailbox.set_mailbox("alice@example.org");
  EXPECT_EQ(ListAllKeys(*store_, by_mailbox), (std::vector<std::string>{"a2", "a1"}));

  v1::ListRequest by_state;
  by_state.add_states(v1::STATE_DELIVERED);
  by_state.add_states(v1::STATE_DONE);
  EXPECT_EQ(ListAllKeys(*store_, by_state), (std::vector<std::string>{"a2"}));

  v1::ListRequest by_time;
  by_time.set_since_ms(kT0 + 20);
  by_time.set_until_ms(kT0 + 30);
  EXPECT_EQ(ListAllKeys(*store_, by_time), (std::vector<std::string>{"b1"}));
}

TEST_F(LedgerStoreTest, ListPageSizeDefaultsTo100AndCapsAt1000) {
  for (int i = 0; i < 1002; ++i) MustBegin(absl::StrCat("k", i));
  v1::ListRequest request;
  EXPECT_EQ(store_->List(request)->messages_size(), 100);
  request.set_page_size(5000);
  EXPECT_EQ(store_->List(request)->messages_size(), 1000);
  request.set_page_size(-1);
  EXPECT_EQ(store_->List(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerStoreTest, MalformedPageTokensAreInvalidArgument) {
  MustBegin("k");
  for (const std::string& token :
       {std::string("!!!not base64"), absl::WebSafeBase64Escape("garbage"),
        absl::WebSafeBase64Escape("1|notanumber|k"), absl::WebSafeBase64Escape("2|5|k"),
        absl::WebSafeBase64Escape("1|5|")}) {
    v1::ListRequest request;
    request.set_page_token(token);
    EXPECT_EQ(store_->List(request).status().code(), absl::StatusCode::kInvalidArgument) << token;
  }
  v1::ListRequest bad_state;
  bad_state.add_states(static_cast<v1::State>(12));
  EXPECT_EQ(store_->List(bad_state).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PageTokenTest, RoundTripsKeysWithSeparators) {
  int64_t ms = 0;
  std::string key;
  ASSERT_TRUE(DecodePageToken(EncodePageToken(kT0, "pending/a|b.eml"), &ms, &key).ok());
  EXPECT_EQ(ms, kT0);
  EXPECT_EQ(key, "pending/a|b.eml");
}

TEST_F(LedgerStoreTest, StatsCountStatesRecentDeliveriesAndOldestUnfinished) {
  clock_.Set(absl::FromUnixMillis(kT0));
  BringTo("old-pending", v1::STATE_PENDING);
  clock_.Set(absl::FromUnixMillis(kT0 + 10));
  BringTo("done", v1::STATE_DONE);  // delivered at kT0 + 10
  clock_.Set(absl::FromUnixMillis(kT0 + 20));
  BringTo("dead", v1::STATE_DEAD_LETTERED);
  clock_.Set(absl::FromUnixMillis(kT0 + int64_t{2} * 3600 * 1000));
  BringTo("fresh", v1::STATE_DELIVERED);

  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->total(), 4);
  ASSERT_EQ(stats->by_state_size(), 7);
  std::map<int, int64_t> counts;
  for (const auto& c : stats->by_state()) counts[c.state()] = c.count();
  EXPECT_EQ(counts[v1::STATE_PENDING], 1);
  EXPECT_EQ(counts[v1::STATE_DONE], 1);
  EXPECT_EQ(counts[v1::STATE_DEAD_LETTERED], 1);
  EXPECT_EQ(counts[v1::STATE_DELIVERED], 1);
  EXPECT_EQ(counts[v1::STATE_INJECTING], 0);
  EXPECT_EQ(stats->delivered_last_hour(), 1);     // "fresh"
  EXPECT_EQ(stats->delivered_last_day(), 2);      // "fresh" and "done"
  EXPECT_EQ(stats->oldest_unfinished_ms(), kT0);  // DONE and DEAD_LETTERED are finished
}

TEST_F(LedgerStoreTest, StatsCanBeRestrictedToOneMailbox) {
  BringTo("k", v1::STATE_PENDING);
  v1::AdvanceRequest r = Step("k", v1::STATE_PENDING, v1::STATE_INJECTING);
  r.set_mailbox("alice@example.org");
  MustAdvance(r);
  MustBegin("other");
  auto alice = store_->Stats("alice@example.org");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->total(), 1);
  auto nobody = store_->Stats("nobody@example.org");
  ASSERT_TRUE(nobody.ok());
  EXPECT_EQ(nobody->total(), 0);
  EXPECT_EQ(nobody->oldest_unfinished_ms(), 0);
}

TEST_F(LedgerStoreTest, DeliveriesAfterReturnsAscendingSeqFilteredByMailbox) {
  for (const char* key : {"a", "b", "c"}) {
    MustBegin(key);
    v1::AdvanceRequest r = Step(key, v1::STATE_PENDING, v1::STATE_INJECTING);
    r.set_mailbox(std::string(key) == "b" ? "bob@x" : "alice@x");
    MustAdvance(r);
    MustAdvance(Step(key, v1::STATE_INJECTING, v1::STATE_DELIVERED));
  }
  auto all = store_->DeliveriesAfter(0, "", 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].seq(), 1);
  EXPECT_EQ((*all)[2].seq(), 3);
  auto alice = store_->DeliveriesAfter(1, "alice@x", 10);
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->size(), 1u);
  EXPECT_EQ((*alice)[0].key(), "c");
}

TEST_F(LedgerStoreTest, WaitForDeliveryWakesWhenADeliveryCommits) {
  BringTo("k", v1::STATE_INJECTING);
  EXPECT_EQ(store_->WaitForDeliveryAfter(0, absl::Milliseconds(10)), 0);  // times out
  std::thread deliverer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    MustAdvance(Step("k", v1::STATE_INJECTING, v1::STATE_DELIVERED));
  });
  absl::Time start = absl::Now();
  EXPECT_EQ(store_->WaitForDeliveryAfter(0, absl::Seconds(10)), 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  deliverer.join();
}

}  // namespace
}  // namespace pocketmail::ledger
