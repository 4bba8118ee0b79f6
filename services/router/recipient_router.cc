#include "services/router/recipient_router.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace pocketmail::router {
namespace {

constexpr const char* kRoleLocalparts[] = {"postmaster", "abuse", "hostmaster", "webmaster",
                                           "security",   "dmarc", "root"};

bool IsRole(const std::string& localpart) {
  for (const char* role : kRoleLocalparts) {
    if (localpart == role) return true;
  }
  return false;
}

// A configured localpart (admin, catch-all) must be a plain, valid localpart.
absl::StatusOr<std::string> CheckLocalpart(const std::string& setting, const std::string& value) {
  absl::StatusOr<mail::EnvelopeAddress> parsed =
      mail::ParseEnvelopeAddress(absl::StrCat(value, "@example.invalid"));
  if (!parsed.ok() || parsed->quoted || value.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(setting, " is not a valid localpart"));
  }
  return parsed->lookup_localpart();
}

// A content hash rather than a counter: equal lists get equal versions across
// restarts and process layouts, so callers compare without coordinating.
std::string VersionOf(const std::vector<std::string>& mailboxes) {
  std::string text;
  for (const std::string& mailbox : mailboxes) absl::StrAppend(&text, mailbox, "\n");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 8));
}

}  // namespace

bool RecipientRouter::FileStamp::operator==(const FileStamp& o) const {
  return mtime_ns == o.mtime_ns && size == o.size && inode == o.inode &&
         wal_mtime_ns == o.wal_mtime_ns && wal_size == o.wal_size;
}

absl::StatusOr<std::unique_ptr<RecipientRouter>> RecipientRouter::Create(
    RouterOptions options, std::unique_ptr<AccountSource> live,
    std::unique_ptr<AccountSource> seed) {
  if (live == nullptr && seed == nullptr) {
    return absl::InvalidArgumentError(
        "no account source: set MAIL_ACCOUNTS_CMD or MAIL_USERS_FILE");
  }
  mail::Domain domain;
  if (!options.mail_domain.empty()) {
    absl::StatusOr<mail::Domain> d = mail::NormalizeDomain(options.mail_domain);
    if (!d.ok())
      return absl::InvalidArgumentError(absl::StrCat("MAIL_DOMAIN: ", d.status().message()));
    domain = *d;
  }
  absl::StatusOr<std::string> admin =
      CheckLocalpart("MAIL_ADMIN_LOCALPART", options.admin_localpart);
  if (!admin.ok()) return admin.status();
  absl::StatusOr<std::string> catchall =
      CheckLocalpart("MAIL_CATCHALL_LOCALPART", options.catchall_localpart);
  if (!catchall.ok()) return catchall.status();
  options.admin_localpart = *admin;
  options.catchall_localpart = *catchall;
  if (options.refresh_interval <= absl::ZeroDuration())
    options.refresh_interval = absl::Seconds(60);
  if (options.retry_interval <= absl::ZeroDuration()) options.retry_interval = absl::Seconds(5);
  return std::unique_ptr<RecipientRouter>(
      new RecipientRouter(std::move(options), std::move(domain), std::move(live), std::move(seed)));
}

RecipientRouter::RecipientRouter(RouterOptions options, mail::Domain domain,
                                 std::unique_ptr<AccountSource> live,
                                 std::unique_ptr<AccountSource> seed)
    : options_(std::move(options)),
      domain_(std::move(domain)),
      live_(std::move(live)),
      seed_(std::move(seed)),
      snapshot_(std::make_shared<Snapshot>()) {}

RecipientRouter::~RecipientRouter() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (dir_watch_) dir_watch_->Wake();
  if (refresher_.joinable()) refresher_.join();
}

std::shared_ptr<const RecipientRouter::Snapshot> RecipientRouter::Current() {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

void RecipientRouter::StartBackgroundRefresh(absl::Duration tick) {
  absl::MutexLock lock(&mu_);
  if (background_) return;
  background_ = true;
  if (options_.watch_path.empty()) {
    // Only time makes a refresh due: sleep until it is. A read made elsewhere
    // (RefreshNow) moves that time, so it wakes us to plan again.
    refresher_ = std::thread([this] {
      while (true) {
        RefreshIfDue();
        {
          std::lock_guard<std::mutex> lock(wait_mu_);
          replan_ = false;
        }
        // Not under wait_mu_: Refresh takes wait_mu_ under refresh_mu_.
        const absl::Duration until_due = UntilNextRefresh();
        std::unique_lock<std::mutex> lock(wait_mu_);
        options_.clock->WaitFor(lock, wake_, until_due, [this] { return stop_ || replan_; });
        if (stop_) return;
      }
    });
    return;
  }
  dir_watch_ = DirectoryWatch::ForFile(options_.watch_path);
  if (dir_watch_ == nullptr) {  // no inotify here: look at the watched file every tick
    refresher_ = std::thread([this, tick] {
      while (true) {
        RefreshIfDue();
        std::unique_lock<std::mutex> lock(wait_mu_);
        if (options_.clock->WaitFor(lock, wake_, tick, [this] { return stop_; })) return;
      }
    });
    return;
  }
  // Sleep until Maddy writes its database or a refresh falls due; during a
  // burst of writes (every delivery touches imapsql.db-wal) look at most
  // once a tick.
  refresher_ = std::thread([this, tick] {
    while (true) {
      RefreshIfDue();
      const absl::Time looked = options_.clock->Now();
      dir_watch_->Wait(UntilNextRefresh());
      std::unique_lock<std::mutex> lock(wait_mu_);
      if (stop_ || options_.clock->WaitFor(lock, wake_, tick - (options_.clock->Now() - looked),
                                           [this] { return stop_; }))
        return;
    }
  });
}

absl::Duration RecipientRouter::IntervalLocked() const {
  return last_attempt_failed_ ? std::min(options_.retry_interval, options_.refresh_interval)
                              : options_.refresh_interval;
}

absl::Duration RecipientRouter::UntilNextRefresh() {
  absl::MutexLock lock(&refresh_mu_);
  if (!attempted_) return absl::ZeroDuration();
  const absl::Duration interval = IntervalLocked();
  // Clamped: after the wall clock jumps back, wake within an interval anyway.
  return std::clamp(interval - (options_.clock->Now() - last_attempt_), absl::ZeroDuration(),
                    interval);
}

void RecipientRouter::EnsureLoaded() {
  bool background;
  {
    absl::MutexLock lock(&mu_);
    background = background_;
  }
  // With a background refresher the hot path never runs the command, except
  // to load the very first list.
  if (!background || !Current()->loaded) RefreshIfDue();
}

RecipientRouter::FileStamp RecipientRouter::StampWatchedFile() const {
  FileStamp stamp;
  struct stat st;
  if (::stat(options_.watch_path.c_str(), &st) == 0) {
    stamp.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.size = st.st_size;
    stamp.inode = static_cast<long long>(st.st_ino);
  }
  // Maddy's imapsql.db is in WAL mode: new accounts land in the -wal file first.
  std::string wal = options_.watch_path + "-wal";
  if (::stat(wal.c_str(), &st) == 0) {
    stamp.wal_mtime_ns =
        static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.wal_size = st.st_size;
  }
  return stamp;
}

bool RecipientRouter::RefreshIfDue() {
  absl::MutexLock lock(&refresh_mu_);
  const absl::Time now = options_.clock->Now();
  bool due = !attempted_ || now - last_attempt_ >= IntervalLocked();
  if (!due && !options_.watch_path.empty()) due = !(StampWatchedFile() == watched_);
  if (!due) return false;
  Refresh(now);
  return true;
}

std::map<std::string, std::string> RecipientRouter::Normalise(
    const std::vector<std::string>& names) const {
  std::map<std::string, std::string> out;
  for (const std::string& name : names) {
    const bool bare = name.find('@') == std::string::npos;
    const std::string& placeholder = domain_.ascii.empty() ? "example.invalid" : domain_.ascii;
    absl::StatusOr<mail::EnvelopeAddress> parsed =
        mail::ParseEnvelopeAddress(bare ? absl::StrCat(name, "@", placeholder) : name);
    if (!parsed.ok()) {
      log::Warn("skipping unusable account name",
                {{"name", name}, {"error", std::string(parsed.status().message())}});
      continue;
    }
    std::string lp = parsed->lookup_localpart();
    if (bare && domain_.ascii.empty()) {
      out[lp + "@"] = lp;  // matches any domain; completed at resolve time
    } else {
      out[absl::StrCat(lp, "@", parsed->domain.ascii)] =
          absl::StrCat(lp, "@", parsed->domain.unicode);
    }
  }
  return out;
}

absl::StatusOr<MailboxListing> RecipientRouter::RefreshNow() {
  // A read already running may predate the caller's new mailbox, so only one
  // that starts after this point counts. Reads are serialised: once we hold
  // refresh_mu_, any read that started after `seen` has finished.
  const uint64_t seen = refreshes_started_.load();
  absl::Status status;
  {
    absl::MutexLock lock(&refresh_mu_);
    if (refreshes_started_.load() == seen) Refresh(options_.clock->Now());
    status = last_status_;
  }
  if (!status.ok()) return absl::UnavailableError(status.message());
  return ListingOf(*Current());
}

void RecipientRouter::Refresh(absl::Time now) {
  ++refreshes_started_;
  attempted_ = true;
  last_attempt_ = now;
  if (!options_.watch_path.empty()) watched_ = StampWatchedFile();
  auto next = std::make_shared<Snapshot>(*Current());
  next->loaded = true;
  std::string errors;
  bool live_failed = false;
  absl::Status deciding;
  if (seed_ != nullptr) {
    absl::StatusOr<std::vector<std::string>> names = seed_->ListAccounts();
    deciding = names.status();
    if (names.ok()) {
      next->seed = Normalise(*names);
      next->seed_ok = true;
      if (live_ == nullptr) next->refreshed = now;
    } else {
      errors = std::string(names.status().message());
      log::Warn("users file unreadable; keeping the previous seed list", {{"error", errors}});
    }
  }
  if (live_ != nullptr) {
    absl::StatusOr<std::vector<std::string>> names = live_->ListAccounts();
    deciding = names.status();
    if (names.ok()) {
      next->live = Normalise(*names);
      if (next->live_failing || !next->live_ever_ok) {
        log::Info("account list read", {{"accounts", static_cast<long long>(next->live.size())}});
      }
      next->live_ever_ok = true;
      next->live_failing = false;
      next->refreshed = now;
    } else {
      live_failed = true;
      next->live_failing = true;
      std::string error(names.status().message());
      absl::StrAppend(&errors, errors.empty() ? "" : "; ", error);
      log::Warn(next->live_ever_ok ? "account command failed; using the last good list"
                                   : "account command failed; no list read yet",
                {{"error", error}});
    }
  }
  next->last_error = errors;
  next->version = VersionOf(AllMailboxes(*next));
  last_attempt_failed_ = live_failed;
  last_status_ = deciding;
  {
    absl::MutexLock lock(&mu_);
    snapshot_ = std::move(next);
  }
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    replan_ = true;  // the next refresh is due at a new time
  }
  wake_.notify_all();
}

absl::StatusOr<Resolution> RecipientRouter::Resolve(absl::string_view address) {
  absl::StatusOr<mail::EnvelopeAddress> parsed = mail::ParseEnvelopeAddress(address);
  if (!parsed.ok()) return parsed.status();
  if (!domain_.ascii.empty() && parsed->domain.ascii != domain_.ascii) {
    return absl::InvalidArgumentError(absl::StrCat("recipient domain ", parsed->domain.unicode,
                                                   " is not MAIL_DOMAIN (", domain_.unicode, ")"));
  }
  EnsureLoaded();
  std::shared_ptr<const Snapshot> snap = Current();
  if (!snap->live_ever_ok && !snap->seed_ok) {
    return absl::UnavailableError(absl::StrCat("no account list has been read yet; not guessing",
                                               snap->last_error.empty() ? "" : ": ",
                                               snap->last_error));
  }
  const mail::Domain& domain = domain_.ascii.empty() ? parsed->domain : domain_;
  auto find = [&](const std::string& lp) -> std::optional<std::string> {
    for (const auto* list : {&snap->live, &snap->seed}) {
      if (auto it = list->find(absl::StrCat(lp, "@", domain.ascii)); it != list->end()) {
        return it->second;
      }
      if (auto it = list->find(lp + "@"); it != list->end()) {
        return absl::StrCat(lp, "@", domain.unicode);
      }
    }
    return std::nullopt;
  };

  Resolution r;
  r.list_stale = live_ != nullptr && snap->live_failing;
  const std::string stale_note =
      r.list_stale ? " (account command failing; using the last good list)" : "";
  const std::string lp = parsed->lookup_localpart();
  if (std::optional<std::string> mailbox = find(lp)) {
    r.mailbox = *mailbox;
    r.rule = v1::RULE_EXACT;
    r.explanation = absl::StrCat("'", lp, "' is a mailbox", stale_note);
    return r;
  }
  const size_t plus = lp.find('+');
  const std::string base = plus == std::string::npos ? lp : lp.substr(0, plus);
  if (plus != std::string::npos && plus > 0) {
    if (std::optional<std::string> mailbox = find(base)) {
      r.mailbox = *mailbox;
      r.rule = v1::RULE_SUBADDRESS;
      r.explanation =
          absl::StrCat("'", lp, "' is a subaddress of mailbox '", base, "'", stale_note);
      return r;
    }
  }
  std::string role_note;
  if (IsRole(base)) {
    if (std::optional<std::string> admin = find(options_.admin_localpart)) {
      r.mailbox = *admin;
      r.rule = v1::RULE_ROLE_ALIAS;
      r.explanation =
          absl::StrCat("'", base, "' is a role address; routed to the admin mailbox", stale_note);
      return r;
    }
    role_note = absl::StrCat("; '", base, "' is a role address but admin mailbox '",
                             options_.admin_localpart, "' does not exist");
  }
  if (live_ != nullptr && !snap->live_ever_ok) {
    return absl::UnavailableError(
        absl::StrCat("'", lp,
                     "' is not in the users file and the live account list has never been read; "
                     "deferring rather than guessing the catch-all: ",
                     snap->last_error));
  }
  const bool catchall_exists = find(options_.catchall_localpart).has_value();
  r.mailbox = absl::StrCat(options_.catchall_localpart, "@", domain.unicode);
  r.rule = v1::RULE_CATCH_ALL;
  r.explanation = absl::StrCat(
      "'", lp, "' is not a mailbox; routed to the catch-all", role_note,
      catchall_exists ? "" : "; note: the catch-all mailbox is not in the account list",
      stale_note);
  return r;
}

std::vector<std::string> RecipientRouter::AllMailboxes(const Snapshot& snap) {
  std::set<std::string> all;
  for (const auto* list : {&snap.live, &snap.seed}) {
    for (const auto& [key, display] : *list) all.insert(display);
  }
  return std::vector<std::string>(all.begin(), all.end());
}

absl::StatusOr<MailboxListing> RecipientRouter::ListingOf(const Snapshot& snap) const {
  if (!snap.live_ever_ok && !snap.seed_ok) {
    return absl::UnavailableError(absl::StrCat(
        "no account list has been read yet", snap.last_error.empty() ? "" : ": ", snap.last_error));
  }
  MailboxListing listing;
  listing.mailboxes = AllMailboxes(snap);
  if (live_ != nullptr && snap.live_ever_ok) {
    listing.source = snap.live_failing ? v1::ACCOUNT_SOURCE_LAST_GOOD : v1::ACCOUNT_SOURCE_LIVE;
  } else {
    listing.source = v1::ACCOUNT_SOURCE_SEED;
  }
  listing.refreshed = snap.refreshed;
  listing.last_error = snap.last_error;
  listing.version = snap.version;
  return listing;
}

absl::StatusOr<MailboxListing> RecipientRouter::ListMailboxes() {
  EnsureLoaded();
  return ListingOf(*Current());
}

}  // namespace pocketmail::router
