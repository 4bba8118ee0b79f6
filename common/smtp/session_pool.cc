#include "common/smtp/session_pool.h"

#include <utility>

namespace pocketmail::smtp {

SessionPool::Lease::~Lease() {
  if (session_ == nullptr) return;  // moved from
  session_->AbortMessage();
  pool_->Return(std::move(session_));
}

SessionPool::SessionPool(SessionOptions options, int max_sessions)
    : options_(std::move(options)), max_sessions_(max_sessions < 1 ? 1 : max_sessions) {}

SessionPool::~SessionPool() = default;

absl::StatusOr<SessionPool::Lease> SessionPool::Acquire(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  // Runs with mu_ held (inside Await).
  auto available = [this]() { return !idle_.empty() || created_ < max_sessions_; };
  // `deadline` is on the sessions' clock; the wait is absl::Mutex's.
  if (!mu_.AwaitWithTimeout(absl::Condition(&available), deadline - options_.clock->Now())) {
    return absl::DeadlineExceededError("no SMTP session became free in time");
  }
  if (!idle_.empty()) {
    std::unique_ptr<SmtpSession> s = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(s));
  }
  ++created_;
  return Lease(this, std::make_unique<SmtpSession>(options_));
}

void SessionPool::Return(std::unique_ptr<SmtpSession> session) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(session));
}

int SessionPool::connections_opened() const {
  absl::MutexLock lock(&mu_);
  int total = 0;
  for (const auto& s : idle_) total += s->connections_opened();
  return total;
}

}  // namespace pocketmail::smtp
