#include "services/pocketmailctl/ctl_commands.h"

#include <chrono>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/server/health_client.h"
#include "common/server/service_host.h"
#include "google/protobuf/util/json_util.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "pocketmail/router/v1/router.grpc.pb.h"
#include "services/pocketmailctl/backup.h"

namespace pocketmail::ctl {
namespace {

namespace fetcherpb = ::pocketmail::fetcher::v1;
namespace ledgerpb = ::pocketmail::ledger::v1;
namespace routerpb = ::pocketmail::router::v1;

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

void Deadline(grpc::ClientContext* c, int seconds) {
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

std::string Ago(int64_t ms) {
  if (ms <= 0) return "never";
  absl::Duration d = absl::Now() - absl::FromUnixMillis(ms);
  if (d < absl::Minutes(2)) return absl::StrCat(absl::ToInt64Seconds(d), "s ago");
  if (d < absl::Hours(2)) return absl::StrCat(absl::ToInt64Minutes(d), "m ago");
  return absl::StrCat(absl::ToInt64Hours(d), "h ago");
}

std::string Age(int64_t seconds) {
  if (seconds <= 0) return "-";
  if (seconds < 120) return absl::StrCat(seconds, "s");
  if (seconds < 7200) return absl::StrCat(seconds / 60, "m");
  if (seconds < 172800) return absl::StrCat(seconds / 3600, "h");
  return absl::StrCat(seconds / 86400, "d");
}

int64_t CountOf(const ledgerpb::StatsResponse& stats, ledgerpb::State state) {
  for (const auto& c : stats.by_state())
    if (c.state() == state) return c.count();
  return 0;
}

}  // namespace

int Status(const CtlContext& ctx) {
  struct Health {
    std::string name;
    std::string state;
  };
  std::vector<Health> health;
  for (const char* name : {"fetcher", "router", "injector", "ledger"}) {
    auto h =
        server::CheckHealth(server::ConnectToService(ctx.runtime_dir, name), "", absl::Seconds(2));
    health.push_back(
        {name, !h.ok() ? "DOWN" : (*h == server::Health::kServing ? "SERVING" : "NOT_SERVING")});
  }
  fetcherpb::StatusResponse fetcher;
  grpc::Status fetcher_status;
  {
    auto stub = fetcherpb::Fetcher::NewStub(server::ConnectToService(ctx.runtime_dir, "fetcher"));
    grpc::ClientContext c;
    Deadline(&c, 5);
    fetcher_status = stub->Status(&c, fetcherpb::StatusRequest(), &fetcher);
  }
  ledgerpb::StatsResponse stats;
  grpc::Status ledger_status;
  {
    auto stub = ledgerpb::Ledger::NewStub(server::ConnectToService(ctx.runtime_dir, "ledger"));
    grpc::ClientContext c;
    Deadline(&c, 5);
    ledger_status = stub->Stats(&c, ledgerpb::StatsRequest(), &stats);
  }
  bool all_up = true;
  for (const auto& h : health) all_up = all_up && h.state == "SERVING";

  if (ctx.json) {
    std::string services;
    for (const auto& h : health) {
      absl::StrAppend(&services, services.empty() ? "" : ",", "\"", h.name, "\":\"", h.state, "\"");
    }
    *ctx.out << "{\"services\":{" << services
             << "},\"fetcher\":" << (fetcher_status.ok() ? Json(fetcher) : "null")
             << ",\"ledger\":" << (ledger_status.ok() ? Json(stats) : "null") << "}\n";
    return all_up ? 0 : 1;
  }
  auto& o = *ctx.out;
  o << "services   ";
  for (const auto& h : health) o << h.name << " " << h.state << "   ";
  o << "\n";
  if (fetcher_status.ok()) {
    const auto& p = fetcher.last_pass();
    o << absl::StrFormat("pending    %d (oldest %s), in flight %d\n", fetcher.pending_count(),
                         Age(fetcher.oldest_pending_age_s()), fetcher.in_flight());
    o << absl::StrFormat("last pass  %s: listed %d, delivered %d, retried %d, dead-lettered %d%s\n",
                         Ago(p.started_ms()), p.listed(), p.delivered(), p.retried(),
                         p.dead_lettered(),
                         p.error().empty() ? "" : absl::StrCat(" — error: ", p.error()));
    o << "guard      " << fetcher.instance_guard() << "\n";
  } else {
    o << "fetcher    unreachable: " << fetcher_status.error_message() << "\n";
  }
  if (ledger_status.ok()) {
    o << absl::StrFormat("delivered  %d in the last hour, %d in the last day\n",
                         stats.delivered_last_hour(), stats.delivered_last_day());
    o << absl::StrFormat("dead       %d in failed/ (pocketmailctl replay --all-failed)\n",
                         CountOf(stats, ledgerpb::STATE_DEAD_LETTERED));
    o << absl::StrFormat("retrying   %d\n", CountOf(stats, ledgerpb::STATE_RETRY_WAIT));
  } else {
    o << "ledger     unreachable: " << ledger_status.error_message() << "\n";
  }
  return all_up ? 0 : 1;
}

int Drain(const CtlContext& ctx) {
  auto stub = fetcherpb::Fetcher::NewStub(server::ConnectToService(ctx.runtime_dir, "fetcher"));
  grpc::ClientContext c;
  Deadline(&c, 600);
  fetcherpb::DrainNowRequest req;
  req.set_wait(true);
  fetcherpb::DrainNowResponse resp;
  grpc::Status s = stub->DrainNow(&c, req, &resp);
  if (!s.ok()) {
    *ctx.err << "drain: " << s.error_message() << "\n";
    return 1;
  }
  const auto& p = resp.pass();
  if (ctx.json) {
    *ctx.out << Json(resp) << "\n";
  } else {
    *ctx.out << absl::StrFormat(
        "listed %d, delivered %d, retried %d, dead-lettered %d, skipped %d%s\n", p.listed(),
        p.delivered(), p.retried(), p.dead_lettered(), p.skipped(),
        p.error().empty() ? "" : absl::StrCat("; error: ", p.error()));
  }
  return p.error().empty() ? 0 : 1;
}

int Replay(const CtlContext& ctx, const std::vector<std::string>& args) {
  if (args.empty()) {
    *ctx.err << "usage: pocketmailctl replay KEY... | --all-failed\n";
    return 2;
  }
  auto stub = fetcherpb::Fetcher::NewStub(server::ConnectToService(ctx.runtime_dir, "fetcher"));
  std::vector<fetcherpb::ReplayRequest> requests;
  for (const std::string& a : args) {
    fetcherpb::ReplayRequest r;
    if (a == "--all-failed" && ctx.terminal && !ctx.json) {
      // One request per dead letter, so a person watching sees progress.
      grpc::ClientContext c;
      Deadline(&c, 300);
      fetcherpb::ListBucketRequest list;
      list.set_area(fetcherpb::BUCKET_AREA_FAILED);
      list.set_limit(10000);
      fetcherpb::ListBucketResponse failed;
      grpc::Status s = stub->ListBucket(&c, list, &failed);
      if (!s.ok()) {
        *ctx.err << "replay: listing failed/: " << s.error_message() << "\n";
        return 1;
      }
      for (const auto& o : failed.objects()) {
        r.set_key(o.key());
        requests.push_back(r);
      }
      continue;
    }
    if (a == "--all-failed") {
      r.set_all_failed(true);
    } else {
      r.set_key(a);
    }
    requests.push_back(r);
  }
  fetcherpb::ReplayResponse total;
  for (size_t i = 0; i < requests.size(); ++i) {
    grpc::ClientContext c;
    Deadline(&c, 600);
    fetcherpb::ReplayResponse resp;
    grpc::Status s = stub->Replay(&c, requests[i], &resp);
    if (!s.ok()) {
      *ctx.err << "replay: " << s.error_message() << "\n";
      return 1;
    }
    for (const auto& o : resp.outcomes()) *total.add_outcomes() = o;
    total.set_replayed(total.replayed() + resp.replayed());
    total.set_failed(total.failed() + resp.failed());
    if (ctx.terminal && !ctx.json && requests.size() > 1) {
      int width = 30;
      int done = static_cast<int>((i + 1) * width / requests.size());
      *ctx.err << "\r[" << std::string(done, '#') << std::string(width - done, ' ') << "] "
               << (i + 1) << "/" << requests.size() << std::flush;
    }
  }
  if (ctx.terminal && !ctx.json && requests.size() > 1) *ctx.err << "\n";
  if (ctx.json) {
    *ctx.out << Json(total) << "\n";
  } else {
    for (const auto& o : total.outcomes()) {
      *ctx.out << (o.ok() ? "replayed  " : "FAILED    ") << o.key()
               << (o.ok() ? "" : "  " + o.error()) << "\n";
    }
    *ctx.out << total.replayed() << " replayed, " << total.failed() << " failed\n";
  }
  return total.failed() == 0 ? 0 : 1;
}

int Ls(const CtlContext& ctx, const std::vector<std::string>& args) {
  static const std::map<std::string, fetcherpb::BucketArea> kAreas = {
      {"pending", fetcherpb::BUCKET_AREA_PENDING},
      {"processed", fetcherpb::BUCKET_AREA_PROCESSED},
      {"failed", fetcherpb::BUCKET_AREA_FAILED}};
  if (args.size() != 1 || kAreas.count(args[0]) == 0) {
    *ctx.err << "usage: pocketmailctl ls pending|processed|failed\n";
    return 2;
  }
  auto stub = fetcherpb::Fetcher::NewStub(server::ConnectToService(ctx.runtime_dir, "fetcher"));
  grpc::ClientContext c;
  Deadline(&c, 300);
  fetcherpb::ListBucketRequest req;
  req.set_area(kAreas.at(args[0]));
  req.set_with_metadata(true);
  fetcherpb::ListBucketResponse resp;
  grpc::Status s = stub->ListBucket(&c, req, &resp);
  if (!s.ok()) {
    *ctx.err << "ls: " << s.error_message() << "\n";
    return 1;
  }
  if (ctx.json) {
    *ctx.out << Json(resp) << "\n";
    return 0;
  }
  *ctx.out << absl::StrFormat("%-10s %-6s %-32s %s\n", "SIZE", "AGE", "RECIPIENT", "KEY");
  for (const auto& o : resp.objects()) {
    int64_t age_s = absl::ToInt64Seconds(absl::Now() - absl::FromUnixMillis(o.last_modified_ms()));
    *ctx.out << absl::StrFormat("%-10d %-6s %-32s %s%s\n", o.size_bytes(), Age(age_s),
                                o.recipient(), o.key(),
                                o.reason().empty() ? "" : absl::StrCat("  (", o.reason(), ")"));
  }
  *ctx.out << resp.objects_size() << " object(s)" << (resp.truncated() ? " (more not shown)" : "")
           << "\n";
  return 0;
}

int Verify(const CtlContext& ctx) {
  auto fetcher = fetcherpb::Fetcher::NewStub(server::ConnectToService(ctx.runtime_dir, "fetcher"));
  fetcherpb::ListBucketResponse pending;
  {
    grpc::ClientContext c;
    Deadline(&c, 300);
    fetcherpb::ListBucketRequest req;
    req.set_area(fetcherpb::BUCKET_AREA_PENDING);
    req.set_limit(10000);
    grpc::Status s = fetcher->ListBucket(&c, req, &pending);
    if (!s.ok()) {
      *ctx.err << "verify: listing pending/: " << s.error_message() << "\n";
      return 1;
    }
  }
  std::set<std::string> in_bucket;
  for (const auto& o : pending.objects()) in_bucket.insert(o.key());
  auto ledger = ledgerpb::Ledger::NewStub(server::ConnectToService(ctx.runtime_dir, "ledger"));
  std::map<std::string, ledgerpb::State> rows;
  std::string token;
  do {
    grpc::ClientContext c;
    Deadline(&c, 60);
    ledgerpb::ListRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    ledgerpb::ListResponse resp;
    grpc::Status s = ledger->List(&c, req, &resp);
    if (!s.ok()) {
      *ctx.err << "verify: ledger: " << s.error_message() << "\n";
      return 1;
    }
    for (const auto& m : resp.messages()) rows[m.key()] = m.state();
    token = resp.next_page_token();
  } while (!token.empty());

  std::vector<std::string> finished_but_pending, unfinished_but_gone;
  for (const std::string& key : in_bucket) {
    auto it = rows.find(key);
    if (it != rows.end() &&
        (it->second == ledgerpb::STATE_DONE || it->second == ledgerpb::STATE_DEAD_LETTERED ||
         it->second == ledgerpb::STATE_DELIVERED)) {
      finished_but_pending.push_back(
          absl::StrCat(key, " (", ledgerpb::State_Name(it->second), ")"));
    }
  }
  for (const auto& [key, state] : rows) {
    bool unfinished = state == ledgerpb::STATE_PENDING || state == ledgerpb::STATE_RETRY_WAIT ||
                      state == ledgerpb::STATE_INJECTING;
    if (unfinished && !in_bucket.count(key)) {
      unfinished_but_gone.push_back(absl::StrCat(key, " (", ledgerpb::State_Name(state), ")"));
    }
  }
  if (ctx.json) {
    auto list = [](const std::vector<std::string>& v) {
      std::string out;
      for (const auto& s : v) absl::StrAppend(&out, out.empty() ? "" : ",", "\"", s, "\"");
      return absl::StrCat("[", out, "]");
    };
    *ctx.out << "{\"pending_objects\":" << in_bucket.size() << ",\"ledger_rows\":" << rows.size()
             << ",\"finished_but_still_pending\":" << list(finished_but_pending)
             << ",\"unfinished_but_gone\":" << list(unfinished_but_gone) << "}\n";
  } else {
    *ctx.out << in_bucket.size() << " object(s) in pending/, " << rows.size() << " ledger row(s)\n";
    *ctx.out << finished_but_pending.size()
             << " finished in the ledger but still in pending/ (the next pass removes them):\n";
    for (const auto& k : finished_but_pending) *ctx.out << "  " << k << "\n";
    *ctx.out << unfinished_but_gone.size() << " unfinished in the ledger but gone from pending/:\n";
    for (const auto& k : unfinished_but_gone) *ctx.out << "  " << k << "\n";
  }
  return unfinished_but_gone.empty() ? 0 : 1;
}

int Refresh(const CtlContext& ctx) {
  auto stub = routerpb::Router::NewStub(server::ConnectToService(ctx.runtime_dir, "router"));
  grpc::ClientContext c;
  Deadline(&c, 30);  // the account command's own timeout is 10 s by default
  routerpb::RefreshResponse resp;
  grpc::Status s = stub->Refresh(&c, routerpb::RefreshRequest(), &resp);
  if (!s.ok()) {
    *ctx.err << "refresh: " << s.error_message() << "\n";
    return 1;
  }
  if (ctx.json) {
    *ctx.out << Json(resp) << "\n";
  } else {
    *ctx.out << resp.mailbox_count() << " mailbox(es), version " << resp.version() << "\n";
  }
  return 0;
}

int BackupCmd(const CtlContext& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1) {
    *ctx.err << "usage: pocketmailctl backup DIR\n";
    return 2;
  }
  auto report = Backup({ctx.ledger_db, ctx.maddy_dir}, args[0]);
  if (!report.ok()) {
    *ctx.err << "backup: " << report.status().message() << "\n";
    return 1;
  }
  if (ctx.json) {
    *ctx.out << absl::StrFormat(
        "{\"dir\":\"%s\",\"files\":[\"%s\"],\"maddy_snapshot_ms\":%d,\"ledger_snapshot_ms\":%d,"
        "\"ledger_last_seq\":%d,\"delivered_between_snapshots\":%d}\n",
        args[0], absl::StrJoin(report->files, "\",\""), report->maddy_snapshot_ms,
        report->ledger_snapshot_ms, report->ledger_last_seq, report->delivered_between_snapshots);
    return 0;
  }
  *ctx.out << "backed up " << absl::StrJoin(report->files, ", ") << " to " << args[0] << "\n";
  if (report->delivered_between_snapshots > 0) {
    *ctx.out << report->delivered_between_snapshots
             << " delivery(ies) landed between the Maddy and ledger snapshots; see STAMP\n";
  }
  return 0;
}

int RestoreCmd(const CtlContext& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1) {
    *ctx.err << "usage: pocketmailctl restore DIR [--force]\n";
    return 2;
  }
  auto health = server::CheckHealth(server::ConnectToService(ctx.runtime_dir, "ledger"), "",
                                    absl::Seconds(1));
  if (health.ok() && !ctx.force) {
    *ctx.err
        << "restore: the ledger is running; stop the services (and Maddy) first, or pass --force\n";
    return 1;
  }
  auto report = Restore(args[0], {ctx.ledger_db, ctx.maddy_dir}, ctx.force);
  if (!report.ok()) {
    *ctx.err << "restore: " << report.status().message() << "\n";
    return 1;
  }
  if (ctx.json) {
    *ctx.out << absl::StrFormat("{\"restored\":[\"%s\"],\"ledger_snapshot_ms\":%d}\n",
                                absl::StrJoin(report->files, "\",\""), report->ledger_snapshot_ms);
    return 0;
  }
  *ctx.out << "restored " << absl::StrJoin(report->files, ", ") << " (ledger snapshot of "
           << absl::FormatTime(absl::FromUnixMillis(report->ledger_snapshot_ms)) << ")\n";
  return 0;
}

}  // namespace pocketmail::ctl
