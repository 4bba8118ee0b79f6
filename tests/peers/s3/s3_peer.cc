#include "tests/peers/s3/s3_peer.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pocketmail::testing {
namespace {

absl::StatusOr<std::string> FindPython() {
  if (const char* configured = std::getenv("PM_MOTO_PYTHON");
      configured != nullptr && *configured) {
    return std::string(configured);
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/python3");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError("no python3 on PATH; set PM_MOTO_PYTHON to a python with moto");
}

absl::StatusOr<std::map<std::string, std::string>> ReadCredsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::map<std::string, std::string> values;
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

size_t AppendToString(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

struct PeerReply {
  long status = 0;
  std::string body;
};

// One request to the peer's unsigned control endpoints: GET, or POST of
// `post_body` when it is given. Verifies the peer's certificate against ca_file.
absl::StatusOr<PeerReply> PeerRequest(const std::string& url, const std::string& ca_file,
                                      const std::string* post_body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  PeerReply reply;
  curl_slist* headers = nullptr;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  if (post_body != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("s3 peer ", url, ": ", curl_easy_strerror(rc)));
  }
  return reply;
}

}  // namespace

absl::StatusOr<S3Peer> S3Peer::Start(const std::string& scratch_dir, Options options) {
  S3Peer peer;
  peer.options_ = std::move(options);
  peer.scratch_dir_ = scratch_dir;
  if (absl::Status s = peer.Launch(0, {}); !s.ok()) return s;
  return peer;
}

absl::Status S3Peer::Launch(int port, const std::map<std::string, std::string>& env) {
  absl::StatusOr<std::string> python = FindPython();
  if (!python.ok()) return python.status();
  std::string dir = absl::StrCat(scratch_dir_, "/s3peer");
  std::vector<std::string> argv = {*python,    RunfilePath("tests/peers/s3/s3_peer.py"),
                                   "--dir",    dir,
                                   "--port",   std::to_string(port),
                                   "--bucket", options_.bucket};
  if (options_.count_requests) argv.push_back("--count-requests");
  absl::StatusOr<PeerProcess> process =
      PeerProcess::StartAndWaitReady(argv, env, absl::Seconds(60));
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  if (!absl::SimpleAtoi(process_.field("port"), &port_)) {
    return absl::InternalError("s3 peer READY line has no port");
  }
  absl::StatusOr<std::map<std::string, std::string>> creds = ReadCredsFile(dir + "/creds.env");
  if (!creds.ok()) return creds.status();
  endpoint_ = (*creds)["R2_ENDPOINT"];
  bucket_ = (*creds)["R2_BUCKET"];
  access_key_id_ = (*creds)["R2_ACCESS_KEY_ID"];
  secret_access_key_ = (*creds)["R2_SECRET_ACCESS_KEY"];
  ca_file_ = (*creds)["R2_CA_FILE"];
  if (endpoint_.empty() || access_key_id_.empty() || secret_access_key_.empty() ||
      ca_file_.empty()) {
    return absl::InternalError("s3 peer creds.env is incomplete");
  }
  return absl::OkStatus();
}

absl::Status S3Peer::Restart() {
  if (process_.running()) process_.Kill();
  return Launch(port_, {{"S3_PEER_ACCESS_KEY_ID", access_key_id_},
                        {"S3_PEER_SECRET_ACCESS_KEY", secret_access_key_}});
}

std::map<std::string, std::string> S3Peer::env() const {
  return {{"R2_ENDPOINT", endpoint_},
          {"R2_BUCKET", bucket_},
          {"R2_ACCESS_KEY_ID", access_key_id_},
          {"R2_SECRET_ACCESS_KEY", secret_access_key_},
          {"R2_CA_FILE", ca_file_}};
}

absl::StatusOr<std::map<std::string, int64_t>> S3Peer::Stats() const {
  if (!options_.count_requests)
    return absl::FailedPreconditionError("peer started without count_requests");
  absl::StatusOr<std::string> body = S3PeerStats(endpoint_, ca_file_);
  if (!body.ok()) return body.status();
  return ParseS3PeerStats(*body);
}

absl::Status SetS3PeerFaults(const std::string& endpoint, const std::string& ca_file,
                             const std::string& json) {
  absl::StatusOr<PeerReply> reply = PeerRequest(endpoint + "/__peer/faults", ca_file, &json);
  if (!reply.ok()) return reply.status();
  if (reply->status == 400) {
    return absl::InvalidArgumentError(absl::StrCat("s3 peer refused faults: ", reply->body));
  }
  if (reply->status != 200) {
    return absl::UnavailableError(absl::StrCat("s3 peer faults: HTTP ", reply->status));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> S3PeerStats(const std::string& endpoint, const std::string& ca_file) {
  absl::StatusOr<PeerReply> reply = PeerRequest(endpoint + "/__peer/stats", ca_file, nullptr);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    return absl::UnavailableError(absl::StrCat("s3 peer stats: HTTP ", reply->status));
  }
  return reply->body;
}

absl::StatusOr<std::map<std::string, int64_t>> ParseS3PeerStats(const std::string& body) {
  // A flat JSON object of counters: {"LIST": 3, "GET": 0, ..., "FAULTS": 1}
  std::map<std::string, int64_t> stats;
  absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  if (!absl::ConsumePrefix(&trimmed, "{") || !absl::ConsumeSuffix(&trimmed, "}")) {
    return absl::InternalError(absl::StrCat("peer stats: bad body ", body));
  }
  for (absl::string_view item : absl::StrSplit(trimmed, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits(':', 1));
    std::string name(
        absl::StripSuffix(absl::StripPrefix(absl::StripAsciiWhitespace(kv.first), "\""), "\""));
    int64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(kv.second), &value)) {
      return absl::InternalError(absl::StrCat("peer stats: bad body ", body));
    }
    stats[name] = value;
  }
  return stats;
}

}  // namespace pocketmail::testing
