// RecipientRouter: envelope recipient → Maddy mailbox.
//
// The mailbox set is the live list (an AccountSource running Maddy's account
// command) ∪ the seed list (MAIL_USERS_FILE). Names may be full addresses or
// bare localparts; both are normalised to `localpart@domain`, lowercased
// (domain = MAIL_DOMAIN, or the recipient's own domain when MAIL_DOMAIN is
// unset). Rules, in order, on the parsed address:
//   1. RULE_EXACT       the localpart is a mailbox (case-insensitive)
//   2. RULE_SUBADDRESS  `user+tag` and `user` is a mailbox
//   3. RULE_ROLE_ALIAS  postmaster, abuse, hostmaster, webmaster, security,
//                       dmarc, root (also with +tag) → the admin mailbox, when
//                       it exists; otherwise the role falls to the catch-all
//   4. RULE_CATCH_ALL   the catch-all mailbox (inbox@). It is returned even
//                       when it is missing from the list: Maddy then answers
//                       501, and the fetcher dead-letters (replayable once the
//                       mailbox exists) — a visible, recoverable outcome.
// Errors: INVALID_ARGUMENT for an unparseable address or a foreign domain.
// UNAVAILABLE ("defer; never guess") when no list has ever been read and there
// is no seed, and also when the live source is configured but has never
// succeeded and only the seed is known: then seed matches (rules 1–3) route,
// but the catch-all is refused, since the recipient may be a real account the
// seed does not list.
//
// Freshness: the list is re-read at most every refresh_interval (after a
// failure, retry_interval), or sooner when the watched file (and its SQLite
// "-wal" companion) changes. If a refresh fails, the last good live list is
// kept and results are marked stale. With StartBackgroundRefresh(), refreshes
// run on a background thread, which sleeps until the next refresh is due (a
// read made meanwhile, e.g. by RefreshNow, wakes it to re-plan), or until
// inotify reports a change in the watched file's directory (directory_watch.h);
// it polls the watched file every tick only where inotify is unavailable. An
// idle router with no watch thus wakes once per refresh. Resolve only reads in
// the calling thread when nothing has been loaded yet. Without it, Resolve
// refreshes inline when due.
// RefreshNow() re-reads at once, for a caller that just created a mailbox.
//
// Thread-safe.
#ifndef POCKETMAIL_SERVICES_ROUTER_RECIPIENT_ROUTER_H_
#define POCKETMAIL_SERVICES_ROUTER_RECIPIENT_ROUTER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mail/address.h"
#include "common/time/clock.h"
#include "pocketmail/router/v1/router.pb.h"
#include "services/router/account_source.h"
#include "services/router/directory_watch.h"

namespace pocketmail::router {

struct RouterOptions {
  std::string mail_domain;  // "" = accept any domain
  std::string admin_localpart = "admin";
  std::string catchall_localpart = "inbox";
  absl::Duration refresh_interval = absl::Seconds(60);
  absl::Duration retry_interval = absl::Seconds(5);  // after a failed refresh
  std::string watch_path;                            // optional, e.g. Maddy's imapsql.db
  Clock* clock = RealClock::Get();  // not owned; refresh times and the background waits
};

struct Resolution {
  std::string mailbox;
  v1::Rule rule = v1::RULE_UNSPECIFIED;
  std::string explanation;
  bool list_stale = false;
};

struct MailboxListing {
  std::vector<std::string> mailboxes;  // sorted, lowercased
  v1::AccountSource source = v1::ACCOUNT_SOURCE_UNSPECIFIED;
  absl::Time refreshed = absl::InfinitePast();
  std::string last_error;
  // Content hash of `mailboxes` (16 hex digits of their SHA-256, one per
  // line): equal lists, equal versions, also across restarts.
  std::string version;
};

class RecipientRouter {
 public:
  // `live` and `seed` may each be null (not configured), not both.
  // INVALID_ARGUMENT for a bad MAIL_DOMAIN or localpart setting.
  static absl::StatusOr<std::unique_ptr<RecipientRouter>> Create(
      RouterOptions options, std::unique_ptr<AccountSource> live,
      std::unique_ptr<AccountSource> seed);
  ~RecipientRouter();  // stops the background thread

  absl::StatusOr<Resolution> Resolve(absl::string_view address);
  // UNAVAILABLE when no list is usable yet (see the class comment).
  absl::StatusOr<MailboxListing> ListMailboxes();

  // Re-reads the sources if due; returns true when it did.
  bool RefreshIfDue();
  // Re-reads the sources now and returns the listing that results. Only a
  // read that starts after the call counts: a caller arriving during a read
  // waits for it and then shares the next one with everyone else who arrived
  // meanwhile. UNAVAILABLE with the error when the live source (or, without
  // one, the seed) failed; the last good list then stays in use.
  absl::StatusOr<MailboxListing> RefreshNow();
  // `tick` matters only with a watch_path: the shortest gap between looks at
  // the file (and the poll interval without inotify).
  void StartBackgroundRefresh(absl::Duration tick = absl::Seconds(1));

 private:
  // One immutable view of the account lists; replaced whole on refresh.
  struct Snapshot {
    // Key: "localpart@ascii-domain", or "localpart@" for a bare name.
    std::map<std::string, std::string> live;  // key → display mailbox
    std::map<std::string, std::string> seed;
    bool loaded = false;  // a refresh has run (successfully or not)
    bool live_ever_ok = false;
    bool live_failing = false;
    bool seed_ok = false;
    absl::Time refreshed = absl::InfinitePast();
    std::string last_error;
    std::string version;  // of AllMailboxes(), set on every refresh
  };
  struct FileStamp {
    bool operator==(const FileStamp& o) const;
    long long mtime_ns = 0, size = -1, inode = 0, wal_mtime_ns = 0, wal_size = -1;
  };

  RecipientRouter(RouterOptions options, mail::Domain domain, std::unique_ptr<AccountSource> live,
                  std::unique_ptr<AccountSource> seed);
  std::shared_ptr<const Snapshot> Current();
  void EnsureLoaded();
  void Refresh(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(refresh_mu_);
  static std::vector<std::string> AllMailboxes(const Snapshot& snap);
  absl::StatusOr<MailboxListing> ListingOf(const Snapshot& snap) const;
  std::map<std::string, std::string> Normalise(const std::vector<std::string>& names) const;
  FileStamp StampWatchedFile() const;
  // The refresh interval in force: retry_interval after a failed read.
  absl::Duration IntervalLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(refresh_mu_);
  absl::Duration UntilNextRefresh();  // until RefreshIfDue would read (by time)

  const RouterOptions options_;
  const mail::Domain domain_;  // normalised MAIL_DOMAIN (empty when unset)
  const std::unique_ptr<AccountSource> live_;
  const std::unique_ptr<AccountSource> seed_;

  absl::Mutex refresh_mu_;  // one refresh at a time
  bool attempted_ ABSL_GUARDED_BY(refresh_mu_) = false;
  absl::Time last_attempt_ ABSL_GUARDED_BY(refresh_mu_) = absl::InfinitePast();
  bool last_attempt_failed_ ABSL_GUARDED_BY(refresh_mu_) = false;
  FileStamp watched_ ABSL_GUARDED_BY(refresh_mu_);
  // The last read's verdict: the live source's status, or the seed's without one.
  absl::Status last_status_ ABSL_GUARDED_BY(refresh_mu_);
  // Bumped under refresh_mu_ as each read starts; read without it by
  // RefreshNow to learn whether a read began after its arrival.
  std::atomic<uint64_t> refreshes_started_{0};

  absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  bool background_ ABSL_GUARDED_BY(mu_) = false;

  // The background refresher waits on wake_ (on the clock) for stop_, or
  // without a watch for replan_: a read happened, so the next is due at a new
  // time. Lock order: refresh_mu_, then wait_mu_.
  std::mutex wait_mu_;
  std::condition_variable wake_;
  bool stop_ = false;    // guarded by wait_mu_
  bool replan_ = false;  // guarded by wait_mu_
  std::thread refresher_;
  std::unique_ptr<DirectoryWatch> dir_watch_;  // set before refresher_ starts
};

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_RECIPIENT_ROUTER_H_
