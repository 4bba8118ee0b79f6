// Where time comes from: one seam for reading the clock and for waiting, so
// that tests move time instead of sleeping for it.
//
// Contract:
//   * Now() is wall-clock time: what goes into the ledger, the logs and S3.
//     It may jump (NTP, the phone's settings).
//   * SleepFor and WaitFor measure elapsed time, not wall time: on RealClock
//     that is the monotonic clock, so a wall-clock jump neither cuts a wait
//     short nor stretches it.
//   * Every method is thread-safe.
//
// Code that reads the time or waits for it takes a `Clock*` (not owned; it
// must outlive the user) defaulting to RealClock::Get(). Tests pass a
// FakeClock (common/time/fake_clock.h), whose time moves only when told to.
#ifndef POCKETMAIL_COMMON_TIME_CLOCK_H_
#define POCKETMAIL_COMMON_TIME_CLOCK_H_

#include <condition_variable>
#include <functional>
#include <mutex>

#include "absl/time/time.h"

namespace pocketmail {

class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() = 0;

  // Blocks the calling thread for `d`.
  virtual void SleepFor(absl::Duration d) = 0;

  // std::condition_variable::wait_for with a predicate, on this clock: waits
  // on `cv` until `done()` holds or `timeout` has passed, and returns done().
  // REQUIRES: `lock` holds the mutex that guards what `done` reads and under
  // which `cv` is notified.
  virtual bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                       absl::Duration timeout, const std::function<bool()>& done) = 0;
};

// The system's clocks. One per process; never destroyed.
class RealClock final : public Clock {
 public:
  static RealClock* Get();

  absl::Time Now() override;
  void SleepFor(absl::Duration d) override;
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
               absl::Duration timeout, const std::function<bool()>& done) override;

 private:
  RealClock() = default;
};

}  // namespace pocketmail

#endif  // POCKETMAIL_COMMON_TIME_CLOCK_H_
