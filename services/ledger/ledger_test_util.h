// Shared fixtures for the ledger store tests.
#ifndef POCKETMAIL_SERVICES_LEDGER_LEDGER_TEST_UTIL_H_
#define POCKETMAIL_SERVICES_LEDGER_LEDGER_TEST_UTIL_H_

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "services/ledger/ledger_store.h"

namespace pocketmail::ledger::ledger_testing {

inline constexpr int64_t kT0 = 1'800'000'000'000;  // a fixed wall-clock instant

inline std::string FreshPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir ? dir : "/tmp", "/", name);
  for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  return path;
}

inline v1::BeginRequest BeginFor(const std::string& key,
                                 const std::string& rcpt = "alice@example.org") {
  v1::BeginRequest r;
  r.set_key(key);
  r.set_recipient(rcpt);
  r.set_sender("bob@example.net");
  r.set_size_bytes(1234);
  r.set_sha256("ab12");
  r.set_received_ms(kT0 - 5000);
  r.set_subject("hello");
  return r;
}

inline v1::AdvanceRequest Step(const std::string& key, v1::State from, v1::State to) {
  v1::AdvanceRequest r;
  r.set_key(key);
  r.set_from_state(from);
  r.set_to_state(to);
  return r;
}

class LedgerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = LedgerStore::Open(":memory:", &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  v1::Message MustBegin(const std::string& key, const std::string& rcpt = "alice@example.org") {
    auto r = store_->Begin(BeginFor(key, rcpt));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->message : v1::Message();
  }
  v1::Message MustAdvance(const v1::AdvanceRequest& request) {
    auto r = store_->Advance(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::Message();
  }
  // Walks a fresh row to `state` along legal transitions.
  void BringTo(const std::string& key, v1::State state) {
    MustBegin(key);
    auto go = [&](v1::State from, v1::State to) { MustAdvance(Step(key, from, to)); };
    switch (state) {
      case v1::STATE_PENDING:
        break;
      case v1::STATE_INJECTING:
        go(v1::STATE_PENDING, v1::STATE_INJECTING);
        break;
      case v1::STATE_DELIVERED:
      case v1::STATE_DONE:
        go(v1::STATE_PENDING, v1::STATE_INJECTING);
        go(v1::STATE_INJECTING, v1::STATE_DELIVERED);
        if (state == v1::STATE_DONE) go(v1::STATE_DELIVERED, v1::STATE_DONE);
        break;
      case v1::STATE_RETRY_WAIT:
        go(v1::STATE_PENDING, v1::STATE_INJECTING);
        go(v1::STATE_INJECTING, v1::STATE_RETRY_WAIT);
        break;
      case v1::STATE_DEAD_LETTERING:
      case v1::STATE_DEAD_LETTERED:
        go(v1::STATE_PENDING, v1::STATE_DEAD_LETTERING);
        if (state == v1::STATE_DEAD_LETTERED) go(v1::STATE_DEAD_LETTERING, v1::STATE_DEAD_LETTERED);
        break;
      default:
        FAIL() << "unreachable state";
    }
  }

  FakeClock clock_{absl::FromUnixMillis(kT0)};
  std::unique_ptr<LedgerStore> store_;
};

}  // namespace pocketmail::ledger::ledger_testing

#endif  // POCKETMAIL_SERVICES_LEDGER_LEDGER_TEST_UTIL_H_
