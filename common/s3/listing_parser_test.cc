#include "common/s3/listing_parser.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

constexpr char kTwoObjects[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>mail</Name><Prefix>pending/</Prefix><MaxKeys>2</MaxKeys><KeyCount>2</KeyCount>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>pending/a&amp;b &lt;c&gt;.eml</Key>
    <LastModified>2025-03-04T05:06:07.000Z</LastModified>
    <ETag>&quot;0123abcd&quot;</ETag>
    <Size>1234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>pending/&#x1234;.eml</Key>
    <LastModified>2025-03-04T05:06:08Z</LastModified>
    <ETag>"ef"</ETag>
    <Size>0</Size>
    <Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>
  </Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>)";

std::string Listing(absl::string_view contents, absl::string_view extra = "",
                    absl::string_view key_count = "1", absl::string_view truncated = "false") {
  return absl::StrCat("<ListBucketResult><IsTruncated>", truncated, "</IsTruncated><KeyCount>",
                      key_count, "</KeyCount>", extra, contents, "</ListBucketResult>");
}

std::string Contents(absl::string_view key, absl::string_view size = "1",
                     absl::string_view modified = "2025-01-01T00:00:00.000Z",
                     absl::string_view etag = "\"e\"") {
  return absl::StrCat("<Contents><Key>", key, "</Key><Size>", size, "</Size><LastModified>",
                      modified, "</LastModified><ETag>", etag, "</ETag></Contents>");
}

void ExpectInvalid(absl::string_view xml, absl::string_view why) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(xml);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << xml;
  EXPECT_NE(page.status().message().find(why), absl::string_view::npos)
      << "message: " << page.status().message() << "\nwanted: " << why;
}

TEST(ParseListObjectsV2, ReadsEveryFieldOfARealResponse) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(kTwoObjects);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "pending/a&b <c>.eml");
  EXPECT_EQ(page->objects[0].size, 1234);
  EXPECT_EQ(page->objects[0].etag, "\"0123abcd\"");
  EXPECT_EQ(page->objects[0].last_modified,
            absl::FromCivil(absl::CivilSecond(2025, 3, 4, 5, 6, 7), absl::UTCTimeZone()));
  EXPECT_EQ(page->objects[1].key, "pending/\xE1\x88\xB4.eml");
  EXPECT_EQ(page->objects[1].size, 0);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(ParseListObjectsV2, EmptyListing) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(Listing("", "", "0"));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "");
}

TEST(ParseListObjectsV2, UrlEncodingTypeDecodesKeys) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(
      Listing(Contents("pending/a%20b+c%2Bd%3De%40f%25.eml"), "<EncodingType>url</EncodingType>"));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->objects[0].key, "pending/a b c+d=e@f%.eml");
}

TEST(ParseListObjectsV2, WithoutEncodingTypeKeysAreTakenLiterally) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(Listing(Contents("pending/a%20b+c.eml")));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->objects[0].key, "pending/a%20b+c.eml");
}

TEST(ParseListObjectsV2, NamespacePrefixesAreIgnored) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(
      "<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<s3:IsTruncated>false</s3:IsTruncated><s3:KeyCount>0</s3:KeyCount></s3:ListBucketResult>");
  EXPECT_TRUE(page.ok()) << page.status();
}

TEST(ParseListObjectsV2, TruncatedDocumentIsAnError) {
  std::string xml = kTwoObjects;
  for (size_t cut : {size_t{0}, size_t{10}, xml.size() / 2, xml.size() - 3}) {
    ExpectInvalid(xml.substr(0, cut), "");
  }
  ExpectInvalid(xml.substr(0, xml.size() / 2), "malformed XML");
}

TEST(ParseListObjectsV2, OtherRootIsAnError) {
  ExpectInvalid("<Error><Code>SlowDown</Code></Error>", "root element is <Error>");
  ExpectInvalid("<ListAllMyBucketsResult/>", "not <ListBucketResult>");
}

TEST(ParseListObjectsV2, MissingRequiredFieldsAreErrors) {
  ExpectInvalid("<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>",
                "missing <IsTruncated>");
  ExpectInvalid("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                "missing <KeyCount>");
  ExpectInvalid(Listing("<Contents><Size>1</Size><LastModified>2025-01-01T00:00:00Z</LastModified>"
                        "<ETag>e</ETag></Contents>"),
                "missing <Key>");
  ExpectInvalid(Listing("<Contents><Key>k</Key><LastModified>2025-01-01T00:00:00Z</LastModified>"
                        "<ETag>e</ETag></Contents>"),
                "missing <Size>");
  ExpectInvalid(Listing("<Contents><Key>k</Key><Size>1</Size><ETag>e</ETag></Contents>"),
                "missing <LastModified>");
  ExpectInvalid(Listing("<Contents><Key>k</Key><Size>1</Size>"
                        "<LastModified>2025-01-01T00:00:00Z</LastModified></Contents>"),
                "missing <ETag>");
  ExpectInvalid(Listing(Contents("k"), "", "1", "true"), "without <NextContinuationToken>");
  ExpectInvalid(
      Listing(Contents("k"), "<NextContinuationToken></NextContinuationToken>", "1", "true"),
      "without <NextContinuationToken>");
}

TEST(ParseListObjectsV2, UnparsableValuesAreErrors) {
  ExpectInvalid(Listing(Contents("k", "-1")), "<Size>");
  ExpectInvalid(Listing(Contents("k", "12x")), "<Size>");
  ExpectInvalid(Listing(Contents("k", "99999999999999999999999")), "<Size>");
  ExpectInvalid(Listing(Contents("k", "1", "yesterday")), "<LastModified>");
  ExpectInvalid(Listing(Contents("k"), "", "1", "maybe"), "<IsTruncated>");
  ExpectInvalid(Listing(Contents("k"), "", "one"), "<KeyCount>");
  ExpectInvalid(Listing(Contents("")), "empty <Key>");
  ExpectInvalid(Listing(Contents("a%zz"), "<EncodingType>url</EncodingType>"), "bad escape");
  ExpectInvalid(Listing(Contents("k"), "<EncodingType>base64</EncodingType>"), "<EncodingType>");
}

TEST(ParseListObjectsV2, KeyCountMustMatchTheEntriesListed) {
  ExpectInvalid(Listing(Contents("a"), "", "2"), "<KeyCount> says 2 but 1");
  ExpectInvalid(Listing(Contents("a") + Contents("b"), "", "1"), "<KeyCount> says 1 but 2");
}

TEST(ParseListObjectsV2, RepeatedSingleFieldsAreErrors) {
  ExpectInvalid(
      "<ListBucketResult><IsTruncated>false</IsTruncated><IsTruncated>true</IsTruncated>"
      "<KeyCount>0</KeyCount></ListBucketResult>",
      "<IsTruncated> appears 2 times");
  ExpectInvalid(Listing("<Contents><Key>a</Key><Key>b</Key><Size>1</Size><LastModified>"
                        "2025-01-01T00:00:00Z</LastModified><ETag>e</ETag></Contents>"),
                "<Key> appears 2 times");
}

TEST(ParseListObjectsV2, DoctypeIsRefusedSoNoEntityCanExpand) {
  const std::string billion_laughs =
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
      "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>" +
      Listing(Contents("&lol3;"));
  ExpectInvalid(billion_laughs, "DOCTYPE");
  ExpectInvalid(
      "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" + Listing(Contents("&xxe;")),
      "DOCTYPE");
  ExpectInvalid(
      "<!DOCTYPE ListBucketResult SYSTEM \"http://127.0.0.1:1/evil.dtd\">" + Listing(Contents("k")),
      "DOCTYPE");
  ExpectInvalid(
      "<!DOCTYPE x [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>" + Listing(Contents("k")),
      "DOCTYPE");
}

TEST(ParseListObjectsV2, UndefinedEntityIsAnError) {
  ExpectInvalid(Listing(Contents("a&nbsp;b")), "malformed XML");
}

TEST(ParseListObjectsV2, HostileShapesHitLimitsNotMemory) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  ExpectInvalid(Listing(deep), "nested too deeply");
  ExpectInvalid(Listing(Contents(std::string(100 << 10, 'k'))), "text too long");
  ExpectInvalid(std::string(17 << 20, ' '), "too large");
}

TEST(ParseS3Error, ReadsCodeAndMessage) {
  absl::StatusOr<S3ErrorBody> error = ParseS3Error(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The specified key does not exist.</Message><Key>pending/x</Key>"
      "<RequestId>abc</RequestId></Error>");
  ASSERT_TRUE(error.ok()) << error.status();
  EXPECT_EQ(error->code, "NoSuchKey");
  EXPECT_EQ(error->message, "The specified key does not exist.");
}

TEST(ParseS3Error, MessageIsOptionalCodeIsNot) {
  EXPECT_EQ(ParseS3Error("<Error><Code>SlowDown</Code></Error>")->code, "SlowDown");
  EXPECT_FALSE(ParseS3Error("<Error><Message>m</Message></Error>").ok());
  EXPECT_FALSE(ParseS3Error("<Error><Code> </Code></Error>").ok());
  EXPECT_FALSE(ParseS3Error("<NotAnError/>").ok());
  EXPECT_FALSE(ParseS3Error("").ok());
  EXPECT_FALSE(ParseS3Error("<Error><Code>SlowDown</Code>").ok());
}

TEST(ParseCopyObjectResponse, ResultMeansSuccess) {
  absl::StatusOr<std::optional<S3ErrorBody>> result = ParseCopyObjectResponse(
      "<CopyObjectResult><LastModified>2025-01-01T00:00:00.000Z</LastModified>"
      "<ETag>\"e\"</ETag></CopyObjectResult>");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->has_value());
}

TEST(ParseCopyObjectResponse, ErrorUnderA200IsReported) {
  absl::StatusOr<std::optional<S3ErrorBody>> result = ParseCopyObjectResponse(
      "<Error><Code>InternalError</Code><Message>We encountered an internal "
      "error.</Message></Error>");
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->has_value());
  EXPECT_EQ((*result)->code, "InternalError");
}

TEST(ParseCopyObjectResponse, AnythingElseIsAnError) {
  EXPECT_FALSE(ParseCopyObjectResponse("").ok());
  EXPECT_FALSE(ParseCopyObjectResponse("<CopyObjectResult>").ok());
  EXPECT_FALSE(ParseCopyObjectResponse("<Other/>").ok());
}

}  // namespace
}  // namespace pocketmail::s3
