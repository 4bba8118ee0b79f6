#include "common/server/bearer_token_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace pocketmail::server {
namespace {

std::optional<absl::string_view> Find(const grpc::AuthMetadataProcessor::InputMetadata& md,
                                      const char* key) {
  auto it = md.find(key);
  if (it == md.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace

const char* ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kOperator:
      return "operator";
    case Scope::kGateway:
      return "gateway";
    case Scope::kNone:
      break;
  }
  return "none";
}

bool ScopeAllows(Scope scope, absl::string_view method) {
  if (scope == Scope::kOperator) return true;
  if (scope != Scope::kGateway) return false;
  return std::find(std::begin(kGatewayMethods), std::end(kGatewayMethods), method) !=
         std::end(kGatewayMethods);
}

BearerTokenAuth::BearerTokenAuth(const std::string& operator_token,
                                 const std::string& gateway_token)
    : operator_digest_(Sha256(operator_token)),
      gateway_digest_(Sha256(gateway_token)),
      has_gateway_(!gateway_token.empty()) {}

BearerTokenAuth::Digest BearerTokenAuth::Sha256(absl::string_view s) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

Scope BearerTokenAuth::ScopeOf(absl::string_view header_value) const {
  static constexpr absl::string_view kPrefix = "Bearer ";
  if (!absl::StartsWith(header_value, kPrefix)) return Scope::kNone;
  const Digest presented = Sha256(header_value.substr(kPrefix.size()));
  // Both comparisons always run, so timing does not tell which token was close.
  const bool is_operator =
      CRYPTO_memcmp(presented.data(), operator_digest_.data(), presented.size()) == 0;
  const bool is_gateway =
      CRYPTO_memcmp(presented.data(), gateway_digest_.data(), presented.size()) == 0;
  if (is_operator) return Scope::kOperator;
  if (is_gateway && has_gateway_) return Scope::kGateway;
  return Scope::kNone;
}

grpc::Status BearerTokenAuth::Authorize(std::optional<absl::string_view> header,
                                        absl::string_view method, Scope* scope) const {
  if (!header) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing bearer token");
  *scope = ScopeOf(*header);
  if (*scope == Scope::kNone)
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  if (!ScopeAllows(*scope, method)) {
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("the ", ScopeName(*scope), " token may not call ", method,
                     "; it is limited to the gateway's read-only methods (docs/GRPC.md)"));
  }
  return grpc::Status::OK;
}

grpc::Status BearerTokenAuth::Process(const InputMetadata& auth_metadata, grpc::AuthContext*,
                                      OutputMetadata* consumed_auth_metadata, OutputMetadata*) {
  const std::optional<absl::string_view> header = Find(auth_metadata, "authorization");
  // Absent :path reads as "", which only the operator may call: fails closed.
  const absl::string_view method = Find(auth_metadata, ":path").value_or("");
  Scope scope = Scope::kNone;
  grpc::Status status = Authorize(header, method, &scope);
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    // The processor is not told the peer's address; the user-agent is what
    // there is. Both it and the method come from the client: fields only.
    log::Warn("call refused: outside its token's scope",
              {{"method", method},
               {"scope", ScopeName(scope)},
               {"transport", "tcp"},
               {"user_agent", Find(auth_metadata, "user-agent").value_or("")}});
  }
  if (status.ok())
    consumed_auth_metadata->insert(std::make_pair("authorization", std::string(*header)));
  return status;
}

}  // namespace pocketmail::server
