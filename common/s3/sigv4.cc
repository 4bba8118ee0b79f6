#include "common/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/s3/uri_encode.h"

namespace pocketmail::s3 {
namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";

absl::StatusOr<std::string> HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
           &out_len) == nullptr) {
    return absl::InternalError("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<char*>(out), out_len);
}

bool HasLineBreakOrNul(absl::string_view s) {
  return s.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos;
}

// Trimall: no leading or trailing whitespace, inner runs of spaces/tabs -> one space.
std::string TrimAll(absl::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : absl::StripAsciiWhitespace(value)) {
    if (c == ' ' || c == '\t') {
      pending_space = true;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool IsOwnedBySigner(absl::string_view lower_name) {
  return lower_name == "authorization" || lower_name == "x-amz-date" ||
         lower_name == "x-amz-content-sha256" || lower_name == "x-amz-security-token";
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), len));
}

std::string FormatAmzDate(absl::Time time) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", time, absl::UTCTimeZone());
}

std::string CanonicalQueryString(const QueryList& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, /*keep_slash=*/false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  return absl::StrJoin(encoded, "&", [](std::string* out, const auto& kv) {
    absl::StrAppend(out, kv.first, "=", kv.second);
  });
}

std::string CanonicalUri(absl::string_view wire_path, CanonicalUriMode mode) {
  if (mode == CanonicalUriMode::kS3) {
    return wire_path.empty() ? "/" : std::string(wire_path);
  }
  std::vector<absl::string_view> segments;
  for (absl::string_view segment : absl::StrSplit(wire_path, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    segments.push_back(segment);
  }
  std::string out = "/";
  out += absl::StrJoin(segments, "/", [](std::string* o, absl::string_view s) {
    o->append(UriEncode(s, /*keep_slash=*/false));
  });
  if (!segments.empty() && !wire_path.empty() && wire_path.back() == '/') out.push_back('/');
  return out;
}

absl::StatusOr<Signature> SignRequest(const SigningRequest& request, const Credentials& credentials,
                                      const SigningParams& params) {
  if (request.method.empty()) return absl::InvalidArgumentError("sigv4: empty method");
  if (request.payload_hash.empty()) return absl::InvalidArgumentError("sigv4: empty payload hash");
  Signature sig;
  const std::string amz_date = FormatAmzDate(params.time);
  sig.added_headers.emplace_back("x-amz-date", amz_date);
  if (params.add_content_sha256_header) {
    sig.added_headers.emplace_back("x-amz-content-sha256", request.payload_hash);
  }
  if (!credentials.session_token.empty()) {
    sig.added_headers.emplace_back("x-amz-security-token", credentials.session_token);
  }

  // Lower-cased name -> trimmed values in the order given (repeats join with ',').
  std::map<std::string, std::vector<std::string>> headers;
  for (const auto& [name, value] : request.headers) {
    std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
    if (lower.empty() || HasLineBreakOrNul(name) || HasLineBreakOrNul(value) ||
        lower.find_first_of(": \t") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("sigv4: header cannot be signed: ", absl::CHexEscape(lower)));
    }
    if (IsOwnedBySigner(lower)) {
      return absl::InvalidArgumentError(absl::StrCat("sigv4: header set by the signer: ", lower));
    }
    headers[lower].push_back(TrimAll(value));
  }
  if (headers.count("host") == 0) return absl::InvalidArgumentError("sigv4: no host header");
  for (const auto& [name, value] : sig.added_headers) headers[name].push_back(value);

  std::string canonical_headers;
  std::vector<absl::string_view> names;
  for (const auto& [name, values] : headers) {
    absl::StrAppend(&canonical_headers, name, ":", absl::StrJoin(values, ","), "\n");
    names.push_back(name);
  }
  const std::string signed_headers = absl::StrJoin(names, ";");

  sig.canonical_request =
      absl::StrCat(request.method, "\n", CanonicalUri(request.path, params.uri_mode), "\n",
                   CanonicalQueryString(request.query), "\n", canonical_headers, "\n",
                   signed_headers, "\n", request.payload_hash);

  const std::string date = amz_date.substr(0, 8);
  const std::string scope =
      absl::StrCat(date, "/", params.region, "/", params.service, "/aws4_request");
  sig.string_to_sign =
      absl::StrCat(kAlgorithm, "\n", amz_date, "\n", scope, "\n", Sha256Hex(sig.canonical_request));

  absl::StatusOr<std::string> key =
      HmacSha256(absl::StrCat("AWS4", credentials.secret_access_key), date);
  for (absl::string_view part :
       {absl::string_view(params.region), absl::string_view(params.service),
        absl::string_view("aws4_request")}) {
    if (!key.ok()) break;
    key = HmacSha256(*key, part);
  }
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> raw = HmacSha256(*key, sig.string_to_sign);
  if (!raw.ok()) return raw.status();
  sig.signature = absl::BytesToHexString(*raw);
  sig.authorization =
      absl::StrCat(kAlgorithm, " Credential=", credentials.access_key_id, "/", scope,
                   ", SignedHeaders=", signed_headers, ", Signature=", sig.signature);
  return sig;
}

}  // namespace pocketmail::s3
