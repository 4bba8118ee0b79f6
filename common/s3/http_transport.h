// Sends one signed HTTPS request with libcurl and collects the response.
//
// The layer under S3Client: it knows HTTP, TLS, SigV4 and connection reuse, not
// S3 semantics (which status means what is S3Client's business). Each Send
// borrows an easy handle from a CurlHandlePool, so connections are reused.
// Thread-safe.
#ifndef POCKETMAIL_COMMON_S3_HTTP_TRANSPORT_H_
#define POCKETMAIL_COMMON_S3_HTTP_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/s3/curl_pool.h"
#include "common/s3/retry_policy.h"
#include "common/s3/s3_headers.h"
#include "common/s3/sigv4.h"

namespace pocketmail::s3 {

struct TransportOptions {
  std::string base_url;  // "https://host[:port]", validated by the caller
  std::string host;      // the Host header to send and sign
  std::string region;
  std::string service = "s3";
  Credentials credentials;
  std::string ca_file;  // CURLOPT_CAINFO when not empty
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration request_timeout = absl::Seconds(120);
  int max_idle_connections = 16;
};

struct HttpRequest {
  std::string method;        // "GET", "HEAD", "PUT" or "DELETE"
  std::string path;          // wire form, already URI-encoded; signed verbatim (S3 rules)
  QueryList query;           // decoded; sent as CanonicalQueryString(query)
  HeaderList headers;        // sent and signed, besides Host and the signer's own
  absl::string_view body;    // sent for PUT; must outlive Send
  std::string payload_hash;  // of `body`, or kUnsignedPayload
  // Streaming: when set, the body of a 2xx response goes here piece by piece
  // instead of HttpResponse::body; returning false aborts the transfer.
  std::function<bool(absl::string_view)> body_sink;
  // Streaming: called once for a 2xx response, before the first piece (also
  // when the body is empty); returning false aborts the transfer.
  std::function<bool(const ResponseHeaders&)> on_headers;
  // A buffered 2xx body larger than this fails the request (UNAVAILABLE).
  size_t max_buffered_body = 16 << 20;
};

struct HttpResponse {
  long status = 0;
  ResponseHeaders headers;
  std::string body;            // buffered body; for non-2xx its first 64 KiB
  int64_t streamed_bytes = 0;  // bytes handed to body_sink
};

class HttpTransport {
 public:
  explicit HttpTransport(TransportOptions options);
  ~HttpTransport();

  // Sends `request`. A response of any HTTP status is returned as a value;
  // failures to get one are UNAVAILABLE (connect, TLS, timeout, reset, a body
  // cut short or too large), CANCELLED when a streaming callback returned
  // false, INVALID_ARGUMENT when the request cannot be signed or built.
  // `operation` and `key` only label status messages. Each call is one
  // attempt, signed afresh (the signature carries the time). When `attempt` is
  // set it is filled in for the retry decision (all but s3_code).
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request, absl::string_view operation,
                                    absl::string_view key, AttemptResult* attempt = nullptr);

  int64_t connections_opened() const { return connections_opened_.load(); }
  int64_t requests_sent() const { return requests_sent_.load(); }

 private:
  const TransportOptions options_;
  CurlHandlePool pool_;
  std::atomic<int64_t> connections_opened_{0};
  std::atomic<int64_t> requests_sent_{0};
};

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_HTTP_TRANSPORT_H_
