#include "common/imap/response.h"

#include "gtest/gtest.h"

namespace pocketmail::imap {
namespace {

Response Classify(const std::string& text, std::vector<std::string> literals = {}) {
  absl::StatusOr<Response> r = ClassifyResponse({text, std::move(literals)});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Response{};
}

TEST(TrailingLiteralSizeTest, FindsTheMarkerAtTheEndOfALine) {
  EXPECT_EQ(TrailingLiteralSize("* 1 FETCH (BODY[] {42}"), 42u);
  EXPECT_EQ(TrailingLiteralSize("* 1 FETCH (BODY[] {0}"), 0u);
  EXPECT_EQ(TrailingLiteralSize("a LOGIN {5+}"), 5u);
}

TEST(TrailingLiteralSizeTest, IgnoresBracesThatAreNotAMarker) {
  EXPECT_FALSE(TrailingLiteralSize("* OK done").has_value());
  EXPECT_FALSE(TrailingLiteralSize("* OK {abc}").has_value());
  EXPECT_FALSE(TrailingLiteralSize("* OK {}").has_value());
  EXPECT_FALSE(TrailingLiteralSize("* OK {12} trailing").has_value());
  EXPECT_FALSE(TrailingLiteralSize("* OK {99999999999}").has_value());
}

TEST(ClassifyResponseTest, TellsUntaggedTaggedAndContinuationApart) {
  Response u = Classify("* 3 EXISTS");
  EXPECT_EQ(u.kind, ResponseKind::kUntagged);
  EXPECT_EQ(u.rest, "3 EXISTS");
  Response t = Classify("p12 OK [READ-ONLY] done");
  EXPECT_EQ(t.kind, ResponseKind::kTagged);
  EXPECT_EQ(t.tag, "p12");
  EXPECT_EQ(t.rest, "OK [READ-ONLY] done");
  EXPECT_EQ(Classify("+ go ahead").kind, ResponseKind::kContinuation);
  EXPECT_EQ(Classify("+").kind, ResponseKind::kContinuation);
}

TEST(ClassifyResponseTest, RefusesALineThatIsNoResponse) {
  EXPECT_FALSE(ClassifyResponse({"", {}}).ok());
  EXPECT_FALSE(ClassifyResponse({"garbage", {}}).ok());
  EXPECT_FALSE(ClassifyResponse({"a(b OK x", {}}).ok());
}

TEST(ParseStatusLineTest, SplitsConditionCodeAndText) {
  auto s = ParseStatusLine("ok [READ-ONLY] Examine completed");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->condition, "OK");
  EXPECT_EQ(s->code, "READ-ONLY");
  EXPECT_EQ(s->text, "Examine completed");
  auto no = ParseStatusLine("NO [AUTHENTICATIONFAILED] Authentication failed.");
  ASSERT_TRUE(no.has_value());
  EXPECT_EQ(no->condition, "NO");
  EXPECT_EQ(no->code, "AUTHENTICATIONFAILED");
  auto bye = ParseStatusLine("BYE");
  ASSERT_TRUE(bye.has_value());
  EXPECT_EQ(bye->text, "");
  EXPECT_FALSE(ParseStatusLine("3 EXISTS").has_value());
}

TEST(TokenizeTest, KeepsBracketedSectionsWhole) {
  auto t = Tokenize("(BODY[HEADER.FIELDS (X-A X-B)] NIL FLAGS (\\Seen))", {});
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 8u);
  EXPECT_EQ((*t)[1].value, "BODY[HEADER.FIELDS (X-A X-B)]");
  EXPECT_EQ((*t)[2].type, Token::Type::kNil);
  EXPECT_EQ((*t)[5].value, "\\Seen");
}

TEST(TokenizeTest, UnescapesQuotedStrings) {
  auto t = Tokenize(R"("a \"b\" \\c" "")", {});
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].value, "a \"b\" \\c");
  EXPECT_EQ((*t)[1].type, Token::Type::kString);
  EXPECT_EQ((*t)[1].value, "");
}

TEST(TokenizeTest, ReplacesLiteralMarkersWithTheirOctets) {
  auto t = Tokenize("(X {5} Y {0})", {"a\r\nb)", ""});
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 6u);
  EXPECT_EQ((*t)[2].value, "a\r\nb)");
  EXPECT_EQ((*t)[3].value, "Y");
  EXPECT_EQ((*t)[4].value, "");
}

TEST(TokenizeTest, RefusesMalformedInput) {
  EXPECT_FALSE(Tokenize("\"open", {}).ok());
  EXPECT_FALSE(Tokenize("BODY[HEADER", {}).ok());
  EXPECT_FALSE(Tokenize("{5}", {}).ok());       // no literal
  EXPECT_FALSE(Tokenize("{5}", {"abc"}).ok());  // literal of another size
  EXPECT_FALSE(Tokenize("{x}", {"abc"}).ok());
}

TEST(ParseSearchDataTest, ReadsSequenceNumbers) {
  auto r = ParseSearchData("SEARCH 2 5 19");
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(**r, (std::vector<uint32_t>{2, 5, 19}));
}

TEST(ParseSearchDataTest, EmptyResultIsNoMatches) {
  for (const char* rest : {"SEARCH", "SEARCH ", "search"}) {
    auto r = ParseSearchData(rest);
    ASSERT_TRUE(r.has_value()) << rest;
    ASSERT_TRUE(r->ok());
    EXPECT_TRUE((*r)->empty());
  }
}

TEST(ParseSearchDataTest, IgnoresATrailingModseq) {
  auto r = ParseSearchData("SEARCH 4 (MODSEQ 917162500)");
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(**r, std::vector<uint32_t>{4});
}

TEST(ParseSearchDataTest, OtherDataIsNotSearch) {
  EXPECT_FALSE(ParseSearchData("3 EXISTS").has_value());
  EXPECT_FALSE(ParseSearchData("SEARCHING 1").has_value());
}

TEST(ParseSearchDataTest, GarbageIsDataLoss) {
  for (const char* rest : {"SEARCH 1 x", "SEARCH 0", "SEARCH -1", "SEARCH 99999999999"}) {
    auto r = ParseSearchData(rest);
    ASSERT_TRUE(r.has_value()) << rest;
    EXPECT_EQ(r->status().code(), absl::StatusCode::kDataLoss) << rest;
  }
}

TEST(ParseExistsTest, ReadsTheMessageCount) {
  EXPECT_EQ(ParseExists("17 EXISTS"), 17u);
  EXPECT_EQ(ParseExists("0 exists"), 0u);
  EXPECT_FALSE(ParseExists("17 RECENT").has_value());
  EXPECT_FALSE(ParseExists("OK [UIDNEXT 4] next").has_value());
}

TEST(ParseFetchDataTest, ReadsALiteralHeaderItemAndSkipsLists) {
  auto r = ParseFetchData("3 FETCH (FLAGS (\\Seen $x) BODY[HEADER.FIELDS (X-POCKETMAIL-KEY)] {24})",
                          {"X-Pocketmail-Key: k1\r\n\r\n"});
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->status();
  EXPECT_EQ((*r)->seq, 3u);
  ASSERT_EQ((*r)->items.size(), 1u);
  EXPECT_EQ((*r)->items.at("BODY[HEADER.FIELDS (X-POCKETMAIL-KEY)]"),
            "X-Pocketmail-Key: k1\r\n\r\n");
}

TEST(ParseFetchDataTest, ReadsQuotedAtomAndNilValues) {
  auto r = ParseFetchData("7 FETCH (UID 44 body[] \"x\" RFC822.SIZE NIL)", {});
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ((*r)->items.at("UID"), "44");
  EXPECT_EQ((*r)->items.at("BODY[]"), "x");
  EXPECT_EQ((*r)->items.at("RFC822.SIZE"), "");
}

TEST(ParseFetchDataTest, OtherDataIsNotFetch) {
  EXPECT_FALSE(ParseFetchData("3 EXISTS", {}).has_value());
  EXPECT_FALSE(ParseFetchData("SEARCH 1", {}).has_value());
}

TEST(ParseFetchDataTest, MalformedFetchIsDataLoss) {
  for (const char* rest :
       {"3 FETCH", "3 FETCH (UID)", "3 FETCH (FLAGS (\\Seen)", "3 FETCH UID 4"}) {
    auto r = ParseFetchData(rest, {});
    ASSERT_TRUE(r.has_value()) << rest;
    EXPECT_EQ(r->status().code(), absl::StatusCode::kDataLoss) << rest;
  }
}

TEST(AppendAstringTest, QuotesAndEscapesPlainValues) {
  std::vector<std::string> segments = {"a LOGIN"};
  ASSERT_TRUE(AppendAstring("user@example.org", &segments).ok());
  ASSERT_TRUE(AppendAstring("p\"w\\d x", &segments).ok());
  ASSERT_TRUE(AppendAstring("", &segments).ok());
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0], R"(a LOGIN "user@example.org" "p\"w\\d x" "")");
}

TEST(AppendAstringTest, SendsEightBitAndLineBreaksAsLiterals) {
  std::vector<std::string> segments = {"a LOGIN"};
  ASSERT_TRUE(AppendAstring("user", &segments).ok());
  ASSERT_TRUE(AppendAstring("p\xc3\xa4ss", &segments).ok());
  ASSERT_TRUE(AppendAstring("a\r\nb", &segments).ok());
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[0], "a LOGIN \"user\" {5}\r\n");
  EXPECT_EQ(segments[1], "p\xc3\xa4ss {4}\r\n");
  EXPECT_EQ(segments[2], "a\r\nb");
}

TEST(AppendAstringTest, RefusesNul) {
  std::vector<std::string> segments = {"a LOGIN"};
  EXPECT_EQ(AppendAstring(std::string("a\0b", 3), &segments).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateSearchValueTest, AcceptsObjectKeys) {
  EXPECT_TRUE(ValidateSearchValue("pending/0123abcd-89ef.eml").ok());
  EXPECT_TRUE(ValidateSearchValue("a key with spaces").ok());
}

TEST(ValidateSearchValueTest, RefusesWhatCouldBreakOutOfTheQuotedString) {
  for (const std::string& bad :
       {std::string(""), std::string("a\"b"), std::string("a\\b"), std::string("a\r\nb"),
        std::string("a\nb"), std::string("\x7f"), std::string("caf\xc3\xa9"), std::string(513, 'k'),
        std::string("a\0b", 3)}) {
    EXPECT_EQ(ValidateSearchValue(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HeaderFieldValuesTest, FindsEveryFieldUnfoldedAndTrimmed) {
  const std::string header =
      "X-Pocketmail-Key: k1\r\nx-pocketmail-key:\tk2 \r\nX-Pocketmail-Key-Other: no\r\n"
      "X-Pocketmail-Key: fol\r\n ded\r\n\r\nX-Pocketmail-Key: in-body\r\n";
  EXPECT_EQ(HeaderFieldValues(header, "X-Pocketmail-Key"),
            (std::vector<std::string>{"k1", "k2", "fol ded"}));
  EXPECT_TRUE(HeaderFieldValues("", "X-Pocketmail-Key").empty());
  EXPECT_EQ(HeaderFieldValues("X-Pocketmail-Key: bare-lf\n", "X-Pocketmail-Key"),
            std::vector<std::string>{"bare-lf"});
}

}  // namespace
}  // namespace pocketmail::imap
