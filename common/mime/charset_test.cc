#include "common/mime/charset.h"

#include <string>

#include "gtest/gtest.h"

namespace pocketmail::mime {
namespace {

std::string Sanitized(absl::string_view bytes) {
  std::string out;
  AppendSanitizedUtf8(bytes, &out);
  return out;
}

TEST(SanitizeUtf8, KeepsWellFormedText) {
  EXPECT_EQ(Sanitized("plain ascii"), "plain ascii");
  EXPECT_EQ(Sanitized("Gr\xC3\xBC\xC3\x9F"
                      "e \xE2\x82\xAC \xF0\x9F\x93\xAC"),
            "Gr\xC3\xBC\xC3\x9F"
            "e \xE2\x82\xAC \xF0\x9F\x93\xAC");
}

TEST(SanitizeUtf8, ReplacesEachIllFormedByte) {
  EXPECT_EQ(Sanitized("a\xFF"
                      "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(Sanitized("\x80"), "\xEF\xBF\xBD");                  // stray continuation
  EXPECT_EQ(Sanitized("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(Sanitized("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(Sanitized("\xF4\x90\x80\x80").substr(0, 3), "\xEF\xBF\xBD");         // > U+10FFFF
  EXPECT_EQ(Sanitized("ok\xE2\x82"), "ok\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated at the end
}

TEST(ConvertToUtf8, Latin1AndWindows1252LabelsDecodeAsWindows1252) {
  EXPECT_EQ(*ConvertToUtf8("ISO-8859-1", "caf\xE9"), "caf\xC3\xA9");
  EXPECT_EQ(*ConvertToUtf8("iso-8859-1", "\x80"), "\xE2\x82\xAC");
  EXPECT_EQ(*ConvertToUtf8("Windows-1252", "\x93quoted\x94"), "\xE2\x80\x9Cquoted\xE2\x80\x9D");
  EXPECT_EQ(*ConvertToUtf8("us-ascii", "plain"), "plain");
  EXPECT_EQ(*ConvertToUtf8("US-ASCII", "\xE9"), "\xC3\xA9");
}

TEST(ConvertToUtf8, OtherCharsetsGoThroughIconv) {
  EXPECT_EQ(*ConvertToUtf8("KOI8-R", "\xF0\xD2\xC9\xD7\xC5\xD4"),
            "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");  // "Привет"
  EXPECT_EQ(*ConvertToUtf8("iso-8859-15", "\xA4"), "\xE2\x82\xAC");
  EXPECT_EQ(*ConvertToUtf8("Shift_JIS", "\x82\xA0"), "\xE3\x81\x82");  // "あ"
}

TEST(ConvertToUtf8, InvalidBytesInIconvCharsetBecomeReplacementCharacters) {
  absl::StatusOr<std::string> out = ConvertToUtf8("Shift_JIS", "a\x82");  // truncated pair
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "a\xEF\xBF\xBD");
}

TEST(ConvertToUtf8, UnknownOrOddCharsetNamesAreNotFound) {
  EXPECT_EQ(ConvertToUtf8("x-no-such-charset", "a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ConvertToUtf8("UTF-8//TRANSLIT", "a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ConvertToUtf8("", "a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ConvertToUtf8(std::string(100, 'a'), "a").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pocketmail::mime
