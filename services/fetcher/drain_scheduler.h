// When and how many: the poll loop over pending/ and the bounded pool that
// runs MessagePipeline::Process for each listed object.
//
// A pass lists all of pending/ (following continuation tokens), then hands
// each key not already in flight to the pool. The next pass may start while
// slow messages of the previous one are still running; they are skipped, not
// started twice. A byte budget bounds the message bodies held in memory at
// once (always admitting at least one message, however large).
//
// Thread-safe. Start() once; Stop() joins everything.
#ifndef POCKETMAIL_SERVICES_FETCHER_DRAIN_SCHEDULER_H_
#define POCKETMAIL_SERVICES_FETCHER_DRAIN_SCHEDULER_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/s3/object_store.h"
#include "common/time/clock.h"
#include "pocketmail/fetcher/v1/fetcher.pb.h"
#include "services/fetcher/alerts.h"
#include "services/fetcher/message_pipeline.h"

namespace pocketmail::fetcher {

struct SchedulerOptions {
  absl::Duration poll_interval = absl::Seconds(180);  // MAIL_POLL, when idle
  int concurrency = 4;                                // FETCH_CONCURRENCY
  int64_t memory_budget_bytes = 32 << 20;             // bodies in flight, summed
  int list_page_size = 1000;
  Alerter* alerter = nullptr;  // not owned; told about listings and dead letters
  // Checked before each pass; false skips it (the drain lease was lost).
  std::function<bool()> may_drain;
  std::string instance_guard;  // reported in Status
  // Adaptive polling: mail comes in bursts (a thread, a retry storm after an
  // outage), so after any activity — a listing that found objects, or a wake
  // ping — poll every `fast_poll_interval` for `active_window`, then fall back
  // to poll_interval. Idle cost stays at one LIST per MAIL_POLL.
  absl::Duration fast_poll_interval = absl::Seconds(3);  // FAST_POLL_S (0 = off)
  absl::Duration active_window = absl::Minutes(5);       // ACTIVE_WINDOW_S
  Clock* clock = RealClock::Get();  // not owned; the poll loop's waits and every timestamp
};

class DrainScheduler {
 public:
  DrainScheduler(s3::ObjectStore& store, MessagePipeline& pipeline, SchedulerOptions options);
  ~DrainScheduler();

  // Starts the workers and, unless `poll` is false, the periodic poll loop.
  void Start(bool poll = true);
  void Stop();

  // Runs a pass now (or right after the one being listed) and, when `wait`,
  // returns once every object it dispatched has been processed.
  ::pocketmail::fetcher::v1::PassSummary DrainNow(bool wait);

  // Asks the poll loop to start a pass now, without waiting for it (the wake
  // ping's path: it must answer the Worker at once).
  void Wake();

  ::pocketmail::fetcher::v1::StatusResponse Status() const;

 private:
  struct Pass;
  struct WorkItem {
    std::shared_ptr<Pass> pass;
    s3::ObjectSummary object;
  };
  // One listing of pending/: each key once, oldest first, and the error that
  // cut it short ("" = complete).
  struct Listing {
    std::vector<s3::ObjectSummary> objects;
    std::string error;
    absl::Time oldest() const {
      return objects.empty() ? absl::InfinitePast() : objects.front().last_modified;
    }
  };

  void PollLoop();
  absl::Duration NextInterval() const;  // REQUIRES: mu_ held
  void NoteError(std::string error);    // REQUIRES: mu_ held; keeps the newest 20
  void WorkerLoop();
  // A pass: list pending/, then dispatch what it found.
  std::shared_ptr<Pass> RunPass();
  Listing ListPending();  // REQUIRES: mu_ not held
  // Records the listing in Status and queues each key not in flight or just
  // finished; `pass` is done listing afterwards.
  void Dispatch(const std::shared_ptr<Pass>& pass, Listing listing);
  void Finish(const WorkItem& item, const ItemResult& result);

  s3::ObjectStore& store_;
  MessagePipeline& pipeline_;
  SchedulerOptions options_;
  Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for items
  std::condition_variable poll_cv_;  // poll loop waits for the interval or a wake-up
  std::condition_variable pass_cv_;  // DrainNow(wait) waits for its pass
  std::condition_variable budget_cv_;
  std::deque<WorkItem> queue_;
  std::set<std::string> in_flight_;
  // Keys finished recently, with when: a listing that started before a key
  // was delivered and deleted still names it, and it must not be re-dispatched.
  std::map<std::string, absl::Time> recently_finished_;
  int64_t budget_in_use_ = 0;
  bool stopping_ = false;
  bool wake_requested_ = false;
  uint64_t passes_started_ = 0;
  std::shared_ptr<Pass> last_pass_;
  std::shared_ptr<Pass> last_finished_pass_;
  int pending_count_ = 0;
  absl::Time oldest_pending_ = absl::InfinitePast();
  int64_t pass_errors_total_ = 0;
  std::deque<std::string> recent_errors_;
  absl::Time next_pass_at_ = absl::InfinitePast();
  absl::Time last_activity_ = absl::InfinitePast();
  uint64_t activity_generation_ = 0;  // bumped with last_activity_: re-plan the next poll
  std::mutex pass_run_mu_;            // one listing at a time

  std::vector<std::thread> workers_;
  std::thread poller_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_DRAIN_SCHEDULER_H_
