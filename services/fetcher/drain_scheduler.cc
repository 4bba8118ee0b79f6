#include "services/fetcher/drain_scheduler.h"

#include <malloc.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/fetcher/object_key.h"

namespace pocketmail::fetcher {

namespace fetcherpb = ::pocketmail::fetcher::v1;

// One listing and the items it dispatched. Guarded by DrainScheduler::mu_.
struct DrainScheduler::Pass {
  fetcherpb::PassSummary summary;
  std::vector<std::string> dead_letter_reasons;  // the first few, for the alert
  int outstanding = 0;                           // dispatched items not yet finished
  bool listing_done = false;
  bool finished() const { return listing_done && outstanding == 0; }
};

DrainScheduler::DrainScheduler(s3::ObjectStore& store, MessagePipeline& pipeline,
                               SchedulerOptions options)
    : store_(store), pipeline_(pipeline), options_(options), clock_(*options.clock) {
  options_.concurrency = std::max(1, options_.concurrency);
}

DrainScheduler::~DrainScheduler() { Stop(); }

void DrainScheduler::Start(bool poll) {
  for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  if (poll) {
    wake_requested_ = true;  // the first pass runs at start-up, not one interval later
    poller_ = std::thread([this] { PollLoop(); });
  }
}

void DrainScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    queue_.clear();  // not started: they stay in pending/ for the next run
  }
  work_cv_.notify_all();
  poll_cv_.notify_all();
  budget_cv_.notify_all();
  pass_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void DrainScheduler::PollLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      if (!wake_requested_) {
        absl::Duration interval = NextInterval();
        next_pass_at_ = clock_.Now() + interval;
        const uint64_t generation = activity_generation_;
        bool woken = clock_.WaitFor(lock, poll_cv_, interval, [&] {
          return stopping_ || wake_requested_ || activity_generation_ != generation;
        });
        if (stopping_) return;
        // Activity seen by another pass (DrainNow) while we slept a long idle
        // interval: re-plan, now at the fast rate, instead of sleeping on.
        if (woken && !wake_requested_) continue;
      }
      wake_requested_ = false;
    }
    RunPass();
  }
}

absl::Duration DrainScheduler::NextInterval() const {
  if (options_.fast_poll_interval > absl::ZeroDuration() &&
      clock_.Now() - last_activity_ < options_.active_window) {
    return std::min(options_.fast_poll_interval, options_.poll_interval);
  }
  return options_.poll_interval;
}

void DrainScheduler::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_requested_ = true;
    last_activity_ = clock_.Now();
    ++activity_generation_;
  }
  poll_cv_.notify_all();
}

fetcherpb::PassSummary DrainScheduler::DrainNow(bool wait) {
  std::shared_ptr<Pass> pass = RunPass();
  std::unique_lock<std::mutex> lock(mu_);
  if (wait) pass_cv_.wait(lock, [&] { return stopping_ || pass->finished(); });
  return pass->summary;
}

std::shared_ptr<DrainScheduler::Pass> DrainScheduler::RunPass() {
  std::lock_guard<std::mutex> run_lock(pass_run_mu_);
  auto pass = std::make_shared<Pass>();
  pass->summary.set_started_ms(absl::ToUnixMillis(clock_.Now()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++passes_started_;
    last_pass_ = pass;
  }

  if (options_.may_drain && !options_.may_drain()) {
    std::lock_guard<std::mutex> lock(mu_);
    pass->summary.set_error("not the active instance (drain lease held elsewhere); pass skipped");
    pass->listing_done = true;
    pass->summary.set_finished_ms(absl::ToUnixMillis(clock_.Now()));
    pass_cv_.notify_all();
    return pass;
  }

  Listing listing = ListPending();
  if (options_.alerter != nullptr) {
    if (listing.error.empty()) {
      options_.alerter->OnListing(static_cast<int>(listing.objects.size()), listing.oldest());
    } else {
      options_.alerter->OnListingFailed(listing.error);
    }
  }
  Dispatch(pass, std::move(listing));
  return pass;
}

DrainScheduler::Listing DrainScheduler::ListPending() {
  Listing listing;
  std::set<std::string> seen;  // a listing may repeat a key; process it once
  std::string token;
  do {
    auto page = store_.ListObjectsV2(std::string(kPendingPrefix), token, options_.list_page_size);
    if (!page.ok()) {
      listing.error = absl::StrCat("list pending/: ", page.status().message());
      break;
    }
    for (auto& object : page->objects) {
      if (seen.insert(object.key).second) listing.objects.push_back(std::move(object));
    }
    token = page->truncated ? page->next_continuation_token : "";
  } while (!token.empty());

  // Oldest first: after an outage, mail arrives in the order it was sent.
  std::sort(listing.objects.begin(), listing.objects.end(), [](const auto& a, const auto& b) {
    return a.last_modified != b.last_modified ? a.last_modified < b.last_modified : a.key < b.key;
  });
  return listing;
}

void DrainScheduler::Dispatch(const std::shared_ptr<Pass>& pass, Listing listing) {
  std::lock_guard<std::mutex> lock(mu_);
  pass->summary.set_listed(static_cast<int>(listing.objects.size()));
  if (!listing.objects.empty()) {
    last_activity_ = clock_.Now();
    ++activity_generation_;
    poll_cv_.notify_all();
  }
  if (!listing.error.empty()) {
    pass->summary.set_error(listing.error);
    ++pass_errors_total_;
    NoteError(listing.error);
    log::Warn("pass failed", {{"error", listing.error}});
  } else {
    pending_count_ = static_cast<int>(listing.objects.size());
    oldest_pending_ = listing.oldest();
  }
  // Objects listed before a failed page are dispatched all the same.
  const absl::Time pass_started = absl::FromUnixMillis(pass->summary.started_ms());
  for (auto it = recently_finished_.begin(); it != recently_finished_.end();) {
    it = it->second < pass_started - absl::Minutes(10) ? recently_finished_.erase(it)
                                                       : std::next(it);
  }
  for (auto& object : listing.objects) {
    auto done = recently_finished_.find(object.key);
    if (done != recently_finished_.end() && done->second >= pass_started) {
      pass->summary.set_skipped(pass->summary.skipped() + 1);  // finished while we were listing
      continue;
    }
    if (!in_flight_.insert(object.key).second) {
      pass->summary.set_skipped(pass->summary.skipped() + 1);
      continue;
    }
    ++pass->outstanding;
    queue_.push_back({pass, std::move(object)});
  }
  pass->listing_done = true;
  if (pass->finished()) {
    pass->summary.set_finished_ms(absl::ToUnixMillis(clock_.Now()));
    last_finished_pass_ = pass;
    pass_cv_.notify_all();
  }
  work_cv_.notify_all();
}

void DrainScheduler::WorkerLoop() {
  while (true) {
    WorkItem item;
    int64_t reserved = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      // Admit the body into the memory budget; a message larger than the whole
      // budget runs alone rather than never.
      reserved =
          std::min<int64_t>(std::max<int64_t>(item.object.size, 1), options_.memory_budget_bytes);
      budget_cv_.wait(lock, [&] {
        return stopping_ || budget_in_use_ == 0 ||
               budget_in_use_ + reserved <= options_.memory_budget_bytes;
      });
      if (stopping_) return;
      budget_in_use_ += reserved;
    }
    ItemResult result = pipeline_.Process(item.object);
    {
      std::lock_guard<std::mutex> lock(mu_);
      budget_in_use_ -= reserved;
    }
    budget_cv_.notify_all();
    Finish(item, result);
  }
}

void DrainScheduler::Finish(const WorkItem& item, const ItemResult& result) {
  if (result.outcome == ItemOutcome::kError) {
    log::Warn("message not processed", {{"key", item.object.key}, {"error", result.detail}});
  }
  std::unique_lock<std::mutex> lock(mu_);
  in_flight_.erase(item.object.key);
  if (result.outcome == ItemOutcome::kDelivered || result.outcome == ItemOutcome::kDeadLettered) {
    recently_finished_[item.object.key] = clock_.Now();
    // It has left pending/: keep Status's count current between listings.
    if (item.pass == last_pass_ && pending_count_ > 0) --pending_count_;
  }
  auto& s = item.pass->summary;
  switch (result.outcome) {
    case ItemOutcome::kDelivered:
      s.set_delivered(s.delivered() + 1);
      break;
    case ItemOutcome::kRetryLater:
      s.set_retried(s.retried() + 1);
      break;
    case ItemOutcome::kDeadLettered:
      s.set_dead_lettered(s.dead_lettered() + 1);
      if (item.pass->dead_letter_reasons.size() < 3)
        item.pass->dead_letter_reasons.push_back(result.detail);
      break;
    case ItemOutcome::kSkipped:
      s.set_skipped(s.skipped() + 1);
      break;
    case ItemOutcome::kError:
      s.set_retried(s.retried() + 1);
      NoteError(absl::StrCat(item.object.key, ": ", result.detail));
      break;
  }
  if (--item.pass->outstanding == 0 && item.pass->listing_done) {
    s.set_finished_ms(absl::ToUnixMillis(clock_.Now()));
    last_finished_pass_ = item.pass;
    log::Info("pass finished", {{"listed", s.listed()},
                                {"delivered", s.delivered()},
                                {"retried", s.retried()},
                                {"dead_lettered", s.dead_lettered()},
                                {"skipped", s.skipped()}});
    pass_cv_.notify_all();
    int dead = s.dead_lettered();
    std::vector<std::string> reasons = item.pass->dead_letter_reasons;
    lock.unlock();  // the alert command may take a while
    // The pass's bodies are freed; hand the pages back instead of keeping
    // them in malloc's free lists until the next burst (idle RSS).
    malloc_trim(0);
    if (options_.alerter != nullptr) options_.alerter->OnDeadLetters(dead, reasons);
  }
}

void DrainScheduler::NoteError(std::string error) {
  recent_errors_.push_front(std::move(error));
  if (recent_errors_.size() > 20) recent_errors_.pop_back();
}

fetcherpb::StatusResponse DrainScheduler::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  fetcherpb::StatusResponse out;
  if (last_pass_) *out.mutable_last_pass() = last_pass_->summary;
  out.set_pending_count(pending_count_);
  if (pending_count_ > 0 && oldest_pending_ != absl::InfinitePast()) {
    out.set_oldest_pending_age_s(
        std::max<int64_t>(0, absl::ToInt64Seconds(clock_.Now() - oldest_pending_)));
  }
  out.set_in_flight(static_cast<int>(in_flight_.size()));
  out.set_passes_total(static_cast<int64_t>(passes_started_));
  out.set_pass_errors_total(pass_errors_total_);
  for (const auto& e : recent_errors_) out.add_recent_errors(e);
  if (next_pass_at_ != absl::InfinitePast())
    out.set_next_pass_ms(absl::ToUnixMillis(next_pass_at_));
  out.set_instance_guard(options_.instance_guard);
  return out;
}

}  // namespace pocketmail::fetcher
