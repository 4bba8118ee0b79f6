#include "services/router/router_service.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/time/fake_clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace pocketmail::router {
namespace {

// What the account command prints, changeable while the service runs.
class ListSource final : public AccountSource {
 public:
  explicit ListSource(absl::StatusOr<std::vector<std::string>> names) : names_(std::move(names)) {}
  absl::StatusOr<std::vector<std::string>> ListAccounts() override {
    absl::MutexLock lock(&mu_);
    return names_;
  }
  void Set(absl::StatusOr<std::vector<std::string>> names) {
    absl::MutexLock lock(&mu_);
    names_ = std::move(names);
  }

 private:
  absl::Mutex mu_;
  absl::StatusOr<std::vector<std::string>> names_;
};

class RouterServiceTest : public ::testing::Test {
 protected:
  void Serve(absl::StatusOr<std::vector<std::string>> names) {
    RouterOptions options;
    options.mail_domain = "example.org";
    options.clock = &clock_;  // starts at 1'800'000'000'000 ms
    auto source = std::make_unique<ListSource>(std::move(names));
    source_ = source.get();
    auto router = RecipientRouter::Create(options, std::move(source), nullptr);
    ASSERT_TRUE(router.ok());
    router_ = std::move(*router);
    service_ = std::make_unique<RouterServiceImpl>(router_.get());
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Router::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  grpc::Status Resolve(const std::string& address, v1::ResolveResponse* response) {
    grpc::ClientContext ctx;
    v1::ResolveRequest request;
    request.set_address(address);
    return stub_->Resolve(&ctx, request, response);
  }
  grpc::Status Refresh(v1::RefreshResponse* response) {
    grpc::ClientContext ctx;
    return stub_->Refresh(&ctx, v1::RefreshRequest(), response);
  }
  v1::ListMailboxesResponse List() {
    grpc::ClientContext ctx;
    v1::ListMailboxesResponse listing;
    EXPECT_TRUE(stub_->ListMailboxes(&ctx, v1::ListMailboxesRequest(), &listing).ok());
    return listing;
  }

  FakeClock clock_;
  ListSource* source_ = nullptr;  // owned by router_
  std::unique_ptr<RecipientRouter> router_;
  std::unique_ptr<RouterServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Router::Stub> stub_;
};

TEST_F(RouterServiceTest, ResolveReturnsMailboxRuleAndExplanation) {
  Serve(std::vector<std::string>{"alice@example.org", "inbox@example.org"});
  v1::ResolveResponse response;
  ASSERT_TRUE(Resolve("Alice+news@Example.org", &response).ok());
  EXPECT_EQ(response.mailbox(), "alice@example.org");
  EXPECT_EQ(response.rule(), v1::RULE_SUBADDRESS);
  EXPECT_FALSE(response.explanation().empty());
  EXPECT_FALSE(response.list_stale());
}

TEST_F(RouterServiceTest, BadAddressIsInvalidArgument) {
  Serve(std::vector<std::string>{"alice@example.org"});
  v1::ResolveResponse response;
  EXPECT_EQ(Resolve("alice@example.org\r\nDATA", &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Resolve("alice@elsewhere.org", &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RouterServiceTest, NoAccountListIsUnavailable) {
  Serve(absl::UnavailableError("maddy not running"));
  v1::ResolveResponse response;
  EXPECT_EQ(Resolve("alice@example.org", &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext ctx;
  v1::ListMailboxesResponse listing;
  EXPECT_EQ(stub_->ListMailboxes(&ctx, v1::ListMailboxesRequest(), &listing).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RouterServiceTest, ListMailboxesIsSortedLowercasedWithSource) {
  Serve(std::vector<std::string>{"Zoe@example.org", "alice", "inbox@example.org"});
  grpc::ClientContext ctx;
  v1::ListMailboxesResponse listing;
  ASSERT_TRUE(stub_->ListMailboxes(&ctx, v1::ListMailboxesRequest(), &listing).ok());
  ASSERT_EQ(listing.mailboxes_size(), 3);
  EXPECT_EQ(listing.mailboxes(0), "alice@example.org");
  EXPECT_EQ(listing.mailboxes(1), "inbox@example.org");
  EXPECT_EQ(listing.mailboxes(2), "zoe@example.org");
  EXPECT_EQ(listing.source(), v1::ACCOUNT_SOURCE_LIVE);
  EXPECT_EQ(listing.refreshed_ms(), 1'800'000'000'000);
  EXPECT_TRUE(listing.last_error().empty());
}

TEST_F(RouterServiceTest, RefreshRoutesANewAccountAtOnceAndChangesTheVersion) {
  Serve(std::vector<std::string>{"alice@example.org", "inbox@example.org"});
  v1::ResolveResponse before;
  ASSERT_TRUE(Resolve("dave@example.org", &before).ok());
  EXPECT_EQ(before.rule(), v1::RULE_CATCH_ALL);
  v1::RefreshResponse first;
  ASSERT_TRUE(Refresh(&first).ok());
  EXPECT_EQ(first.mailbox_count(), 2);

  // The gateway created dave; the clock stands still, so no TTL could fire.
  source_->Set(
      std::vector<std::string>{"alice@example.org", "dave@example.org", "inbox@example.org"});
  v1::RefreshResponse second;
  ASSERT_TRUE(Refresh(&second).ok());
  EXPECT_EQ(second.mailbox_count(), 3);
  EXPECT_NE(second.version(), first.version());
  EXPECT_EQ(second.source(), v1::ACCOUNT_SOURCE_LIVE);
  EXPECT_EQ(second.refreshed_ms(), 1'800'000'000'000);
  v1::ResolveResponse after;
  ASSERT_TRUE(Resolve("dave@example.org", &after).ok());
  EXPECT_EQ(after.mailbox(), "dave@example.org");
  EXPECT_EQ(after.rule(), v1::RULE_EXACT);
  EXPECT_EQ(List().version(), second.version());
}

TEST_F(RouterServiceTest, RefreshOfAnUnchangedListKeepsTheVersion) {
  Serve(std::vector<std::string>{"alice@example.org", "inbox@example.org"});
  v1::RefreshResponse first, second;
  ASSERT_TRUE(Refresh(&first).ok());
  ASSERT_TRUE(Refresh(&second).ok());
  EXPECT_FALSE(first.version().empty());
  EXPECT_EQ(second.version(), first.version());
  EXPECT_EQ(second.mailbox_count(), first.mailbox_count());
}

TEST_F(RouterServiceTest, FailedRefreshIsUnavailableAndKeepsTheLastGoodListAndVersion) {
  Serve(std::vector<std::string>{"alice@example.org", "inbox@example.org"});
  v1::RefreshResponse good;
  ASSERT_TRUE(Refresh(&good).ok());
  source_->Set(absl::UnavailableError("account command exited with status 1: maddy: locked"));
  v1::RefreshResponse failed;
  grpc::Status status = Refresh(&failed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(status.error_message().find("maddy: locked"), std::string::npos);

  v1::ListMailboxesResponse listing = List();
  EXPECT_EQ(listing.version(), good.version());
  EXPECT_EQ(listing.mailboxes_size(), 2);
  EXPECT_EQ(listing.source(), v1::ACCOUNT_SOURCE_LAST_GOOD);
  v1::ResolveResponse alice;
  ASSERT_TRUE(Resolve("alice@example.org", &alice).ok());
  EXPECT_EQ(alice.rule(), v1::RULE_EXACT);
  EXPECT_TRUE(alice.list_stale());
}

TEST_F(RouterServiceTest, RefreshBeforeAnyListWasReadIsUnavailable) {
  Serve(absl::UnavailableError("maddy not running"));
  v1::RefreshResponse response;
  EXPECT_EQ(Refresh(&response).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace pocketmail::router
