#include "services/router/router_service.h"

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace pocketmail::router {
namespace {

class ListSource final : public AccountSource {
 public:
  explicit ListSource(absl::StatusOr<std::vector<std::string>> names) : names_(std::move(names)) {}
  absl::StatusOr<std::vector<std::string>> ListAccounts() override { return names_; }

 private:
  absl::StatusOr<std::vector<std::string>> names_;
};

class RouterServiceTest : public ::testing::Test {
 protected:
  void Serve(absl::StatusOr<std::vector<std::string>> names) {
    RouterOptions options;
    options.mail_domain = "example.org";
    options.now = [] { return absl::FromUnixMillis(1'800'000'000'000); };
    auto router = RecipientRouter::Create(options, std::make_unique<ListSource>(std::move(names)),
                                          nullptr);
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

}  // namespace
}  // namespace pocketmail::router
