// Fuzzes the S3 XML readers (common/s3/listing_parser.h, xml_tree.h) with
// arbitrary response bodies.
//
// Properties besides "no crash, no leak, no UB":
//  - a ListObjectsV2 parse that succeeds is consistent with the document:
//    one object per <Contents>, <KeyCount> == <Contents> + <CommonPrefixes>,
//    a continuation token exactly when truncated, non-empty keys, sizes >= 0,
//    finite LastModified times;
//  - ParseS3Error returns a non-empty, whitespace-trimmed <Code>;
//  - ParseCopyObjectResponse agrees with ParseS3Error on an <Error> body;
//  - ParseXml honours its limits (depth, element count, text length);
//  - UriDecode(UriEncode(x)) == x (the EncodingType=url key path).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/s3/listing_parser.h"
#include "common/s3/uri_encode.h"
#include "common/s3/xml_tree.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pocketmail::s3::ListPage;
using pocketmail::s3::S3ErrorBody;
using pocketmail::s3::XmlElement;
using pocketmail::s3::XmlLimits;

// Depth (root = 1) and element count of a tree, iteratively bounded by the
// parser's own limits, so plain recursion is fine here.
void Measure(const XmlElement& e, int depth, int* max_depth, size_t* elements, size_t* max_text) {
  ++*elements;
  if (depth > *max_depth) *max_depth = depth;
  if (e.text.size() > *max_text) *max_text = e.text.size();
  for (const XmlElement& child : e.children)
    Measure(child, depth + 1, max_depth, elements, max_text);
}

void CheckListing(absl::string_view xml) {
  absl::StatusOr<ListPage> page = pocketmail::s3::ParseListObjectsV2(xml);
  if (!page.ok()) {
    FUZZ_CHECK(page.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  // Re-derive what the listing must look like from the raw tree.
  absl::StatusOr<XmlElement> root = pocketmail::s3::ParseXml(xml);
  FUZZ_CHECK(root.ok());
  FUZZ_CHECK(root->name == "ListBucketResult");
  const int contents = root->CountChildren("Contents");
  const int prefixes = root->CountChildren("CommonPrefixes");
  FUZZ_CHECK(page->objects.size() == static_cast<size_t>(contents));
  FUZZ_CHECK(root->CountChildren("KeyCount") == 1);
  int64_t key_count = -1;
  FUZZ_CHECK(
      absl::SimpleAtoi(absl::StripAsciiWhitespace(root->Child("KeyCount")->text), &key_count));
  FUZZ_CHECK(key_count == contents + prefixes);
  FUZZ_CHECK(page->truncated == !page->next_continuation_token.empty());
  for (const pocketmail::s3::ObjectSummary& object : page->objects) {
    FUZZ_CHECK(!object.key.empty());
    FUZZ_CHECK(object.size >= 0);
    FUZZ_CHECK(object.last_modified != absl::InfinitePast());
    FUZZ_CHECK(object.last_modified != absl::InfiniteFuture());
  }
}

std::optional<S3ErrorBody> CheckError(absl::string_view xml) {
  absl::StatusOr<S3ErrorBody> error = pocketmail::s3::ParseS3Error(xml);
  if (!error.ok()) {
    FUZZ_CHECK(error.status().code() == absl::StatusCode::kInvalidArgument);
    return std::nullopt;
  }
  FUZZ_CHECK(!error->code.empty());
  FUZZ_CHECK(absl::StripAsciiWhitespace(error->code) == error->code);
  return *error;
}

void CheckCopy(absl::string_view xml, const std::optional<S3ErrorBody>& as_error) {
  absl::StatusOr<std::optional<S3ErrorBody>> copy = pocketmail::s3::ParseCopyObjectResponse(xml);
  if (!copy.ok()) {
    FUZZ_CHECK(copy.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!as_error.has_value());  // a valid <Error> body is a valid copy response
    return;
  }
  if (copy->has_value()) {
    FUZZ_CHECK(as_error.has_value());
    FUZZ_CHECK((*copy)->code == as_error->code);
    FUZZ_CHECK((*copy)->message == as_error->message);
  } else {
    FUZZ_CHECK(!as_error.has_value());
  }
}

void CheckLimits(absl::string_view xml) {
  XmlLimits tight;
  tight.max_depth = 3;
  tight.max_elements = 20;
  tight.max_text_bytes = 32;
  absl::StatusOr<XmlElement> root = pocketmail::s3::ParseXml(xml, tight);
  if (!root.ok()) return;
  int depth = 0;
  size_t elements = 0, max_text = 0;
  Measure(*root, 1, &depth, &elements, &max_text);
  FUZZ_CHECK(depth <= tight.max_depth);
  FUZZ_CHECK(elements <= tight.max_elements);
  FUZZ_CHECK(max_text <= tight.max_text_bytes);
}

void CheckUriCoding(absl::string_view bytes) {
  for (bool keep_slash : {false, true}) {
    const std::string encoded = pocketmail::s3::UriEncode(bytes, keep_slash);
    for (char c : encoded) {
      FUZZ_CHECK(absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                 absl::string_view("-._~%").find(c) != absl::string_view::npos ||
                 (keep_slash && c == '/'));
    }
    for (bool plus_as_space : {false, true}) {
      absl::StatusOr<std::string> decoded = pocketmail::s3::UriDecode(encoded, plus_as_space);
      FUZZ_CHECK(decoded.ok());
      FUZZ_CHECK(*decoded == bytes);
    }
  }
  absl::StatusOr<std::string> decoded = pocketmail::s3::UriDecode(bytes, true);
  if (decoded.ok()) FUZZ_CHECK(decoded->size() <= bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view xml(reinterpret_cast<const char*>(data), size);
  CheckListing(xml);
  CheckCopy(xml, CheckError(xml));
  CheckLimits(xml);
  CheckUriCoding(xml);
  return 0;
}
