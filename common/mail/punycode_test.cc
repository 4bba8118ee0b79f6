#include "common/mail/punycode.h"

#include <string>

#include "common/mail/utf8.h"
#include "gtest/gtest.h"

namespace pocketmail::mail {
namespace {

struct Vector {
  std::u32string decoded;
  std::string encoded;
};

// From RFC 3492 section 7.1 and common IDN examples.
const Vector kVectors[] = {
    {U"bücher", "bcher-kva"},
    {U"münchen", "mnchen-3ya"},
    {U"ü", "tda"},
    {U"\u0644\u064A\u0647\u0645\u0627\u0628\u062A\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628"
     U"\u064A\u061F",
     "egbpdaj6bu4bxfgehfvwxn"},
    {U"\u4ED6\u4EEC\u4E3A\u4EC0\u4E48\u4E0D\u8BF4\u4E2D\u6587", "ihqwcrb4cv8a8dqg056pqjye"},
    {U"3\u5E74B\u7D44\u91D1\u516B\u5148\u751F", "3B-ww4c5e180e575a65lsy2b"},
    {U"Maji\u3067Koi\u3059\u308B5\u79D2\u524D", "MajiKoi5-783gue6qz075azm5e"},
    {U"-> $1.00 <-", "-> $1.00 <--"},
};

TEST(PunycodeTest, EncodesKnownVectors) {
  for (const Vector& v : kVectors) {
    auto encoded = PunycodeEncode(v.decoded);
    ASSERT_TRUE(encoded.ok()) << v.encoded;
    EXPECT_EQ(*encoded, v.encoded);
  }
}

TEST(PunycodeTest, DecodesKnownVectors) {
  for (const Vector& v : kVectors) {
    auto decoded = PunycodeDecode(v.encoded);
    ASSERT_TRUE(decoded.ok()) << v.encoded << ": " << decoded.status();
    EXPECT_EQ(EncodeUtf8(*decoded), EncodeUtf8(v.decoded)) << v.encoded;
  }
}

TEST(PunycodeTest, DecodingIsCaseInsensitiveForDigits) {
  auto decoded = PunycodeDecode("bcher-KVA");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(EncodeUtf8(*decoded), "bücher");
}

TEST(PunycodeTest, RejectsInvalidDigits) {
  EXPECT_FALSE(PunycodeDecode("bcher-kv!").ok());
  EXPECT_FALSE(PunycodeDecode("-").ok());  // a lone delimiter is decoded as a digit
}

TEST(PunycodeTest, RejectsTruncatedInput) {
  // "kva" encodes one code point; cutting the final digit leaves a variable-
  // length integer without its terminating digit.
  EXPECT_FALSE(PunycodeDecode("bcher-kv").ok());
}

TEST(PunycodeTest, RejectsNonBasicBeforeDelimiter) {
  EXPECT_FALSE(PunycodeDecode("b\xc3\xbc-kva").ok());
}

TEST(PunycodeTest, RejectsOverflowingInput) {
  EXPECT_FALSE(PunycodeDecode("99999999999999999999").ok());
  EXPECT_FALSE(PunycodeDecode("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz").ok());
}

TEST(PunycodeTest, RejectsDecodedSurrogatesAndHugeValues) {
  std::u32string surrogate = {0xD800};
  EXPECT_FALSE(PunycodeEncode(surrogate).ok());
  std::u32string huge = {0x110000};
  EXPECT_FALSE(PunycodeEncode(huge).ok());
}

TEST(PunycodeTest, RoundTripsEveryPlaneSample) {
  for (char32_t cp = 0x80; cp < 0x10FFFF; cp += 0x1F3) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::u32string input = {U'a', cp, U'b', cp + 1 <= 0x10FFFF ? cp : U'c'};
    auto encoded = PunycodeEncode(input);
    ASSERT_TRUE(encoded.ok());
    auto decoded = PunycodeDecode(*encoded);
    ASSERT_TRUE(decoded.ok()) << *encoded;
    EXPECT_EQ(*decoded, input);
  }
}

TEST(PunycodeTest, NeverCrashesOnArbitraryBytes) {
  std::string s;
  for (int i = 0; i < 4000; ++i) {
    s.push_back(static_cast<char>((i * 131 + 7) % 256));
    if (s.size() > 40) s.erase(0, 17);
    (void)PunycodeDecode(s);
  }
  EXPECT_FALSE(PunycodeDecode(std::string(kMaxPunycodeInput + 1, 'a')).ok());
}

TEST(Utf8Test, RejectsMalformedSequences) {
  std::u32string out;
  EXPECT_TRUE(DecodeUtf8("caf\xc3\xa9", &out));
  EXPECT_FALSE(DecodeUtf8("\xc3", &out));              // truncated
  EXPECT_FALSE(DecodeUtf8("\x80", &out));              // stray continuation
  EXPECT_FALSE(DecodeUtf8("\xc0\xaf", &out));          // overlong '/'
  EXPECT_FALSE(DecodeUtf8("\xed\xa0\x80", &out));      // surrogate
  EXPECT_FALSE(DecodeUtf8("\xf4\x90\x80\x80", &out));  // > U+10FFFF
  EXPECT_FALSE(DecodeUtf8("\xff", &out));
}

TEST(Utf8Test, LowercasesCommonScripts) {
  EXPECT_EQ(LowercaseUtf8("B\xc3\x9c"
                          "CHER"),
            "b\xc3\xbc"
            "cher");                                                                 // BÜCHER
  EXPECT_EQ(LowercaseUtf8("\xd0\x9c\xd0\x98\xd0\xa0"), "\xd0\xbc\xd0\xb8\xd1\x80");  // МИР → мир
  EXPECT_EQ(LowercaseUtf8("\xce\xa3"), "\xcf\x83");                                  // Σ → σ
  EXPECT_EQ(LowercaseUtf8("\xc3\x97"), "\xc3\x97");                                  // × unchanged
}

TEST(Utf8Test, TruncatesOnlyAtCodePointBoundaries) {
  EXPECT_EQ(TruncateUtf8("abc", 5), "abc");
  EXPECT_EQ(TruncateUtf8("ab\xc3\xbc"
                         "c",
                         3),
            "ab");
  EXPECT_EQ(TruncateUtf8("ab\xc3\xbc"
                         "c",
                         4),
            "ab\xc3\xbc");
  EXPECT_EQ(TruncateUtf8("\xe7\x94\xa8", 2), "");
}

}  // namespace
}  // namespace pocketmail::mail
