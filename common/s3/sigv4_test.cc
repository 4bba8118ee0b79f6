#include "common/s3/sigv4.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/s3/uri_encode.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

std::string TestdataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  std::string relative = "common/s3/testdata/" + name;
  if (srcdir == nullptr) return relative;
  return absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "pocketmail", "/", relative);
}

Struct LoadJson(const std::string& name) {
  std::ifstream in(TestdataPath(name), std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  Struct doc;
  auto status = google::protobuf::util::JsonStringToMessage(text.str(), &doc);
  EXPECT_TRUE(status.ok()) << name << ": " << status.ToString();
  return doc;
}

std::string Str(const Struct& s, const std::string& field) {
  auto it = s.fields().find(field);
  return it == s.fields().end() ? "" : it->second.string_value();
}

bool Has(const Struct& s, const std::string& field) { return s.fields().count(field) > 0; }

std::vector<std::pair<std::string, std::string>> Pairs(const Struct& s, const std::string& field) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = s.fields().find(field);
  if (it == s.fields().end()) return out;
  for (const Value& pair : it->second.list_value().values()) {
    out.emplace_back(pair.list_value().values(0).string_value(),
                     pair.list_value().values(1).string_value());
  }
  return out;
}

// "20150830T123600Z" (absl::ParseTime's %Y would swallow the whole digit run).
absl::Time ParseAmzDate(const std::string& s) {
  EXPECT_EQ(s.size(), 16u) << s;
  auto num = [&](size_t pos, size_t len) { return std::stoi(s.substr(pos, len)); };
  return absl::FromCivil(
      absl::CivilSecond(num(0, 4), num(4, 2), num(6, 2), num(9, 2), num(11, 2), num(13, 2)),
      absl::UTCTimeZone());
}

// Signs every vector of `file` in each mode it lists and compares all stages.
void CheckVectorFile(const std::string& file) {
  Struct doc = LoadJson(file);
  Credentials credentials{Str(doc, "access_key_id"), Str(doc, "secret_access_key"), ""};
  SigningParams params;
  params.region = Str(doc, "region");
  params.service = Str(doc, "service");
  params.time = ParseAmzDate(Str(doc, "amz_date"));
  params.add_content_sha256_header = doc.fields().at("add_content_sha256_header").bool_value();
  const auto& vectors = doc.fields().at("vectors").list_value().values();
  ASSERT_GT(vectors.size(), 0);
  for (const Value& entry : vectors) {
    const Struct& v = entry.struct_value();
    const std::string name = Str(v, "name");
    std::string body = Str(v, "body");
    if (Has(v, "body_base64")) ASSERT_TRUE(absl::Base64Unescape(Str(v, "body_base64"), &body));
    credentials.session_token = Str(v, "session_token");
    SigningRequest request;
    request.method = Str(v, "method");
    request.query = Pairs(v, "query");
    request.headers = Pairs(v, "headers");
    request.payload_hash = Has(v, "payload_hash") ? Str(v, "payload_hash") : Sha256Hex(body);
    if (Has(v, "wire_path")) {
      EXPECT_EQ(UriEncode(Str(v, "path"), /*keep_slash=*/true), Str(v, "wire_path")) << name;
    }
    for (const Value& mode : v.fields().at("modes").list_value().values()) {
      SCOPED_TRACE(absl::StrCat(file, " ", name, " mode=", mode.string_value()));
      if (mode.string_value() == "s3") {
        params.uri_mode = CanonicalUriMode::kS3;
        request.path = UriEncode(Str(v, "path"), /*keep_slash=*/true);
      } else {
        params.uri_mode = CanonicalUriMode::kGeneric;
        request.path = Str(v, "path");
      }
      absl::StatusOr<Signature> sig = SignRequest(request, credentials, params);
      ASSERT_TRUE(sig.ok()) << sig.status();
      if (Has(v, "canonical_request"))
        EXPECT_EQ(sig->canonical_request, Str(v, "canonical_request"));
      if (Has(v, "string_to_sign")) EXPECT_EQ(sig->string_to_sign, Str(v, "string_to_sign"));
      EXPECT_EQ(sig->authorization, Str(v, "authorization"));
    }
  }
}

TEST(SigV4, PublishedAwsTestSuiteVectors) { CheckVectorFile("aws_sigv4_testsuite.json"); }

TEST(SigV4, PublishedS3DocumentationExamples) { CheckVectorFile("aws_s3_examples.json"); }

TEST(SigV4, MatchesBotocoreS3SignerByteForByte) { CheckVectorFile("botocore_s3_vectors.json"); }

SigningRequest SimpleGet() {
  SigningRequest r;
  r.method = "GET";
  r.path = "/bucket/key";
  r.headers = {{"Host", "example.com"}};
  r.payload_hash = kEmptyPayloadSha256;
  return r;
}

SigningParams S3Params() {
  SigningParams p;
  p.region = "auto";
  p.service = "s3";
  p.time = absl::FromUnixSeconds(1700000000);
  return p;
}

TEST(SigV4, S3ModeSignsTheWirePathVerbatimGenericModeEncodesItAgain) {
  EXPECT_EQ(CanonicalUri("/b/a%20b/../c//d", CanonicalUriMode::kS3), "/b/a%20b/../c//d");
  EXPECT_EQ(CanonicalUri("/b/a%20b/../c//d", CanonicalUriMode::kGeneric), "/b/c/d");
  EXPECT_EQ(CanonicalUri("/b/a%20b", CanonicalUriMode::kGeneric), "/b/a%2520b");
  EXPECT_EQ(CanonicalUri("", CanonicalUriMode::kS3), "/");
  EXPECT_EQ(CanonicalUri("/a/", CanonicalUriMode::kGeneric), "/a/");
}

TEST(SigV4, CanonicalQueryEncodesReservedCharactersAndSortsByEncodedName) {
  EXPECT_EQ(CanonicalQueryString({{"prefix", "pending/"},
                                  {"continuation-token", "a/b+c=d e"},
                                  {"list-type", "2"},
                                  {"Z", ""}}),
            "Z=&continuation-token=a%2Fb%2Bc%3Dd%20e&list-type=2&prefix=pending%2F");
}

TEST(SigV4, AddsTheHeadersItSignsAndOwns) {
  SigningParams params = S3Params();
  absl::StatusOr<Signature> sig = SignRequest(SimpleGet(), {"AK", "SK", "TOKEN"}, params);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->added_headers, (HeaderList{{"x-amz-date", "20231114T221320Z"},
                                            {"x-amz-content-sha256", kEmptyPayloadSha256},
                                            {"x-amz-security-token", "TOKEN"}}));
  EXPECT_NE(sig->authorization.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                    "x-amz-security-token, Signature="),
            std::string::npos);
  EXPECT_NE(sig->authorization.find("Credential=AK/20231114/auto/s3/aws4_request"),
            std::string::npos);
}

TEST(SigV4, UnsignedPayloadIsSignedAsThatLiteral) {
  SigningRequest request = SimpleGet();
  request.payload_hash = kUnsignedPayload;
  absl::StatusOr<Signature> sig = SignRequest(request, {"AK", "SK", ""}, S3Params());
  ASSERT_TRUE(sig.ok());
  EXPECT_NE(sig->canonical_request.find("x-amz-content-sha256:UNSIGNED-PAYLOAD\n"),
            std::string::npos);
  EXPECT_EQ(sig->canonical_request.substr(sig->canonical_request.size() - 16), "UNSIGNED-PAYLOAD");
}

TEST(SigV4, SecretNeverAppearsInTheOutput) {
  absl::StatusOr<Signature> sig = SignRequest(SimpleGet(), {"AK", "sekrit-value", ""}, S3Params());
  ASSERT_TRUE(sig.ok());
  for (const std::string* s :
       {&sig->canonical_request, &sig->string_to_sign, &sig->authorization}) {
    EXPECT_EQ(s->find("sekrit"), std::string::npos);
  }
}

TEST(SigV4, RefusesHeadersThatCannotBeSentAsSigned) {
  for (const auto& header : HeaderList{{"x-amz-meta-a", "line\r\nInjected: 1"},
                                       {"x-amz-meta-a", std::string("nul\0", 4)},
                                       {"bad name", "v"},
                                       {"", "v"},
                                       {"X-Amz-Date", "20200101T000000Z"},
                                       {"Authorization", "x"},
                                       {"x-amz-content-sha256", "x"}}) {
    SigningRequest request = SimpleGet();
    request.headers.push_back(header);
    EXPECT_EQ(SignRequest(request, {"AK", "SK", ""}, S3Params()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << header.first;
  }
}

TEST(SigV4, RefusesARequestWithoutHost) {
  SigningRequest request = SimpleGet();
  request.headers.clear();
  EXPECT_EQ(SignRequest(request, {"AK", "SK", ""}, S3Params()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SigV4, Sha256OfKnownInputs) {
  EXPECT_EQ(Sha256Hex(""), kEmptyPayloadSha256);
  EXPECT_EQ(Sha256Hex("Welcome to Amazon S3."),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

}  // namespace
}  // namespace pocketmail::s3
