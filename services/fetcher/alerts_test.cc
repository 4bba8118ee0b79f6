#include "services/fetcher/alerts.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/time/fake_clock.h"
#include "gtest/gtest.h"

namespace pocketmail::fetcher {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

class AlerterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(std::getenv("TEST_TMPDIR")) + "/alerts-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    log_ = dir_ + "/alerts.log";
    options_.command = "printf '%s|%s\\n' \"$MAIL_ALERT_KIND\" \"$MAIL_ALERT_MSG\" >> " + log_;
    options_.sentinel_dir = dir_;
    options_.backlog_age = absl::Hours(72);
    options_.pass_failures = 3;
    options_.host_label = "test";
    options_.clock = &clock_;
  }

  // Lines the alert command wrote: "kind|message".
  std::vector<std::string> Delivered() {
    std::vector<std::string> lines;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  FakeClock clock_{kNow};
  std::string dir_;
  std::string log_;
  AlertOptions options_;
};

TEST_F(AlerterTest, OldBacklogAlertsOnceWithTheMessageInTheEnvironment) {
  Alerter alerter(options_);
  alerter.OnListing(4, kNow - absl::Hours(100));
  alerter.OnListing(5, kNow - absl::Hours(101));
  auto lines = Delivered();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(
      lines[0].rfind("backlog|test: 4 message(s) waiting in pending/, the oldest for 4 days", 0),
      0u)
      << lines[0];
}

TEST_F(AlerterTest, TheSentinelSurvivesARestart) {
  Alerter(options_).OnListing(1, kNow - absl::Hours(100));
  Alerter(options_).OnListing(1, kNow - absl::Hours(100));
  EXPECT_EQ(Delivered().size(), 1u);
}

TEST_F(AlerterTest, ClearingTheBacklogClearsTheSentinelAndSaysSo) {
  Alerter alerter(options_);
  alerter.OnListing(1, kNow - absl::Hours(100));
  alerter.OnListing(0, absl::InfinitePast());
  alerter.OnListing(1, kNow - absl::Hours(100));  // a new backlog alerts again
  auto lines = Delivered();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].rfind("backlog_cleared|", 0), 0u);
  EXPECT_EQ(lines[2].rfind("backlog|", 0), 0u);
}

TEST_F(AlerterTest, AYoungBacklogDoesNotAlert) {
  Alerter alerter(options_);
  alerter.OnListing(50, kNow - absl::Hours(10));
  EXPECT_TRUE(Delivered().empty());
}

TEST_F(AlerterTest, TheBacklogAgesOnTheClock) {
  Alerter alerter(options_);
  const absl::Time oldest = kNow - absl::Hours(71);
  alerter.OnListing(1, oldest);
  EXPECT_TRUE(Delivered().empty());
  clock_.Advance(absl::Hours(2));
  alerter.OnListing(1, oldest);
  ASSERT_EQ(Delivered().size(), 1u);
  EXPECT_NE(Delivered()[0].find("the oldest for 3 days"), std::string::npos) << Delivered()[0];
}

TEST_F(AlerterTest, RepeatedPassFailuresAlertOnceAndRecoveryIsReported) {
  Alerter alerter(options_);
  for (int i = 0; i < 6; ++i) alerter.OnListingFailed("403 SignatureDoesNotMatch");
  alerter.OnListing(0, absl::InfinitePast());
  auto lines = Delivered();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind("pass_failures|test: 3 passes in a row", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("pass_recovered|", 0), 0u);
}

TEST_F(AlerterTest, DeadLettersAlertWithTheirReasons) {
  Alerter alerter(options_);
  alerter.OnDeadLetters(2, {"554 5.6.0 missing From", "501 5.1.1 unknown"});
  auto lines = Delivered();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("554 5.6.0 missing From; 501 5.1.1 unknown"), std::string::npos);
}

TEST_F(AlerterTest, AFailingCommandIsRetriedAtTheNextOccasion) {
  options_.command = "exit 1";
  Alerter failing(options_);
  failing.OnListing(1, kNow - absl::Hours(100));
  struct stat st;
  EXPECT_NE(stat((dir_ + "/alert-backlog.sent").c_str(), &st), 0);  // no sentinel: not delivered
}

}  // namespace
}  // namespace pocketmail::fetcher
