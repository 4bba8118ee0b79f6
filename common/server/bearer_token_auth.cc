#include "common/server/bearer_token_auth.h"

#include <openssl/crypto.h>

namespace pocketmail::server {

bool BearerTokenAuth::Accepts(const std::string& header_value) const {
  static const std::string kPrefix = "Bearer ";
  if (header_value.size() != kPrefix.size() + token_.size()) return false;
  if (header_value.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  // Timing must not reveal how many leading bytes of a guess were right.
  return CRYPTO_memcmp(header_value.data() + kPrefix.size(), token_.data(), token_.size()) == 0;
}

grpc::Status BearerTokenAuth::Process(const InputMetadata& auth_metadata, grpc::AuthContext*,
                                      OutputMetadata* consumed_auth_metadata, OutputMetadata*) {
  auto it = auth_metadata.find("authorization");
  if (it == auth_metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing bearer token");
  }
  std::string value(it->second.data(), it->second.size());
  if (!Accepts(value)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  consumed_auth_metadata->insert(std::make_pair("authorization", value));
  return grpc::Status::OK;
}

}  // namespace pocketmail::server
