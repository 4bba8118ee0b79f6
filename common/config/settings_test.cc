#include "common/config/settings.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace pocketmail::config {
namespace {

const std::vector<Spec> kSpecs = {
    {"MAIL_POLL", "180", "seconds between polls"},
    {"MAIL_DOMAIN", "", "the mail domain"},
    {"ONESHOT", "0", "one pass then exit"},
    {"R2_SECRET_ACCESS_KEY", "", "R2 secret", /*secret=*/true},
};

std::string WriteFile(const std::string& name, const std::string& content, mode_t mode) {
  std::string path = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << content;
  chmod(path.c_str(), mode);
  return path;
}

TEST(Settings, DefaultsApplyWhenNothingIsSet) {
  auto s = Settings::LoadFrom({}, {}, kSpecs);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s->GetInt("MAIL_POLL"), 180);
  EXPECT_FALSE(s->IsSet("MAIL_POLL"));
}

TEST(Settings, FlagOverridesEnvironment) {
  auto s = Settings::LoadFrom({"--mail-poll=5"}, {{"MAIL_POLL", "30"}}, kSpecs);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s->GetInt("MAIL_POLL"), 5);
}

TEST(Settings, FlagAcceptsSeparateValue) {
  auto s = Settings::LoadFrom({"--mail-domain", "example.org"}, {}, kSpecs);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->Get("MAIL_DOMAIN"), "example.org");
}

TEST(Settings, SecretOnArgvIsRefusedWithoutEchoingIt) {
  auto s = Settings::LoadFrom({"--r2-secret-access-key=hunter2"}, {}, kSpecs);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().find("hunter2"), std::string::npos);
}

TEST(Settings, UnknownFlagIsAnError) {
  EXPECT_FALSE(Settings::LoadFrom({"--mail-pol=5"}, {}, kSpecs).ok());
}

TEST(Settings, EnvFileIsReadBelowTheEnvironment) {
  std::string path =
      WriteFile("r2.env", "# comment\nexport R2_SECRET_ACCESS_KEY=\"s3cr3t\"\nMAIL_POLL=7\n", 0600);
  auto s = Settings::LoadFrom({"--env-file=" + path}, {{"MAIL_POLL", "9"}}, kSpecs);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->Get("R2_SECRET_ACCESS_KEY"), "s3cr3t");
  EXPECT_EQ(*s->GetInt("MAIL_POLL"), 9);
}

TEST(Settings, WorldReadableEnvFileIsRefused) {
  std::string path = WriteFile("loose.env", "R2_SECRET_ACCESS_KEY=x\n", 0644);
  auto s = Settings::LoadFrom({"--env-file=" + path}, {}, kSpecs);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(Settings, DescribeHidesSecrets) {
  auto s = Settings::LoadFrom({}, {{"R2_SECRET_ACCESS_KEY", "topsecret"}}, kSpecs);
  ASSERT_TRUE(s.ok());
  for (const std::string& line : s->Describe()) {
    EXPECT_EQ(line.find("topsecret"), std::string::npos) << line;
  }
}

TEST(Settings, BoolParsesCommonSpellings) {
  auto s = Settings::LoadFrom({"--oneshot=yes"}, {}, kSpecs);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(*s->GetBool("ONESHOT"));
  auto bad = Settings::LoadFrom({"--oneshot=maybe"}, {}, kSpecs);
  EXPECT_FALSE(bad->GetBool("ONESHOT").ok());
}

TEST(Settings, NonIntegerIsAClearError) {
  auto s = Settings::LoadFrom({"--mail-poll=fast"}, {}, kSpecs);
  auto v = s->GetInt("MAIL_POLL");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("MAIL_POLL"), std::string::npos);
}

TEST(Settings, IntInRangeAcceptsBothBounds) {
  auto low = Settings::LoadFrom({"--mail-poll=1"}, {}, kSpecs);
  auto high = Settings::LoadFrom({"--mail-poll=10"}, {}, kSpecs);
  EXPECT_EQ(*low->GetIntInRange("MAIL_POLL", 1, 10), 1);
  EXPECT_EQ(*high->GetIntInRange("MAIL_POLL", 1, 10), 10);
}

TEST(Settings, IntOutOfRangeNamesTheSettingTheRangeAndTheValue) {
  for (const char* flag : {"--mail-poll=0", "--mail-poll=11"}) {
    auto s = Settings::LoadFrom({flag}, {}, kSpecs);
    auto v = s->GetIntInRange("MAIL_POLL", 1, 10);
    ASSERT_FALSE(v.ok()) << flag;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    std::string value(absl::string_view(flag).substr(std::string("--mail-poll=").size()));
    EXPECT_EQ(v.status().message(), "MAIL_POLL must be 1..10 (got " + value + ")");
  }
}

TEST(Settings, IntInRangeReportsANonIntegerAsGetIntDoes) {
  auto s = Settings::LoadFrom({"--mail-poll=fast"}, {}, kSpecs);
  EXPECT_EQ(s->GetIntInRange("MAIL_POLL", 1, 10).status(), s->GetInt("MAIL_POLL").status());
  EXPECT_EQ(s->GetIntAtLeast("MAIL_POLL", 1).status(), s->GetInt("MAIL_POLL").status());
}

TEST(Settings, IntAtLeastHasNoUpperBound) {
  auto s = Settings::LoadFrom({"--mail-poll=9000000000"}, {}, kSpecs);
  EXPECT_EQ(*s->GetIntAtLeast("MAIL_POLL", 1), 9000000000);
  auto zero = Settings::LoadFrom({"--mail-poll=0"}, {}, kSpecs);
  EXPECT_EQ(zero->GetIntAtLeast("MAIL_POLL", 1).status().message(),
            "MAIL_POLL must be >= 1 (got 0)");
}

TEST(SecretFile, TrimsAndRequiresPrivateMode) {
  EXPECT_EQ(*ReadSecretFile(WriteFile("tok", "abc\n", 0600)), "abc");
  EXPECT_FALSE(ReadSecretFile(WriteFile("tok2", "abc\n", 0640)).ok());
  EXPECT_FALSE(ReadSecretFile(WriteFile("tok3", "\n", 0600)).ok());
}

}  // namespace
}  // namespace pocketmail::config
