#include "common/time/clock.h"

#include "absl/time/clock.h"

namespace pocketmail {

RealClock* RealClock::Get() {
  static RealClock* const clock = new RealClock();
  return clock;
}

absl::Time RealClock::Now() { return absl::Now(); }

void RealClock::SleepFor(absl::Duration d) { absl::SleepFor(d); }

bool RealClock::WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                        absl::Duration timeout, const std::function<bool()>& done) {
  // wait_for adds the timeout to steady_clock::now(), which would overflow.
  if (timeout == absl::InfiniteDuration()) {
    cv.wait(lock, done);
    return true;
  }
  return cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), done);
}

}  // namespace pocketmail
