// Only one fetcher drains a bucket at a time: two would race on the same
// objects (double GETs, a COPY of an object the other just deleted).
//
// The guard takes an exclusive flock(2) on a lock file in the state dir. Where
// the filesystem has no flock (exFAT SD cards answer ENOSYS; some FUSE mounts
// EOPNOTSUPP/ENOLCK), it falls back to an expiring lease row in the ledger,
// renewed in the background at a third of its TTL. Which one is in use is
// logged at start and reported by Describe() (and the fetcher's Status).
//
// Acquire() waits while another instance holds the lock or lease: a second
// fetcher started by mistake stands by instead of exiting and being restarted
// in a loop by its supervisor.
#ifndef POCKETMAIL_SERVICES_FETCHER_INSTANCE_GUARD_H_
#define POCKETMAIL_SERVICES_FETCHER_INSTANCE_GUARD_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/time/clock.h"
#include "services/fetcher/pipeline_clients.h"

namespace pocketmail::fetcher {

struct InstanceGuardOptions {
  std::string lock_path;   // e.g. <state dir>/fetcher-<bucket>.lock
  std::string lease_name;  // e.g. fetcher:<bucket>
  absl::Duration lease_ttl = absl::Seconds(60);
  absl::Duration retry_every = absl::Seconds(5);  // while another instance holds it
  // Seams for tests: flock(2) and the holder id.
  std::function<int(int fd, int operation)> flock_fn;
  std::string holder_id;
  Clock* clock = RealClock::Get();  // not owned; the retry and renewal waits
};

class InstanceGuard {
 public:
  enum class Mechanism { kFlock, kLease };

  // Blocks until this process is the instance, or `give_up` returns true
  // (then CANCELLED). `ledger` must outlive the guard.
  static absl::StatusOr<std::unique_ptr<InstanceGuard>> Acquire(InstanceGuardOptions options,
                                                                LedgerClient& ledger,
                                                                std::function<bool()> give_up);
  ~InstanceGuard();  // releases the lock or lease

  Mechanism mechanism() const { return mechanism_; }
  std::string Describe() const;
  // False once a lease renewal found someone else holding it (after a long
  // stall, say); draining must pause until it is held again.
  bool held() const { return held_; }

 private:
  InstanceGuard(InstanceGuardOptions options, LedgerClient& ledger)
      : options_(std::move(options)), ledger_(ledger) {}
  absl::StatusOr<bool> TryLease();
  void RenewLoop();

  InstanceGuardOptions options_;
  LedgerClient& ledger_;
  Mechanism mechanism_ = Mechanism::kFlock;
  int fd_ = -1;
  std::atomic<bool> held_{false};
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread renewer_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_INSTANCE_GUARD_H_
