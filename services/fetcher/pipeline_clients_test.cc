// The fetcher's clients against a real in-process ledger: group commit
// (concurrent writes share Apply calls, each gets its own outcome), the
// fallback for a ledger without Apply, and the router answer cache. The
// injector client's stream framing against a recording Injector service.
#include "services/fetcher/pipeline_clients.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"
#include "services/ledger/ledger_service.h"
#include "services/ledger/ledger_store.h"

namespace pocketmail::fetcher {
namespace {

using ledgerpb::State;

// Forwards to the real service and counts what arrives. With `has_apply`
// false it behaves like a ledger built before Apply existed (UNIMPLEMENTED).
class CountingLedger : public ledgerpb::Ledger::Service {
 public:
  CountingLedger(ledger::LedgerServiceImpl* real, bool has_apply)
      : real_(real), has_apply_(has_apply) {}

  grpc::Status Begin(grpc::ServerContext* ctx, const ledgerpb::BeginRequest* req,
                     ledgerpb::BeginResponse* resp) override {
    ++single_calls;
    return real_->Begin(ctx, req, resp);
  }
  grpc::Status Advance(grpc::ServerContext* ctx, const ledgerpb::AdvanceRequest* req,
                       ledgerpb::AdvanceResponse* resp) override {
    ++single_calls;
    return real_->Advance(ctx, req, resp);
  }
  grpc::Status Apply(grpc::ServerContext* ctx, const ledgerpb::ApplyRequest* req,
                     ledgerpb::ApplyResponse* resp) override {
    ++apply_calls;
    if (!has_apply_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no Apply here");
    apply_ops += req->ops_size();
    return real_->Apply(ctx, req, resp);
  }

  std::atomic<int> single_calls{0};
  std::atomic<int> apply_calls{0};
  std::atomic<int> apply_ops{0};

 private:
  ledger::LedgerServiceImpl* const real_;
  const bool has_apply_;
};

class LedgerClientTest : public ::testing::Test {
 protected:
  void Start(bool has_apply) {
    // A file on disk: real fsyncs, so writes overlap the way they do in service.
    const char* tmp = std::getenv("TEST_TMPDIR");
    path_ = absl::StrCat(tmp ? tmp : "/tmp", "/clients_test_", getpid(), has_apply ? "_a" : "_b",
                         ".db");
    auto store = ledger::LedgerStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    real_ = std::make_unique<ledger::LedgerServiceImpl>(store_.get());
    counting_ = std::make_unique<CountingLedger>(real_.get(), has_apply);
    grpc::ServerBuilder builder;
    builder.RegisterService(counting_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    client_ = MakeGrpcLedgerClient(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    if (server_) {
      real_->Shutdown();
      server_->Shutdown();
      server_->Wait();
    }
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path_ + suffix).c_str());
  }

  // One message's whole life, as the saga writes it.
  void Deliver(const std::string& key) {
    ledgerpb::BeginRequest begin;
    begin.set_key(key);
    auto begun = client_->Begin(begin);
    ASSERT_TRUE(begun.ok()) << begun.status();
    EXPECT_TRUE(begun->created());
    EXPECT_EQ(begun->message().key(), key);
    const State path[] = {State::STATE_PENDING, State::STATE_INJECTING, State::STATE_DELIVERED,
                          State::STATE_DONE};
    for (int i = 0; i + 1 < 4; ++i) {
      ledgerpb::AdvanceRequest step;
      step.set_key(key);
      step.set_from_state(path[i]);
      step.set_to_state(path[i + 1]);
      if (path[i + 1] == State::STATE_INJECTING) step.set_mailbox("alice");
      auto moved = client_->Advance(step);
      ASSERT_TRUE(moved.ok()) << key << ": " << moved.status();
      EXPECT_EQ(moved->key(), key);  // each caller gets its own row back
      EXPECT_EQ(moved->state(), path[i + 1]);
    }
  }

  void DeliverConcurrently(int threads, int per_thread) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([this, t, per_thread] {
        for (int i = 0; i < per_thread; ++i) Deliver(absl::StrCat("pending/t", t, "-m", i, ".eml"));
      });
    }
    for (auto& w : workers) w.join();
  }

  std::string path_;
  std::unique_ptr<ledger::LedgerStore> store_;
  std::unique_ptr<ledger::LedgerServiceImpl> real_;
  std::unique_ptr<CountingLedger> counting_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<LedgerClient> client_;
};

TEST_F(LedgerClientTest, ConcurrentWritesShareApplyCallsAndEachGetsItsOwnResult) {
  Start(/*has_apply=*/true);
  constexpr int kThreads = 8, kPerThread = 25;
  DeliverConcurrently(kThreads, kPerThread);
  const int writes = kThreads * kPerThread * 4;
  EXPECT_EQ(counting_->apply_ops.load(), writes);
  EXPECT_EQ(counting_->single_calls.load(), 0);
  // Eight writers on a ledger that fsyncs: writes queue while one Apply is in
  // flight, so there are fewer calls than writes.
  EXPECT_LT(counting_->apply_calls.load(), writes);
  std::printf("group commit: %d writes in %d Apply calls (%.2f per call)\n", writes,
              counting_->apply_calls.load(), double(writes) / counting_->apply_calls.load());
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->total(), kThreads * kPerThread);
  for (const auto& by : stats->by_state()) {
    EXPECT_EQ(by.count(), by.state() == State::STATE_DONE ? kThreads * kPerThread : 0)
        << by.state();
  }
}

TEST_F(LedgerClientTest, AFailedWriteFailsOnlyItsCaller) {
  Start(/*has_apply=*/true);
  std::atomic<int> refused{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string key = absl::StrCat("pending/f", t, "-", i, ".eml");
        ledgerpb::BeginRequest begin;
        begin.set_key(key);
        ASSERT_TRUE(client_->Begin(begin).ok());
        ledgerpb::AdvanceRequest wrong;  // the row is PENDING, not INJECTING
        wrong.set_key(key);
        wrong.set_from_state(State::STATE_INJECTING);
        wrong.set_to_state(State::STATE_DELIVERED);
        auto r = client_->Advance(wrong);
        if (absl::IsFailedPrecondition(r.status())) ++refused;
        ledgerpb::AdvanceRequest right;
        right.set_key(key);
        right.set_from_state(State::STATE_PENDING);
        right.set_to_state(State::STATE_INJECTING);
        EXPECT_TRUE(client_->Advance(right).ok());
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(refused.load(), 80);
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  for (const auto& by : stats->by_state()) {
    EXPECT_EQ(by.count(), by.state() == State::STATE_INJECTING ? 80 : 0) << by.state();
  }
}

TEST_F(LedgerClientTest, ALedgerWithoutApplyGetsSingleCalls) {
  Start(/*has_apply=*/false);
  DeliverConcurrently(3, 5);
  const int writes = 3 * 5 * 4;
  EXPECT_EQ(counting_->single_calls.load(), writes);
  EXPECT_GE(counting_->apply_calls.load(),
            1);  // tried once (or once per racing batch), then stopped
  EXPECT_LE(counting_->apply_calls.load(), 3);
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->total(), 15);
}

TEST(LedgerClientUnreachableTest, EveryWaitingCallerGetsTheError) {
  auto client = MakeGrpcLedgerClient(grpc::CreateChannel("unix:/nonexistent/pocketmail/ledger.sock",
                                                         grpc::InsecureChannelCredentials()));
  std::atomic<int> unavailable{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      ledgerpb::BeginRequest begin;
      begin.set_key(absl::StrCat("pending/u", t, ".eml"));
      if (absl::IsUnavailable(client->Begin(begin).status())) ++unavailable;
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(unavailable.load(), 4);
}

// Router cache -------------------------------------------------------------

class ScriptedRouter : public RouterClient {
 public:
  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    ++calls;
    if (fail) return absl::UnavailableError("account list not read yet");
    routerpb::ResolveResponse r;
    r.set_mailbox(absl::StrCat(address.substr(0, address.find('@')), "-", calls));
    r.set_rule(absl::StartsWith(address, "new") ? routerpb::RULE_CATCH_ALL : routerpb::RULE_EXACT);
    return r;
  }
  int calls = 0;
  bool fail = false;
};

TEST(CachingRouterClientTest, ReusesAnAnswerUntilItExpiresAndNeverCachesErrors) {
  auto scripted = std::make_unique<ScriptedRouter>();
  ScriptedRouter* inner = scripted.get();
  FakeClock clock;
  auto router = MakeCachingRouterClient(std::move(scripted), absl::Seconds(10), &clock);

  inner->fail = true;
  EXPECT_FALSE(router->Resolve("a@x.org").ok());
  EXPECT_FALSE(router->Resolve("a@x.org").ok());
  EXPECT_EQ(inner->calls, 2);  // errors are asked again

  inner->fail = false;
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-3");
  clock.Advance(absl::Seconds(9));
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-3");  // cached
  EXPECT_EQ(router->Resolve("b@x.org")->mailbox(), "b-4");  // per address
  EXPECT_EQ(inner->calls, 4);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-5");  // expired: asked again
}

TEST(CachingRouterClientTest, NeverReusesACatchAllAnswerSoANewMailboxGetsItsMailAtOnce) {
  auto scripted = std::make_unique<ScriptedRouter>();
  ScriptedRouter* inner = scripted.get();
  auto router = MakeCachingRouterClient(std::move(scripted), absl::Seconds(10));
  EXPECT_EQ(router->Resolve("newcomer@x.org")->mailbox(), "newcomer-1");
  EXPECT_EQ(router->Resolve("newcomer@x.org")->mailbox(), "newcomer-2");
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-3");
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-3");
  EXPECT_EQ(inner->calls, 3);
}

TEST(CachingRouterClientTest, ZeroTtlAsksEveryTime) {
  auto scripted = std::make_unique<ScriptedRouter>();
  ScriptedRouter* inner = scripted.get();
  auto router = MakeCachingRouterClient(std::move(scripted), absl::ZeroDuration());
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-1");
  EXPECT_EQ(router->Resolve("a@x.org")->mailbox(), "a-2");
  EXPECT_EQ(inner->calls, 2);
}

// Injector stream framing -------------------------------------------------

// Records what a stream carried: the envelope must come first, then the body
// in chunks; the reply is built from what arrived.
class RecordingInjector : public injectorpb::Injector::Service {
 public:
  grpc::Status Inject(grpc::ServerContext*, grpc::ServerReader<injectorpb::InjectRequest>* reader,
                      injectorpb::InjectResponse* response) override {
    injectorpb::InjectRequest request;
    if (!reader->Read(&request) || !request.has_envelope()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "envelope must come first");
    }
    envelope = request.envelope();
    body.clear();
    chunks = 0;
    while (reader->Read(&request)) {
      if (!request.has_chunk())
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "second envelope");
      body += request.chunk();
      ++chunks;
    }
    if (!fail_after_reading.ok()) return fail_after_reading;
    response->set_outcome(injectorpb::OUTCOME_CLASS_DELIVERED);
    response->set_smtp_code(250);
    return grpc::Status::OK;
  }
  injectorpb::Envelope envelope;
  std::string body;
  int chunks = 0;
  grpc::Status fail_after_reading;  // e.g. the injector died after the final "."
};

TEST(InjectorClientTest, EveryBodySizeArrivesWholeAfterItsEnvelope) {
  RecordingInjector recorder;
  grpc::ServerBuilder builder;
  builder.RegisterService(&recorder);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto client = MakeGrpcInjectorClient(server->InProcessChannel(grpc::ChannelArguments()));
  const size_t chunk = InjectorClient::kChunkBytes;
  for (size_t size : {size_t{0}, size_t{1}, chunk - 1, chunk, chunk + 1, 2 * chunk + chunk / 2}) {
    std::string body(size, '\0');
    for (size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + (i * 7 + size) % 26);
    injectorpb::Envelope envelope;
    envelope.set_key(absl::StrCat("pending/size-", size, ".eml"));
    envelope.set_rcpt_to("alice@example.org");
    InjectResult reply = client->Inject(envelope, body);
    ASSERT_TRUE(reply.call.ok()) << size << ": " << reply.call;
    EXPECT_EQ(reply.reply.outcome(), injectorpb::OUTCOME_CLASS_DELIVERED) << size;
    EXPECT_EQ(recorder.envelope.key(), envelope.key());
    EXPECT_EQ(recorder.body, body) << size;
    EXPECT_EQ(recorder.chunks, static_cast<int>((size + chunk - 1) / chunk)) << size;
  }
  server->Shutdown();
}

TEST(InjectorClientTest, AnUnreachableInjectorWasNotHandedTheMessage) {
  auto client = MakeGrpcInjectorClient(grpc::CreateChannel(
      "unix:/nonexistent/pocketmail/injector.sock", grpc::InsecureChannelCredentials()));
  injectorpb::Envelope envelope;
  envelope.set_key("pending/x.eml");
  InjectResult reply = client->Inject(envelope, "Subject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(reply.call.code(), absl::StatusCode::kUnavailable) << reply.call;
  EXPECT_FALSE(reply.handed_over);
}

TEST(InjectorClientTest, AFailureAfterTheWholeMessageArrivedWasHandedOver) {
  RecordingInjector recorder;
  recorder.fail_after_reading = grpc::Status(grpc::StatusCode::UNAVAILABLE, "injector restarting");
  grpc::ServerBuilder builder;
  builder.RegisterService(&recorder);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto client = MakeGrpcInjectorClient(server->InProcessChannel(grpc::ChannelArguments()));
  injectorpb::Envelope envelope;
  envelope.set_key("pending/x.eml");
  InjectResult reply = client->Inject(envelope, "Subject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(reply.call.code(), absl::StatusCode::kUnavailable) << reply.call;
  EXPECT_EQ(reply.call.message(), "injector restarting");
  EXPECT_TRUE(reply.handed_over);
  server->Shutdown();
}

}  // namespace
}  // namespace pocketmail::fetcher
