#include "services/fetcher/content_check.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pocketmail::fetcher {
namespace {

// Object sizes are known before the body; reserving more than this up front
// would let a lying Content-Length claim memory the body never fills.
constexpr int64_t kMaxReserveBytes = 64 << 20;

std::string Short(absl::string_view hex) { return std::string(hex.substr(0, 12)); }

}  // namespace

struct StreamingSha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

StreamingSha256::StreamingSha256() : impl_(std::make_unique<Impl>()) {
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

StreamingSha256::~StreamingSha256() = default;

void StreamingSha256::Update(absl::string_view piece) {
  EVP_DigestUpdate(impl_->ctx, piece.data(), piece.size());
}

std::string StreamingSha256::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, digest, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

absl::StatusOr<HashedObject> GetAndHash(s3::ObjectStore& store, const std::string& key) {
  HashedObject got;
  StreamingSha256 hash;
  absl::StatusOr<s3::ObjectHead> head = store.GetObjectStreaming(
      key,
      [&](const s3::ObjectHead& h) {
        got.object.body.reserve(
            static_cast<size_t>(std::clamp<int64_t>(h.size, 0, kMaxReserveBytes)));
      },
      [&](absl::string_view piece) {
        hash.Update(piece);
        got.object.body.append(piece.data(), piece.size());
        return true;
      });
  if (!head.ok()) return head.status();
  got.object.head = *std::move(head);
  got.sha256 = hash.HexDigest();
  return got;
}

absl::Status CheckContent(const PendingKey& key, const HashedObject& got) {
  if (got.sha256 != key.sha256) {
    return absl::DataLossError(absl::StrCat("content hash mismatch: the bytes hash to ",
                                            Short(got.sha256), "..., the key names ",
                                            Short(key.sha256), "..."));
  }
  std::string claimed_sha = absl::AsciiStrToLower(got.object.head.MetadataValue("sha256"));
  if (!claimed_sha.empty() && claimed_sha != got.sha256) {
    return absl::DataLossError(absl::StrCat("content hash mismatch: the bytes hash to ",
                                            Short(got.sha256), "..., the sha256 metadata says ",
                                            Short(claimed_sha), "..."));
  }
  std::string claimed_size = got.object.head.MetadataValue("rawsize");
  int64_t size = 0;
  if (!claimed_size.empty() && (!absl::SimpleAtoi(claimed_size, &size) ||
                                size != static_cast<int64_t>(got.object.body.size()))) {
    return absl::DataLossError(absl::StrCat("content hash mismatch: ", got.object.body.size(),
                                            " bytes arrived, the rawsize metadata says ",
                                            claimed_size));
  }
  return absl::OkStatus();
}

}  // namespace pocketmail::fetcher
