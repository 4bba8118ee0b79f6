// Checks a downloaded message against what its object claims to be, so a
// damaged transfer or an object replaced after the Worker wrote it is never
// delivered as if it were the mail.
//
// The claims (docs/DESIGN.md "The bucket contract"): the key names sha256(raw)
// (both key formats), and the Worker's metadata repeats it as `sha256` and
// gives the byte count as `rawsize`. The hash is computed while the body
// arrives, so a 25 MiB message costs no second pass over memory.
#ifndef POCKETMAIL_SERVICES_FETCHER_CONTENT_CHECK_H_
#define POCKETMAIL_SERVICES_FETCHER_CONTENT_CHECK_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/s3/object_store.h"
#include "services/fetcher/object_key.h"

namespace pocketmail::fetcher {

// SHA-256 over data fed in pieces.
class StreamingSha256 {
 public:
  StreamingSha256();
  ~StreamingSha256();
  StreamingSha256(const StreamingSha256&) = delete;
  StreamingSha256& operator=(const StreamingSha256&) = delete;

  void Update(absl::string_view piece);
  // 64 lowercase hex digits; ends the computation.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct HashedObject {
  s3::Object object;
  std::string sha256;  // of object.body, 64 lowercase hex
};

// GET `key`, hashing the body as it streams in. Errors are the store's.
absl::StatusOr<HashedObject> GetAndHash(s3::ObjectStore& store, const std::string& key);

// OK when the bytes are what the key and the metadata say. Otherwise
// DATA_LOSS "content hash mismatch: ..." naming which claim failed. Metadata
// the original Worker never wrote (no `sha256`, no `rawsize`) is not a claim.
absl::Status CheckContent(const PendingKey& key, const HashedObject& got);

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_CONTENT_CHECK_H_
