#include "common/server/service_host.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/server/bearer_token_auth.h"
#include "common/server/health_client.h"
#include "gtest/gtest.h"

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

  std::string WriteToken(const std::string& token, mode_t mode) {
    std::string path = base_ + "/token";
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

TEST(BearerTokenAuth, AcceptsOnlyTheExactToken) {
  BearerTokenAuth auth("abc123");
  EXPECT_TRUE(auth.Accepts("Bearer abc123"));
  EXPECT_FALSE(auth.Accepts("Bearer abc124"));
  EXPECT_FALSE(auth.Accepts("bearer abc123"));
  EXPECT_FALSE(auth.Accepts("Bearer abc1234"));
  EXPECT_FALSE(auth.Accepts(""));
}

}  // namespace
}  // namespace pocketmail::server
