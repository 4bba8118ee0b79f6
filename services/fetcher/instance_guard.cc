#include "services/fetcher/instance_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace pocketmail::fetcher {
namespace {

// errno values meaning "this filesystem can't lock", as opposed to "locked".
bool FlockUnsupported(int err) {
  return err == ENOSYS || err == EOPNOTSUPP || err == ENOTSUP || err == ENOLCK || err == EINVAL;
}

std::string DefaultHolderId(Clock& clock) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return absl::StrCat(host, ":", getpid(), ":", absl::ToUnixMillis(clock.Now()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<InstanceGuard>> InstanceGuard::Acquire(
    InstanceGuardOptions options, LedgerClient& ledger, std::function<bool()> give_up) {
  if (!options.flock_fn) options.flock_fn = [](int fd, int op) { return ::flock(fd, op); };
  if (options.holder_id.empty()) options.holder_id = DefaultHolderId(*options.clock);
  auto guard = std::unique_ptr<InstanceGuard>(new InstanceGuard(std::move(options), ledger));
  const InstanceGuardOptions& o = guard->options_;

  guard->fd_ = open(o.lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  bool use_lease = false;
  if (guard->fd_ < 0) {
    log::Warn("cannot open the lock file; using a ledger lease",
              {{"path", o.lock_path}, {"error", std::strerror(errno)}});
    use_lease = true;
  }
  bool told_waiting = false;
  while (!use_lease) {
    if (o.flock_fn(guard->fd_, LOCK_EX | LOCK_NB) == 0) {
      guard->mechanism_ = Mechanism::kFlock;
      guard->held_ = true;
      log::Info("single instance: holding flock", {{"path", o.lock_path}});
      return guard;
    }
    int err = errno;
    if (FlockUnsupported(err)) {
      log::Info("flock unsupported here; using a ledger lease",
                {{"path", o.lock_path}, {"error", std::strerror(err)}});
      close(guard->fd_);
      guard->fd_ = -1;
      use_lease = true;
      break;
    }
    if (err != EWOULDBLOCK && err != EINTR) {
      return absl::InternalError(absl::StrCat("flock ", o.lock_path, ": ", std::strerror(err)));
    }
    if (!told_waiting) {
      log::Warn("another fetcher is draining this bucket; standing by", {{"lock", o.lock_path}});
      told_waiting = true;
    }
    if (give_up && give_up()) return absl::CancelledError("stopped while waiting for the lock");
    o.clock->SleepFor(o.retry_every);
  }

  guard->mechanism_ = Mechanism::kLease;
  while (true) {
    auto granted = guard->TryLease();
    if (granted.ok() && *granted) break;
    if (!told_waiting) {
      log::Warn(
          "the drain lease is held elsewhere (or the ledger is down); standing by",
          {{"lease", o.lease_name}, {"error", granted.ok() ? "" : granted.status().ToString()}});
      told_waiting = true;
    }
    if (give_up && give_up()) return absl::CancelledError("stopped while waiting for the lease");
    o.clock->SleepFor(o.retry_every);
  }
  log::Info("single instance: holding ledger lease",
            {{"lease", o.lease_name}, {"holder", o.holder_id}});
  guard->renewer_ = std::thread([g = guard.get()] { g->RenewLoop(); });
  return guard;
}

absl::StatusOr<bool> InstanceGuard::TryLease() {
  ledgerpb::AcquireLeaseRequest req;
  req.set_name(options_.lease_name);
  req.set_holder(options_.holder_id);
  req.set_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
  auto r = ledger_.AcquireLease(req);
  if (!r.ok()) return r.status();
  held_ = r->granted();
  return r->granted();
}

void InstanceGuard::RenewLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    options_.clock->WaitFor(lock, stop_cv_, options_.lease_ttl / 3, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    bool was_held = held_;
    auto granted = TryLease();
    // A ledger hiccup doesn't lose the lease before it expires; only a refusal does.
    if (granted.ok() && !*granted && was_held) {
      log::Error("lost the drain lease to another instance; pausing",
                 {{"lease", options_.lease_name}});
    } else if (granted.ok() && *granted && !was_held) {
      log::Info("drain lease regained", {{"lease", options_.lease_name}});
    }
    lock.lock();
  }
}

std::string InstanceGuard::Describe() const {
  return mechanism_ == Mechanism::kFlock ? absl::StrCat("flock ", options_.lock_path)
                                         : absl::StrCat("ledger lease ", options_.lease_name);
}

InstanceGuard::~InstanceGuard() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (mechanism_ == Mechanism::kLease && held_) {
    ledgerpb::ReleaseLeaseRequest req;
    req.set_name(options_.lease_name);
    req.set_holder(options_.holder_id);
    (void)ledger_.ReleaseLease(req);
  }
  if (fd_ >= 0) close(fd_);  // releases the flock
}

}  // namespace pocketmail::fetcher
