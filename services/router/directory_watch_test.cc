#include "services/router/directory_watch.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace pocketmail::router {
namespace {

class DirectoryWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pm-dirwatch-XXXXXX";
    dir_ = mkdtemp(tmpl);
    file_ = dir_ + "/imapsql.db";
    std::ofstream(file_) << "v1";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, file_;
};

TEST_F(DirectoryWatchTest, QuietDirectoryTimesOut) {
  auto watch = DirectoryWatch::ForFile(file_);
  ASSERT_NE(watch, nullptr);
  absl::Time start = absl::Now();
  EXPECT_FALSE(watch->Wait(absl::Milliseconds(200)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
}

TEST_F(DirectoryWatchTest, AWriteToTheFileOrItsWalWakesIt) {
  auto watch = DirectoryWatch::ForFile(file_);
  ASSERT_NE(watch, nullptr);
  std::thread writer([this] {
    absl::SleepFor(absl::Milliseconds(50));
    std::ofstream(file_ + "-wal", std::ios::app) << "frame";
  });
  EXPECT_TRUE(watch->Wait(absl::Seconds(10)));
  writer.join();
  std::ofstream(file_, std::ios::app) << "v2";
  EXPECT_TRUE(watch->Wait(absl::Seconds(10)));
  // Everything queued was read: quiet again.
  EXPECT_FALSE(watch->Wait(absl::Milliseconds(50)));
}

TEST_F(DirectoryWatchTest, WakeEndsAWaitEvenBeforeItStarts) {
  auto watch = DirectoryWatch::ForFile(file_);
  ASSERT_NE(watch, nullptr);
  watch->Wake();
  absl::Time start = absl::Now();
  EXPECT_FALSE(watch->Wait(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(DirectoryWatchMissingTest, AMissingDirectoryGivesNoWatch) {
  EXPECT_EQ(DirectoryWatch::ForFile("/nonexistent-pm-dir/imapsql.db"), nullptr);
}

}  // namespace
}  // namespace pocketmail::router
