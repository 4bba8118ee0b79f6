#include "services/fetcher/object_key.h"

#include <string>

#include "gtest/gtest.h"

namespace pocketmail::fetcher {
namespace {

const std::string kSha = std::string(64, 'a');
const std::string kRcpt = "0123456789abcdef";

TEST(ParsePendingKey, AcceptsPerRecipientFormat) {
  auto k = ParsePendingKey("pending/" + kSha + "-" + kRcpt + ".eml");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->format, KeyFormat::kPerRecipient);
  EXPECT_EQ(k->sha256, kSha);
  EXPECT_EQ(k->recipient_hash, kRcpt);
}

TEST(ParsePendingKey, AcceptsLegacyFormat) {
  auto k = ParsePendingKey("pending/" + kSha + ".eml");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->format, KeyFormat::kLegacy);
  EXPECT_TRUE(k->recipient_hash.empty());
}

TEST(ParsePendingKey, RejectsKeysOutsideBothFormats) {
  for (const std::string& bad : {
           std::string("processed/" + kSha + ".eml"),
           std::string("pending/" + kSha + ".txt"),
           std::string("pending/" + kSha),
           std::string("pending/../" + kSha + ".eml"),
           std::string("pending/" + std::string(64, 'A') + ".eml"),
           std::string("pending/" + kSha + "-" + kRcpt + "0.eml"),
           std::string("pending/" + kSha + " .eml"),
           std::string("pending/\xc3\xa9" + kSha.substr(2) + ".eml"),
           std::string("pending/sub/" + kSha + ".eml"),
           std::string("pending/.eml"),
           std::string(""),
       }) {
    EXPECT_FALSE(ParsePendingKey(bad).ok()) << bad;
  }
}

TEST(DestinationKeys, KeepTheNameUnderTheNewPrefix) {
  EXPECT_EQ(ProcessedKeyFor("pending/x.eml"), "processed/x.eml");
  EXPECT_EQ(FailedKeyFor("pending/../x y.eml"), "failed/../x y.eml");
}

}  // namespace
}  // namespace pocketmail::fetcher
