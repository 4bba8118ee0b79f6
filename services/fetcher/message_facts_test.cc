#include "services/fetcher/message_facts.h"

#include "gtest/gtest.h"

namespace pocketmail::fetcher {
namespace {

s3::Object ObjectWith(std::string body, std::map<std::string, std::string> metadata) {
  s3::Object object;
  object.body = std::move(body);
  object.head.metadata = std::move(metadata);
  return object;
}

TEST(MessageFactsTest, MetadataFillsTheRecord) {
  s3::Object object =
      ObjectWith("Subject: ignored\r\n\r\nhi\r\n", {{"to", "alice@example.org"},
                                                    {"from", "bob@outside.test"},
                                                    {"subject", "Lunch?"},
                                                    {"receivedms", "1800000000123"}});
  ledger::v1::MessageFacts facts = FactsFor(object, std::string(64, 'a'));
  EXPECT_EQ(facts.recipient(), "alice@example.org");
  EXPECT_EQ(facts.sender(), "bob@outside.test");
  EXPECT_EQ(facts.subject(), "Lunch?");
  EXPECT_EQ(facts.sha256(), std::string(64, 'a'));
  EXPECT_EQ(facts.received_ms(), 1800000000123);
  EXPECT_EQ(facts.size_bytes(), static_cast<int64_t>(object.body.size()));
}

TEST(MessageFactsTest, WithoutSubjectMetadataTheDecodedSubjectFieldIsUsed) {
  s3::Object object = ObjectWith(
      "From: a@b.test\r\nsubject : =?UTF-8?B?R3LDvMOfZQ==?=\r\n "
      "=?utf-8?q?_aus_K=C3=B6ln?=\r\n\r\nSubject: body\r\n",
      {{"to", "alice@example.org"}});
  EXPECT_EQ(FactsFor(object, "").subject(), "Grüße aus Köln");
}

TEST(MessageFactsTest, AnEmptyFromIsTheNullSenderAMissingOneIsUnknown) {
  EXPECT_EQ(FactsFor(ObjectWith("\r\n", {{"from", ""}}), "").sender(), "<>");
  EXPECT_EQ(FactsFor(ObjectWith("\r\n", {}), "").sender(), "");
}

TEST(MessageFactsTest, SubjectIsOneLineOfValidUtf8) {
  s3::Object object = ObjectWith("\r\n", {{"subject", "a\r\nBcc: x@y\t\xff end  "}});
  std::string subject = FactsFor(object, "").subject();
  EXPECT_EQ(subject.find('\r'), std::string::npos);
  EXPECT_EQ(subject.find('\n'), std::string::npos);
  EXPECT_EQ(subject.find('\xff'), std::string::npos);
  EXPECT_EQ(subject.rfind("a Bcc: x@y ", 0), 0u) << subject;
  EXPECT_EQ(subject.back(), 'd');
}

TEST(MessageFactsTest, BadReceivedMsIsLeftForTheListingTime) {
  EXPECT_EQ(FactsFor(ObjectWith("", {{"receivedms", "soon"}}), "").received_ms(), 0);
  EXPECT_EQ(FactsFor(ObjectWith("", {{"receivedms", "-5"}}), "").received_ms(), 0);
}

TEST(HeaderFieldValueTest, FindsTheFirstFieldInTheHeaderSectionOnly) {
  EXPECT_EQ(HeaderFieldValue("A: 1\nSubject: one\nSubject: two\n\n", "subject").value(), " one");
  EXPECT_FALSE(HeaderFieldValue("A: 1\r\n\r\nSubject: in the body\r\n", "Subject").has_value());
  EXPECT_FALSE(HeaderFieldValue("", "Subject").has_value());
  EXPECT_FALSE(HeaderFieldValue("Subjects: no\r\n\r\n", "Subject").has_value());
  // A message with no body at all, and no line end after the last field.
  EXPECT_EQ(HeaderFieldValue("Subject: last", "Subject").value(), " last");
  // Folded: the line ends go, the white space that starts each continuation stays.
  EXPECT_EQ(HeaderFieldValue("Subject: a\r\n b\r\n\tc\r\nX: y\r\n\r\n", "Subject").value(),
            " a b\tc");
}

}  // namespace
}  // namespace pocketmail::fetcher
