#include "common/s3/http_transport.h"

#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/s3/s3_errors.h"

namespace pocketmail::s3 {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;

bool Is2xx(long status) { return status >= 200 && status < 300; }

// Per-request state shared with libcurl's callbacks.
struct Transfer {
  const HttpRequest* request = nullptr;
  CURL* curl = nullptr;
  HttpResponse response;
  size_t upload_offset = 0;
  bool status_known = false;
  bool streaming = false;
  bool headers_delivered = false;
  bool aborted_by_callback = false;
  bool body_too_large = false;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  void LearnStatus() {
    if (status_known) return;
    status_known = true;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    streaming = request->body_sink != nullptr && Is2xx(response.status);
  }

  // Hands the headers of a streamed 2xx response over, once.
  bool DeliverHeaders() {
    if (!streaming || headers_delivered) return true;
    headers_delivered = true;
    if (request->on_headers && !request->on_headers(response.headers)) {
      aborted_by_callback = true;
      return false;
    }
    return true;
  }
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  static_cast<Transfer*>(user)->response.headers.AddLine(absl::string_view(data, size * count));
  return size * count;
}

size_t OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * count;
  t->LearnStatus();
  if (!t->DeliverHeaders()) return 0;
  if (t->streaming) {
    if (!t->request->body_sink(absl::string_view(data, len))) {
      t->aborted_by_callback = true;
      return 0;
    }
    t->response.streamed_bytes += static_cast<int64_t>(len);
    return len;
  }
  std::string& body = t->response.body;
  if (Is2xx(t->response.status)) {
    if (body.size() + len > t->request->max_buffered_body) {
      t->body_too_large = true;
      return 0;
    }
    if (body.empty()) {
      // Size the buffer once from Content-Length: growing a 25 MiB body by
      // doubling would briefly hold up to twice that.
      curl_off_t expected = -1;
      curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
      if (expected > 0 && static_cast<size_t>(expected) <= t->request->max_buffered_body) {
        body.reserve(static_cast<size_t>(expected));
      }
    }
    body.append(data, len);
  } else if (body.size() < kMaxErrorBody) {  // keep the head of an error body
    body.append(data, std::min(len, kMaxErrorBody - body.size()));
  }
  return len;
}

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view rest =
      t->request->body.substr(std::min(t->upload_offset, t->request->body.size()));
  size_t n = std::min(rest.size(), size * count);
  std::memcpy(buffer, rest.data(), n);
  t->upload_offset += n;
  return n;
}

// libcurl rewinds the upload when it must resend it (e.g. a reused connection
// that turned out dead).
int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > t->request->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

class HeaderSlist {
 public:
  ~HeaderSlist() { curl_slist_free_all(list_); }
  void Add(absl::string_view name, absl::string_view value) {
    // "Name:" alone would make libcurl drop the header; "Name;" sends it empty.
    AddLine(value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value));
  }
  // Stops libcurl from sending a header it would add by itself.
  void Suppress(absl::string_view name) { AddLine(absl::StrCat(name, ":")); }
  curl_slist* get() const { return list_; }
  bool failed() const { return failed_; }

 private:
  void AddLine(const std::string& line) {
    curl_slist* grown = curl_slist_append(list_, line.c_str());
    if (grown == nullptr) {
      failed_ = true;
    } else {
      list_ = grown;
    }
  }

  curl_slist* list_ = nullptr;
  bool failed_ = false;
};

// Whether the transfer got past connecting (TCP and TLS, or a reused
// connection): libcurl stamps the pre-transfer time only then.
bool Connected(CURL* curl) {
  curl_off_t pretransfer_us = 0;
  curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  return pretransfer_us > 0;
}

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

bool IsSupportedMethod(absl::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE";
}

// Signs `request` as of `now` and fills `headers` with what goes on the wire:
// Host, the caller's headers, the signer's and Authorization.
absl::Status SignInto(const TransportOptions& options, const HttpRequest& request, absl::Time now,
                      absl::string_view operation, absl::string_view key, HeaderSlist* headers) {
  SigningRequest to_sign{request.method, request.path, request.query, {}, request.payload_hash};
  to_sign.headers.emplace_back("host", options.host);
  to_sign.headers.insert(to_sign.headers.end(), request.headers.begin(), request.headers.end());
  SigningParams params{options.region, options.service, now};
  absl::StatusOr<Signature> signature = SignRequest(to_sign, options.credentials, params);
  if (!signature.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(DescribeOperation(operation, key), ": ", signature.status().message()));
  }
  headers->Add("Host", options.host);
  for (const auto& [name, value] : request.headers) headers->Add(name, value);
  for (const auto& [name, value] : signature->added_headers) headers->Add(name, value);
  headers->Add("Authorization", signature->authorization);
  headers->Suppress("Expect");  // no 100-continue round trip before a PUT body
  headers->Suppress("Accept");
  if (headers->failed()) return absl::ResourceExhaustedError("curl_slist_append failed");
  return absl::OkStatus();
}

std::string RequestUrl(const TransportOptions& options, const HttpRequest& request) {
  std::string url = options.base_url + request.path;
  if (!request.query.empty()) absl::StrAppend(&url, "?", CanonicalQueryString(request.query));
  return url;
}

// Sets every option of one transfer on a handle fresh from the pool. `url`,
// `headers` and `transfer` must outlive the transfer.
void ConfigureHandle(CURL* curl, const TransportOptions& options, const std::string& url,
                     const HeaderSlist& headers, Transfer* transfer) {
  const HttpRequest& request = *transfer->request;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // S3 keys may contain "/../"
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Millis(options.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Millis(options.request_timeout));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, transfer);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 128L << 10);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, transfer->error_buffer);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(curl, CURLOPT_READDATA, transfer);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, transfer);
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 256L << 10);
  } else if (request.method == "DELETE") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
}

// What a finished transfer means for the caller: the response, or why there is
// none. Fills `attempt` for the retry decision and drops a connection left in
// an unknown state.
absl::StatusOr<HttpResponse> Classify(CURLcode rc, Transfer& transfer, PooledHandle& handle,
                                      absl::string_view operation, absl::string_view key,
                                      AttemptResult* attempt) {
  if (attempt != nullptr) {
    *attempt = AttemptResult{};
    attempt->curl_code = static_cast<int>(rc);
    attempt->http_status = transfer.response.status;
    attempt->delivered_to_caller = transfer.headers_delivered;
    attempt->connected = Connected(handle.get());
    attempt->aborted_locally = transfer.aborted_by_callback || transfer.body_too_large;
  }
  if (transfer.aborted_by_callback) {
    handle.DiscardConnection();  // the rest of the body is still on the wire
    return absl::CancelledError(
        absl::StrCat(DescribeOperation(operation, key), ": aborted by the caller"));
  }
  if (rc != CURLE_OK) {
    handle.DiscardConnection();
    if (transfer.body_too_large) {
      return absl::UnavailableError(absl::StrCat(DescribeOperation(operation, key),
                                                 ": response body over ",
                                                 transfer.request->max_buffered_body, " bytes"));
    }
    return StatusForTransportError(operation, key, rc, transfer.error_buffer);
  }
  return std::move(transfer.response);
}

}  // namespace

HttpTransport::HttpTransport(TransportOptions options)
    : options_(std::move(options)), pool_(options_.max_idle_connections) {}

HttpTransport::~HttpTransport() = default;

absl::StatusOr<HttpResponse> HttpTransport::Send(const HttpRequest& request,
                                                 absl::string_view operation, absl::string_view key,
                                                 AttemptResult* attempt) {
  if (attempt != nullptr) {
    *attempt = AttemptResult{};
    attempt->aborted_locally = true;  // until a transfer has run: a failure to build it
  }
  if (!IsSupportedMethod(request.method)) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported HTTP method ", request.method));
  }
  const absl::Time start = absl::Now();
  HeaderSlist headers;
  if (absl::Status st = SignInto(options_, request, start, operation, key, &headers); !st.ok()) {
    return st;
  }

  absl::StatusOr<CURL*> acquired = pool_.Acquire();
  if (!acquired.ok()) return acquired.status();
  PooledHandle handle(&pool_, *acquired);
  Transfer transfer;
  transfer.request = &request;
  transfer.curl = handle.get();
  const std::string url = RequestUrl(options_, request);
  ConfigureHandle(handle.get(), options_, url, headers, &transfer);

  requests_sent_.fetch_add(1);
  CURLcode rc = curl_easy_perform(handle.get());
  long new_connections = 0;
  curl_easy_getinfo(handle.get(), CURLINFO_NUM_CONNECTS, &new_connections);
  connections_opened_.fetch_add(new_connections);
  if (rc == CURLE_OK) {
    transfer.LearnStatus();
    transfer.DeliverHeaders();  // a 2xx with an empty body still gets its headers
  }
  log::Debug("s3 request",
             {{"op", operation},
              {"key", key},
              {"http", static_cast<long>(transfer.response.status)},
              {"curl", static_cast<int>(rc)},
              {"new_connections", new_connections},
              {"ms", static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start))}});
  return Classify(rc, transfer, handle, operation, key, attempt);
}

}  // namespace pocketmail::s3
