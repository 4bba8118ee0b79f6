#include "services/pocketmailctl/ctl_commands.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/server/health_client.h"
#include "common/server/service_host.h"
#include "google/protobuf/util/json_util.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"

namespace pocketmail::ctl {
namespace {

namespace fetcherpb = ::pocketmail::fetcher::v1;
namespace ledgerpb = ::pocketmail::ledger::v1;

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
  for (const auto& c : stats.by_state()) if (c.state() == state) return c.count();
  return 0;
}

}  // namespace

int Status(const CtlContext& ctx) {
  struct Health { std::string name; std::string state; };
  std::vector<Health> health;
  for (const char* name : {"fetcher", "router", "injector", "ledger"}) {
    auto h = server::CheckHealth(server::ConnectToService(ctx.runtime_dir, name), "", absl::Seconds(2));
    health.push_back({name, !h.ok() ? "DOWN" : (*h == server::Health::kServing ? "SERVING" : "NOT_SERVING")});
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
    *ctx.out << "{\"services\":{" << services << "},\"fetcher\":"
             << (fetcher_status.ok() ? Json(fetcher) : "null") << ",\"ledger\":"
             << (ledger_status.ok() ? Json(stats) : "null") << "}\n";
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
                         Ago(p.started_ms()), p.listed(), p.delivered(), p.retried(), p.dead_lettered(),
                         p.error().empty() ? "" : absl::StrCat(" — error: ", p.error()));
    o << "guard      " << fetcher.instance_guard() << "\n";
  } else {
    o << "fetcher    unreachable: " << fetcher_status.error_message() << "\n";
  }
  if (ledger_status.ok()) {
    o << absl::StrFormat("delivered  %d in the last hour, %d in the last day\n", stats.delivered_last_hour(),
                         stats.delivered_last_day());
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
    *ctx.out << absl::StrFormat("listed %d, delivered %d, retried %d, dead-lettered %d, skipped %d%s\n",
                                p.listed(), p.delivered(), p.retried(), p.dead_lettered(), p.skipped(),
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
      *ctx.err << "\r[" << std::string(done, '#') << std::string(width - done, ' ') << "] " << (i + 1) << "/"
               << requests.size() << std::flush;
    }
  }
  if (ctx.terminal && !ctx.json && requests.size() > 1) *ctx.err << "\n";
  if (ctx.json) {
    *ctx.out << Json(total) << "\n";
  } else {
    for (const auto& o : total.outcomes()) {
      *ctx.out << (o.ok() ? "replayed  " : "FAILED    ") << o.key() << (o.ok() ? "" : "  " + o.error()) << "\n";
    }
    *ctx.out << total.replayed() << " replayed, " << total.failed() << " failed\n";
  }
  return total.failed() == 0 ? 0 : 1;
}

}  // namespace pocketmail::ctl
