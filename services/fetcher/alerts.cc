#include "services/fetcher/alerts.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/process/shell_command.h"

namespace pocketmail::fetcher {
namespace {

constexpr char kBacklog[] = "backlog";
constexpr char kPassFailures[] = "pass_failures";

std::string Age(absl::Duration d) {
  int64_t hours = absl::ToInt64Hours(d);
  if (hours >= 48) return absl::StrCat(hours / 24, " days");
  if (hours >= 1) return absl::StrCat(hours, " hours");
  return absl::StrCat(absl::ToInt64Minutes(d), " minutes");
}

}  // namespace

Alerter::Alerter(AlertOptions options) : options_(std::move(options)) {
  if (options_.host_label.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options_.host_label = absl::StrCat("pocketmail on ", host);
  }
}

std::string Alerter::SentinelPath(const std::string& kind) const {
  return absl::StrCat(options_.sentinel_dir, "/alert-", kind, ".sent");
}

bool Alerter::SentinelExists(const std::string& kind) const {
  struct stat st;
  return !options_.sentinel_dir.empty() && stat(SentinelPath(kind).c_str(), &st) == 0;
}

void Alerter::WriteSentinel(const std::string& kind, const std::string& message) {
  if (options_.sentinel_dir.empty()) return;
  std::ofstream(SentinelPath(kind)) << message << "\n";
}

void Alerter::RemoveSentinel(const std::string& kind) {
  if (!options_.sentinel_dir.empty()) unlink(SentinelPath(kind).c_str());
}

bool Alerter::Send(const std::string& kind, const std::string& message) {
  std::string text = absl::StrCat(options_.host_label, ": ", message);
  log::Warn("alert", {{"kind", kind}, {"message", text}});
  sent_.push_back(absl::StrCat(kind, ": ", text));
  if (options_.command.empty()) return true;
  process::CommandOptions run;
  run.timeout = absl::Seconds(30);
  run.extra_env = {{"MAIL_ALERT_MSG", text}, {"MAIL_ALERT_KIND", kind}};
  auto result = process::RunShellCommand(options_.command, run);
  if (!result.ok() || !result->succeeded()) {
    log::Error(
        "alert command failed; will retry",
        {{"kind", kind},
         {"error", result.ok() ? absl::StrCat("exit ", result->exit_code, ": ", result->stderr_text)
                               : std::string(result.status().message())}});
    return false;
  }
  return true;
}

void Alerter::OnListing(int pending_count, absl::Time oldest) {
  std::lock_guard<std::mutex> lock(mu_);
  if (consecutive_failures_ > 0 && SentinelExists(kPassFailures)) {
    if (Send("pass_recovered", "listing pending/ works again")) RemoveSentinel(kPassFailures);
  }
  consecutive_failures_ = 0;
  absl::Duration age = pending_count > 0 ? options_.clock->Now() - oldest : absl::ZeroDuration();
  if (pending_count > 0 && age > options_.backlog_age) {
    if (!SentinelExists(kBacklog)) {
      std::string message =
          absl::StrCat(pending_count, " message(s) waiting in pending/, the oldest for ", Age(age),
                       ". R2 deletes pending/ objects after ~30 days: ",
                       "check the phone's services and credentials.");
      if (Send(kBacklog, message)) WriteSentinel(kBacklog, message);
    }
  } else if (SentinelExists(kBacklog)) {
    if (Send("backlog_cleared", "the pending/ backlog has cleared")) RemoveSentinel(kBacklog);
  }
}

void Alerter::OnListingFailed(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  ++consecutive_failures_;
  if (consecutive_failures_ >= options_.pass_failures && !SentinelExists(kPassFailures)) {
    std::string message =
        absl::StrCat(consecutive_failures_, " passes in a row could not list pending/: ", error);
    if (Send(kPassFailures, message)) WriteSentinel(kPassFailures, message);
  }
}

void Alerter::OnDeadLetters(int count, const std::vector<std::string>& sample_reasons) {
  if (count <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  Send("dead_letters",
       absl::StrCat(count, " message(s) moved to failed/ (replay with `pocketmailctl replay`): ",
                    absl::StrJoin(sample_reasons, "; ")));
}

std::vector<std::string> Alerter::sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

}  // namespace pocketmail::fetcher
