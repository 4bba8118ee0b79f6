// Parsers for the S3 XML bodies the client reads: ListObjectsV2 results,
// <Error> bodies, and CopyObject results (which may be an <Error> under a 200).
//
// Every parser is all-or-nothing: malformed or truncated XML, an unexpected
// root element, or a missing or unparsable required field is INVALID_ARGUMENT
// with a message saying which; there is never a partial result. The client
// turns these into UNAVAILABLE (a damaged response is worth retrying).
// XML safety (no DOCTYPE, no entity expansion, size limits): see xml_tree.h.
#ifndef POCKETMAIL_COMMON_S3_LISTING_PARSER_H_
#define POCKETMAIL_COMMON_S3_LISTING_PARSER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/s3/object_store.h"

namespace pocketmail::s3 {

// A <ListBucketResult> from ListObjectsV2. Required: IsTruncated, KeyCount
// (which must equal the number of Contents and CommonPrefixes), and in each
// Contents: Key, Size, LastModified, ETag; NextContinuationToken when truncated.
// With <EncodingType>url</EncodingType>, keys are percent-decoded ('+' is a space).
absl::StatusOr<ListPage> ParseListObjectsV2(absl::string_view xml);

struct S3ErrorBody {
  std::string code;     // e.g. "NoSuchKey", "SlowDown"; required
  std::string message;  // may be empty
};

// An <Error><Code>..</Code><Message>..</Message></Error> body.
absl::StatusOr<S3ErrorBody> ParseS3Error(absl::string_view xml);

// A 200 CopyObject body: std::nullopt for a <CopyObjectResult> (the copy is
// done), the error for an <Error> (it failed after the 200 was sent).
absl::StatusOr<std::optional<S3ErrorBody>> ParseCopyObjectResponse(absl::string_view xml);

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_LISTING_PARSER_H_
