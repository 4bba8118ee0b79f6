// Router.Refresh against real Maddy (set up by the installer, delivered into
// over LMTP): the gateway's just-in-time mailbox. With the imapsql.db watch
// off and an hour-long account TTL, only Refresh can make the router see a
// mailbox created while the services run; right after it returns, the new
// address routes to its own mailbox. Mail that arrived before stays in the
// catch-all.
//
// Prints:
//   router-refresh-e2e: maddy=0.8.1 mailboxes=N->N+1 refresh_ms=T
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "pocketmail/router/v1/router.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

namespace routerpb = ::pocketmail::router::v1;

std::string Message(const std::string& to, int n) {
  return absl::StrCat("From: Sender <s@outside.test>\r\nTo: ", to, "\r\nSubject: jit ", n,
                      "\r\nMessage-ID: <jit", n, "@outside.test>\r\n\r\nhello ", n, "\r\n");
}

class RouterClient {
 public:
  explicit RouterClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(routerpb::Router::NewStub(std::move(channel))) {}

  routerpb::RefreshResponse Refresh() {
    grpc::ClientContext ctx;
    routerpb::RefreshResponse response;
    grpc::Status s = stub_->Refresh(&ctx, routerpb::RefreshRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  routerpb::ResolveResponse Resolve(const std::string& address) {
    grpc::ClientContext ctx;
    routerpb::ResolveRequest request;
    request.set_address(address);
    routerpb::ResolveResponse response;
    grpc::Status s = stub_->Resolve(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  std::string ListedVersion() {
    grpc::ClientContext ctx;
    routerpb::ListMailboxesResponse response;
    grpc::Status s = stub_->ListMailboxes(&ctx, routerpb::ListMailboxesRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.version();
  }

 private:
  std::unique_ptr<routerpb::Router::Stub> stub_;
};

TEST(RouterRefreshE2E, AMailboxCreatedWhileRunningRoutesTheMomentRefreshReturns) {
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  // Only Refresh may notice the new mailbox: no watch on imapsql.db (the
  // harness keeps a setting given here over the installer's) and no TTL
  // within the test's lifetime.
  options.service_env["MAIL_ACCOUNTS_WATCH"] = "";
  options.service_env["MAIL_ACCOUNTS_REFRESH_S"] = "3600";
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  RouterClient router(h.Channel("router"));

  // Before dave exists his mail goes to the catch-all, and stays there.
  auto early = h.PutPending(Message("dave@example.org", 1), "dave@example.org", "s@outside.test");
  ASSERT_TRUE(early.ok()) << early.status();
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
  const routerpb::RefreshResponse before = router.Refresh();
  EXPECT_EQ(before.source(), routerpb::ACCOUNT_SOURCE_LIVE);

  ASSERT_TRUE(h.AddMailbox("dave@example.org").ok());
  // Longer than the watch would take (~2 s), so what follows is Refresh's doing.
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(router.Resolve("dave@example.org").rule(), routerpb::RULE_CATCH_ALL)
      << "the router saw dave without Refresh: the watch or the TTL is still on";

  const absl::Time start = absl::Now();
  const routerpb::RefreshResponse after = router.Refresh();
  const absl::Duration took = absl::Now() - start;
  const routerpb::ResolveResponse dave = router.Resolve("dave@example.org");
  EXPECT_EQ(dave.mailbox(), "dave@example.org");
  EXPECT_EQ(dave.rule(), routerpb::RULE_EXACT);
  EXPECT_EQ(after.mailbox_count(), before.mailbox_count() + 1);
  EXPECT_NE(after.version(), before.version());
  EXPECT_EQ(router.ListedVersion(), after.version());
  EXPECT_EQ(router.Refresh().version(), after.version()) << "nothing changed, yet the version did";
  std::cout << "router-refresh-e2e: maddy=" << h.maddy()->version()
            << " mailboxes=" << before.mailbox_count() << "->" << after.mailbox_count()
            << " refresh_ms=" << absl::ToInt64Milliseconds(took) << std::endl;

  auto later = h.PutPending(Message("dave@example.org", 2), "dave@example.org", "s@outside.test");
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
  std::map<std::string, std::string> mailbox_of;
  for (const DeliveredMessage& d : h.Delivered()) mailbox_of[d.trace_key] = d.mailbox;
  EXPECT_EQ(mailbox_of.size(), 2u);
  EXPECT_EQ(mailbox_of[early->key], "inbox@example.org");
  EXPECT_EQ(mailbox_of[later->key], "dave@example.org");
}

}  // namespace
}  // namespace pocketmail::testing
