#include "common/s3/s3_headers.h"

#include "common/mime/rfc2047.h"
#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

ResponseHeaders Parse(std::initializer_list<const char*> lines) {
  ResponseHeaders headers;
  for (const char* line : lines) headers.AddLine(line);
  return headers;
}

TEST(ResponseHeaders, NamesAreLowercasedAndValuesTrimmed) {
  ResponseHeaders h =
      Parse({"HTTP/1.1 200 OK\r\n", "Content-Length:  42 \r\n", "ETag: \"abc\"\r\n", "\r\n"});
  EXPECT_EQ(h.Get("content-length"), "42");
  EXPECT_EQ(h.Get("etag"), "\"abc\"");
  EXPECT_FALSE(h.Has("x-missing"));
  EXPECT_EQ(h.Get("x-missing"), "");
}

TEST(ResponseHeaders, ANewStatusLineStartsOver) {
  ResponseHeaders h = Parse({"HTTP/1.1 100 Continue\r\n", "X-Interim: 1\r\n", "\r\n",
                             "HTTP/1.1 200 OK\r\n", "ETag: \"e\"\r\n", "\r\n"});
  EXPECT_FALSE(h.Has("x-interim"));
  EXPECT_EQ(h.Get("etag"), "\"e\"");
}

TEST(ResponseHeaders, RepeatsJoinAndFoldedLinesUnfold) {
  ResponseHeaders h = Parse({"X-A: 1\r\n", "x-a: 2\r\n", "X-B: start\r\n", "   continued\r\n",
                             "not a header line\r\n", ": no name\r\n"});
  EXPECT_EQ(h.Get("x-a"), "1,2");
  EXPECT_EQ(h.Get("x-b"), "start continued");
  EXPECT_EQ(h.all().size(), 2u);
}

TEST(ObjectHeadFromHeaders, ReadsSizeEtagTypeAndMetadata) {
  ResponseHeaders h =
      Parse({"Content-Length: 1234", "ETag: \"0a\"", "Content-Type: message/rfc822",
             "X-Amz-Meta-To: user@example.com", "x-amz-meta-SUBJECT: =?UTF-8?B?R3LDvMOfZQ==?=",
             "x-amz-meta-raw: =?utf-8?q?caf=C3=A9?= au lait", "x-amz-meta-: ignored",
             "x-amz-request-id: r"});
  absl::StatusOr<ObjectHead> head = ObjectHeadFromHeaders(h);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->size, 1234);
  EXPECT_EQ(head->etag, "\"0a\"");
  EXPECT_EQ(head->content_type, "message/rfc822");
  EXPECT_EQ(head->metadata, (std::map<std::string, std::string>{{"to", "user@example.com"},
                                                                {"subject",
                                                                 "Gr\xC3\xBC\xC3\x9F"
                                                                 "e"},
                                                                {"raw", "caf\xC3\xA9 au lait"}}));
}

TEST(ObjectHeadFromHeaders, MetadataIsAlwaysValidUtf8) {
  absl::StatusOr<ObjectHead> head = ObjectHeadFromHeaders(Parse({"x-amz-meta-a: raw \xFF byte"}));
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->metadata.at("a"), "raw \xEF\xBF\xBD byte");
}

TEST(ObjectHeadFromHeaders, MalformedContentLengthIsAnError) {
  for (const char* bad : {"Content-Length: -1", "Content-Length: 12abc", "Content-Length: "}) {
    EXPECT_FALSE(ObjectHeadFromHeaders(Parse({bad})).ok()) << bad;
  }
  absl::StatusOr<ObjectHead> no_length = ObjectHeadFromHeaders(Parse({"ETag: \"e\""}));
  ASSERT_TRUE(no_length.ok());
  EXPECT_EQ(no_length->size, 0);
}

TEST(MetadataRequestHeaders, PlainAsciiValuesGoAsTheyAre) {
  absl::StatusOr<HeaderList> h =
      MetadataRequestHeaders({{"To", "a@b.example"}, {"rawsize", "12"}, {"e", ""}});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, (HeaderList{{"x-amz-meta-to", "a@b.example"},
                            {"x-amz-meta-e", ""},
                            {"x-amz-meta-rawsize", "12"}}));
}

TEST(MetadataRequestHeaders, ValuesThatWouldNotSurviveAreRfc2047Encoded) {
  for (const std::string& value :
       {std::string("Gr\xC3\xBC\xC3\x9F"
                    "e"),
        std::string(" padded "), std::string("tab\there"), std::string("line\r\nX-Injected: 1"),
        std::string("=?utf-8?q?looks_encoded?="), std::string("nul\0byte", 8),
        std::string(300, '\xE2')}) {
    absl::StatusOr<HeaderList> h = MetadataRequestHeaders({{"subject", value}});
    ASSERT_TRUE(h.ok()) << h.status();
    const std::string& wire = (*h)[0].second;
    for (unsigned char c : wire) EXPECT_TRUE(c >= 0x20 && c < 0x7F) << wire;
    ResponseHeaders back;
    back.AddLine("x-amz-meta-subject: " + wire);
    absl::StatusOr<ObjectHead> head = ObjectHeadFromHeaders(back);
    ASSERT_TRUE(head.ok());
    if (value != std::string(300, '\xE2')) {  // not UTF-8: reads back as U+FFFDs
      EXPECT_EQ(head->metadata.at("subject"), value);
    }
  }
}

TEST(MetadataRequestHeaders, RejectsBadNamesDuplicatesAndOversize) {
  EXPECT_FALSE(MetadataRequestHeaders({{"", "v"}}).ok());
  EXPECT_FALSE(MetadataRequestHeaders({{"bad name", "v"}}).ok());
  EXPECT_FALSE(MetadataRequestHeaders({{"a:b", "v"}}).ok());
  EXPECT_FALSE(MetadataRequestHeaders({{"n\xC3\xA9", "v"}}).ok());
  EXPECT_FALSE(MetadataRequestHeaders({{"To", "a"}, {"to", "b"}}).ok());
  EXPECT_FALSE(MetadataRequestHeaders({{"big", std::string(kMaxMetadataBytes, 'x')}}).ok());
  EXPECT_TRUE(MetadataRequestHeaders({{"ok", std::string(kMaxMetadataBytes - 2, 'x')}}).ok());
}

}  // namespace
}  // namespace pocketmail::s3
