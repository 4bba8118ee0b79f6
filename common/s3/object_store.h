// The object store the fetcher drains: R2 through the S3 API in production
// (S3Client), fakes and fault injectors in tests.
//
// Status codes are the contract callers branch on:
//   UNAVAILABLE        temporary: network errors, timeouts, HTTP 5xx and 429,
//                      SlowDown, malformed or truncated responses. Retry later.
//   NOT_FOUND          the object does not exist (404 NoSuchKey).
//   ALREADY_EXISTS     PutObject(if_none_match=true) found an object there (412).
//   PERMISSION_DENIED  403: bad credentials, signature or clock, or no access.
//   INVALID_ARGUMENT / FAILED_PRECONDITION
//                      other 4xx and bad input; permanent for this input.
//                      (A missing *bucket* is FAILED_PRECONDITION, never
//                      NOT_FOUND, so it cannot pass for a vanished object.)
//   CANCELLED          a streaming sink asked to stop.
// Messages name the operation, the key, the HTTP status and the S3 error code;
// they never contain credentials.
#ifndef POCKETMAIL_COMMON_S3_OBJECT_STORE_H_
#define POCKETMAIL_COMMON_S3_OBJECT_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pocketmail::s3 {

struct ObjectSummary {
  std::string key;  // decoded (an EncodingType=url listing is decoded)
  int64_t size = 0;
  absl::Time last_modified;
  std::string etag;  // as S3 sends it, quotes included
};

struct ListPage {
  std::vector<ObjectSummary> objects;
  std::string next_continuation_token;  // empty when !truncated
  bool truncated = false;
};

struct ObjectHead {
  int64_t size = 0;
  std::string etag;  // as S3 sends it, quotes included
  std::string content_type;
  // x-amz-meta-* names lowercased WITHOUT the prefix; values RFC 2047-decoded
  // to UTF-8 (they may hold any character a sender chose, CR and LF included).
  std::map<std::string, std::string> metadata;

  // One metadata value without surrounding white space; "" when absent.
  std::string MetadataValue(const std::string& name) const {
    auto it = metadata.find(name);
    return it == metadata.end() ? "" : std::string(absl::StripAsciiWhitespace(it->second));
  }
};

struct Object {
  ObjectHead head;
  std::string body;
};

enum class MetadataDirective { kCopy, kReplace };

// Thread-safe: every method may be called from many threads at once.
//
// The virtual methods take every argument; the shorter non-virtual overloads
// fill in the usual values. (No default arguments on the virtual methods: a
// default is bound by the caller's static type, so an override's own default
// would silently not apply.) A subclass that overrides one of these names
// brings the overloads back with `using ObjectStore::<name>;`.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // One page of ListObjectsV2 over keys starting with `prefix`, in key order.
  // `continuation_token` is "" for the first page, else the previous page's
  // next_continuation_token; `start_after` "" for none. REQUIRES: 1 <= max_keys <= 1000.
  virtual absl::StatusOr<ListPage> ListObjectsV2(const std::string& prefix,
                                                 const std::string& continuation_token,
                                                 int max_keys, const std::string& start_after) = 0;
  absl::StatusOr<ListPage> ListObjectsV2(const std::string& prefix,
                                         const std::string& continuation_token,
                                         int max_keys = 1000) {
    return ListObjectsV2(prefix, continuation_token, max_keys, "");
  }

  virtual absl::StatusOr<Object> GetObject(const std::string& key) = 0;
  // Size, ETag, content type and metadata without the body (a Class B request).
  virtual absl::StatusOr<ObjectHead> HeadObject(const std::string& key) = 0;

  // Streams the body to `sink` in pieces as it arrives (sink returns false to
  // abort -> CANCELLED). `on_head` is called once before the first piece (also
  // for an empty body). The returned head's size is the number of bytes delivered.
  // On any error, pieces already delivered are not the whole object: discard them.
  virtual absl::StatusOr<ObjectHead> GetObjectStreaming(
      const std::string& key, const std::function<void(const ObjectHead&)>& on_head,
      const std::function<bool(absl::string_view)>& sink) = 0;

  // Server-side copy within the bucket. kCopy keeps the source's metadata;
  // kReplace sets `replace_metadata` instead (and resets the content type).
  virtual absl::Status CopyObject(const std::string& src_key, const std::string& dst_key,
                                  MetadataDirective directive,
                                  const std::map<std::string, std::string>& replace_metadata) = 0;
  absl::Status CopyObject(const std::string& src_key, const std::string& dst_key,
                          MetadataDirective directive = MetadataDirective::kCopy) {
    return CopyObject(src_key, dst_key, directive, {});
  }

  // Succeeds also when there was no such object (S3 semantics).
  virtual absl::Status DeleteObject(const std::string& key) = 0;

  // `metadata` names are sent lowercased as x-amz-meta-<name>; values that are
  // not plain printable ASCII are RFC 2047-encoded, so they read back as given.
  // if_none_match=true sends If-None-Match: * ; an existing object -> ALREADY_EXISTS.
  virtual absl::Status PutObject(const std::string& key, absl::string_view body,
                                 const std::map<std::string, std::string>& metadata,
                                 bool if_none_match, const std::string& content_type) = 0;
  absl::Status PutObject(const std::string& key, absl::string_view body,
                         const std::map<std::string, std::string>& metadata,
                         bool if_none_match = false) {
    return PutObject(key, body, metadata, if_none_match, "application/octet-stream");
  }
};

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_OBJECT_STORE_H_
