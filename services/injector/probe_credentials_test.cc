#include "services/injector/probe_credentials.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::injector {
namespace {

using ::pocketmail::testing::ScratchDir;

TEST(ProbeCredentialsTest, FindsAMailboxCaseInsensitivelyAndLogsInAsConfigured) {
  ProbeCredentials c;
  ASSERT_TRUE(c.Set("Inbox@Example.org", "pw").ok());
  const ProbeCredentials::Login* login = c.Find("INBOX@example.ORG");
  ASSERT_NE(login, nullptr);
  EXPECT_EQ(login->user, "Inbox@Example.org");
  EXPECT_EQ(login->password, "pw");
  EXPECT_EQ(c.Find("admin@example.org"), nullptr);
}

TEST(ProbeCredentialsTest, SetReplacesAnEarlierPassword) {
  ProbeCredentials c;
  ASSERT_TRUE(c.Set("inbox@example.org", "old").ok());
  ASSERT_TRUE(c.Set("INBOX@example.org", "new").ok());
  EXPECT_EQ(c.Find("inbox@example.org")->password, "new");
  EXPECT_EQ(c.Mailboxes().size(), 1u);
}

TEST(ProbeCredentialsTest, RefusesEmptyAndUnsafeValues) {
  ProbeCredentials c;
  EXPECT_FALSE(c.Set("", "pw").ok());
  EXPECT_FALSE(c.Set("a b@example.org", "pw").ok());
  EXPECT_FALSE(c.Set("a@example.org\r\n", "pw").ok());
  EXPECT_FALSE(c.Set("a@example.org", "").ok());
  EXPECT_TRUE(c.empty());
}

TEST(ParseProbeCredentialsTest, ReadsMailboxPasswordLines) {
  ProbeCredentials c;
  ASSERT_TRUE(ParseProbeCredentials("# probe logins\n\n"
                                    "  inbox@example.org = in=pw==  \n"
                                    "admin@example.org=\"quoted # pw\"\r\n"
                                    "bob@example.org='single'\n",
                                    "creds", &c)
                  .ok());
  EXPECT_EQ(c.Find("inbox@example.org")->password, "in=pw==");
  EXPECT_EQ(c.Find("admin@example.org")->password, "quoted # pw");
  EXPECT_EQ(c.Find("bob@example.org")->password, "single");
}

TEST(ParseProbeCredentialsTest, ErrorsNameTheLineButNeverItsContent) {
  ProbeCredentials c;
  absl::Status s = ParseProbeCredentials("a@example.org=ok\nsecret-without-equals\n", "creds", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "creds:2")) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "secret")) << s;
  EXPECT_FALSE(ParseProbeCredentials("a@example.org=\n", "creds", &c).ok());
  EXPECT_FALSE(ParseProbeCredentials("=pw\n", "creds", &c).ok());
}

TEST(LoadProbeCredentialsFileTest, ReadsAPrivateFile) {
  ScratchDir dir;
  const std::string path = dir.path() + "/probe.creds";
  std::ofstream(path) << "inbox@example.org=pw\n";
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  ProbeCredentials c;
  ASSERT_TRUE(LoadProbeCredentialsFile(path, &c).ok());
  EXPECT_NE(c.Find("inbox@example.org"), nullptr);
}

TEST(LoadProbeCredentialsFileTest, RefusesAFileOthersCanRead) {
  ScratchDir dir;
  const std::string path = dir.path() + "/probe.creds";
  std::ofstream(path) << "inbox@example.org=pw\n";
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  ProbeCredentials c;
  EXPECT_EQ(LoadProbeCredentialsFile(path, &c).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(c.empty());
}

TEST(LoadProbeCredentialsFileTest, MissingFileIsNotFound) {
  ProbeCredentials c;
  EXPECT_EQ(LoadProbeCredentialsFile("/nonexistent/probe.creds", &c).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pocketmail::injector
