// A Clock for tests whose time moves only when the test says so.
//
// Advance() moves both wall time and elapsed time; Set() moves only wall
// time, as a clock jump does (see the contract in clock.h). A SleepFor or
// WaitFor on this clock returns once the test has advanced elapsed time past
// its end (or, for WaitFor, once its condition holds after a notify). Before
// moving time, a test can wait for the code under test to have started
// waiting (AwaitWaitsBegun), so nothing depends on real timing.
//
// Thread-safe.
#ifndef POCKETMAIL_COMMON_TIME_FAKE_CLOCK_H_
#define POCKETMAIL_COMMON_TIME_FAKE_CLOCK_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

#include "absl/time/time.h"
#include "common/time/clock.h"

namespace pocketmail {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() override;
  void SleepFor(absl::Duration d) override;
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
               absl::Duration timeout, const std::function<bool()>& done) override;

  // REQUIRES: d >= 0.
  void Advance(absl::Duration d);
  void Set(absl::Time now);

  // How many SleepFor/WaitFor calls have begun so far.
  int64_t waits_begun() const;
  // Blocks, for at most `real_timeout` of real time, until waits_begun() >= n:
  // the code under test has come round to waiting on this clock. False on
  // timeout.
  bool AwaitWaitsBegun(int64_t n, absl::Duration real_timeout = absl::Seconds(10));

 private:
  absl::Duration Elapsed();

  mutable std::mutex mu_;
  std::condition_variable changed_;  // time moved or a wait began
  absl::Time now_;
  absl::Duration elapsed_ = absl::ZeroDuration();
  std::multiset<std::condition_variable*> waiting_on_;  // WaitFor callers' cvs
  int64_t waits_begun_ = 0;
};

}  // namespace pocketmail

#endif  // POCKETMAIL_COMMON_TIME_FAKE_CLOCK_H_
