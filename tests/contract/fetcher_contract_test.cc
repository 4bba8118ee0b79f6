// The Worker ↔ fetcher seam, checked from the fetcher's side against the
// shared fixture (tests/contract/cases.json). The Worker's tests check that it
// writes exactly these keys and metadata; here we check that the fetcher
// parses the keys, reads the metadata back from the S3 headers as R2 returns
// them (RFC 2047-encoded), and that the key's hashes match the bytes. If either
// side drifts from the fixture, one of the two test suites fails.
#include <openssl/sha.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "common/mime/rfc2047.h"
#include "common/s3/s3_headers.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/fetcher/object_key.h"
#include "services/router/account_source.h"
#include "services/router/recipient_router.h"
#include "tests/peers/peer_process.h"

namespace pocketmail {
namespace {

using mime::DecodeRfc2047;

using google::protobuf::Struct;
using google::protobuf::Value;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  std::string out;
  for (unsigned char b : d) {
    out.push_back("0123456789abcdef"[b >> 4]);
    out.push_back("0123456789abcdef"[b & 15]);
  }
  return out;
}

std::vector<Struct> LoadCases() {
  std::string json =
      "{\"cases\":" + ReadFile(testing::RunfilePath("tests/contract/cases.json")) + "}";
  Struct root;
  auto status = google::protobuf::util::JsonStringToMessage(json, &root);
  EXPECT_TRUE(status.ok()) << status.ToString();
  std::vector<Struct> cases;
  for (const Value& v : root.fields().at("cases").list_value().values())
    cases.push_back(v.struct_value());
  return cases;
}

std::string Field(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? "" : it->second.string_value();
}

TEST(FetcherContract, FixtureHasBothKeyFormats) {
  auto cases = LoadCases();
  ASSERT_GE(cases.size(), 5u);
  int legacy = 0;
  for (const auto& c : cases) legacy += c.fields().count("legacy") ? 1 : 0;
  EXPECT_GE(legacy, 1);
  EXPECT_LT(legacy, static_cast<int>(cases.size()));
}

TEST(FetcherContract, EveryKeyParsesInTheFormatItClaims) {
  for (const auto& c : LoadCases()) {
    std::string key = Field(c, "key");
    auto parsed = fetcher::ParsePendingKey(key);
    ASSERT_TRUE(parsed.ok()) << Field(c, "name") << ": " << parsed.status();
    bool legacy = c.fields().count("legacy") && c.fields().at("legacy").bool_value();
    EXPECT_EQ(parsed->format,
              legacy ? fetcher::KeyFormat::kLegacy : fetcher::KeyFormat::kPerRecipient)
        << Field(c, "name");
  }
}

TEST(FetcherContract, KeyHashesMatchTheBytesAndTheLowercasedRecipient) {
  for (const auto& c : LoadCases()) {
    std::string raw = ReadFile(testing::RunfilePath("tests/contract/" + Field(c, "raw")));
    ASSERT_FALSE(raw.empty()) << Field(c, "name");
    auto parsed = fetcher::ParsePendingKey(Field(c, "key"));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->sha256, Sha256Hex(raw)) << Field(c, "name");
    if (parsed->format == fetcher::KeyFormat::kPerRecipient) {
      std::string to = Field(c.fields().at("envelope").struct_value(), "to");
      EXPECT_EQ(parsed->recipient_hash, Sha256Hex(absl::AsciiStrToLower(to)).substr(0, 16))
          << Field(c, "name");
    }
  }
}

TEST(FetcherContract, MetadataReadBackThroughS3HeadersEqualsWhatTheWorkerWrote) {
  for (const auto& c : LoadCases()) {
    s3::ResponseHeaders headers;
    headers.AddLine("HTTP/1.1 200 OK");
    for (const auto& [name, value] : c.fields().at("s3_headers").struct_value().fields()) {
      headers.AddLine(name + ": " + value.string_value());
    }
    auto head = s3::ObjectHeadFromHeaders(headers);
    ASSERT_TRUE(head.ok()) << Field(c, "name") << ": " << head.status();
    const auto& written = c.fields().at("customMetadata").struct_value().fields();
    EXPECT_EQ(head->metadata.size(), written.size()) << Field(c, "name");
    for (const auto& [name, value] : written) {
      auto it = head->metadata.find(name);
      ASSERT_NE(it, head->metadata.end()) << Field(c, "name") << " lacks " << name;
      // A value the Worker stored that is itself an RFC 2047 word (a Subject
      // header kept literally) reads back decoded: the fetcher decodes every
      // x-amz-meta value. For all other values decoding is the identity.
      auto expected = DecodeRfc2047(value.string_value());
      ASSERT_TRUE(expected.ok());
      EXPECT_EQ(it->second, *expected) << Field(c, "name") << " field " << name;
    }
  }
}

// The mailboxes on the phone for the fixture's domain, and where each case's
// recipient must land, worked out by hand from the routing rules
// (services/router/recipient_router.h), not by asking the router.
constexpr char kMailDomain[] = "mail.example";
const std::vector<std::string> kMailboxes = {"bob@mail.example", "carol.smith@mail.example",
                                             "admin@mail.example", "inbox@mail.example"};
const std::map<std::string, std::pair<std::string, router::v1::Rule>> kRoutedTo = {
    {"plain-ascii", {"bob@mail.example", router::v1::RULE_EXACT}},
    {"utf8-subject", {"bob@mail.example", router::v1::RULE_EXACT}},
    {"encoded-subject", {"bob@mail.example", router::v1::RULE_EXACT}},
    {"long-subject", {"bob@mail.example", router::v1::RULE_EXACT}},
    // The localpart and the domain match case-insensitively.
    {"uppercase-rcpt", {"carol.smith@mail.example", router::v1::RULE_EXACT}},
    {"no-subject", {"bob@mail.example", router::v1::RULE_EXACT}},
    {"legacy", {"bob@mail.example", router::v1::RULE_EXACT}},
};

class FixedAccounts final : public router::AccountSource {
 public:
  explicit FixedAccounts(std::vector<std::string> names) : names_(std::move(names)) {}
  absl::StatusOr<std::vector<std::string>> ListAccounts() override { return names_; }

 private:
  const std::vector<std::string> names_;
};

TEST(FetcherContract, EveryRecipientReadBackFromS3RoutesToItsMailbox) {
  router::RouterOptions options;
  options.mail_domain = kMailDomain;
  auto rr = router::RecipientRouter::Create(options, std::make_unique<FixedAccounts>(kMailboxes),
                                            nullptr);
  ASSERT_TRUE(rr.ok()) << rr.status();
  for (const auto& c : LoadCases()) {
    const std::string name = Field(c, "name");
    auto expected = kRoutedTo.find(name);
    ASSERT_NE(expected, kRoutedTo.end()) << name << ": add the case's mailbox to kRoutedTo";
    // The recipient the fetcher routes is `to` as it reads it back through S3.
    s3::ResponseHeaders headers;
    headers.AddLine("HTTP/1.1 200 OK");
    for (const auto& [header, value] : c.fields().at("s3_headers").struct_value().fields()) {
      headers.AddLine(header + ": " + value.string_value());
    }
    auto head = s3::ObjectHeadFromHeaders(headers);
    ASSERT_TRUE(head.ok()) << name << ": " << head.status();
    ASSERT_TRUE(head->metadata.count("to")) << name;
    const std::string to = head->metadata.at("to");
    EXPECT_EQ(to, Field(c.fields().at("envelope").struct_value(), "to")) << name;

    auto resolved = (*rr)->Resolve(to);
    ASSERT_TRUE(resolved.ok()) << name << ": " << resolved.status();
    EXPECT_EQ(resolved->mailbox, expected->second.first) << name;
    EXPECT_EQ(resolved->rule, expected->second.second)
        << name << ": " << router::v1::Rule_Name(resolved->rule) << " (" << resolved->explanation
        << ")";
    EXPECT_FALSE(resolved->list_stale) << name;
  }
}

}  // namespace
}  // namespace pocketmail
