#include "common/server/service_host.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/server/health_client.h"
#include "gtest/gtest.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"

namespace pocketmail::server {
namespace {

class ServiceHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pm-host-XXXXXX";
    base_ = mkdtemp(tmpl);
    runtime_dir_ = base_ + "/run";
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  std::string WriteToken(const std::string& token, mode_t mode, const std::string& name = "token") {
    std::string path = base_ + "/" + name;
    std::ofstream(path) << token << "\n";
    chmod(path.c_str(), mode);
    return path;
  }

  std::string base_;
  std::string runtime_dir_;
};

TEST_F(ServiceHostTest, ServesHealthOnUnixSocketInPrivateDir) {
  auto host = ServiceHost::Start({"ledger", runtime_dir_}, {});
  ASSERT_TRUE(host.ok()) << host.status();
  struct stat st;
  ASSERT_EQ(stat(runtime_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
  auto health = CheckHealth(ConnectToService(runtime_dir_, "ledger"));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, Health::kServing);
}

// gRPC's callback-API health service starts two "nexting" threads that wake
// several times a second forever; ours is sync, so none may exist.
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.push_back(name);
  }
  return names;
}

TEST_F(ServiceHostTest, HealthStartsNoCallbackApiThreads) {
  auto host = ServiceHost::Start({"ledger", runtime_dir_}, {});
  ASSERT_TRUE(host.ok()) << host.status();
  auto health = CheckHealth(ConnectToService(runtime_dir_, "ledger"));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, Health::kServing);
  for (const std::string& name : ThreadNames())
    EXPECT_EQ(name.rfind("nexting", 0), std::string::npos) << name;
}

TEST_F(ServiceHostTest, HealthOfAnUnknownServiceIsNotFoundAndShutdownIsNotServing) {
  auto host = ServiceHost::Start({"ledger", runtime_dir_}, {});
  ASSERT_TRUE(host.ok()) << host.status();
  auto channel = ConnectToService(runtime_dir_, "ledger");
  auto unknown = CheckHealth(channel, "no.such.Service");
  EXPECT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
  // While draining (before_drain runs after health turned NOT_SERVING) a
  // load balancer or supervisor asking sees it.
  absl::StatusOr<Health> during;
  std::thread stopper([&] { (*host)->Shutdown(); });
  (*host)->Wait([&] { during = CheckHealth(channel); });
  stopper.join();
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(*during, Health::kNotServing);
}

TEST_F(ServiceHostTest, ServesOnTheSocketOfEachName) {
  ServerOptions options{"pocketmaild", runtime_dir_};
  options.socket_names = {"ledger", "router", "injector", "fetcher"};
  auto host = ServiceHost::Start(options, {});
  ASSERT_TRUE(host.ok()) << host.status();
  for (const std::string& name : options.socket_names) {
    EXPECT_TRUE(std::filesystem::exists(SocketPath(runtime_dir_, name))) << name;
    auto health = CheckHealth(ConnectToService(runtime_dir_, name));
    ASSERT_TRUE(health.ok()) << name << ": " << health.status();
    EXPECT_EQ(*health, Health::kServing);
  }
  EXPECT_FALSE(std::filesystem::exists(SocketPath(runtime_dir_, "pocketmaild")));
  std::thread stopper([&] { (*host)->Shutdown(); });
  (*host)->Wait();
  stopper.join();
  for (const std::string& name : options.socket_names) {
    EXPECT_FALSE(std::filesystem::exists(SocketPath(runtime_dir_, name))) << name;
  }
}

TEST_F(ServiceHostTest, RefusesRuntimeDirOpenToOthers) {
  std::filesystem::create_directories(runtime_dir_);
  chmod(runtime_dir_.c_str(), 0755);
  auto host = ServiceHost::Start({"ledger", runtime_dir_}, {});
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ServiceHostTest, ReclaimsStaleSocketButNotALiveOne) {
  auto first = ServiceHost::Start({"router", runtime_dir_}, {});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ServiceHost::Start({"router", runtime_dir_}, {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(ServiceHostTest, TcpCallWithoutTokenIsUnauthenticated) {
  ServerOptions options{"injector", runtime_dir_, "127.0.0.1:0", WriteToken("s3cret-token", 0600)};
  auto host = ServiceHost::Start(options, {});
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_GT((*host)->tcp_port(), 0);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*host)->tcp_port()),
                                     grpc::InsecureChannelCredentials());
  auto no_token = CheckHealth(channel);
  EXPECT_EQ(no_token.status().code(), absl::StatusCode::kUnauthenticated) << no_token.status();
  auto wrong = CheckHealth(channel, "", absl::Seconds(2), "guess");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
  auto right = CheckHealth(channel, "", absl::Seconds(2), "s3cret-token");
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(*right, Health::kServing);
}

TEST_F(ServiceHostTest, TcpRequiresAPrivateTokenFile) {
  ServerOptions options{"injector", runtime_dir_, "127.0.0.1:0", WriteToken("t", 0644)};
  EXPECT_FALSE(ServiceHost::Start(options, {}).ok());
}

TEST_F(ServiceHostTest, TcpIsLoopbackOnly) {
  ServerOptions options{"injector", runtime_dir_, "0.0.0.0:0", WriteToken("t", 0600)};
  auto host = ServiceHost::Start(options, {});
  EXPECT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceHostTest, ShutdownReturnsFromWaitAndRemovesSocket) {
  auto host = ServiceHost::Start({"fetcher", runtime_dir_}, {});
  ASSERT_TRUE(host.ok()) << host.status();
  std::string path = (*host)->socket_path();
  bool drained = false;
  std::thread stopper([&] { (*host)->Shutdown(); });
  (*host)->Wait([&] { drained = true; });
  stopper.join();
  EXPECT_TRUE(drained);
  EXPECT_FALSE(std::filesystem::exists(path));
}

// A service whose one call takes a while, so a shutdown finds it running.
class SlowStats : public pocketmail::ledger::v1::Ledger::Service {
 public:
  grpc::Status Stats(grpc::ServerContext*, const pocketmail::ledger::v1::StatsRequest*,
                     pocketmail::ledger::v1::StatsResponse* response) override {
    started.Notify();
    absl::SleepFor(absl::Milliseconds(500));
    response->set_total(42);
    return grpc::Status::OK;
  }
  absl::Notification started;
};

TEST_F(ServiceHostTest, ShutdownLetsARunningCallFinish) {
  SlowStats slow;
  auto host = ServiceHost::Start({"ledger", runtime_dir_}, {&slow});
  ASSERT_TRUE(host.ok()) << host.status();
  auto stub = pocketmail::ledger::v1::Ledger::NewStub(ConnectToService(runtime_dir_, "ledger"));
  grpc::Status status;
  pocketmail::ledger::v1::StatsResponse response;
  std::thread caller([&] {
    grpc::ClientContext ctx;
    status = stub->Stats(&ctx, pocketmail::ledger::v1::StatsRequest(), &response);
  });
  slow.started.WaitForNotification();
  std::thread stopper([&] { (*host)->Shutdown(); });
  (*host)->Wait();
  stopper.join();
  caller.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.total(), 42);
}

// gRPC's own Shutdown also waits for every connected client to hang up after
// its GOAWAY. A client that never does (stuck, or slow to react: a Python
// gRPC client took 3.6 s) held a restart until the 10 s grace ran out. The
// host waits for calls, not for idle connections. The bound is far above the
// milliseconds this takes and far below the grace.
TEST_F(ServiceHostTest, ShutdownDoesNotWaitForIdleClients) {
  auto host = ServiceHost::Start({"ledger", runtime_dir_}, {});
  ASSERT_TRUE(host.ok()) << host.status();
  // An HTTP/2 client that says hello and then never answers or hangs up.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", (*host)->socket_path().c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  static const char kHello[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00";  // preface + empty SETTINGS
  ASSERT_EQ(write(fd, kHello, sizeof(kHello) - 1), static_cast<ssize_t>(sizeof(kHello) - 1));
  ASSERT_TRUE(
      CheckHealth(ConnectToService(runtime_dir_, "ledger")).ok());  // the server is up and serving

  absl::Time start = absl::Now();
  std::thread stopper([&] { (*host)->Shutdown(); });
  (*host)->Wait();
  stopper.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  close(fd);
}

// The TCP scopes, end to end. A ledger whose one read (Stats) and one write
// (Begin) count the calls that reached them.
class CountingLedger : public pocketmail::ledger::v1::Ledger::Service {
 public:
  grpc::Status Stats(grpc::ServerContext*, const pocketmail::ledger::v1::StatsRequest*,
                     pocketmail::ledger::v1::StatsResponse* response) override {
    ++stats_calls;
    response->set_total(7);
    return grpc::Status::OK;
  }
  grpc::Status Begin(grpc::ServerContext*, const pocketmail::ledger::v1::BeginRequest*,
                     pocketmail::ledger::v1::BeginResponse* response) override {
    ++begin_calls;
    response->set_created(true);
    return grpc::Status::OK;
  }
  std::atomic<int> stats_calls{0};
  std::atomic<int> begin_calls{0};
};

// Everything written to fd 2 (where common/log writes) while it lives.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) : path_(path) {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  std::string Finish() {
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string path_;
  int saved_;
};

constexpr char kOperatorToken[] = "operator-s3cret-1";
constexpr char kGatewayToken[] = "gateway-s3cret-2";

class TcpScopeTest : public ServiceHostTest {
 protected:
  void SetUp() override {
    ServiceHostTest::SetUp();
    ServerOptions options{"ledger", runtime_dir_, "127.0.0.1:0", WriteToken(kOperatorToken, 0600)};
    options.gateway_token_file = WriteToken(kGatewayToken, 0600, "gateway-token");
    auto host = ServiceHost::Start(options, {&ledger_});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
    tcp_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(host_->tcp_port()),
                               grpc::InsecureChannelCredentials());
  }

  // token "" sends no authorization header.
  grpc::Status Stats(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    pocketmail::ledger::v1::StatsResponse response;
    return pocketmail::ledger::v1::Ledger::NewStub(channel)->Stats(&ctx, {}, &response);
  }
  grpc::Status Begin(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    pocketmail::ledger::v1::BeginRequest request;
    request.set_key("pending/scope-test.eml");
    pocketmail::ledger::v1::BeginResponse response;
    return pocketmail::ledger::v1::Ledger::NewStub(channel)->Begin(&ctx, request, &response);
  }

  CountingLedger ledger_;
  std::unique_ptr<ServiceHost> host_;
  std::shared_ptr<grpc::Channel> tcp_;
};

TEST_F(TcpScopeTest, GatewayTokenMayCallHealthAndReads) {
  auto health = CheckHealth(tcp_, "", absl::Seconds(2), kGatewayToken);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, Health::kServing);
  grpc::Status stats = Stats(tcp_, kGatewayToken);
  EXPECT_TRUE(stats.ok()) << stats.error_message();
  EXPECT_EQ(ledger_.stats_calls, 1);
}

TEST_F(TcpScopeTest, GatewayTokenOnAWriteIsPermissionDeniedAndNeverReachesTheService) {
  grpc::Status begin = Begin(tcp_, kGatewayToken);
  EXPECT_EQ(begin.error_code(), grpc::StatusCode::PERMISSION_DENIED) << begin.error_message();
  EXPECT_NE(begin.error_message().find("/pocketmail.ledger.v1.Ledger/Begin"), std::string::npos)
      << begin.error_message();
  EXPECT_NE(begin.error_message().find("gateway"), std::string::npos) << begin.error_message();
  EXPECT_EQ(ledger_.begin_calls, 0);
}

TEST_F(TcpScopeTest, OperatorTokenMayCallWrites) {
  grpc::Status begin = Begin(tcp_, kOperatorToken);
  EXPECT_TRUE(begin.ok()) << begin.error_message();
  EXPECT_TRUE(Stats(tcp_, kOperatorToken).ok());
  EXPECT_EQ(ledger_.begin_calls, 1);
}

TEST_F(TcpScopeTest, NoOrWrongTokenIsUnauthenticatedEvenForReads) {
  EXPECT_EQ(Stats(tcp_, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Stats(tcp_, "gateway-s3cret-3").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Begin(tcp_, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ledger_.stats_calls + ledger_.begin_calls, 0);
}

TEST_F(TcpScopeTest, UnixSocketNeedsNoTokenForWrites) {
  grpc::Status begin = Begin(ConnectToService(runtime_dir_, "ledger"), "");
  EXPECT_TRUE(begin.ok()) << begin.error_message();
  EXPECT_EQ(ledger_.begin_calls, 1);
}

TEST_F(TcpScopeTest, RefusalIsLoggedWithMethodAndScopeButNotTheToken) {
  StderrCapture capture(base_ + "/stderr");
  grpc::Status begin = Begin(tcp_, kGatewayToken);
  std::string log = capture.Finish();
  ASSERT_EQ(begin.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(log.find("method=/pocketmail.ledger.v1.Ledger/Begin"), std::string::npos) << log;
  EXPECT_NE(log.find("scope=gateway"), std::string::npos) << log;
  EXPECT_NE(log.find("level=warn"), std::string::npos) << log;
  EXPECT_EQ(log.find(kGatewayToken), std::string::npos) << log;
  EXPECT_EQ(log.find(kOperatorToken), std::string::npos) << log;
}

TEST_F(ServiceHostTest, TcpRefusesAGatewayTokenEqualToTheOperatorToken) {
  ServerOptions options{"ledger", runtime_dir_, "127.0.0.1:0", WriteToken("same-token", 0600)};
  options.gateway_token_file = WriteToken("same-token", 0600, "gateway-token");
  auto host = ServiceHost::Start(options, {});
  ASSERT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument) << host.status();
  EXPECT_NE(host.status().message().find("must differ"), std::string::npos) << host.status();
}

TEST_F(ServiceHostTest, TcpRequiresAPrivateGatewayTokenFile) {
  ServerOptions options{"ledger", runtime_dir_, "127.0.0.1:0", WriteToken("operator", 0600)};
  options.gateway_token_file = WriteToken("gateway", 0644, "gateway-token");
  EXPECT_FALSE(ServiceHost::Start(options, {}).ok());
}

TEST(OptionsFromSettings, ReadsBothTokenFiles) {
  auto settings =
      config::Settings::LoadFrom({},
                                 {{"POCKETMAIL_TOKEN_FILE", "/s/grpc-token"},
                                  {"POCKETMAIL_GATEWAY_TOKEN_FILE", "/s/grpc-gateway-token"}},
                                 StandardSpecs("ledger", {}));
  ASSERT_TRUE(settings.ok()) << settings.status();
  ServerOptions options = OptionsFromSettings("ledger", *settings);
  EXPECT_EQ(options.token_file, "/s/grpc-token");
  EXPECT_EQ(options.gateway_token_file, "/s/grpc-gateway-token");
}

}  // namespace
}  // namespace pocketmail::server
