#include "common/time/fake_clock.h"

namespace pocketmail {

namespace {
// WaitFor's caller holds its own mutex, which Advance cannot take (the lock
// order is caller's mutex, then ours), so a notify can fall between the
// caller's check of the time and its wait. Re-checking this often bounds what
// such a lost notify costs.
constexpr auto kRecheck = std::chrono::milliseconds(1);
}  // namespace

absl::Time FakeClock::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

absl::Duration FakeClock::Elapsed() {
  std::lock_guard<std::mutex> lock(mu_);
  return elapsed_;
}

void FakeClock::SleepFor(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  ++waits_begun_;
  changed_.notify_all();
  const absl::Duration end = elapsed_ + d;
  changed_.wait(lock, [&] { return elapsed_ >= end; });
}

bool FakeClock::WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                        absl::Duration timeout, const std::function<bool()>& done) {
  absl::Duration end;
  {
    std::lock_guard<std::mutex> self(mu_);
    end = elapsed_ + timeout;
    waiting_on_.insert(&cv);
    ++waits_begun_;
    changed_.notify_all();
  }
  while (!done() && Elapsed() < end) cv.wait_for(lock, kRecheck);
  {
    // Advance notifies cv under mu_, so once this returns it never touches cv again.
    std::lock_guard<std::mutex> self(mu_);
    waiting_on_.erase(waiting_on_.find(&cv));
  }
  return done();
}

void FakeClock::Advance(absl::Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += d;
  elapsed_ += d;
  for (std::condition_variable* cv : waiting_on_) cv->notify_all();
  changed_.notify_all();
}

void FakeClock::Set(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = now;
}

int64_t FakeClock::waits_begun() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waits_begun_;
}

bool FakeClock::AwaitWaitsBegun(int64_t n, absl::Duration real_timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, absl::ToChronoNanoseconds(real_timeout),
                           [&] { return waits_begun_ >= n; });
}

}  // namespace pocketmail
