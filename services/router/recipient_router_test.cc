#include "services/router/recipient_router.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"

namespace pocketmail::router {
namespace {

// An account source the test controls: a list, or an error, and a call count.
// While held, a read blocks and then answers what the list was when it began.
class FakeSource final : public AccountSource {
 public:
  explicit FakeSource(std::vector<std::string> names) : names_(std::move(names)) {}
  absl::StatusOr<std::vector<std::string>> ListAccounts() override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    absl::StatusOr<std::vector<std::string>> answer = names_;
    if (!error_.ok()) answer = error_;
    mu_.Await(absl::Condition(&open_));
    return answer;
  }
  void Hold() {
    absl::MutexLock lock(&mu_);
    open_ = false;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  void Set(std::vector<std::string> names) {
    absl::MutexLock lock(&mu_);
    names_ = std::move(names);
    error_ = absl::OkStatus();
  }
  void Fail(absl::Status error) {
    absl::MutexLock lock(&mu_);
    error_ = std::move(error);
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> names_;
  absl::Status error_;
  int calls_ = 0;
  bool open_ = true;
};

std::string TestDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

class RouterTest : public ::testing::Test {
 protected:
  // Builds a router over `live` (owned by the router; `live_` keeps a view).
  std::unique_ptr<RecipientRouter> Make(std::vector<std::string> live_names,
                                        RouterOptions options = {},
                                        std::unique_ptr<AccountSource> seed = nullptr,
                                        bool with_live = true) {
    if (options.mail_domain.empty() && !no_domain_) options.mail_domain = "example.org";
    options.clock = &clock_;
    std::unique_ptr<FakeSource> live;
    if (with_live) {
      live = std::make_unique<FakeSource>(std::move(live_names));
      live_ = live.get();
    }
    auto router = RecipientRouter::Create(options, std::move(live), std::move(seed));
    EXPECT_TRUE(router.ok()) << router.status();
    return router.ok() ? std::move(*router) : nullptr;
  }

  FakeClock clock_;
  FakeSource* live_ = nullptr;
  bool no_domain_ = false;
};

const std::vector<std::string> kAccounts = {"alice@example.org", "bob", "Carol@Example.ORG",
                                            "admin@example.org", "inbox@example.org"};

struct Case {
  const char* address;
  const char* mailbox;
  v1::Rule rule;
};

TEST_F(RouterTest, RulesTable) {
  auto router = Make(kAccounts);
  const Case cases[] = {
      {"alice@example.org", "alice@example.org", v1::RULE_EXACT},
      {"ALICE@EXAMPLE.ORG", "alice@example.org", v1::RULE_EXACT},
      {"Bob@example.org", "bob@example.org", v1::RULE_EXACT},  // bare name normalised
      {"carol@example.org", "carol@example.org", v1::RULE_EXACT},
      {"alice+news@example.org", "alice@example.org", v1::RULE_SUBADDRESS},
      {"Alice+News+More@example.org", "alice@example.org", v1::RULE_SUBADDRESS},
      {"zed+news@example.org", "inbox@example.org", v1::RULE_CATCH_ALL},
      {"+news@example.org", "inbox@example.org", v1::RULE_CATCH_ALL},
      {"postmaster@example.org", "admin@example.org", v1::RULE_ROLE_ALIAS},
      {"Abuse@example.org", "admin@example.org", v1::RULE_ROLE_ALIAS},
      {"dmarc+reports@example.org", "admin@example.org", v1::RULE_ROLE_ALIAS},
      {"root@example.org", "admin@example.org", v1::RULE_ROLE_ALIAS},
      {"random@example.org", "inbox@example.org", v1::RULE_CATCH_ALL},
      {"\"John Doe\"@example.org", "inbox@example.org", v1::RULE_CATCH_ALL},
      {"inbox@example.org", "inbox@example.org", v1::RULE_EXACT},
  };
  for (const Case& c : cases) {
    auto r = router->Resolve(c.address);
    ASSERT_TRUE(r.ok()) << c.address << ": " << r.status();
    EXPECT_EQ(r->mailbox, c.mailbox) << c.address;
    EXPECT_EQ(r->rule, c.rule) << c.address;
    EXPECT_FALSE(r->list_stale);
    EXPECT_FALSE(r->explanation.empty());
  }
}

TEST_F(RouterTest, RejectsForeignDomainsAndHostileInput) {
  auto router = Make(kAccounts);
  for (const char* address :
       {"alice@other.org", "alice@example.org.evil", "alice@example.org\r\nRCPT TO:<x@y>",
        "<alice@example.org>", "", "alice", "alice@", "a..b@example.org", "alice@exam ple.org"}) {
    auto r = router->Resolve(address);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
  auto foreign = router->Resolve("alice@other.org");
  EXPECT_NE(foreign.status().message().find("MAIL_DOMAIN"), std::string::npos);
  EXPECT_EQ(router->Resolve(std::string("alice\0@example.org", 18)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RouterTest, RoleAddressWithoutAdminFallsToCatchAll) {
  auto router = Make({"alice@example.org", "inbox@example.org"});
  auto r = router->Resolve("postmaster@example.org");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rule, v1::RULE_CATCH_ALL);
  EXPECT_EQ(r->mailbox, "inbox@example.org");
  EXPECT_NE(r->explanation.find("admin"), std::string::npos) << r->explanation;
}

TEST_F(RouterTest, RoleAddressThatIsItselfAMailboxIsExact) {
  auto router = Make({"postmaster@example.org", "admin@example.org"});
  auto r = router->Resolve("postmaster@example.org");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rule, v1::RULE_EXACT);
  EXPECT_EQ(r->mailbox, "postmaster@example.org");
}

TEST_F(RouterTest, CustomAdminAndCatchAllLocalparts) {
  RouterOptions options;
  options.admin_localpart = "Owner";
  options.catchall_localpart = "everything";
  auto router = Make({"owner@example.org"}, options);
  EXPECT_EQ(router->Resolve("abuse@example.org")->mailbox, "owner@example.org");
  EXPECT_EQ(router->Resolve("nobody@example.org")->mailbox, "everything@example.org");
}

TEST_F(RouterTest, MissingCatchAllMailboxStillRoutesThereAndSaysSo) {
  auto router = Make({"alice@example.org"});
  auto r = router->Resolve("nobody@example.org");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rule, v1::RULE_CATCH_ALL);
  EXPECT_EQ(r->mailbox, "inbox@example.org");
  EXPECT_NE(r->explanation.find("not in the account list"), std::string::npos);
}

TEST_F(RouterTest, IdnDomainMatchesInUnicodeAndALabelForms) {
  RouterOptions options;
  options.mail_domain =
      "B\xc3\x9c"
      "CHER.example";  // BÜCHER.example
  auto router = Make({"user@xn--bcher-kva.example",
                      "inbox@b\xc3\xbc"
                      "cher.example"},
                     options);
  for (const char* address : {"user@b\xc3\xbc"
                              "cher.example",
                              "User@xn--bcher-kva.example", "USER@XN--BCHER-KVA.EXAMPLE"}) {
    auto r = router->Resolve(address);
    ASSERT_TRUE(r.ok()) << address << ": " << r.status();
    EXPECT_EQ(r->rule, v1::RULE_EXACT) << address;
    EXPECT_EQ(r->mailbox,
              "user@b\xc3\xbc"
              "cher.example")
        << address;
  }
  EXPECT_EQ(router->Resolve("user@bucher.example").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RouterTest, WithoutMailDomainBareNamesMatchAnyDomain) {
  no_domain_ = true;
  auto router = Make({"alice", "bob@example.net"});
  auto r = router->Resolve("Alice@anything.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mailbox, "alice@anything.example");
  EXPECT_EQ(router->Resolve("bob@example.net")->rule, v1::RULE_EXACT);
  EXPECT_EQ(router->Resolve("bob@example.org")->rule, v1::RULE_CATCH_ALL);
  EXPECT_EQ(router->Resolve("x@example.org")->mailbox, "inbox@example.org");
}

TEST_F(RouterTest, UnusableAccountNamesAreSkipped) {
  auto router = Make({"alice@example.org", "bad name", "x@@y", "\"q\"@example.org"});
  auto listing = router->ListMailboxes();
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->mailboxes, (std::vector<std::string>{"alice@example.org", "q@example.org"}));
}

TEST_F(RouterTest, CommandFailureKeepsTheLastGoodListAndMarksItStale) {
  auto router = Make(kAccounts);
  ASSERT_EQ(router->Resolve("alice@example.org")->rule, v1::RULE_EXACT);
  live_->Fail(absl::UnavailableError("account command exited with status 1"));
  clock_.Advance(absl::Seconds(61));
  auto r = router->Resolve("alice@example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rule, v1::RULE_EXACT);  // never spilled into the catch-all
  EXPECT_EQ(r->mailbox, "alice@example.org");
  EXPECT_TRUE(r->list_stale);
  EXPECT_EQ(live_->calls(), 2);
  auto listing = router->ListMailboxes();
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->source, v1::ACCOUNT_SOURCE_LAST_GOOD);
  EXPECT_NE(listing->last_error.find("status 1"), std::string::npos);
  EXPECT_EQ(listing->refreshed, clock_.Now() - absl::Seconds(61));

  live_->Set(kAccounts);  // recovery
  clock_.Advance(absl::Seconds(5));
  r = router->Resolve("alice@example.org");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->list_stale);
  EXPECT_EQ(router->ListMailboxes()->source, v1::ACCOUNT_SOURCE_LIVE);
  EXPECT_TRUE(router->ListMailboxes()->last_error.empty());
}

TEST_F(RouterTest, NoListEverReadIsUnavailable) {
  auto router = Make({});
  live_->Fail(absl::DeadlineExceededError("account command timed out"));
  auto r = router->Resolve("alice@example.org");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos);
  EXPECT_EQ(router->ListMailboxes().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RouterTest, SeedOnlyWhileLiveFailsRoutesSeedMatchesButDefersTheCatchAll) {
  auto seed = std::make_unique<FakeSource>(std::vector<std::string>{"alice", "admin"});
  auto router = Make({}, {}, std::move(seed));
  live_->Fail(absl::UnavailableError("proot not running"));
  auto alice = router->Resolve("alice+x@example.org");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->rule, v1::RULE_SUBADDRESS);
  EXPECT_TRUE(alice->list_stale);
  EXPECT_EQ(router->Resolve("abuse@example.org")->rule, v1::RULE_ROLE_ALIAS);
  EXPECT_EQ(router->Resolve("dave@example.org").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(router->ListMailboxes()->source, v1::ACCOUNT_SOURCE_SEED);
}

TEST_F(RouterTest, SeedFileAloneIsAuthoritative) {
  auto seed = std::make_unique<FakeSource>(std::vector<std::string>{"alice"});
  auto router = Make({}, {}, std::move(seed), /*with_live=*/false);
  EXPECT_EQ(router->Resolve("alice@example.org")->rule, v1::RULE_EXACT);
  auto other = router->Resolve("dave@example.org");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->rule, v1::RULE_CATCH_ALL);
  EXPECT_FALSE(other->list_stale);
  EXPECT_EQ(router->ListMailboxes()->source, v1::ACCOUNT_SOURCE_SEED);
}

TEST_F(RouterTest, LiveAndSeedListsAreUnited) {
  auto seed = std::make_unique<FakeSource>(std::vector<std::string>{"seeded@example.org"});
  auto router = Make({"alice@example.org"}, {}, std::move(seed));
  EXPECT_EQ(router->Resolve("seeded@example.org")->rule, v1::RULE_EXACT);
  EXPECT_EQ(router->ListMailboxes()->mailboxes,
            (std::vector<std::string>{"alice@example.org", "seeded@example.org"}));
}

TEST_F(RouterTest, FailedRefreshIsRetriedSoonerThanTheInterval) {
  auto router = Make(kAccounts);
  ASSERT_TRUE(router->Resolve("alice@example.org").ok());
  live_->Fail(absl::UnavailableError("down"));
  clock_.Advance(absl::Seconds(60));
  ASSERT_TRUE(router->Resolve("alice@example.org").ok());
  EXPECT_EQ(live_->calls(), 2);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(router->Resolve("alice@example.org").ok());
  EXPECT_EQ(live_->calls(), 2);
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(router->Resolve("alice@example.org").ok());
  EXPECT_EQ(live_->calls(), 3);
}

TEST_F(RouterTest, RefreshRunsTheCommandAtMostOncePerInterval) {
  std::string dir = TestDir();
  std::string counter = absl::StrCat(dir, "/invocations");
  std::string script = absl::StrCat(dir, "/counting_accounts.sh");
  ::unlink(counter.c_str());
  std::ofstream(script) << "#!/bin/sh\necho run >> '" << counter << "'\necho alice@example.org\n";
  ::chmod(script.c_str(), 0755);
  auto invocations = [&] {
    std::ifstream in(counter);
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  RouterOptions options;
  options.mail_domain = "example.org";
  options.clock = &clock_;
  auto router = RecipientRouter::Create(
      options, std::make_unique<CommandAccountSource>(script, absl::Seconds(5)), nullptr);
  ASSERT_TRUE(router.ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*router)->Resolve("alice@example.org").ok());
  EXPECT_EQ(invocations(), 1);
  clock_.Advance(absl::Seconds(59));
  ASSERT_TRUE((*router)->Resolve("alice@example.org").ok());
  EXPECT_EQ(invocations(), 1);
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE((*router)->Resolve("alice@example.org").ok());
  ASSERT_TRUE((*router)->Resolve("alice@example.org").ok());
  EXPECT_EQ(invocations(), 2);
}

TEST_F(RouterTest, WatchedFileChangeTriggersAnEarlyRefresh) {
  std::string watched = absl::StrCat(TestDir(), "/imapsql.db");
  ::unlink((watched + "-wal").c_str());
  std::ofstream(watched) << "v1";
  RouterOptions options;
  options.watch_path = watched;
  auto router = Make({"alice@example.org"}, options);
  ASSERT_EQ(router->Resolve("bob@example.org")->rule, v1::RULE_CATCH_ALL);
  live_->Set({"alice@example.org", "bob@example.org"});
  EXPECT_FALSE(router->RefreshIfDue());              // nothing changed yet
  std::ofstream(watched + "-wal") << "new account";  // Maddy writes the WAL first
  EXPECT_TRUE(router->RefreshIfDue());
  EXPECT_EQ(router->Resolve("bob@example.org")->rule, v1::RULE_EXACT);
  EXPECT_EQ(live_->calls(), 2);
}

TEST_F(RouterTest, BackgroundRefreshKeepsTheCommandOffTheHotPath) {
  auto router = Make({"alice@example.org"});
  router->StartBackgroundRefresh(absl::Milliseconds(5));
  ASSERT_TRUE(router->Resolve("alice@example.org").ok());
  int calls = live_->calls();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(router->Resolve("alice@example.org").ok());
  EXPECT_EQ(live_->calls(), calls);

  live_->Set({"alice@example.org", "bob@example.org"});
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));  // the refresher sleeps
  clock_.Advance(absl::Seconds(61));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(2));  // it woke, read the list and sleeps again
  EXPECT_EQ(live_->calls(), calls + 1);
  EXPECT_EQ(router->Resolve("bob@example.org")->rule, v1::RULE_EXACT);
}

TEST_F(RouterTest, IdleBackgroundRefreshSleepsUntilTheNextRefreshIsDue) {
  auto router = Make({"alice@example.org"});  // no watch; refresh_interval 60 s
  router->StartBackgroundRefresh();
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));
  EXPECT_EQ(live_->calls(), 1);
  // One sleep of the whole interval: a loop waking every tick would have
  // begun another wait at 59 s, before the refresh at 60 s.
  clock_.Advance(absl::Seconds(59));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(2));
  EXPECT_EQ(live_->calls(), 2);
  EXPECT_EQ(clock_.waits_begun(), 2);
  clock_.Advance(absl::Seconds(60));  // and again a whole interval
  ASSERT_TRUE(clock_.AwaitWaitsBegun(3));
  EXPECT_EQ(live_->calls(), 3);
  EXPECT_EQ(clock_.waits_begun(), 3);
}

TEST_F(RouterTest, AReadElsewhereMakesTheIdleRefresherPlanAgain) {
  auto router = Make(kAccounts);
  router->StartBackgroundRefresh();
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));
  clock_.Advance(absl::Seconds(30));
  live_->Fail(absl::UnavailableError("down"));
  EXPECT_FALSE(router->RefreshNow().ok());
  ASSERT_TRUE(clock_.AwaitWaitsBegun(2));  // woken to plan the retry
  EXPECT_EQ(live_->calls(), 2);
  clock_.Advance(absl::Seconds(5));  // retry_interval after the failed read
  ASSERT_TRUE(clock_.AwaitWaitsBegun(3));
  EXPECT_EQ(live_->calls(), 3);

  live_->Set(kAccounts);
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(4));
  EXPECT_EQ(live_->calls(), 4);  // read at 40 s: the next is due at 100 s
  clock_.Advance(absl::Seconds(20));
  ASSERT_TRUE(router->RefreshNow().ok());  // read at 60 s: now due at 120 s
  ASSERT_TRUE(clock_.AwaitWaitsBegun(5));
  EXPECT_EQ(live_->calls(), 5);
  clock_.Advance(absl::Seconds(59));  // past 100 s
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(6));
  EXPECT_EQ(live_->calls(), 6);  // a wake-up at 100 s would have begun a wait without reading
  EXPECT_EQ(clock_.waits_begun(), 6);
}

TEST_F(RouterTest, AWatchWithoutInotifyIsPolledEveryTick) {
  RouterOptions options;
  options.watch_path = "/nonexistent-dir/imapsql.db";  // inotify cannot watch it
  auto router = Make({"alice@example.org"}, options);
  router->StartBackgroundRefresh(absl::Seconds(1));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(1));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.AwaitWaitsBegun(2));  // it looked again after one tick
  EXPECT_EQ(live_->calls(), 1);            // and found nothing due
}

TEST_F(RouterTest, ConcurrentResolvesWhileRefreshing) {
  auto router = Make(kAccounts);
  // A good list first: the claim is that failing refreshes never replace it.
  // (Without this, a slow start could meet the first failure before any read.)
  ASSERT_TRUE(router->Resolve("alice+x@example.org").ok());
  router->StartBackgroundRefresh(absl::Milliseconds(1));
  std::atomic<bool> stop{false};
  std::thread clock_mover([&] {
    for (int i = 0; i < 50; ++i) {
      if (i % 2)
        live_->Fail(absl::UnavailableError("flaky"));
      else
        live_->Set(kAccounts);
      clock_.Advance(absl::Seconds(61));  // each step makes a refresh due
      absl::SleepFor(absl::Milliseconds(2));
    }
    stop = true;
  });
  std::vector<std::thread> workers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      while (!stop) {
        auto r = router->Resolve("alice+x@example.org");
        if (!r.ok() || r->mailbox != "alice@example.org") ++wrong;
      }
    });
  }
  clock_mover.join();
  for (auto& w : workers) w.join();
  EXPECT_EQ(wrong, 0);
}

TEST_F(RouterTest, RefreshNowReadsAtOnceAndVersionsTheListByContent) {
  auto router = Make({"alice@example.org", "inbox@example.org"});
  auto before = router->RefreshNow();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->version.size(), 16u);
  EXPECT_EQ(router->ListMailboxes()->version, before->version);
  EXPECT_EQ(router->RefreshNow()->version, before->version);  // same list, same version

  live_->Set({"dave@example.org", "alice@example.org", "inbox@example.org"});
  auto after = router->RefreshNow();  // the clock has not moved: no TTL involved
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->version, before->version);
  EXPECT_EQ(router->Resolve("dave@example.org")->rule, v1::RULE_EXACT);

  live_->Set({"alice@example.org", "inbox@example.org"});  // back: the old version again
  EXPECT_EQ(router->RefreshNow()->version, before->version);
  EXPECT_EQ(live_->calls(), 4);  // one read per RefreshNow, none for the others
}

TEST_F(RouterTest, RefreshNowFailureIsUnavailableAndKeepsTheListAndVersion) {
  auto router = Make({"alice@example.org", "inbox@example.org"});
  auto good = router->RefreshNow();
  ASSERT_TRUE(good.ok());
  live_->Set({"dave@example.org"});
  live_->Fail(absl::DeadlineExceededError("account command timed out"));
  auto failed = router->RefreshNow();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failed.status().message().find("timed out"), std::string::npos);
  auto listing = router->ListMailboxes();
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->version, good->version);
  EXPECT_EQ(listing->mailboxes, good->mailboxes);
  EXPECT_EQ(listing->source, v1::ACCOUNT_SOURCE_LAST_GOOD);
  EXPECT_EQ(router->Resolve("dave@example.org")->rule, v1::RULE_CATCH_ALL);
}

TEST_F(RouterTest, RefreshNowDuringARunningReadWaitsForAFreshOneSharedByAllWaiters) {
  auto router = Make({"alice@example.org"});
  ASSERT_TRUE(router->RefreshNow().ok());
  live_->Hold();
  std::thread running([&] { EXPECT_TRUE(router->RefreshNow().ok()); });
  while (live_->calls() < 2) absl::SleepFor(absl::Milliseconds(1));
  // dave is created after the running read began: it cannot see him.
  live_->Set({"alice@example.org", "dave@example.org"});
  std::vector<std::thread> waiters;
  std::atomic<int> saw_dave{0};
  for (int i = 0; i < 8; ++i) {
    waiters.emplace_back([&] {
      auto listing = router->RefreshNow();
      if (listing.ok() && listing->mailboxes.size() == 2) ++saw_dave;
    });
  }
  absl::SleepFor(absl::Milliseconds(300));  // let every waiter queue up
  live_->Release();
  running.join();
  for (auto& w : waiters) w.join();
  EXPECT_EQ(saw_dave, 8);
  EXPECT_EQ(live_->calls(), 3);  // the first, the running one, one shared by all eight
}

TEST_F(RouterTest, RejectsBadConfiguration) {
  RouterOptions bad_domain;
  bad_domain.mail_domain = "exa mple.org";
  EXPECT_FALSE(
      RecipientRouter::Create(bad_domain, std::make_unique<FakeSource>(kAccounts), nullptr).ok());
  RouterOptions bad_admin;
  bad_admin.admin_localpart = "ad min";
  EXPECT_FALSE(
      RecipientRouter::Create(bad_admin, std::make_unique<FakeSource>(kAccounts), nullptr).ok());
  EXPECT_FALSE(RecipientRouter::Create({}, nullptr, nullptr).ok());
}

TEST_F(RouterTest, NeverCrashesOnArbitraryInput) {
  auto router = Make(kAccounts);
  static constexpr char kAlphabet[] = "a+@.\"\\ <>\0\r\n\xc3\xbc\xffxn--example.org";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);  // keeps the embedded NUL
  uint32_t state = 7;
  std::string s;
  for (int i = 0; i < 5000; ++i) {
    state = state * 1664525 + 1013904223;
    s.push_back(alphabet[(state >> 16) % alphabet.size()]);
    if (s.size() > 30 || (state & 0x300) == 0) s.clear();
    for (const std::string& input : {s, s + "@example.org", "a+" + s + "@example.org"}) {
      auto r = router->Resolve(input);
      EXPECT_TRUE(r.ok() || r.status().code() == absl::StatusCode::kInvalidArgument) << r.status();
    }
  }
}

}  // namespace
}  // namespace pocketmail::router
