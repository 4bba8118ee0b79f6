#include "common/mime/rfc2047.h"

#include <chrono>
#include <string>

#include "gtest/gtest.h"

namespace pocketmail::mime {
namespace {

std::string Decode(absl::string_view in) {
  absl::StatusOr<std::string> out = DecodeRfc2047(in);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "<error>";
}

// The examples of RFC 2047 §8.
TEST(DecodeRfc2047, Rfc2047SectionEightExamples) {
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a?=)"), "(a)");
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a?= b)"), "(a b)");
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"), "(ab)");
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)"), "(ab)");
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)"), "(ab)");
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a_b?=)"), "(a b)");
  EXPECT_EQ(Decode("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)"), "(a b)");
  EXPECT_EQ(Decode("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>"),
            "Keith Moore <moore@cs.utk.edu>");
  EXPECT_EQ(Decode("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?="), "Keld J\xC3\xB8rn Simonsen");
  EXPECT_EQ(Decode("=?ISO-8859-1?Q?Andr=E9?= Pirard"), "Andr\xC3\xA9 Pirard");
  EXPECT_EQ(Decode("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
                   " =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="),
            "If you can read this you understand the example.");
}

TEST(DecodeRfc2047, PlainTextPassesThrough) {
  EXPECT_EQ(Decode(""), "");
  EXPECT_EQ(Decode("hello world"), "hello world");
  EXPECT_EQ(Decode("a = b ? c"), "a = b ? c");
  EXPECT_EQ(Decode("caf\xC3\xA9 already utf-8"), "caf\xC3\xA9 already utf-8");
}

TEST(DecodeRfc2047, BEncodingInUtf8) {
  EXPECT_EQ(Decode("=?UTF-8?B?Q2Fmw6kgY3LDqG1l?="), "Caf\xC3\xA9 cr\xC3\xA8me");
  EXPECT_EQ(Decode("=?utf-8?b?8J+TrA==?="), "\xF0\x9F\x93\xAC");
}

TEST(DecodeRfc2047, CharsetAndEncodingLettersInAnyCase) {
  EXPECT_EQ(Decode("=?uTf-8?q?caf=c3=a9?="), "caf\xC3\xA9");
  EXPECT_EQ(Decode("=?Utf8?Q?caf=C3=A9?="), "caf\xC3\xA9");
  EXPECT_EQ(Decode("=?WINDOWS-1252?q?=80?="), "\xE2\x82\xAC");
}

TEST(DecodeRfc2047, QEncodingKeepsOtherPrintableCharacters) {
  EXPECT_EQ(Decode("=?utf-8?q?a+b*c!(d)?="), "a+b*c!(d)");
  EXPECT_EQ(Decode("=?utf-8?q??="), "");
  EXPECT_EQ(Decode("=?utf-8?b??="), "");
}

TEST(DecodeRfc2047, WordsInsideTextKeepTheSurroundingWhitespace) {
  EXPECT_EQ(Decode("Re: =?utf-8?q?caf=C3=A9?= ok"), "Re: caf\xC3\xA9 ok");
  EXPECT_EQ(Decode("x =?utf-8?q?y?=  z"), "x y  z");
  EXPECT_EQ(Decode("\t=?utf-8?q?y?=\t"), "\ty\t");
}

TEST(DecodeRfc2047, AdjacentWordsJoinWithoutWhitespace) {
  EXPECT_EQ(Decode("=?utf-8?q?a?= \t =?utf-8?q?b?= =?utf-8?q?c?="), "abc");
  EXPECT_EQ(Decode("=?utf-8?q?a?==?utf-8?q?b?="), "ab");
}

TEST(DecodeRfc2047, EncodedSpaceBetweenWordsIsKept) {
  EXPECT_EQ(Decode("=?utf-8?q?a_?= =?utf-8?q?b?="), "a b");
}

TEST(DecodeRfc2047, Utf8CharacterSplitAcrossWordsSurvives) {
  EXPECT_EQ(Decode("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?="), "caf\xC3\xA9");
  EXPECT_EQ(Decode("=?UTF-8?B?w6k=?= =?utf-8?B?w6k=?="), "\xC3\xA9\xC3\xA9");
}

TEST(DecodeRfc2047, SplitCharacterInDifferentCharsetsIsReplaced) {
  EXPECT_EQ(Decode("=?utf-8?q?=C3?= =?iso-8859-1?q?=A9?="), "\xEF\xBF\xBD\xC2\xA9");
}

TEST(DecodeRfc2047, Rfc2231LanguageSuffixIsIgnored) {
  EXPECT_EQ(Decode("=?US-ASCII*EN?Q?Keith_Moore?="), "Keith Moore");
  EXPECT_EQ(Decode("=?utf-8*de?q?gr=C3=BC=C3=9F?="), "gr\xC3\xBC\xC3\x9F");
}

TEST(DecodeRfc2047, OtherCharsetsAreConvertedWithIconv) {
  EXPECT_EQ(Decode("=?koi8-r?B?8NLJ18XU?="), "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
  EXPECT_EQ(Decode("=?ISO-2022-JP?B?GyRCJEgkJCQmGyhC?="), "\xE3\x81\xA8\xE3\x81\x84\xE3\x81\x86");
  EXPECT_EQ(Decode("=?iso-8859-15?q?=A4?="), "\xE2\x82\xAC");
}

TEST(DecodeRfc2047, UnknownCharsetLeavesTheWordVerbatim) {
  EXPECT_EQ(Decode("=?x-unknown?q?abc?="), "=?x-unknown?q?abc?=");
  EXPECT_EQ(Decode("=?x-unknown?q?a?= =?x-unknown?q?b?= c"),
            "=?x-unknown?q?a?= =?x-unknown?q?b?= c");
  EXPECT_EQ(Decode("=?*?q?abc?="), "=?*?q?abc?=");
  EXPECT_EQ(Decode("=?utf-8//TRANSLIT?q?abc?="), "=?utf-8//TRANSLIT?q?abc?=");
}

TEST(DecodeRfc2047, MalformedWordsStayVerbatim) {
  for (const char* in : {
           "=?",
           "=?=",
           "=??=",
           "=?utf-8",
           "=?utf-8?",
           "=?utf-8?q",
           "=?utf-8?q?",
           "=?utf-8?q?abc",
           "=?utf-8?q?abc?",
           "=?utf-8??abc?=",
           "=?utf-8?x?abc?=",
           "=?utf-8?bb?abc?=",
           "=??q?abc?=",
           "=?utf 8?q?abc?=",
           "=?utf-8?q?a b?=",
           "=?utf-8?q?a?b?=",
           "=?utf-8?q?=Z1?=",
           "=?utf-8?q?=4?=",
           "=?utf-8?q?abc=?=",
           "=?utf-8?b?!!!!?=",
           "=?utf-8?b?Q?=",
           "=?utf-8?b?QUJD=A?=",
           "=?utf-8?b?QQ===?=",
       }) {
    EXPECT_EQ(Decode(in), in) << in;
  }
}

TEST(DecodeRfc2047, MalformedWordBetweenGoodWordsKeepsItsSpacing) {
  EXPECT_EQ(Decode("=?utf-8?q?a?= =?bad =?utf-8?q?b?="), "a =?bad b");
  EXPECT_EQ(Decode("=?utf-8?q?a?= =?utf-8?q?=ZZ?= =?utf-8?q?b?="), "a =?utf-8?q?=ZZ?= b");
}

TEST(DecodeRfc2047, Base64WithoutPaddingIsAccepted) {
  EXPECT_EQ(Decode("=?utf-8?b?QQ?="), "A");
  EXPECT_EQ(Decode("=?utf-8?b?QUI?="), "AB");
}

TEST(DecodeRfc2047, IllFormedBytesBecomeReplacementCharacters) {
  EXPECT_EQ(Decode("=?utf-8?b?/w==?="), "\xEF\xBF\xBD");
  EXPECT_EQ(Decode("=?utf-8?q?=ED=A0=80?="), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Decode("raw \xFF byte"), "raw \xEF\xBF\xBD byte");
  EXPECT_EQ(Decode("=?us-ascii?q?=E9?="), "\xC3\xA9");
}

TEST(DecodeRfc2047, EncodedControlCharactersAreDecoded) {
  EXPECT_EQ(Decode("=?utf-8?q?a=0D=0Ab=00c?="), std::string("a\r\nb\0c", 6));
}

TEST(DecodeRfc2047, OverlongInputIsRefused) {
  std::string in(kMaxRfc2047InputBytes + 1, 'a');
  EXPECT_EQ(DecodeRfc2047(in).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(DecodeRfc2047, WorstCaseOutputStaysWithinTheBound) {
  // Every byte of invalid input triples in size as U+FFFD.
  std::string in(kMaxRfc2047InputBytes, '\xFF');
  absl::StatusOr<std::string> out = DecodeRfc2047(in);
  ASSERT_TRUE(out.ok());
  EXPECT_LE(out->size(), kMaxRfc2047OutputBytes);
}

TEST(DecodeRfc2047, HostilePatternsDecodeInLinearTime) {
  for (const std::string& unit :
       {std::string("=?"), std::string("=?utf-8?q?"), std::string("=?utf-8?q?a?= "),
        std::string("=?a?b?"), std::string("=?") + std::string(70, 'c') + "?"}) {
    std::string in;
    while (in.size() + unit.size() <= kMaxRfc2047InputBytes) in += unit;
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::string> out = DecodeRfc2047(in);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(out.ok()) << unit;
    EXPECT_LT(elapsed, std::chrono::seconds(1)) << unit;
  }
}

TEST(EncodeRfc2047B, ShortTextIsOneWord) {
  EXPECT_EQ(EncodeRfc2047B("caf\xC3\xA9"), "=?UTF-8?B?Y2Fmw6k=?=");
}

TEST(EncodeRfc2047B, LongTextSplitsIntoWordsOfAtMost75Characters) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "\xE2\x82\xAC\xC3\xA9x";  // 3+2+1 bytes per unit
  std::string encoded = EncodeRfc2047B(text);
  size_t start = 0;
  int words = 0;
  while (start < encoded.size()) {
    size_t end = encoded.find(' ', start);
    if (end == std::string::npos) end = encoded.size();
    EXPECT_LE(end - start, 75u);
    // Each word decodes on its own to whole characters.
    absl::StatusOr<std::string> word = DecodeRfc2047(encoded.substr(start, end - start));
    ASSERT_TRUE(word.ok());
    EXPECT_EQ(word->find("\xEF\xBF\xBD"), std::string::npos);
    start = end + 1;
    ++words;
  }
  EXPECT_GT(words, 1);
  EXPECT_EQ(Decode(encoded), text);
}

TEST(EncodeRfc2047B, RoundTripsAwkwardValues) {
  for (const std::string& text :
       {std::string("  leading and trailing  "), std::string("=?utf-8?q?looks_encoded?="),
        std::string("line\r\nbreak"), std::string("\xF0\x9F\x93\xAC mail"), std::string("")}) {
    std::string encoded = EncodeRfc2047B(text);
    EXPECT_EQ(encoded.find_first_of("\r\n"), std::string::npos);
    EXPECT_EQ(Decode(encoded), text) << encoded;
  }
}

}  // namespace
}  // namespace pocketmail::mime
