#include "common/mail/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace pocketmail::mail {
namespace {

size_t SequenceAt0(const std::string& s, char32_t* cp) { return DecodeUtf8Sequence(s, 0, cp); }

TEST(Utf8Test, OneSequenceDecoderAcceptsEachLengthAndRejectsEveryMalformedForm) {
  char32_t cp = 0;
  EXPECT_EQ(SequenceAt0("A", &cp), 1u);
  EXPECT_EQ(cp, U'A');
  EXPECT_EQ(SequenceAt0("\xC3\xBC", &cp), 2u);  // ü
  EXPECT_EQ(cp, U'\u00FC');
  EXPECT_EQ(SequenceAt0("\xE2\x82\xAC", &cp), 3u);  // €
  EXPECT_EQ(cp, U'\u20AC');
  EXPECT_EQ(SequenceAt0("\xF0\x9F\x93\xA7", &cp), 4u);  // 📧
  EXPECT_EQ(cp, U'\U0001F4E7');
  for (const char* bad :
       {"\x80", "\xBF", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF", "\xED\xA0\x80",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\xC3", "\xE2\x82", "\xC3\x41"}) {
    EXPECT_EQ(SequenceAt0(bad, &cp), 0u) << testing::PrintToString(std::string(bad));
  }
}

TEST(Utf8Test, ValidityAgreesWithDecoding) {
  std::u32string cps;
  for (const std::string& s : {std::string("plain"),
                               std::string("gr\xC3\xBC\xC3\x9F"
                                           "e"),
                               std::string("a\xFF"
                                           "b"),
                               std::string("\xED\xA0\x80")}) {
    EXPECT_EQ(IsValidUtf8(s), DecodeUtf8(s, &cps)) << s;
  }
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_FALSE(
      IsValidUtf8("a\xFF"
                  "b"));
}

TEST(Utf8Test, BoundedTextReplacesBadBytesAndCutsOnCharacters) {
  EXPECT_EQ(ToBoundedUtf8("plain", 100), "plain");
  EXPECT_EQ(ToBoundedUtf8("a\xff"
                          "b",
                          100),
            "a?b");
  EXPECT_EQ(ToBoundedUtf8("gr\xC3\xBC\xC3\x9F"
                          "e",
                          3),
            "gr");  // 'ü' is two bytes; no half characters
  EXPECT_EQ(ToBoundedUtf8("gr\xC3\xBC\xC3\x9F"
                          "e",
                          4),
            "gr\xC3\xBC");
  EXPECT_EQ(ToBoundedUtf8("", 4), "");
}

}  // namespace
}  // namespace pocketmail::mail
