#include "common/smtp/reply.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pocketmail::smtp {
namespace {

TEST(ReplyTest, ParsesSingleLineWithEnhancedCode) {
  auto r = ParseReply({"250 2.0.0 OK: queued as 12345"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->enhanced, "2.0.0");
  EXPECT_EQ(r->text, "OK: queued as 12345");
  EXPECT_EQ(r->reply_class(), ReplyClass::kSuccess);
}

TEST(ReplyTest, ParsesMultiLineEhloReply) {
  auto r =
      ParseReply({"250-mx.example.org", "250-SIZE 33554432", "250-8BITMIME", "250 AUTH PLAIN"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->enhanced, "");
  ASSERT_EQ(r->lines.size(), 4u);
  EXPECT_EQ(r->lines[1], "SIZE 33554432");
  EXPECT_EQ(r->text, "mx.example.org\nSIZE 33554432\n8BITMIME\nAUTH PLAIN");
}

TEST(ReplyTest, StripsRepeatedEnhancedCodeFromEveryLine) {
  auto r = ParseReply({"550-5.1.1 The email account does not exist.", "550 5.1.1 Try again."});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->enhanced, "5.1.1");
  EXPECT_EQ(r->text, "The email account does not exist.\nTry again.");
}

TEST(ReplyTest, BareCodeIsAValidLastLine) {
  auto r = ParseReply({"250"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(r->Summary(), "250");
}

TEST(ReplyTest, DashWithEmptyTextContinues) {
  auto r = ParseReply({"220-", "220 ready"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "\nready");
}

TEST(ReplyTest, EnhancedCodeOnlyWhenClassMatches) {
  auto r = ParseReply({"550 2.1.1 odd server"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->enhanced, "");
  EXPECT_EQ(r->text, "2.1.1 odd server");
}

TEST(ReplyTest, EnhancedCodeNeedsItsOwnWord) {
  EXPECT_EQ(ParseReply({"451 4.3.2x busy"})->enhanced, "");
  EXPECT_EQ(ParseReply({"451 4.3 busy"})->enhanced, "");
  EXPECT_EQ(ParseReply({"451 4.3.2"})->enhanced, "4.3.2");
  EXPECT_EQ(ParseReply({"451 4.3.2\tbusy"})->enhanced, "4.3.2");
  EXPECT_EQ(ParseReply({"554 5.123.456 x"})->enhanced, "5.123.456");
  EXPECT_EQ(ParseReply({"554 5.1234.1 x"})->enhanced, "");
  EXPECT_EQ(ParseReply({"554 5..1 x"})->enhanced, "");
}

TEST(ReplyTest, ExtractEnhancedCodeRejectsNonStatusClasses) {
  EXPECT_EQ(ExtractEnhancedCode("3.0.0 go on", '3'), "");
  EXPECT_EQ(ExtractEnhancedCode("2.0.0 ok", '2'), "2.0.0");
  EXPECT_EQ(ExtractEnhancedCode("2.0.0", '2'), "2.0.0");
  EXPECT_EQ(ExtractEnhancedCode("", '2'), "");
}

TEST(ReplyTest, ClassifiesByFirstDigit) {
  EXPECT_EQ(ClassOf(250), ReplyClass::kSuccess);
  EXPECT_EQ(ClassOf(235), ReplyClass::kSuccess);
  EXPECT_EQ(ClassOf(354), ReplyClass::kIntermediate);
  EXPECT_EQ(ClassOf(334), ReplyClass::kIntermediate);
  EXPECT_EQ(ClassOf(421), ReplyClass::kTemporary);
  EXPECT_EQ(ClassOf(451), ReplyClass::kTemporary);
  EXPECT_EQ(ClassOf(501), ReplyClass::kPermanent);
  EXPECT_EQ(ClassOf(554), ReplyClass::kPermanent);
  EXPECT_EQ(ReplyClassName(ClassOf(452)), "temporary");
}

TEST(ReplyTest, RejectsMalformedLines) {
  const std::vector<std::string> bad = {
      "",             // empty
      "25",           // short code
      "2x0 ok",       // non-digit
      "250ok",        // no separator
      "250_ok",       // wrong separator
      "150 ok",       // class 1 is not a reply we accept
      "650 ok",       // class 6 does not exist
      "260 ok",       // second digit > 5
      "250 a\x01 b",  // control character
      "250 a\x7f",    // DEL
      "hello",
  };
  for (const std::string& line : bad) {
    EXPECT_FALSE(ParseReply({line}).ok()) << "accepted: " << line;
  }
}

TEST(ReplyTest, AcceptsEightBitText) {
  auto r = ParseReply({"250 2.0.0 Grüße \xff"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Grüße \xff");
}

TEST(ReplyTest, RejectsCodeChangeBetweenLines) {
  EXPECT_FALSE(ParseReply({"250-a", "251 b"}).ok());
}

TEST(ReplyTest, RejectsRepliesThatEndEarlyOrNever) {
  EXPECT_FALSE(ParseReply({"250 a", "250 b"}).ok());
  EXPECT_FALSE(ParseReply({"250-a", "250-b"}).ok());
  EXPECT_FALSE(ParseReply({}).ok());
}

TEST(ReplyTest, RejectsOverlongLine) {
  std::string line = "250 " + std::string(kMaxReplyLineBytes, 'a');
  EXPECT_FALSE(ParseReply({line}).ok());
  EXPECT_TRUE(ParseReply({"250 " + std::string(kMaxReplyLineBytes - 4, 'a')}).ok());
}

TEST(ReplyTest, RejectsTooManyLines) {
  std::vector<std::string> lines(kMaxReplyLines + 1, "250-x");
  lines.back() = "250 x";
  EXPECT_FALSE(ParseReply(lines).ok());
}

TEST(ReplyTest, RejectsTooManyBytes) {
  std::vector<std::string> lines(30, "250-" + std::string(1500, 'y'));
  lines.back() = "250 end";
  EXPECT_FALSE(ParseReply(lines).ok());
}

TEST(ReplyTest, AssemblerIsReusableAfterTakeAndAfterError) {
  ReplyAssembler a;
  EXPECT_FALSE(*a.AddLine("250-first"));
  EXPECT_TRUE(*a.AddLine("250 done"));
  EXPECT_EQ(a.Take().lines.size(), 2u);
  EXPECT_FALSE(a.AddLine("garbage").ok());
  EXPECT_TRUE(*a.AddLine("354 go ahead"));
  Reply r = a.Take();
  EXPECT_EQ(r.code, 354);
  EXPECT_EQ(r.lines.size(), 1u);
}

TEST(ReplyTest, SummaryShowsCodeAndFirstLine) {
  EXPECT_EQ(ParseReply({"501 5.1.1 User does not exist"})->Summary(),
            "501 5.1.1 User does not exist");
}

}  // namespace
}  // namespace pocketmail::smtp
