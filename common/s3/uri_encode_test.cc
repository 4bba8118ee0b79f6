#include "common/s3/uri_encode.h"

#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

TEST(UriEncode, KeepsUnreservedCharacters) {
  const char* unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(UriEncode(unreserved, false), unreserved);
}

TEST(UriEncode, EncodesEverythingElseWithUpperCaseHex) {
  EXPECT_EQ(UriEncode("a b+c=d@e%f&g?h#i", true), "a%20b%2Bc%3Dd%40e%25f%26g%3Fh%23i");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", true), "%E1%88%B4");
  EXPECT_EQ(UriEncode(std::string("\0\x7F\xFF", 3), true), "%00%7F%FF");
}

TEST(UriEncode, SlashIsKeptOnlyInPaths) {
  EXPECT_EQ(UriEncode("/mail/pending/x.eml", true), "/mail/pending/x.eml");
  EXPECT_EQ(UriEncode("pending/", false), "pending%2F");
}

TEST(UriDecode, ReversesEncoding) {
  std::string raw =
      "pending/Gr\xC3\xBC\xC3\x9F"
      "e a+b=c@d%e.eml";
  EXPECT_EQ(*UriDecode(UriEncode(raw, false), false), raw);
  EXPECT_EQ(*UriDecode("a%2bb%2Fc", false), "a+b/c");
}

TEST(UriDecode, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(*UriDecode("a+b%2B", true), "a b+");
  EXPECT_EQ(*UriDecode("a+b%2B", false), "a+b+");
}

TEST(UriDecode, RejectsBrokenEscapes) {
  for (const char* bad : {"%", "%4", "%zz", "a%2", "%G0"}) {
    EXPECT_EQ(UriDecode(bad, false).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace pocketmail::s3
