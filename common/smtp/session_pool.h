// A bounded set of SMTP sessions shared by concurrent deliveries.
//
// At most `max_sessions` sessions exist; each is used by one caller at a time
// (a Lease) and goes back to the pool afterwards with its connection open, so
// the next message only pays an RSET. Sessions are created lazily; a session
// whose connection broke reconnects by itself on its next BeginMessage.
// Thread-safe.
#ifndef POCKETMAIL_COMMON_SMTP_SESSION_POOL_H_
#define POCKETMAIL_COMMON_SMTP_SESSION_POOL_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/smtp/smtp_session.h"

namespace pocketmail::smtp {

class SessionPool {
 public:
  // Exclusive use of one session; returns it to the pool when destroyed. A
  // message still in flight at that point is aborted (no final ".").
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), session_(std::move(other.session_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    SmtpSession& operator*() const { return *session_; }
    SmtpSession* operator->() const { return session_.get(); }

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, std::unique_ptr<SmtpSession> s)
        : pool_(pool), session_(std::move(s)) {}
    SessionPool* pool_;
    std::unique_ptr<SmtpSession> session_;
  };

  // REQUIRES: max_sessions >= 1.
  SessionPool(SessionOptions options, int max_sessions);
  ~SessionPool();  // REQUIRES: no Lease outstanding.

  // Waits until a session is free or `deadline` (on options.clock) passes
  // (DEADLINE_EXCEEDED).
  absl::StatusOr<Lease> Acquire(absl::Time deadline);

  // Connections opened so far by the sessions not currently leased (all of
  // them when the pool is quiet): for tests and stats.
  int connections_opened() const;

 private:
  void Return(std::unique_ptr<SmtpSession> session);

  const SessionOptions options_;
  const int max_sessions_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<SmtpSession>> idle_ ABSL_GUARDED_BY(mu_);  // most recent last
  int created_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pocketmail::smtp

#endif  // POCKETMAIL_COMMON_SMTP_SESSION_POOL_H_
