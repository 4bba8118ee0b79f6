// Requires `authorization: Bearer <token>` on every call that reaches a port
// configured with it (the optional 127.0.0.1 TCP listener), and limits what
// each token may call:
//
//   operator token (POCKETMAIL_TOKEN_FILE)          every method
//   gateway token  (POCKETMAIL_GATEWAY_TOKEN_FILE)  only kGatewayMethods
//
// A missing or unknown token gets UNAUTHENTICATED, the gateway token on any
// other method PERMISSION_DENIED, both before any service code runs. The unix
// sockets never see this class: their 0700 directory is the access control.
//
// The decision is taken here rather than in a server interceptor because gRPC
// C++ interceptors cannot refuse a call (the handler runs anyway); gRPC 1.51
// hands this processor the request's `:path` (service_host_test checks that
// it still does). It does not hand it the peer's address, so a refusal is
// logged with the method, the scope and the client's user-agent.
//
// Thread-safe: Process() runs concurrently on gRPC's threads; state is const.
#ifndef POCKETMAIL_COMMON_SERVER_BEARER_TOKEN_AUTH_H_
#define POCKETMAIL_COMMON_SERVER_BEARER_TOKEN_AUTH_H_

#include <array>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace pocketmail::server {

enum class Scope { kNone, kGateway, kOperator };
const char* ScopeName(Scope scope);  // "none", "gateway", "operator"

// Everything the gateway token may call: the webmail/auth gateway reads state
// and watches deliveries; it never writes mail state, drains or replays.
// docs/GRPC.md ("Credentials and scopes") lists the same methods.
inline constexpr absl::string_view kGatewayMethods[] = {
    "/pocketmail.router.v1.Router/Resolve",
    "/pocketmail.router.v1.Router/ListMailboxes",
    "/pocketmail.router.v1.Router/Refresh",
    "/pocketmail.ledger.v1.Ledger/Get",
    "/pocketmail.ledger.v1.Ledger/List",
    "/pocketmail.ledger.v1.Ledger/Stats",
    "/pocketmail.ledger.v1.Ledger/WatchDeliveries",
    "/pocketmail.fetcher.v1.Fetcher/Status",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
};

// True when `scope` may call `method` ("/package.Service/Method").
bool ScopeAllows(Scope scope, absl::string_view method);

class BearerTokenAuth : public grpc::AuthMetadataProcessor {
 public:
  // REQUIRES: operator_token non-empty and != gateway_token. An empty
  // gateway_token means no gateway token exists.
  BearerTokenAuth(const std::string& operator_token, const std::string& gateway_token);
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // The scope an `authorization` header value grants; kNone for anything but
  // "Bearer <one of the tokens>". Constant time in the token's content.
  Scope ScopeOf(absl::string_view header_value) const;

  // The whole decision for one call to `method` with the `authorization`
  // header `header` (nullopt: none sent): OK, UNAUTHENTICATED or
  // PERMISSION_DENIED. Sets *scope whenever a header was sent.
  grpc::Status Authorize(std::optional<absl::string_view> header, absl::string_view method,
                         Scope* scope) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest Sha256(absl::string_view s);

  // Digests, not tokens: comparing fixed-size digests hides the tokens'
  // lengths as well as their bytes from the timing of a wrong guess.
  Digest operator_digest_;
  Digest gateway_digest_;
  bool has_gateway_;
};

}  // namespace pocketmail::server

#endif  // POCKETMAIL_COMMON_SERVER_BEARER_TOKEN_AUTH_H_
