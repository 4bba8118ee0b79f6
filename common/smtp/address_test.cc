#include "common/smtp/address.h"

#include <string>

#include "gtest/gtest.h"

namespace pocketmail::smtp {
namespace {

TEST(AddressTest, AcceptsOrdinaryAddresses) {
  EXPECT_TRUE(ValidateEnvelopeAddress("inbox@example.org", false).ok());
  EXPECT_TRUE(ValidateEnvelopeAddress("user+tag@sub.example.org", false).ok());
  EXPECT_TRUE(ValidateEnvelopeAddress("bounce-123=foo@lists.example.com", false).ok());
  EXPECT_TRUE(ValidateEnvelopeAddress("postmaster", false).ok());
}

TEST(AddressTest, AcceptsUtf8Addresses) {
  EXPECT_TRUE(ValidateEnvelopeAddress("jürgen@bücher.example", false).ok());
  EXPECT_TRUE(ValidateEnvelopeAddress("用户@例子.广告", false).ok());
  EXPECT_FALSE(IsAscii("jürgen@example.org"));
  EXPECT_TRUE(IsAscii("juergen@example.org"));
}

TEST(AddressTest, EmptyIsOnlyTheNullSender) {
  EXPECT_TRUE(ValidateEnvelopeAddress("", /*allow_empty=*/true).ok());
  EXPECT_FALSE(ValidateEnvelopeAddress("", /*allow_empty=*/false).ok());
}

TEST(AddressTest, RejectsSmtpInjection) {
  const std::string attacks[] = {
      "a@b.c>\r\nRCPT TO:<victim@example.org",
      "a@b.c\r\nDATA",
      "a@b.c\nRSET",
      "a@b.c\rRSET",
      std::string("a@b.c\0x", 7),
      "a@b.c> SIZE=1",
      "<a@b.c>",
      "a@b.c SMTPUTF8",
      "a\t@b.c",
      "a\x7f@b.c",
      "a\x1b[31m@b.c",
      "a\xc2\x85@b.c",  // U+0085 NEXT LINE, a C1 control
  };
  for (const std::string& a : attacks) {
    absl::Status s = ValidateEnvelopeAddress(a, true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "accepted: " << a;
  }
}

TEST(AddressTest, RejectsMalformedUtf8) {
  EXPECT_FALSE(ValidateEnvelopeAddress("a\xff@b.c", false).ok());
  EXPECT_FALSE(ValidateEnvelopeAddress("a\xc3@b.c", false).ok());          // truncated
  EXPECT_FALSE(ValidateEnvelopeAddress("a\xc0\xae@b.c", false).ok());      // overlong '.'
  EXPECT_FALSE(ValidateEnvelopeAddress("a\xed\xa0\x80@b.c", false).ok());  // surrogate
  EXPECT_FALSE(ValidateEnvelopeAddress("a@b.c\xe2\x82", false).ok());      // truncated at end
}

TEST(AddressTest, RejectsOverlongAddresses) {
  std::string local(kMaxAddressBytes - 6, 'a');
  EXPECT_TRUE(ValidateEnvelopeAddress(local + "@b.org", false).ok());
  EXPECT_FALSE(ValidateEnvelopeAddress(local + "x@b.org", false).ok());
}

TEST(AddressTest, TraceKeyMustBePrintableAscii) {
  EXPECT_TRUE(ValidateTraceKey("pending/0123abcd-89ef.eml").ok());
  EXPECT_TRUE(ValidateTraceKey("a key with spaces").ok());
  EXPECT_FALSE(ValidateTraceKey("").ok());
  EXPECT_FALSE(ValidateTraceKey("key\r\nBcc: victim@example.org").ok());
  EXPECT_FALSE(ValidateTraceKey("key\n").ok());
  EXPECT_FALSE(ValidateTraceKey("k\xc3\xa9y").ok());
  EXPECT_FALSE(ValidateTraceKey("tab\tkey").ok());
  EXPECT_FALSE(ValidateTraceKey(" leading").ok());
  EXPECT_FALSE(ValidateTraceKey("trailing ").ok());
  EXPECT_TRUE(ValidateTraceKey(std::string(kMaxTraceKeyBytes, 'k')).ok());
  EXPECT_FALSE(ValidateTraceKey(std::string(kMaxTraceKeyBytes + 1, 'k')).ok());
}

}  // namespace
}  // namespace pocketmail::smtp
