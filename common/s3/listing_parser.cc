#include "common/s3/listing_parser.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/s3/uri_encode.h"
#include "common/s3/xml_tree.h"

namespace pocketmail::s3 {
namespace {

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("ListObjectsV2 response: ", what));
}

// The text of the single child `name`; nullopt when absent; error when repeated.
absl::StatusOr<std::optional<std::string>> OptionalField(const XmlElement& parent,
                                                         absl::string_view name) {
  int count = parent.CountChildren(name);
  if (count > 1) return Invalid(absl::StrCat("<", name, "> appears ", count, " times"));
  if (count == 0) return std::optional<std::string>();
  return std::optional<std::string>(parent.Child(name)->text);
}

absl::StatusOr<std::string> RequiredField(const XmlElement& parent, absl::string_view name) {
  absl::StatusOr<std::optional<std::string>> field = OptionalField(parent, name);
  if (!field.ok()) return field.status();
  if (!field->has_value()) {
    return Invalid(absl::StrCat("missing <", name, "> in <", parent.name, ">"));
  }
  return **field;
}

absl::StatusOr<int64_t> NonNegativeInt(absl::string_view name, absl::string_view text) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value) || value < 0) {
    return Invalid(absl::StrCat("<", name, "> is not a non-negative integer"));
  }
  return value;
}

absl::StatusOr<ObjectSummary> ParseContents(const XmlElement& contents, bool url_encoded) {
  ObjectSummary object;
  absl::StatusOr<std::string> key = RequiredField(contents, "Key");
  if (!key.ok()) return key.status();
  if (url_encoded) {
    absl::StatusOr<std::string> decoded = UriDecode(*key, /*plus_as_space=*/true);
    if (!decoded.ok()) return Invalid("a url-encoded <Key> has a bad escape");
    key = std::move(decoded);
  }
  if (key->empty()) return Invalid("empty <Key>");
  object.key = *std::move(key);

  absl::StatusOr<std::string> size = RequiredField(contents, "Size");
  if (!size.ok()) return size.status();
  absl::StatusOr<int64_t> size_value = NonNegativeInt("Size", *size);
  if (!size_value.ok()) return size_value.status();
  object.size = *size_value;

  absl::StatusOr<std::string> modified = RequiredField(contents, "LastModified");
  if (!modified.ok()) return modified.status();
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, absl::StripAsciiWhitespace(*modified),
                       &object.last_modified, &error)) {
    return Invalid(absl::StrCat("<LastModified> is not an RFC 3339 time: ", error));
  }

  absl::StatusOr<std::string> etag = RequiredField(contents, "ETag");
  if (!etag.ok()) return etag.status();
  object.etag = *std::move(etag);
  return object;
}

}  // namespace

absl::StatusOr<ListPage> ParseListObjectsV2(absl::string_view xml) {
  absl::StatusOr<XmlElement> root = ParseXml(xml);
  if (!root.ok()) return Invalid(root.status().message());
  if (root->name != "ListBucketResult") {
    return Invalid(absl::StrCat("root element is <", root->name, ">, not <ListBucketResult>"));
  }

  absl::StatusOr<std::optional<std::string>> encoding = OptionalField(*root, "EncodingType");
  if (!encoding.ok()) return encoding.status();
  bool url_encoded = false;
  if (encoding->has_value()) {
    if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(**encoding)) != "url") {
      return Invalid("unsupported <EncodingType>");
    }
    url_encoded = true;
  }

  ListPage page;
  absl::StatusOr<std::string> truncated = RequiredField(*root, "IsTruncated");
  if (!truncated.ok()) return truncated.status();
  std::string flag = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*truncated));
  if (flag != "true" && flag != "false") return Invalid("<IsTruncated> is neither true nor false");
  page.truncated = flag == "true";

  absl::StatusOr<std::string> key_count_text = RequiredField(*root, "KeyCount");
  if (!key_count_text.ok()) return key_count_text.status();
  absl::StatusOr<int64_t> key_count = NonNegativeInt("KeyCount", *key_count_text);
  if (!key_count.ok()) return key_count.status();

  for (const XmlElement& child : root->children) {
    if (child.name != "Contents") continue;
    absl::StatusOr<ObjectSummary> object = ParseContents(child, url_encoded);
    if (!object.ok()) return object.status();
    page.objects.push_back(*std::move(object));
  }
  int64_t listed =
      static_cast<int64_t>(page.objects.size()) + root->CountChildren("CommonPrefixes");
  if (listed != *key_count) {
    return Invalid(
        absl::StrCat("<KeyCount> says ", *key_count, " but ", listed, " entries are listed"));
  }

  absl::StatusOr<std::optional<std::string>> token = OptionalField(*root, "NextContinuationToken");
  if (!token.ok()) return token.status();
  if (page.truncated) {
    if (!token->has_value() || (*token)->empty()) {
      return Invalid("truncated listing without <NextContinuationToken>");
    }
    page.next_continuation_token = **token;
  }
  return page;
}

absl::StatusOr<S3ErrorBody> ParseS3Error(absl::string_view xml) {
  absl::StatusOr<XmlElement> root = ParseXml(xml);
  if (!root.ok())
    return absl::InvalidArgumentError(absl::StrCat("S3 error body: ", root.status().message()));
  if (root->name != "Error") {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 error body: root element is <", root->name, ">"));
  }
  const XmlElement* code = root->Child("Code");
  if (code == nullptr || absl::StripAsciiWhitespace(code->text).empty()) {
    return absl::InvalidArgumentError("S3 error body: missing <Code>");
  }
  S3ErrorBody error;
  error.code = std::string(absl::StripAsciiWhitespace(code->text));
  if (const XmlElement* message = root->Child("Message")) error.message = message->text;
  return error;
}

absl::StatusOr<std::optional<S3ErrorBody>> ParseCopyObjectResponse(absl::string_view xml) {
  absl::StatusOr<XmlElement> root = ParseXml(xml);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CopyObject response: ", root.status().message()));
  }
  if (root->name == "CopyObjectResult") return std::optional<S3ErrorBody>();
  if (root->name == "Error") {
    absl::StatusOr<S3ErrorBody> error = ParseS3Error(xml);
    if (!error.ok()) return error.status();
    return std::optional<S3ErrorBody>(*std::move(error));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("CopyObject response: unexpected root element <", root->name, ">"));
}

}  // namespace pocketmail::s3
