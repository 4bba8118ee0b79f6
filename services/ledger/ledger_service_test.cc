#include "services/ledger/ledger_service.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/time/fake_clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace pocketmail::ledger {
namespace {

constexpr int64_t kT0 = 1'800'000'000'000;

class LedgerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = LedgerStore::Open(":memory:", &clock_);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    LedgerServiceOptions options;
    options.watch_poll = absl::Milliseconds(20);
    options.watch_batch = 2;  // small, so replays span several batches
    service_ = std::make_unique<LedgerServiceImpl>(store_.get(), options);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Ledger::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    service_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }

  grpc::Status Begin(const std::string& key, v1::BeginResponse* response = nullptr) {
    grpc::ClientContext ctx;
    v1::BeginRequest request;
    request.set_key(key);
    request.set_recipient("alice@example.org");
    v1::BeginResponse ignored;
    return stub_->Begin(&ctx, request, response ? response : &ignored);
  }
  grpc::Status Advance(const std::string& key, v1::State from, v1::State to,
                       const std::string& mailbox = "", v1::AdvanceResponse* response = nullptr) {
    grpc::ClientContext ctx;
    v1::AdvanceRequest request;
    request.set_key(key);
    request.set_from_state(from);
    request.set_to_state(to);
    request.set_mailbox(mailbox);
    v1::AdvanceResponse ignored;
    return stub_->Advance(&ctx, request, response ? response : &ignored);
  }
  void Deliver(const std::string& key, const std::string& mailbox) {
    ASSERT_TRUE(Begin(key).ok());
    ASSERT_TRUE(Advance(key, v1::STATE_PENDING, v1::STATE_INJECTING, mailbox).ok());
    ASSERT_TRUE(Advance(key, v1::STATE_INJECTING, v1::STATE_DELIVERED).ok());
  }

  FakeClock clock_{absl::FromUnixMillis(kT0)};
  std::unique_ptr<LedgerStore> store_;
  std::unique_ptr<LedgerServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Ledger::Stub> stub_;
};

TEST_F(LedgerServiceTest, BeginThenGetRoundTripsOverGrpc) {
  v1::BeginResponse begun;
  ASSERT_TRUE(Begin("pending/a.eml", &begun).ok());
  EXPECT_TRUE(begun.created());
  ASSERT_TRUE(Begin("pending/a.eml", &begun).ok());
  EXPECT_FALSE(begun.created());

  grpc::ClientContext ctx;
  v1::GetRequest request;
  request.set_key("pending/a.eml");
  v1::GetResponse response;
  ASSERT_TRUE(stub_->Get(&ctx, request, &response).ok());
  EXPECT_EQ(response.message().state(), v1::STATE_PENDING);
  EXPECT_EQ(response.message().recipient(), "alice@example.org");
}

TEST_F(LedgerServiceTest, RejectsBadKeysWithInvalidArgument) {
  EXPECT_EQ(Begin("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Begin("pending/a\r\n.eml").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Begin(std::string("a\0b", 3)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Begin(std::string(kMaxKeyBytes + 1, 'k')).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Begin(std::string(kMaxKeyBytes, 'k')).ok());
  EXPECT_TRUE(Begin("pending/b\xc3\xbc"
                    "cher.eml")
                  .ok());
}

TEST_F(LedgerServiceTest, MapsStateMachineErrorsToGrpcCodes) {
  ASSERT_TRUE(Begin("k").ok());
  EXPECT_EQ(Advance("k", v1::STATE_PENDING, static_cast<v1::State>(42)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Advance("k", v1::STATE_UNSPECIFIED, v1::STATE_INJECTING).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status illegal = Advance("k", v1::STATE_PENDING, v1::STATE_DONE);
  EXPECT_EQ(illegal.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(illegal.error_message().find("PENDING"), std::string::npos);
  EXPECT_NE(illegal.error_message().find("DONE"), std::string::npos);
  EXPECT_EQ(Advance("missing", v1::STATE_PENDING, v1::STATE_INJECTING).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(LedgerServiceTest, ListAndStatsAnswerOverGrpc) {
  Deliver("a", "alice@example.org");
  ASSERT_TRUE(Begin("b").ok());
  {
    grpc::ClientContext ctx;
    v1::ListRequest request;
    request.set_page_size(1);
    v1::ListResponse response;
    ASSERT_TRUE(stub_->List(&ctx, request, &response).ok());
    EXPECT_EQ(response.messages_size(), 1);
    EXPECT_FALSE(response.next_page_token().empty());
  }
  {
    grpc::ClientContext ctx;
    v1::ListRequest request;
    request.set_page_token("%%%");
    v1::ListResponse response;
    EXPECT_EQ(stub_->List(&ctx, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    v1::StatsRequest request;
    v1::StatsResponse response;
    ASSERT_TRUE(stub_->Stats(&ctx, request, &response).ok());
    EXPECT_EQ(response.total(), 2);
    EXPECT_EQ(response.delivered_last_hour(), 1);
  }
}

TEST_F(LedgerServiceTest, WatchReplaysSinceSeqThenStreamsLiveDeliveriesForTheMailbox) {
  Deliver("a1", "alice@example.org");  // seq 1
  Deliver("b1", "bob@example.org");    // seq 2
  Deliver("a2", "alice@example.org");  // seq 3
  Deliver("a3", "alice@example.org");  // seq 4

  grpc::ClientContext ctx;
  v1::WatchDeliveriesRequest request;
  request.set_mailbox("alice@example.org");
  request.set_since_seq(1);
  auto reader = stub_->WatchDeliveries(&ctx, request);
  v1::DeliveryEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.message().key(), "a2");
  EXPECT_EQ(event.message().seq(), 3);
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.message().key(), "a3");

  std::thread producer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    Deliver("b2", "bob@example.org");    // filtered out
    Deliver("a4", "alice@example.org");  // live
  });
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.message().key(), "a4");
  EXPECT_EQ(event.message().seq(), 6);
  producer.join();

  ctx.TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(LedgerServiceTest, WatchWithoutSinceSeqStreamsOnlyNewDeliveries) {
  Deliver("old", "alice@example.org");
  grpc::ClientContext ctx;
  v1::WatchDeliveriesRequest request;
  auto reader = stub_->WatchDeliveries(&ctx, request);
  std::thread producer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    Deliver("new", "bob@example.org");
  });
  v1::DeliveryEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.message().key(), "new");
  producer.join();
  ctx.TryCancel();
  while (reader->Read(&event)) {
  }
  reader->Finish();
}

TEST_F(LedgerServiceTest, WatchFromASinceSeqBeyondTheLatestStillGetsNewDeliveries) {
  Deliver("a", "alice@example.org");  // seq 1
  grpc::ClientContext ctx;
  v1::WatchDeliveriesRequest request;
  request.set_since_seq(500);  // remembered from a previous ledger.db
  auto reader = stub_->WatchDeliveries(&ctx, request);
  std::thread producer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    Deliver("b", "alice@example.org");  // seq 2
  });
  v1::DeliveryEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.message().key(), "b");
  producer.join();
  ctx.TryCancel();
  while (reader->Read(&event)) {
  }
  reader->Finish();
}

TEST_F(LedgerServiceTest, ShutdownEndsOpenWatchStreamsPromptly) {
  grpc::ClientContext ctx;
  v1::WatchDeliveriesRequest request;
  auto reader = stub_->WatchDeliveries(&ctx, request);
  absl::SleepFor(absl::Milliseconds(50));  // let the stream reach its wait
  absl::Time start = absl::Now();
  service_->Shutdown();
  v1::DeliveryEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(LedgerServiceTest, WatchRejectsNegativeSinceSeq) {
  grpc::ClientContext ctx;
  v1::WatchDeliveriesRequest request;
  request.set_since_seq(-5);
  auto reader = stub_->WatchDeliveries(&ctx, request);
  v1::DeliveryEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(LedgerServiceTest, ApplyValidatesEachOpAndKeepsResultsInOrder) {
  v1::ApplyRequest request;
  request.add_ops()->mutable_begin()->set_key("pending/ok.eml");
  request.add_ops()->mutable_begin()->set_key(std::string("bad\x01key"));
  v1::AdvanceRequest* bad_state = request.add_ops()->mutable_advance();
  bad_state->set_key("pending/ok.eml");
  bad_state->set_from_state(v1::STATE_PENDING);
  bad_state->set_to_state(static_cast<v1::State>(99));
  v1::AdvanceRequest* good = request.add_ops()->mutable_advance();
  good->set_key("pending/ok.eml");
  good->set_from_state(v1::STATE_PENDING);
  good->set_to_state(v1::STATE_INJECTING);
  good->set_mailbox("alice");
  grpc::ClientContext ctx;
  v1::ApplyResponse response;
  ASSERT_TRUE(stub_->Apply(&ctx, request, &response).ok());
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).code(), 0);
  EXPECT_TRUE(response.results(0).created());
  EXPECT_EQ(response.results(1).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.results(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.results(3).code(), 0);
  EXPECT_EQ(response.results(3).message().state(), v1::STATE_INJECTING);
  EXPECT_EQ(response.results(3).message().mailbox(), "alice");
}

TEST_F(LedgerServiceTest, ApplyRefusesOversizedBatchesAndAcceptsEmptyOnes) {
  v1::ApplyRequest request;
  for (int i = 0; i <= kMaxApplyOps; ++i) {
    request.add_ops()->mutable_begin()->set_key(absl::StrCat("pending/", i, ".eml"));
  }
  {
    grpc::ClientContext ctx;
    v1::ApplyResponse response;
    EXPECT_EQ(stub_->Apply(&ctx, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext ctx;
  v1::ApplyResponse response;
  EXPECT_TRUE(stub_->Apply(&ctx, v1::ApplyRequest(), &response).ok());
  EXPECT_EQ(response.results_size(), 0);
}

}  // namespace
}  // namespace pocketmail::ledger
