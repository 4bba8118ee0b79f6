#include "common/mail/address.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/mail/punycode.h"
#include "gtest/gtest.h"

namespace pocketmail::mail {
namespace {

EnvelopeAddress ParseOk(absl::string_view input) {
  auto parsed = ParseEnvelopeAddress(input);
  EXPECT_TRUE(parsed.ok()) << "input: " << input << " → " << parsed.status();
  return parsed.ok() ? *parsed : EnvelopeAddress{};
}

void ExpectRejected(absl::string_view input, absl::string_view why_contains) {
  auto parsed = ParseEnvelopeAddress(input);
  ASSERT_FALSE(parsed.ok()) << "accepted: " << input;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find(why_contains), absl::string_view::npos)
      << "input: " << input << " message: " << parsed.status().message();
}

TEST(ParseEnvelopeAddressTest, SplitsSimpleAddressAndLowercasesDomainOnly) {
  EnvelopeAddress a = ParseOk("Alice.Smith@Example.ORG");
  EXPECT_EQ(a.localpart, "Alice.Smith");
  EXPECT_EQ(a.lookup_localpart(), "alice.smith");
  EXPECT_EQ(a.domain.unicode, "example.org");
  EXPECT_EQ(a.domain.ascii, "example.org");
  EXPECT_FALSE(a.quoted);
  EXPECT_EQ(a.ToString(), "Alice.Smith@example.org");
}

TEST(ParseEnvelopeAddressTest, AcceptsEveryAtextCharacter) {
  EnvelopeAddress a = ParseOk("a!#$%&'*+-/=?^_`{|}~z@example.org");
  EXPECT_EQ(a.localpart, "a!#$%&'*+-/=?^_`{|}~z");
}

TEST(ParseEnvelopeAddressTest, SplitsAtTheLastAt) {
  EnvelopeAddress a = ParseOk("\"a@b\"@example.org");
  EXPECT_EQ(a.localpart, "a@b");
  EXPECT_TRUE(a.quoted);
  EXPECT_EQ(a.domain.ascii, "example.org");
  ExpectRejected("a@b@example.org", "'@'");  // unquoted '@' in the localpart
}

TEST(ParseEnvelopeAddressTest, HandlesQuotedLocalparts) {
  EnvelopeAddress a = ParseOk("\"John Doe\"@example.org");
  EXPECT_EQ(a.localpart, "John Doe");
  EXPECT_EQ(a.ToString(), "\"John Doe\"@example.org");
  EnvelopeAddress b = ParseOk("\"a\\\"b\\\\c\"@example.org");
  EXPECT_EQ(b.localpart, "a\"b\\c");
  EXPECT_EQ(b.ToString(), "\"a\\\"b\\\\c\"@example.org");
  EnvelopeAddress c = ParseOk("\"a..b\"@example.org");  // dots are fine inside quotes
  EXPECT_EQ(c.localpart, "a..b");
  EnvelopeAddress plain = ParseOk("\"bob\"@example.org");
  EXPECT_EQ(plain.ToString(), "bob@example.org");
}

TEST(ParseEnvelopeAddressTest, RejectsMalformedQuotedLocalparts) {
  ExpectRejected("\"unterminated@example.org", "unterminated");
  ExpectRejected("\"@example.org", "unterminated");
  ExpectRejected("\"\"@example.org", "empty quoted");
  ExpectRejected("\"a\"b\"@example.org", "unescaped");
  ExpectRejected("\"a\\\"@example.org", "dangling");
  ExpectRejected("x\"a\"@example.org", "not allowed");
}

TEST(ParseEnvelopeAddressTest, AcceptsUtf8Localparts) {
  EnvelopeAddress a = ParseOk("J\xc3\x96RG@example.org");  // JÖRG
  EXPECT_EQ(a.localpart, "J\xc3\x96RG");
  EXPECT_EQ(a.lookup_localpart(), "j\xc3\xb6rg");
  ParseOk("\xe7\x94\xa8\xe6\x88\xb7@example.org");  // 用户
}

TEST(ParseEnvelopeAddressTest, RejectsEmptyParts) {
  ExpectRejected("", "empty address");
  ExpectRejected("@example.org", "empty localpart");
  ExpectRejected("alice@", "empty domain");
  ExpectRejected("@", "empty");
  ExpectRejected("alice", "missing '@'");
}

TEST(ParseEnvelopeAddressTest, RejectsControlCharacters) {
  ExpectRejected("alice\r\n@example.org", "CR or LF");
  ExpectRejected("alice@example.org\nRCPT TO:<x@y>", "CR or LF");
  ExpectRejected(std::string("ali\0ce@example.org", 18), "NUL");
  ExpectRejected("ali\tce@example.org", "control");
  ExpectRejected(
      "ali\x7f"
      "ce@example.org",
      "control");
  ExpectRejected(
      "ali\xc2\x85"
      "ce@example.org",
      "control");  // U+0085 NEL
  ExpectRejected("\"a\tb\"@example.org", "control");
}

TEST(ParseEnvelopeAddressTest, RejectsAngleBracketsAndSpaces) {
  ExpectRejected("<alice@example.org>", "'<' or '>'");
  ExpectRejected("alice smith@example.org", "space outside a quoted localpart");
  ExpectRejected(" alice@example.org", "space outside a quoted localpart");
  ExpectRejected("alice@example.org ", "space in domain");
  ExpectRejected("alice@exa mple.org", "space in domain");
}

TEST(ParseEnvelopeAddressTest, RejectsBadDots) {
  ExpectRejected("a..b@example.org", "\"..\"");
  ExpectRejected(".alice@example.org", "starts or ends with '.'");
  ExpectRejected("alice.@example.org", "starts or ends with '.'");
  ExpectRejected("alice@example..org", "empty domain label");
  ExpectRejected("alice@.example.org", "empty domain label");
  ExpectRejected("alice@example.org.", "empty domain label");
}

TEST(ParseEnvelopeAddressTest, EnforcesLengthLimits) {
  std::string local64(64, 'a');
  ParseOk(local64 + "@example.org");
  ExpectRejected(local64 + "a@example.org", "longer than 64");
  std::string label63(63, 'b');
  ParseOk("a@" + label63 + ".org");
  ExpectRejected("a@" + label63 + "b.org", "longer than 63");
  // 64 + 1 + 189 = 254 octets is the longest accepted address.
  std::string domain189 =
      absl::StrCat(std::string(63, 'c'), ".", std::string(63, 'd'), ".", std::string(61, 'e'));
  ASSERT_EQ(domain189.size(), 189u);
  ParseOk(local64 + "@" + domain189);
  ExpectRejected(local64 + "@" + domain189 + "e", "longer than 254");
}

TEST(ParseEnvelopeAddressTest, RejectsInvalidDomains) {
  ExpectRejected("alice@[192.0.2.1]", "address literals");
  ExpectRejected("alice@exam_ple.org", "domain label has a character");
  ExpectRejected("alice@-example.org", "starts or ends with '-'");
  ExpectRejected("alice@example-.org", "starts or ends with '-'");
  ExpectRejected("alice@exa\"mple.org", "domain label");
  ExpectRejected(
      "alice@ex\xc2\xa0"
      "ample.org",
      "forbidden");  // NBSP
  ExpectRejected(
      "alice@ex\xe2\x80\x8b"
      "ample.org",
      "forbidden");  // zero-width space
}

TEST(ParseEnvelopeAddressTest, RejectsInvalidUtf8) {
  ExpectRejected("al\xffice@example.org", "UTF-8");
  ExpectRejected(
      "alice@b\xc3"
      ".example",
      "UTF-8");
  ExpectRejected("alice@\xed\xa0\x80.example", "UTF-8");
}

TEST(IdnTest, UnicodeAndALabelFormsCompareEqual) {
  EnvelopeAddress u = ParseOk(
      "user@b\xc3\xbc"
      "cher.example");
  EnvelopeAddress a = ParseOk("user@xn--bcher-kva.example");
  EnvelopeAddress upper = ParseOk("user@XN--BCHER-KVA.EXAMPLE");
  EnvelopeAddress mixed = ParseOk(
      "user@B\xc3\x9c"
      "CHER.example");  // BÜCHER
  EXPECT_EQ(u.domain.ascii, "xn--bcher-kva.example");
  EXPECT_EQ(a.domain.ascii, u.domain.ascii);
  EXPECT_EQ(upper.domain.ascii, u.domain.ascii);
  EXPECT_EQ(mixed.domain.ascii, u.domain.ascii);
  EXPECT_EQ(a.domain.unicode,
            "b\xc3\xbc"
            "cher.example");
  EXPECT_EQ(a.ToString(),
            "user@b\xc3\xbc"
            "cher.example");
}

TEST(IdnTest, RejectsBrokenOrNonCanonicalALabels) {
  ExpectRejected("user@xn--.example", "A-label");
  ExpectRejected("user@xn--abc.example", "A-label");       // decodes to nothing non-ASCII
  ExpectRejected("user@xn--bcher-kv.example", "A-label");  // truncated
  ExpectRejected("user@xn--bcher-k!a.example", "A-label");
  ExpectRejected("user@xn--tda-.example", "A-label");  // basic part only
  // Found by fuzzing: decodes to "cüher-", which is not a valid label in
  // either form.
  ExpectRejected("user@xn--cher--kva.example", "'-'");
  // An A-label of an uppercase letter (Ü) is not canonical: the domain it
  // names is written "xn--tda" (ü).
  auto upper = PunycodeEncode(std::u32string{0xDC});
  ASSERT_TRUE(upper.ok());
  ExpectRejected("user@xn--" + *upper + ".example", "canonical");
}

TEST(NormalizeDomainTest, NormalisesConfiguredDomains) {
  auto d = NormalizeDomain("M\xc3\xbcnchen.Example");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ascii, "xn--mnchen-3ya.example");
  EXPECT_EQ(d->unicode, "m\xc3\xbcnchen.example");
  EXPECT_FALSE(NormalizeDomain("").ok());
  EXPECT_FALSE(NormalizeDomain("a..b").ok());
}

TEST(ParseEnvelopeAddressTest, NeverCrashesOnHostileInput) {
  // A deterministic sweep of short strings over an alphabet of interesting
  // bytes; every call must return (ok or not) without crashing.
  static constexpr char kAlphabet[] = "a@.\"\\ -<>x\0\r\xc3\xbc\xff[]n-";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);  // keeps the embedded NUL
  std::string s;
  uint32_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    state = state * 1103515245 + 12345;
    s.push_back(alphabet[(state >> 16) % alphabet.size()]);
    if (s.size() > 24 || (state & 0x700) == 0) s.clear();
    for (const std::string& input : {s, "a@xn--" + s, "\"" + s + "\"@x.org"}) {
      auto parsed = ParseEnvelopeAddress(input);
      if (!parsed.ok()) continue;
      // What we accept, we can print and read back to the same address.
      auto again = ParseEnvelopeAddress(parsed->ToString());
      ASSERT_TRUE(again.ok()) << input;
      EXPECT_EQ(again->localpart, parsed->localpart);
      EXPECT_EQ(again->domain.ascii, parsed->domain.ascii);
    }
  }
  (void)ParseEnvelopeAddress(std::string(100000, '@'));
  SUCCEED();
}

}  // namespace
}  // namespace pocketmail::mail
