#include "common/s3/curl_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pocketmail::s3 {

absl::Status EnsureCurlGlobalInit() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(result)));
  }
  return absl::OkStatus();
}

CurlHandlePool::CurlHandlePool(int max_idle)
    : max_idle_(static_cast<size_t>(std::max(1, max_idle))) {
  share_ = curl_share_init();
  if (share_ != nullptr) {
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlHandlePool::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlHandlePool::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  }
}

CurlHandlePool::~CurlHandlePool() {
  for (CURL* handle : idle_) curl_easy_cleanup(handle);
  idle_.clear();
  if (share_ != nullptr) curl_share_cleanup(share_);
}

void CurlHandlePool::Lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
  static_cast<CurlHandlePool*>(self)->share_locks_[data].lock();
}

void CurlHandlePool::Unlock(CURL*, curl_lock_data data, void* self) {
  static_cast<CurlHandlePool*>(self)->share_locks_[data].unlock();
}

absl::StatusOr<CURL*> CurlHandlePool::Acquire() {
  CURL* handle = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      handle = idle_.back();
      idle_.pop_back();
    }
  }
  if (handle == nullptr) {
    handle = curl_easy_init();
    if (handle == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
    handles_created_.fetch_add(1);
    if (share_ != nullptr) curl_easy_setopt(handle, CURLOPT_SHARE, share_);
  } else {
    curl_easy_reset(handle);  // keeps the live connection, the caches and the share
  }
  return handle;
}

void CurlHandlePool::Release(CURL* handle, bool keep_connection) {
  if (handle == nullptr) return;
  if (keep_connection) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(handle);
}

}  // namespace pocketmail::s3
