#include "common/s3/s3_client.h"

#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/s3/curl_pool.h"
#include "common/s3/http_transport.h"
#include "common/s3/listing_parser.h"
#include "common/s3/s3_errors.h"
#include "common/s3/s3_headers.h"
#include "common/s3/uri_encode.h"

namespace pocketmail::s3 {
namespace {

constexpr size_t kMaxKeyBytes = 1024;  // S3's limit
constexpr int64_t kMaxReserveBytes = 64 << 20;

bool Is2xx(long status) { return status >= 200 && status < 300; }

bool IsValidBucketName(absl::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (char c : name) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-' && c != '.') {
      return false;
    }
  }
  return absl::ascii_isalnum(static_cast<unsigned char>(name.front())) &&
         absl::ascii_isalnum(static_cast<unsigned char>(name.back()));
}

struct Endpoint {
  std::string base_url;  // "https://host[:port]"
  std::string host;      // Host header: lowercased, ":443" dropped
};

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view endpoint) {
  constexpr absl::string_view kScheme = "https://";
  if (!absl::StartsWithIgnoreCase(endpoint, kScheme)) {
    return absl::InvalidArgumentError(
        "S3 endpoint must be https://host[:port]; plain http and other schemes are refused");
  }
  absl::string_view authority = endpoint.substr(kScheme.size());
  if (absl::EndsWith(authority, "/")) authority.remove_suffix(1);
  if (authority.empty() || authority.find_first_of("/?#@ \t\r\n\\") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "S3 endpoint must be https://host[:port] without path or user info");
  }
  Endpoint out;
  out.host = absl::AsciiStrToLower(authority);
  out.base_url = absl::StrCat(kScheme, out.host);
  if (absl::EndsWith(out.host, ":443")) out.host.resize(out.host.size() - 4);
  return out;
}

std::string ListLabel(const std::string& prefix) {
  return absl::StrCat("ListObjectsV2 prefix=\"", absl::CHexEscape(prefix), "\"");
}

constexpr int kMaxAttemptsLimit = 10;

// A uniform draw in [0, 1) for RetryDelay; one generator per thread, so
// threads retrying together do not share a lock or a sequence.
double Jitter() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

// The <Error><Code> of a non-2xx answer, "" when there is none.
std::string ErrorCode(const absl::StatusOr<HttpResponse>& response) {
  if (!response.ok() || Is2xx(response->status) || response->body.empty()) return "";
  absl::StatusOr<S3ErrorBody> error = ParseS3Error(response->body);
  return error.ok() ? error->code : "";
}

void LogRetry(absl::string_view operation, absl::string_view key, int attempt, int max_attempts,
              const AttemptResult& result, const absl::Status& status, absl::Duration delay) {
  log::Info("s3 retry", {{"op", operation},
                         {"key", key},
                         {"attempt", attempt},
                         {"max_attempts", max_attempts},
                         {"curl", result.curl_code},
                         {"http", result.http_status},
                         {"s3_code", result.s3_code},
                         {"error", status.ok() ? "" : std::string(status.message())},
                         {"delay_ms", static_cast<long long>(absl::ToInt64Milliseconds(delay))}});
}

}  // namespace

std::string DefaultEndpoint(const std::string& account_id) {
  return absl::StrCat("https://", account_id, ".r2.cloudflarestorage.com");
}

absl::StatusOr<std::unique_ptr<S3Client>> S3Client::Create(ClientOptions options) {
  if (absl::Status init = EnsureCurlGlobalInit(); !init.ok()) return init;
  absl::StatusOr<Endpoint> endpoint = ParseEndpoint(options.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  if (!IsValidBucketName(options.bucket)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid S3 bucket name \"", absl::CHexEscape(options.bucket), "\""));
  }
  if (options.region.empty()) return absl::InvalidArgumentError("S3 region is empty");
  if (options.access_key_id.empty() || options.secret_access_key.empty()) {
    return absl::InvalidArgumentError("S3 access key id or secret access key is empty");
  }
  if (!options.ca_file.empty() && access(options.ca_file.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA file ", options.ca_file, " is not readable"));
  }
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("S3 timeouts must be positive");
  }
  if (options.max_attempts < 1 || options.max_attempts > kMaxAttemptsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 max_attempts must be 1..", kMaxAttemptsLimit));
  }
  RetryOptions retry;
  retry.max_attempts = options.max_attempts;
  TransportOptions transport;
  transport.base_url = endpoint->base_url;
  transport.host = endpoint->host;
  transport.region = options.region;
  transport.credentials = Credentials{options.access_key_id, options.secret_access_key, ""};
  transport.ca_file = options.ca_file;
  transport.connect_timeout = options.connect_timeout;
  transport.request_timeout = options.request_timeout;
  transport.max_idle_connections = options.max_idle_connections;
  return std::unique_ptr<S3Client>(new S3Client(
      options.bucket, retry, std::make_unique<HttpTransport>(std::move(transport)), options.clock));
}

S3Client::S3Client(std::string bucket, RetryOptions retry, std::unique_ptr<HttpTransport> transport,
                   Clock* clock)
    : bucket_(std::move(bucket)), retry_(retry), transport_(std::move(transport)), clock_(clock) {}

absl::StatusOr<HttpResponse> S3Client::Send(const HttpRequest& request, Idempotency idempotency,
                                            absl::string_view operation, absl::string_view key) {
  for (int attempt = 1;; ++attempt) {
    AttemptResult result;
    absl::StatusOr<HttpResponse> response = transport_->Send(request, operation, key, &result);
    const std::string s3_code = ErrorCode(response);
    result.s3_code = s3_code;
    if (attempt >= retry_.max_attempts || !ShouldRetry(idempotency, result)) return response;
    const absl::Duration delay = RetryDelay(retry_, attempt, Jitter());
    LogRetry(operation, key, attempt, retry_.max_attempts, result, response.status(), delay);
    retries_.fetch_add(1);
    clock_->SleepFor(delay);
  }
}

S3Client::~S3Client() = default;

int64_t S3Client::connections_opened() const { return transport_->connections_opened(); }
int64_t S3Client::requests_sent() const { return transport_->requests_sent(); }

absl::StatusOr<std::string> S3Client::ObjectPath(absl::string_view operation,
                                                 absl::string_view key) const {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(DescribeOperation(operation, key), ": key must be 1 to 1024 bytes"));
  }
  return absl::StrCat("/", bucket_, "/", UriEncode(key, /*keep_slash=*/true));
}

absl::StatusOr<ListPage> S3Client::ListObjectsV2(const std::string& prefix,
                                                 const std::string& continuation_token,
                                                 int max_keys, const std::string& start_after) {
  const std::string label = ListLabel(prefix);
  if (max_keys < 1 || max_keys > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("S3 ", label, ": max_keys must be 1..1000"));
  }
  HttpRequest request;
  request.method = "GET";
  request.path = absl::StrCat("/", bucket_);
  // encoding-type=url: keys come back percent-encoded, so any byte survives XML.
  request.query = {
      {"list-type", "2"}, {"max-keys", std::to_string(max_keys)}, {"encoding-type", "url"}};
  if (!prefix.empty()) request.query.emplace_back("prefix", prefix);
  if (!continuation_token.empty())
    request.query.emplace_back("continuation-token", continuation_token);
  if (!start_after.empty()) request.query.emplace_back("start-after", start_after);
  request.payload_hash = kEmptyPayloadSha256;
  absl::StatusOr<HttpResponse> response = Send(request, Idempotency::kIdempotent, label, "");
  if (!response.ok()) return response.status();
  if (!Is2xx(response->status)) {
    return StatusForS3Error(label, "", response->status, response->body, false);
  }
  absl::StatusOr<ListPage> page = ParseListObjectsV2(response->body);
  if (!page.ok()) {
    return absl::UnavailableError(absl::StrCat("S3 ", label, ": HTTP ", response->status,
                                               " with a bad body: ", page.status().message()));
  }
  return page;
}

absl::StatusOr<ObjectHead> S3Client::HeadObject(const std::string& key) {
  absl::StatusOr<std::string> path = ObjectPath("HeadObject", key);
  if (!path.ok()) return path.status();
  HttpRequest request;
  request.method = "HEAD";
  request.path = *std::move(path);
  request.payload_hash = kEmptyPayloadSha256;
  absl::StatusOr<HttpResponse> response =
      Send(request, Idempotency::kIdempotent, "HeadObject", key);
  if (!response.ok()) return response.status();
  if (!Is2xx(response->status)) {
    return StatusForS3Error("HeadObject", key, response->status, response->body, false);
  }
  absl::StatusOr<ObjectHead> head = ObjectHeadFromHeaders(response->headers);
  if (!head.ok()) {
    return absl::UnavailableError(
        absl::StrCat(DescribeOperation("HeadObject", key), ": ", head.status().message()));
  }
  return head;
}

absl::StatusOr<ObjectHead> S3Client::GetObjectStreaming(
    const std::string& key, const std::function<void(const ObjectHead&)>& on_head,
    const std::function<bool(absl::string_view)>& sink) {
  if (!sink) return absl::InvalidArgumentError("GetObjectStreaming needs a sink");
  absl::StatusOr<std::string> path = ObjectPath("GetObject", key);
  if (!path.ok()) return path.status();
  HttpRequest request;
  request.method = "GET";
  request.path = *std::move(path);
  request.payload_hash = kEmptyPayloadSha256;
  request.body_sink = sink;
  ObjectHead head;
  absl::Status head_error;
  request.on_headers = [&](const ResponseHeaders& headers) {
    absl::StatusOr<ObjectHead> parsed = ObjectHeadFromHeaders(headers);
    if (!parsed.ok()) {
      head_error = absl::UnavailableError(
          absl::StrCat(DescribeOperation("GetObject", key), ": ", parsed.status().message()));
      return false;
    }
    head = *std::move(parsed);
    if (on_head) on_head(head);
    return true;
  };
  absl::StatusOr<HttpResponse> response = Send(request, Idempotency::kIdempotent, "GetObject", key);
  if (!head_error.ok()) return head_error;
  if (!response.ok()) return response.status();
  if (!Is2xx(response->status)) {
    return StatusForS3Error("GetObject", key, response->status, response->body, false);
  }
  head.size = response->streamed_bytes;
  return head;
}

absl::StatusOr<Object> S3Client::GetObject(const std::string& key) {
  Object object;
  absl::StatusOr<ObjectHead> head = GetObjectStreaming(
      key,
      [&](const ObjectHead& h) {
        object.body.reserve(std::min<int64_t>(h.size, kMaxReserveBytes));
      },
      [&](absl::string_view piece) {
        object.body.append(piece.data(), piece.size());
        return true;
      });
  if (!head.ok()) return head.status();
  object.head = *std::move(head);
  return object;
}

absl::Status S3Client::PutObject(const std::string& key, absl::string_view body,
                                 const std::map<std::string, std::string>& metadata,
                                 bool if_none_match, const std::string& content_type) {
  absl::StatusOr<std::string> path = ObjectPath("PutObject", key);
  if (!path.ok()) return path.status();
  absl::StatusOr<HeaderList> meta = MetadataRequestHeaders(metadata);
  if (!meta.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(DescribeOperation("PutObject", key), ": ", meta.status().message()));
  }
  HttpRequest request;
  request.method = "PUT";
  request.path = *std::move(path);
  if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
  if (if_none_match) request.headers.emplace_back("If-None-Match", "*");
  request.headers.insert(request.headers.end(), meta->begin(), meta->end());
  request.body = body;
  request.payload_hash = Sha256Hex(body);
  absl::StatusOr<HttpResponse> response =
      Send(request, if_none_match ? Idempotency::kUnlessSent : Idempotency::kIdempotent,
           "PutObject", key);
  if (!response.ok()) return response.status();
  if (!Is2xx(response->status)) {
    return StatusForS3Error("PutObject", key, response->status, response->body, if_none_match);
  }
  return absl::OkStatus();
}

absl::Status S3Client::CopyObject(const std::string& src_key, const std::string& dst_key,
                                  MetadataDirective directive,
                                  const std::map<std::string, std::string>& replace_metadata) {
  const std::string label = absl::StrCat("CopyObject from=\"", absl::CHexEscape(src_key), "\"");
  absl::StatusOr<std::string> path = ObjectPath(label, dst_key);
  if (!path.ok()) return path.status();
  if (src_key.empty() || src_key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(DescribeOperation(label, dst_key), ": source key must be 1 to 1024 bytes"));
  }
  if (directive == MetadataDirective::kCopy && !replace_metadata.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        DescribeOperation(label, dst_key), ": metadata given with MetadataDirective::kCopy"));
  }
  HttpRequest request;
  request.method = "PUT";
  request.path = *std::move(path);
  request.headers.emplace_back(
      "x-amz-copy-source",
      absl::StrCat("/", bucket_, "/", UriEncode(src_key, /*keep_slash=*/true)));
  request.headers.emplace_back("x-amz-metadata-directive",
                               directive == MetadataDirective::kCopy ? "COPY" : "REPLACE");
  if (directive == MetadataDirective::kReplace) {
    absl::StatusOr<HeaderList> meta = MetadataRequestHeaders(replace_metadata);
    if (!meta.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(DescribeOperation(label, dst_key), ": ", meta.status().message()));
    }
    request.headers.insert(request.headers.end(), meta->begin(), meta->end());
  }
  request.payload_hash = kEmptyPayloadSha256;
  absl::StatusOr<HttpResponse> response = Send(request, Idempotency::kIdempotent, label, dst_key);
  if (!response.ok()) return response.status();
  if (!Is2xx(response->status)) {
    return StatusForS3Error(label, dst_key, response->status, response->body, false);
  }
  // S3 may answer 200 and only then report that the copy failed.
  absl::StatusOr<std::optional<S3ErrorBody>> result = ParseCopyObjectResponse(response->body);
  if (!result.ok()) {
    return absl::UnavailableError(absl::StrCat(DescribeOperation(label, dst_key), ": HTTP ",
                                               response->status,
                                               " with a bad body: ", result.status().message()));
  }
  if (result->has_value()) {
    return StatusForS3Error(label, dst_key, response->status, response->body, false);
  }
  return absl::OkStatus();
}

absl::Status S3Client::DeleteObject(const std::string& key) {
  absl::StatusOr<std::string> path = ObjectPath("DeleteObject", key);
  if (!path.ok()) return path.status();
  HttpRequest request;
  request.method = "DELETE";
  request.path = *std::move(path);
  request.payload_hash = kEmptyPayloadSha256;
  absl::StatusOr<HttpResponse> response =
      Send(request, Idempotency::kIdempotent, "DeleteObject", key);
  if (!response.ok()) return response.status();
  if (!Is2xx(response->status)) {
    return StatusForS3Error("DeleteObject", key, response->status, response->body, false);
  }
  return absl::OkStatus();
}

}  // namespace pocketmail::s3
