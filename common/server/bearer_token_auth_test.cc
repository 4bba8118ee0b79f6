#include "common/server/bearer_token_auth.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace pocketmail::server {
namespace {

constexpr char kOperator[] = "operator-token-0123";
constexpr char kGateway[] = "gateway-token-4567";

// Every method of the four pocketmail APIs that changes state or does work
// on demand: none of them is the gateway's business.
const char* const kWriteMethods[] = {
    "/pocketmail.ledger.v1.Ledger/Begin",        "/pocketmail.ledger.v1.Ledger/Advance",
    "/pocketmail.ledger.v1.Ledger/Apply",        "/pocketmail.ledger.v1.Ledger/AcquireLease",
    "/pocketmail.ledger.v1.Ledger/ReleaseLease", "/pocketmail.fetcher.v1.Fetcher/DrainNow",
    "/pocketmail.fetcher.v1.Fetcher/Replay",     "/pocketmail.fetcher.v1.Fetcher/ListBucket",
    "/pocketmail.injector.v1.Injector/Inject",   "/pocketmail.injector.v1.Injector/Probe",
};

grpc::Status Decide(const BearerTokenAuth& auth, std::optional<std::string> header,
                    const std::string& method, Scope* scope = nullptr) {
  Scope ignored = Scope::kNone;
  std::optional<absl::string_view> view;
  if (header) view = *header;
  return auth.Authorize(view, method, scope != nullptr ? scope : &ignored);
}

TEST(BearerTokenScope, EachTokenGrantsItsOwnScope) {
  BearerTokenAuth auth(kOperator, kGateway);
  EXPECT_EQ(auth.ScopeOf(std::string("Bearer ") + kOperator), Scope::kOperator);
  EXPECT_EQ(auth.ScopeOf(std::string("Bearer ") + kGateway), Scope::kGateway);
}

TEST(BearerTokenScope, AnythingButTheExactTokenGrantsNothing) {
  BearerTokenAuth auth("abc123", "def456");
  for (const char* header :
       {"Bearer abc124", "bearer abc123", "Bearer abc1234", "Bearer abc12", "abc123",
        "Bearer  abc123", "Bearer ", "", "Basic abc123", "Bearer def456abc123"}) {
    EXPECT_EQ(auth.ScopeOf(header), Scope::kNone) << header;
  }
}

TEST(BearerTokenScope, WithoutAGatewayTokenAnEmptyBearerGrantsNothing) {
  BearerTokenAuth auth(kOperator, "");
  EXPECT_EQ(auth.ScopeOf("Bearer "), Scope::kNone);
  EXPECT_EQ(auth.ScopeOf(std::string("Bearer ") + kOperator), Scope::kOperator);
}

TEST(BearerTokenScope, GatewayMayCallEveryListedMethod) {
  BearerTokenAuth auth(kOperator, kGateway);
  for (absl::string_view method : kGatewayMethods) {
    Scope scope = Scope::kNone;
    EXPECT_TRUE(Decide(auth, std::string("Bearer ") + kGateway, std::string(method), &scope).ok())
        << method;
    EXPECT_EQ(scope, Scope::kGateway);
  }
}

TEST(BearerTokenScope, GatewayOnAWriteMethodIsPermissionDeniedNamingMethodAndScope) {
  BearerTokenAuth auth(kOperator, kGateway);
  for (const char* method : kWriteMethods) {
    grpc::Status s = Decide(auth, std::string("Bearer ") + kGateway, method);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_NE(s.error_message().find(method), std::string::npos) << s.error_message();
    EXPECT_NE(s.error_message().find("gateway"), std::string::npos) << s.error_message();
    EXPECT_EQ(s.error_message().find(kGateway), std::string::npos) << "the message shows the token";
  }
}

TEST(BearerTokenScope, GatewayMethodsMatchExactly) {
  BearerTokenAuth auth(kOperator, kGateway);
  for (const char* method :
       {"/pocketmail.ledger.v1.Ledger/GetX", "/pocketmail.ledger.v1.Ledger/get",
        "pocketmail.ledger.v1.Ledger/Get", "/pocketmail.ledger.v2.Ledger/Get",
        "/pocketmail.ledger.v1.Ledger/Get/", ""}) {
    EXPECT_EQ(Decide(auth, std::string("Bearer ") + kGateway, method).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << method;
  }
}

TEST(BearerTokenScope, OperatorMayCallEverything) {
  BearerTokenAuth auth(kOperator, kGateway);
  for (const char* method : kWriteMethods) {
    EXPECT_TRUE(Decide(auth, std::string("Bearer ") + kOperator, method).ok()) << method;
  }
  for (absl::string_view method : kGatewayMethods) {
    EXPECT_TRUE(Decide(auth, std::string("Bearer ") + kOperator, std::string(method)).ok())
        << method;
  }
}

TEST(BearerTokenScope, MissingOrWrongTokenIsUnauthenticatedWhateverTheMethod) {
  BearerTokenAuth auth(kOperator, kGateway);
  for (const char* method :
       {"/grpc.health.v1.Health/Check", "/pocketmail.ledger.v1.Ledger/Begin"}) {
    EXPECT_EQ(Decide(auth, std::nullopt, method).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Decide(auth, "Bearer guess", method).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
}

// Process() is what gRPC calls: the method comes from the request's :path.
TEST(BearerTokenScope, ProcessReadsTheMethodFromPathAndConsumesTheHeader) {
  BearerTokenAuth auth(kOperator, kGateway);
  const std::string bearer = std::string("Bearer ") + kGateway;
  auto call = [&](const std::string& path, grpc::AuthMetadataProcessor::OutputMetadata* consumed) {
    grpc::AuthMetadataProcessor::InputMetadata md;
    md.insert({":path", path});
    md.insert({"authorization", bearer});
    grpc::AuthMetadataProcessor::OutputMetadata response;
    return auth.Process(md, nullptr, consumed, &response);
  };
  grpc::AuthMetadataProcessor::OutputMetadata consumed;
  EXPECT_TRUE(call("/pocketmail.ledger.v1.Ledger/Stats", &consumed).ok());
  EXPECT_EQ(consumed.count("authorization"), 1u);
  grpc::AuthMetadataProcessor::OutputMetadata not_consumed;
  EXPECT_EQ(call("/pocketmail.ledger.v1.Ledger/Advance", &not_consumed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(not_consumed.empty());
}

TEST(BearerTokenScope, ProcessWithoutAPathLetsOnlyTheOperatorThrough) {
  BearerTokenAuth auth(kOperator, kGateway);
  auto call = [&](const std::string& token) {
    grpc::AuthMetadataProcessor::InputMetadata md;
    std::string bearer = "Bearer " + token;
    md.insert({"authorization", bearer});
    grpc::AuthMetadataProcessor::OutputMetadata consumed, response;
    return auth.Process(md, nullptr, &consumed, &response).error_code();
  };
  EXPECT_EQ(call(kOperator), grpc::StatusCode::OK);
  EXPECT_EQ(call(kGateway), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace pocketmail::server
