// Requires `authorization: Bearer <token>` on every call that reaches a port
// configured with it (the optional 127.0.0.1 TCP listener). A missing or wrong
// token gets UNAUTHENTICATED before any service code runs.
#ifndef POCKETMAIL_COMMON_SERVER_BEARER_TOKEN_AUTH_H_
#define POCKETMAIL_COMMON_SERVER_BEARER_TOKEN_AUTH_H_

#include <string>

#include "grpcpp/security/auth_metadata_processor.h"

namespace pocketmail::server {

class BearerTokenAuth : public grpc::AuthMetadataProcessor {
 public:
  explicit BearerTokenAuth(std::string token) : token_(std::move(token)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // Constant-time check of an `authorization` header value (exposed for tests).
  bool Accepts(const std::string& header_value) const;

 private:
  std::string token_;
};

}  // namespace pocketmail::server

#endif  // POCKETMAIL_COMMON_SERVER_BEARER_TOKEN_AUTH_H_
