// S3Client: the ObjectStore for Cloudflare R2 (or any S3-compatible endpoint)
// over HTTPS with libcurl, signed with AWS Signature V4 (region "auto" for R2).
//
// - Path-style URLs: https://host[:port]/<bucket>/<key>, the key URI-encoded
//   once (spaces, unicode, '+', '=', '@', '%' ... all survive; "a/../b" is
//   sent as is, never normalized).
// - Connections are reused: easy handles are pooled (see curl_pool.h), so a
//   steady stream of requests from N threads keeps about N connections open.
// - TLS verification is always on. `ca_file` (R2_CA_FILE) is given to libcurl
//   as CURLOPT_CAINFO: it replaces the default CA bundle file (the system
//   certificate directory, CURLOPT_CAPATH, stays trusted), which is what a test
//   peer with a self-signed certificate needs.
// - Plain http:// endpoints are refused; redirects are not followed.
// - Secrets are never logged and never appear in a status message.
// - A request that failed before anything reached the caller (connect refused,
//   reset before the first response byte, HTTP 5xx, SlowDown) is tried again
//   inside the call, freshly signed, up to max_attempts in all, with jittered
//   exponential backoff (retry_policy.h). A GET whose body has started to
//   reach the sink is never repeated.
// Thread-safe: one client is meant to be shared by all threads of a service.
#ifndef POCKETMAIL_COMMON_S3_S3_CLIENT_H_
#define POCKETMAIL_COMMON_S3_S3_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/s3/object_store.h"
#include "common/s3/retry_policy.h"
#include "common/s3/sigv4.h"
#include "common/time/clock.h"

namespace pocketmail::s3 {

class HttpTransport;
struct HttpRequest;
struct HttpResponse;

struct ClientOptions {
  std::string endpoint;  // "https://host[:port]" — https only; http is refused
  std::string bucket;
  std::string region = "auto";
  std::string access_key_id;      // secret: never logged
  std::string secret_access_key;  // secret: never logged
  std::string ca_file;            // extra trusted CA (R2_CA_FILE); verification is never off
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration request_timeout = absl::Seconds(120);  // whole request, body included
  int max_idle_connections = 16;
  // Tries per request (R2_MAX_ATTEMPTS; 1..10, 1 = no retry): see retry_policy.h
  // for which failures are tried again inside the call.
  int max_attempts = 3;
  Clock* clock = RealClock::Get();  // not owned; the backoff between tries sleeps on it
};

// "https://<account_id>.r2.cloudflarestorage.com": the endpoint to use when
// R2_ENDPOINT is not set.
std::string DefaultEndpoint(const std::string& account_id);

class S3Client : public ObjectStore {
 public:
  // INVALID_ARGUMENT for a non-https endpoint, an endpoint with a path, query or
  // user info, an invalid bucket name, empty credentials, an unreadable ca_file
  // or non-positive timeouts. Makes no request.
  static absl::StatusOr<std::unique_ptr<S3Client>> Create(ClientOptions options);
  ~S3Client() override;

  // The shorter overloads (object_store.h).
  using ObjectStore::CopyObject;
  using ObjectStore::ListObjectsV2;
  using ObjectStore::PutObject;

  absl::StatusOr<ListPage> ListObjectsV2(const std::string& prefix,
                                         const std::string& continuation_token, int max_keys,
                                         const std::string& start_after) override;
  absl::StatusOr<Object> GetObject(const std::string& key) override;
  absl::StatusOr<ObjectHead> GetObjectStreaming(
      const std::string& key, const std::function<void(const ObjectHead&)>& on_head,
      const std::function<bool(absl::string_view)>& sink) override;
  absl::Status CopyObject(const std::string& src_key, const std::string& dst_key,
                          MetadataDirective directive,
                          const std::map<std::string, std::string>& replace_metadata) override;
  absl::Status DeleteObject(const std::string& key) override;
  absl::Status PutObject(const std::string& key, absl::string_view body,
                         const std::map<std::string, std::string>& metadata, bool if_none_match,
                         const std::string& content_type) override;

  // HEAD: the object's size, ETag, content type and metadata, without the body.
  absl::StatusOr<ObjectHead> HeadObject(const std::string& key) override;

  // TCP(+TLS) connections opened so far (libcurl's CURLINFO_NUM_CONNECTS summed
  // over all requests). With reuse working, this stays near the number of
  // threads using the client, however many requests they make.
  int64_t connections_opened() const;
  int64_t requests_sent() const;  // attempts: a retried request counts each one
  int64_t retries() const { return retries_.load(); }

 private:
  S3Client(std::string bucket, RetryOptions retry, std::unique_ptr<HttpTransport> transport,
           Clock* clock);
  // transport_->Send, repeated while ShouldRetry() allows (see retry_policy.h).
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request, Idempotency idempotency,
                                    absl::string_view operation, absl::string_view key);
  // "/<bucket>/<UriEncode(key)>"; INVALID_ARGUMENT for an empty or over-long key.
  absl::StatusOr<std::string> ObjectPath(absl::string_view operation, absl::string_view key) const;

  const std::string bucket_;
  const RetryOptions retry_;
  const std::unique_ptr<HttpTransport> transport_;
  Clock* const clock_;
  std::atomic<int64_t> retries_{0};
};

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_S3_CLIENT_H_
