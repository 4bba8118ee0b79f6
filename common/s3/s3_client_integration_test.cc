// S3Client against a real S3 peer: what each operation does, with the status
// codes of the ObjectStore contract. Connections: s3_client_connection_test.cc.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/s3/s3_peer_fixture.h"

namespace pocketmail::s3 {
namespace {

using absl::StatusCode;
using S3ClientIntegrationTest = S3PeerFixture;

TEST_F(S3ClientIntegrationTest, WrongSecretIsPermissionDenied) {
  ClientOptions options = Options();
  options.secret_access_key = "not-the-secret";
  auto client = NewClient(options);
  absl::StatusOr<ListPage> page = client->ListObjectsV2("pending/", "");
  EXPECT_EQ(page.status().code(), StatusCode::kPermissionDenied) << page.status();
  EXPECT_NE(page.status().message().find("SignatureDoesNotMatch"), absl::string_view::npos);
  EXPECT_EQ(std::string(page.status().message()).find("not-the-secret"), std::string::npos);
}

TEST_F(S3ClientIntegrationTest, PutThenGetReturnsTheSameBinaryBytes) {
  std::string body;
  for (int i = 0; i < 4; ++i)
    for (int b = 0; b < 256; ++b) body.push_back(static_cast<char>(b));
  ASSERT_TRUE(client_->PutObject(Key("bin"), body, {}, false, "application/x-test").ok());
  absl::StatusOr<Object> got = client_->GetObject(Key("bin"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->head.size, static_cast<int64_t>(body.size()));
  EXPECT_EQ(got->head.content_type, "application/x-test");
  EXPECT_FALSE(got->head.etag.empty());
}

TEST_F(S3ClientIntegrationTest, EmptyBodyRoundTrips) {
  ASSERT_TRUE(client_->PutObject(Key("empty"), "", {}).ok());
  absl::StatusOr<Object> got = client_->GetObject(Key("empty"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, "");
  EXPECT_EQ(got->head.size, 0);
}

TEST_F(S3ClientIntegrationTest, TwentyFiveMebibyteBodyRoundTripsAndStreams) {
  const std::string body = RandomBytes(25 << 20, 25);
  ASSERT_TRUE(
      client_->PutObject(Key("big.eml"), body, {{"rawsize", std::to_string(body.size())}}).ok());
  absl::StatusOr<Object> got = client_->GetObject(Key("big.eml"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body.size(), body.size());
  EXPECT_TRUE(got->body == body);

  std::string streamed;
  int pieces = 0;
  int heads = 0;
  int64_t announced = -1;
  absl::StatusOr<ObjectHead> head = client_->GetObjectStreaming(
      Key("big.eml"),
      [&](const ObjectHead& h) {
        ++heads;
        announced = h.size;
        EXPECT_EQ(pieces, 0);
      },
      [&](absl::string_view piece) {
        ++pieces;
        streamed.append(piece.data(), piece.size());
        return true;
      });
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(heads, 1);
  EXPECT_EQ(announced, static_cast<int64_t>(body.size()));
  EXPECT_GT(pieces, 1);
  EXPECT_EQ(head->size, static_cast<int64_t>(body.size()));
  EXPECT_EQ(head->metadata.at("rawsize"), std::to_string(body.size()));
  EXPECT_TRUE(streamed == body);
}

TEST_F(S3ClientIntegrationTest, StreamingSinkCanAbort) {
  ASSERT_TRUE(client_->PutObject(Key("abort"), RandomBytes(2 << 20, 7), {}).ok());
  int pieces = 0;
  absl::StatusOr<ObjectHead> head = client_->GetObjectStreaming(
      Key("abort"), nullptr, [&](absl::string_view) { return ++pieces < 2; });
  EXPECT_EQ(head.status().code(), StatusCode::kCancelled) << head.status();
  EXPECT_EQ(pieces, 2);
  // The aborted connection is dropped, not reused half-read.
  EXPECT_TRUE(client_->GetObject(Key("abort")).ok());
}

TEST_F(S3ClientIntegrationTest, NonAsciiMetadataRoundTripsThroughRfc2047) {
  const std::map<std::string, std::string> metadata = {{"to", "user+tag@example.com"},
                                                       {"subject",
                                                        "Gr\xC3\xBC\xC3\x9F"
                                                        "e \xE2\x9C\x89 \xE6\x97\xA5\xE6\x9C\xAC"},
                                                       {"from", "  padded sender  "},
                                                       {"messageid", "=?utf-8?q?looks_encoded?="}};
  ASSERT_TRUE(client_->PutObject(Key("meta.eml"), "x", metadata, false, "message/rfc822").ok());
  absl::StatusOr<ObjectHead> head = client_->HeadObject(Key("meta.eml"));
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->metadata, metadata);
  EXPECT_EQ(head->size, 1);
  EXPECT_EQ(head->content_type, "message/rfc822");
  absl::StatusOr<Object> got = client_->GetObject(Key("meta.eml"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->head.metadata, metadata);
}

TEST_F(S3ClientIntegrationTest, ListingPaginatesInKeyOrder) {
  const std::string prefix = Key("");
  std::vector<std::string> keys;
  for (int i = 0; i < 120; ++i) keys.push_back(absl::StrCat(prefix, "m", 1000 + i, ".eml"));
  for (const std::string& key : keys) ASSERT_TRUE(client_->PutObject(key, "m", {}).ok()) << key;
  ASSERT_TRUE(client_->PutObject(prefix + "~after", "x", {}).ok());

  std::vector<std::string> listed;
  std::vector<size_t> page_sizes;
  std::string token;
  for (int round = 0; round < 10; ++round) {
    absl::StatusOr<ListPage> page = client_->ListObjectsV2(prefix + "m", token, 50);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->objects.size());
    for (const ObjectSummary& o : page->objects) {
      listed.push_back(o.key);
      EXPECT_EQ(o.size, 1);
      EXPECT_FALSE(o.etag.empty());
      EXPECT_GT(o.last_modified, absl::UnixEpoch());
    }
    if (!page->truncated) {
      EXPECT_EQ(page->next_continuation_token, "");
      break;
    }
    ASSERT_FALSE(page->next_continuation_token.empty());
    token = page->next_continuation_token;
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{50, 50, 20}));
  EXPECT_EQ(listed, keys);

  absl::StatusOr<ListPage> after = client_->ListObjectsV2(prefix + "m", "", 1000, keys[109]);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->objects.size(), 10u);
  EXPECT_EQ(after->objects[0].key, keys[110]);

  absl::StatusOr<ListPage> none = client_->ListObjectsV2(prefix + "nothing-here/", "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->objects.empty());
  EXPECT_FALSE(none->truncated);
}

TEST_F(S3ClientIntegrationTest, AwkwardKeysSurviveEveryOperation) {
  const std::string prefix = Key("");
  const std::vector<std::string> names = {"a b  c.eml",
                                          std::string("Gr\xC3\xBC\xC3\x9F") + "e \xE2\x9C\x89.eml",
                                          "a+b=c@d.eml",
                                          "100%25%.eml",
                                          "x&y<z>'\"q.eml",
                                          "semi;colon,comma:.eml",
                                          "dots/../and/./slashes//.eml",
                                          "~tilde!$()*.eml"};
  for (const std::string& name : names) {
    const std::string key = prefix + name;
    SCOPED_TRACE(key);
    ASSERT_TRUE(client_->PutObject(key, name, {{"to", "a@b"}}).ok());
    absl::StatusOr<Object> got = client_->GetObject(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->body, name);
    ASSERT_TRUE(client_->CopyObject(key, prefix + "copy/" + name).ok());
    absl::StatusOr<ObjectHead> copy = client_->HeadObject(prefix + "copy/" + name);
    ASSERT_TRUE(copy.ok()) << copy.status();
    EXPECT_EQ(copy->metadata.at("to"), "a@b");
  }
  absl::StatusOr<ListPage> page = client_->ListObjectsV2(prefix, "");
  ASSERT_TRUE(page.ok()) << page.status();
  std::set<std::string> listed;
  for (const ObjectSummary& o : page->objects) listed.insert(o.key);
  for (const std::string& name : names) {
    EXPECT_EQ(listed.count(prefix + name), 1u) << name;
    EXPECT_EQ(listed.count(prefix + "copy/" + name), 1u) << name;
    ASSERT_TRUE(client_->DeleteObject(prefix + name).ok());
    EXPECT_EQ(client_->HeadObject(prefix + name).status().code(), StatusCode::kNotFound);
  }
}

TEST_F(S3ClientIntegrationTest, CopyWithCopyDirectiveKeepsMetadata) {
  ASSERT_TRUE(
      client_->PutObject(Key("src"), "body", {{"to", "a@b"}, {"subject", "caf\xC3\xA9"}}).ok());
  ASSERT_TRUE(client_->CopyObject(Key("src"), Key("dst"), MetadataDirective::kCopy).ok());
  absl::StatusOr<Object> dst = client_->GetObject(Key("dst"));
  ASSERT_TRUE(dst.ok()) << dst.status();
  EXPECT_EQ(dst->body, "body");
  EXPECT_EQ(dst->head.metadata,
            (std::map<std::string, std::string>{{"to", "a@b"}, {"subject", "caf\xC3\xA9"}}));
}

TEST_F(S3ClientIntegrationTest, CopyWithReplaceDirectiveReplacesMetadata) {
  ASSERT_TRUE(client_->PutObject(Key("src"), "body", {{"to", "a@b"}, {"subject", "old"}}).ok());
  ASSERT_TRUE(client_
                  ->CopyObject(Key("src"), Key("dst"), MetadataDirective::kReplace,
                               {{"reason", "554 5.6.0 rejected \xE2\x9C\x97"}})
                  .ok());
  absl::StatusOr<ObjectHead> dst = client_->HeadObject(Key("dst"));
  ASSERT_TRUE(dst.ok()) << dst.status();
  EXPECT_EQ(dst->metadata,
            (std::map<std::string, std::string>{{"reason", "554 5.6.0 rejected \xE2\x9C\x97"}}));
  absl::StatusOr<ObjectHead> src = client_->HeadObject(Key("src"));
  ASSERT_TRUE(src.ok());
  EXPECT_EQ(src->metadata.at("subject"), "old");
}

TEST_F(S3ClientIntegrationTest, CopyOfAMissingSourceIsNotFound) {
  absl::Status s = client_->CopyObject(Key("no-such-source"), Key("dst"));
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s;
}

TEST_F(S3ClientIntegrationTest, DeleteRemovesAndIsIdempotent) {
  ASSERT_TRUE(client_->PutObject(Key("gone"), "x", {}).ok());
  ASSERT_TRUE(client_->DeleteObject(Key("gone")).ok());
  EXPECT_EQ(client_->GetObject(Key("gone")).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(client_->DeleteObject(Key("gone")).ok());
}

TEST_F(S3ClientIntegrationTest, PutIfAbsentRefusesToOverwrite) {
  ASSERT_TRUE(client_->PutObject(Key("once"), "first", {}, /*if_none_match=*/true).ok());
  absl::Status again = client_->PutObject(Key("once"), "second", {}, /*if_none_match=*/true);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again;
  absl::StatusOr<Object> got = client_->GetObject(Key("once"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "first");
  EXPECT_TRUE(client_->PutObject(Key("once"), "third", {}).ok());  // a plain put overwrites
}

TEST_F(S3ClientIntegrationTest, MissingKeyIsNotFound) {
  absl::StatusOr<Object> got = client_->GetObject(Key("missing"));
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << got.status();
  EXPECT_NE(got.status().message().find("NoSuchKey"), absl::string_view::npos);
  EXPECT_NE(got.status().message().find("HTTP 404"), absl::string_view::npos);
  EXPECT_EQ(client_->HeadObject(Key("missing")).status().code(), StatusCode::kNotFound);
  bool sink_called = false;
  absl::StatusOr<ObjectHead> streamed = client_->GetObjectStreaming(
      Key("missing"), [&](const ObjectHead&) { sink_called = true; },
      [&](absl::string_view) { return sink_called = true; });
  EXPECT_EQ(streamed.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(sink_called);
}

TEST_F(S3ClientIntegrationTest, MissingBucketIsFailedPreconditionNotNotFound) {
  ClientOptions options = Options();
  options.bucket = "no-such-bucket";
  auto client = NewClient(options);
  EXPECT_EQ(client->GetObject("pending/x.eml").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(client->ListObjectsV2("pending/", "").status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace pocketmail::s3
