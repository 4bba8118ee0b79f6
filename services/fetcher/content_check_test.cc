#include "services/fetcher/content_check.h"

#include "gtest/gtest.h"
#include "services/fetcher/fakes_for_test.h"

namespace pocketmail::fetcher {
namespace {

const std::string kBody = "From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n";

std::string Sha(absl::string_view data) {
  StreamingSha256 sha;
  sha.Update(data);
  return sha.HexDigest();
}

HashedObject Got(std::string body, std::map<std::string, std::string> metadata = {}) {
  HashedObject got;
  got.sha256 = Sha(body);
  got.object.body = std::move(body);
  got.object.head.metadata = std::move(metadata);
  return got;
}

PendingKey KeyNaming(absl::string_view body) {
  return PendingKey{KeyFormat::kPerRecipient, Sha(body), "0123456789abcdef"};
}

TEST(StreamingSha256Test, MatchesKnownDigestsWhateverThePieces) {
  EXPECT_EQ(Sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  StreamingSha256 pieces;
  for (char c : std::string("abc")) pieces.Update(std::string(1, c));
  EXPECT_EQ(pieces.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ContentCheckTest, BytesMatchingKeyAndMetadataPass) {
  HashedObject got =
      Got(kBody, {{"sha256", Sha(kBody)}, {"rawsize", std::to_string(kBody.size())}});
  EXPECT_TRUE(CheckContent(KeyNaming(kBody), got).ok());
}

TEST(ContentCheckTest, ObjectsWithoutTheMetadataAreCheckedAgainstTheKeyAlone) {
  EXPECT_TRUE(CheckContent(KeyNaming(kBody), Got(kBody)).ok());
  PendingKey legacy{KeyFormat::kLegacy, Sha(kBody), ""};
  EXPECT_TRUE(CheckContent(legacy, Got(kBody)).ok());
}

TEST(ContentCheckTest, BytesReplacedAfterUploadFailAgainstTheKey) {
  std::string replaced = kBody;
  replaced.back() = 'X';
  absl::Status st = CheckContent(KeyNaming(kBody), Got(replaced, {{"sha256", Sha(kBody)}}));
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_NE(st.message().find("content hash mismatch"), std::string::npos) << st;
  EXPECT_NE(st.message().find("the key names"), std::string::npos) << st;
}

TEST(ContentCheckTest, MetadataHashDisagreeingWithTheBytesFails) {
  absl::Status st = CheckContent(KeyNaming(kBody), Got(kBody, {{"sha256", Sha("other")}}));
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_NE(st.message().find("sha256 metadata"), std::string::npos) << st;
  // Upper-case hex from a hand-written object is the same hash.
  std::string upper = Sha(kBody);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(CheckContent(KeyNaming(kBody), Got(kBody, {{"sha256", upper}})).ok());
}

TEST(ContentCheckTest, RawsizeDisagreeingWithTheBytesFails) {
  for (std::string size :
       {std::to_string(kBody.size() + 1), std::string("12x"), std::string("-1")}) {
    absl::Status st = CheckContent(KeyNaming(kBody), Got(kBody, {{"rawsize", size}}));
    EXPECT_TRUE(absl::IsDataLoss(st)) << size << ": " << st;
    EXPECT_NE(st.message().find("rawsize"), std::string::npos) << st;
  }
}

TEST(ContentCheckTest, GetAndHashHashesWhatTheStoreStreams) {
  testing::EventLog log;
  testing::FakeObjectStore store(log);
  store.Put("pending/k.eml", kBody, {{"to", "a@example.org"}});
  absl::StatusOr<HashedObject> got = GetAndHash(store, "pending/k.eml");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->object.body, kBody);
  EXPECT_EQ(got->sha256, Sha(kBody));
  EXPECT_EQ(got->object.head.metadata.at("to"), "a@example.org");
  EXPECT_TRUE(absl::IsNotFound(GetAndHash(store, "pending/missing.eml").status()));
}

}  // namespace
}  // namespace pocketmail::fetcher
