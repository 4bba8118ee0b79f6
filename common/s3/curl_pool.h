// A pool of libcurl easy handles, so connections are reused across requests.
//
// A libcurl easy handle keeps its connection (and TLS session) alive after a
// transfer; handing the same handle to the next request reuses the connection
// instead of paying a TCP + TLS handshake. The pool lends each handle to one
// thread at a time (LIFO, so the most recently used, warm connection goes
// first), keeps at most `max_idle` idle handles, and closes the rest. All
// handles also share one TLS session cache and DNS cache (a CURLSH with locks),
// so a new connection can resume a TLS session. Thread-safe.
#ifndef POCKETMAIL_COMMON_S3_CURL_POOL_H_
#define POCKETMAIL_COMMON_S3_CURL_POOL_H_

#include <curl/curl.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"

namespace pocketmail::s3 {

// curl_global_init, exactly once per process (call before any other libcurl use).
absl::Status EnsureCurlGlobalInit();

class CurlHandlePool {
 public:
  explicit CurlHandlePool(int max_idle);
  ~CurlHandlePool();  // REQUIRES: every lent handle has been returned
  CurlHandlePool(const CurlHandlePool&) = delete;
  CurlHandlePool& operator=(const CurlHandlePool&) = delete;

  // Lends a handle, reset to default options except for its live connection,
  // caches and the shared CURLSH. RESOURCE_EXHAUSTED if libcurl cannot make one.
  absl::StatusOr<CURL*> Acquire();
  // Takes a lent handle back. `keep_connection` = false closes it (after a
  // transfer that left the connection in an unknown state).
  void Release(CURL* handle, bool keep_connection);

  int64_t handles_created() const { return handles_created_.load(); }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* self);
  static void Unlock(CURL*, curl_lock_data data, void* self);

  const size_t max_idle_;
  CURLSH* share_ = nullptr;
  std::mutex share_locks_[CURL_LOCK_DATA_LAST];
  std::mutex mu_;
  std::vector<CURL*> idle_;  // guarded by mu_
  std::atomic<int64_t> handles_created_{0};
};

// Borrows a handle for one scope.
class PooledHandle {
 public:
  PooledHandle(CurlHandlePool* pool, CURL* handle) : pool_(pool), handle_(handle) {}
  ~PooledHandle() { pool_->Release(handle_, keep_connection_); }
  PooledHandle(const PooledHandle&) = delete;
  PooledHandle& operator=(const PooledHandle&) = delete;

  CURL* get() const { return handle_; }
  void DiscardConnection() { keep_connection_ = false; }

 private:
  CurlHandlePool* pool_;
  CURL* handle_;
  bool keep_connection_ = true;
};

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_CURL_POOL_H_
