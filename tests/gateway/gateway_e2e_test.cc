// gateway-e2e: pocketmail as the webmail/auth gateway sees it, against real
// Maddy and the four services, over 127.0.0.1 TCP with the gateway's token,
// called the way a Python (grpcio) gateway calls them (tests/gateway/gateway.py).
//
//   - JIT: the gateway creates carol's mailbox (maddy creds create +
//     imap-acct create) and calls Router.Refresh; her mail is routed to her
//     at once, and WatchDeliveries brings each delivery with its sender,
//     subject and mailbox within 1 s of the ledger recording it (the commit
//     that follows Maddy's 250 over LMTP). dave's mailbox, made without
//     Refresh, routes within 2 s through the account-list watch.
//   - List by mailbox pages through 250+ rows: no gaps, no repeats.
//   - Stats matches the counts.
//   - The ledger is SIGKILLed in the middle of a burst: the gateway's watch
//     resumes from the last seq it saw and loses and repeats nothing.
//   - Every write RPC is refused with the gateway token (PERMISSION_DENIED),
//     every call without a token is UNAUTHENTICATED.
//
// Prints: gateway-e2e: deliveries=N events=N fields_complete=N scoped_denied=K
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/process/shell_command.h"
#include "gtest/gtest.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

constexpr const char* kDomain = "example.org";
constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with python3-grpcio
const std::vector<std::string> kApis = {"ledger", "router", "fetcher", "injector"};

std::string RandomHex(size_t bytes) {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  urandom.read(raw.data(), static_cast<std::streamsize>(bytes));
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) hex += {kHex[c >> 4], kHex[c & 15]};
  return hex;
}

// A row or event as gateway.py prints it (message_line there).
struct Row {
  int64_t seq = 0;
  std::string key, state, mailbox, recipient, sender, sha256, subject;
  int64_t received_ms = 0, delivered_ms = 0;
};

Row ParseRow(const std::vector<std::string>& f, size_t at) {
  Row r;
  if (f.size() < at + 10) return r;
  absl::SimpleAtoi(f[at], &r.seq);
  r.key = f[at + 1];
  r.state = f[at + 2];
  r.mailbox = f[at + 3];
  r.recipient = f[at + 4];
  r.sender = f[at + 5];
  r.sha256 = f[at + 6];
  absl::SimpleAtoi(f[at + 7], &r.received_ms);
  absl::SimpleAtoi(f[at + 8], &r.delivered_ms);
  r.subject = f[at + 9];
  return r;
}

// Empty when a row carries everything the gateway shows: for whom, from
// whom, about what, which bytes, when.
std::string MissingFields(const Row& r, const StoredMessage& m, const std::string& subject) {
  std::string missing;
  if (r.recipient != m.to) absl::StrAppend(&missing, " recipient=", r.recipient);
  if (r.sender != m.from) absl::StrAppend(&missing, " sender=", r.sender);
  if (r.subject != subject) absl::StrAppend(&missing, " subject=", r.subject);
  if (r.sha256 != m.key.substr(8, 64)) absl::StrAppend(&missing, " sha256=", r.sha256);
  if (r.received_ms <= 0) absl::StrAppend(&missing, " received_ms=", r.received_ms);
  return missing;
}

class GatewayE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    operator_token_ = scratch_.path() + "/operator-token";
    gateway_token_ = scratch_.path() + "/gateway-token";
    WriteWholeFile(operator_token_, RandomHex(32) + "\n", 0600);
    WriteWholeFile(gateway_token_, RandomHex(32) + "\n", 0600);
    HarnessOptions options;
    options.mail_store = MailStore::kMaddyLmtp;
    options.mailboxes = {"inbox@example.org", "admin@example.org", "alice@example.org",
                         "bob@example.org"};
    options.service_env = {{"POCKETMAIL_TOKEN_FILE", operator_token_},
                           {"POCKETMAIL_GATEWAY_TOKEN_FILE", gateway_token_},
                           {"RETRY_BASE_S", "1"},
                           {"RETRY_MAX_S", "2"}};
    for (const std::string& api : kApis) {
      std::string upper = api;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      tcp_[api] = absl::StrCat("127.0.0.1:", PickFreePort());
      options.service_env[absl::StrCat("POCKETMAIL_", upper, "_TCP")] = tcp_[api];
    }
    auto h = PipelineHarness::Start(options);
    ASSERT_TRUE(h.ok()) << h.status();
    harness_ = std::move(*h);
    // The gateway runs Maddy's own commands: the ones the router lists accounts with.
    std::vector<std::string> accounts_cmd =
        absl::StrSplit(harness_->maddy()->service_settings().at("MAIL_ACCOUNTS_CMD"), ' ');
    ASSERT_GE(accounts_cmd.size(), 3u);
    maddy_bin_ = accounts_cmd[0];
    maddy_config_ = accounts_cmd[2];
  }

  std::vector<std::string> GatewayArgv() const {
    std::vector<std::string> argv = {kPython,        RunfilePath("tests/gateway/gateway.py"),
                                     "--proto-dir",  ProtoDir(),
                                     "--token-file", gateway_token_};
    for (const auto& [api, address] : tcp_) argv.insert(argv.end(), {"--" + api, address});
    return argv;
  }

  static std::string ProtoDir() {
    std::string ledger = RunfilePath("proto/pocketmail/ledger/v1/ledger.proto");
    return ledger.substr(0,
                         ledger.size() - std::string("/pocketmail/ledger/v1/ledger.proto").size());
  }

  // One gateway.py subcommand; its output split into tab-separated lines.
  std::vector<std::vector<std::string>> Gateway(const std::vector<std::string>& args,
                                                const std::string& stdin_line = "") {
    std::vector<std::string> words;
    for (const std::string& w : GatewayArgv()) words.push_back(ShellQuote(w));
    for (const std::string& w : args) words.push_back(ShellQuote(w));
    process::CommandOptions options;
    options.timeout = absl::Seconds(120);
    options.max_stderr_bytes = 64 << 10;
    std::string command = absl::StrJoin(words, " ");
    if (!stdin_line.empty()) {
      // A password reaches the gateway on stdin, from the environment: never argv.
      options.extra_env["PM_STDIN_LINE"] = stdin_line;
      command = absl::StrCat("printf '%s\\n' \"$PM_STDIN_LINE\" | ", command);
    }
    auto result = process::RunShellCommand(command, options);
    std::vector<std::vector<std::string>> lines;
    if (!result.ok() || !result->succeeded()) {
      ADD_FAILURE() << "gateway.py " << absl::StrJoin(args, " ") << " failed: "
                    << (result.ok() ? result->stdout_text + result->stderr_text
                                    : result.status().ToString());
      return lines;
    }
    for (absl::string_view line : absl::StrSplit(result->stdout_text, '\n', absl::SkipEmpty())) {
      lines.push_back(absl::StrSplit(line, '\t'));
    }
    return lines;
  }

  std::string Resolve(const std::string& address) {
    for (const auto& f : Gateway({"resolve", address})) {
      if (f.size() == 3 && f[0] == "resolved") return f[1] + " " + f[2];
    }
    return "";
  }

  // What the gateway's watch has written so far, by line kind.
  std::vector<std::vector<std::string>> WatchLines(const std::string& kind) const {
    std::vector<std::vector<std::string>> out;
    for (absl::string_view line :
         absl::StrSplit(ReadWholeFile(events_path_), '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, '\t');
      if (!f.empty() && f[0] == kind) out.push_back(std::move(f));
    }
    return out;
  }

  // Waits until the watch has seen every key in `keys`.
  bool WaitForEvents(const std::set<std::string>& keys, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      std::set<std::string> seen;
      for (const auto& f : WatchLines("event")) seen.insert(ParseRow(f, 2).key);
      if (std::includes(seen.begin(), seen.end(), keys.begin(), keys.end())) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  absl::StatusOr<StoredMessage> Send(const std::string& to, int n) {
    std::string subject = absl::StrCat("Gateway test ", n, " for ", to);
    std::string raw = absl::StrCat("From: Sender ", n, " <sender", n, "@outside.test>\r\nTo: ", to,
                                   "\r\nSubject: ", subject, "\r\nMessage-ID: <gw", n,
                                   "@outside.test>\r\n\r\nbody ", n, "\r\n");
    // As the Worker stores it: the subject is in the metadata too.
    auto m = harness_->PutPending(raw, to, absl::StrCat("sender", n, "@outside.test"), false,
                                  {{"subject", subject}});
    if (m.ok()) {
      subjects_[m->key] = subject;
      sent_[m->key] = *m;
    }
    return m;
  }

  ScratchDir scratch_;
  std::string operator_token_, gateway_token_, maddy_bin_, maddy_config_;
  std::map<std::string, std::string> tcp_;
  std::unique_ptr<PipelineHarness> harness_;
  std::string events_path_;
  std::map<std::string, std::string> subjects_;
  std::map<std::string, StoredMessage> sent_;
};

TEST_F(GatewayE2E, TheGatewaysViewOverTcpWithItsToken) {
  PipelineHarness& h = *harness_;
  events_path_ = scratch_.path() + "/events.tsv";
  std::vector<std::string> watch_argv = GatewayArgv();
  watch_argv.insert(watch_argv.end(), {"watch", "--out", events_path_});
  auto watcher = PeerProcess::Start(watch_argv, {});
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  // --- JIT: carol's first login creates her mailbox, then Refresh ---
  const std::string carol = "carol@example.org";
  auto created = Gateway(
      {"provision", carol, "--maddy", maddy_bin_, "--maddy-config", maddy_config_, "--refresh"},
      MaddyPeer::TestPassword(carol));
  ASSERT_EQ(created.size(), 2u);
  EXPECT_EQ(created[1][0], "refreshed");
  EXPECT_EQ(Resolve(carol), carol + " RULE_EXACT");  // at once: no wait
  auto welcome = Send(carol, 0);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
  ASSERT_TRUE(WaitForEvents({welcome->key}, absl::Seconds(10)));
  {
    Row event = ParseRow(WatchLines("event").front(), 2);
    EXPECT_EQ(event.key, welcome->key);
    EXPECT_EQ(event.mailbox, carol);
    EXPECT_EQ(event.sender, "sender0@outside.test");
    EXPECT_EQ(event.subject, subjects_[welcome->key]);
  }
  auto in_maddy = h.maddy()->ReadMailbox(carol);
  ASSERT_TRUE(in_maddy.ok()) << in_maddy.status();
  EXPECT_EQ(in_maddy->size(), 1u);

  // --- JIT without Refresh: the router's watch on imapsql.db routes dave ---
  const std::string dave = "dave@example.org";
  ASSERT_FALSE(Gateway({"provision", dave, "--maddy", maddy_bin_, "--maddy-config", maddy_config_},
                       MaddyPeer::TestPassword(dave))
                   .empty());
  absl::Time made = absl::Now();
  std::string dave_route;
  while ((dave_route = Resolve(dave)) != dave + " RULE_EXACT" &&
         absl::Now() - made < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  const absl::Duration dave_after = absl::Now() - made;
  EXPECT_EQ(dave_route, dave + " RULE_EXACT");
  EXPECT_LE(dave_after, absl::Seconds(2)) << "routed after " << dave_after;

  // --- a day's mail: 250 for carol, some for others ---
  for (int n = 1; n < 250; ++n) ASSERT_TRUE(Send(carol, n).ok());
  for (int n = 250; n < 280; ++n) ASSERT_TRUE(Send(n % 2 ? "alice@example.org" : dave, n).ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(5)).ok());
  std::set<std::string> before_restart;
  for (const auto& [key, m] : sent_) before_restart.insert(key);
  ASSERT_TRUE(WaitForEvents(before_restart, absl::Seconds(20)));
  int64_t worst_latency_ms = 0;
  for (const auto& f : WatchLines("event")) {
    int64_t received = 0;
    absl::SimpleAtoi(f[1], &received);
    worst_latency_ms = std::max(worst_latency_ms, received - ParseRow(f, 2).delivered_ms);
  }
  EXPECT_LE(worst_latency_ms, 1000)
      << "an event came more than 1 s after its delivery was recorded";

  // --- List by mailbox, in pages ---
  std::vector<std::string> listed;
  int pages = 0;
  for (const auto& f : Gateway({"list", "--mailbox", carol, "--page-size", "37"})) {
    if (f[0] == "row") listed.push_back(ParseRow(f, 1).key);
    if (f[0] == "pages") absl::SimpleAtoi(f[1], &pages);
  }
  std::set<std::string> carols;
  for (const auto& [key, m] : sent_) {
    if (m.to == carol) carols.insert(key);
  }
  std::set<std::string> listed_once(listed.begin(), listed.end());
  EXPECT_EQ(listed.size(), 250u);
  EXPECT_EQ(listed_once.size(), listed.size()) << "a row was listed twice";
  EXPECT_EQ(listed_once, carols) << "List by mailbox has gaps or strangers";
  EXPECT_EQ(pages, 7);  // 250 rows at 37 a page

  // --- Stats ---
  std::map<std::string, int64_t> stats;
  for (const auto& f : Gateway({"stats", "--mailbox", carol})) {
    int64_t n = 0;
    if (f.size() >= 2 && absl::SimpleAtoi(f.back(), &n)) stats[f[0] == "state" ? f[1] : f[0]] = n;
  }
  EXPECT_EQ(stats["STATE_DONE"], 250);
  EXPECT_EQ(stats["total"], 250);
  EXPECT_EQ(stats["delivered_last_hour"], 250);

  // --- the ledger dies in the middle of a burst ---
  std::set<std::string> burst;
  for (int n = 280; n < 340; ++n) {
    auto m = Send(carol, n);
    ASSERT_TRUE(m.ok());
    burst.insert(m->key);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (WatchLines("event").size() < sent_.size() - burst.size() + 15 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const size_t events_before_kill = WatchLines("event").size();
  h.KillService("ledger");
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(h.StartService("ledger").ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(2)).ok());
  std::set<std::string> everything;
  for (const auto& [key, m] : sent_) everything.insert(key);
  EXPECT_TRUE(WaitForEvents(everything, absl::Seconds(30)));
  EXPECT_FALSE(WatchLines("reconnect").empty()) << "the watch never saw the ledger go";
  const size_t resumed = WatchLines("event").size() - events_before_kill;

  // --- every event once, in seq order, with the whole record ---
  std::map<std::string, int> times_seen;
  int64_t last_seq = 0;
  bool ordered = true;
  int fields_complete = 0;
  for (const auto& f : WatchLines("event")) {
    Row e = ParseRow(f, 2);
    if (e.seq <= last_seq) ordered = false;
    last_seq = e.seq;
    if (++times_seen[e.key] > 1) continue;
    auto it = sent_.find(e.key);
    if (it == sent_.end()) {
      ADD_FAILURE() << "an event for a message nobody sent: " << e.key;
      continue;
    }
    std::string missing = MissingFields(e, it->second, subjects_[e.key]);
    if (e.mailbox != it->second.to) {  // every recipient here is an exact mailbox
      absl::StrAppend(&missing, " mailbox=", e.mailbox);
    }
    if (missing.empty()) {
      ++fields_complete;
    } else {
      ADD_FAILURE() << e.key << ":" << missing;
    }
  }
  int repeats = 0;
  for (const auto& [key, n] : times_seen) repeats += n - 1;
  EXPECT_TRUE(ordered) << "events out of seq order";
  EXPECT_EQ(repeats, 0);
  EXPECT_EQ(times_seen.size(), sent_.size());
  watcher->Stop(absl::Seconds(5));

  // --- the gateway token reads, and writes nothing ---
  int writes = 0, scoped_denied = 0, reads_ok = 0, reads = 0;
  for (const auto& f : Gateway({"scope-check", "--operator-token-file", operator_token_})) {
    if (f.size() != 6 || f[0] != "rpc") continue;
    const std::string& rpc = f[1];
    EXPECT_EQ(f[4], "UNAUTHENTICATED") << rpc << " without a token";
    if (f[2] == "write") {
      ++writes;
      if (f[3] == "PERMISSION_DENIED") {
        ++scoped_denied;
      } else {
        ADD_FAILURE() << rpc << " with the gateway token: " << f[3];
      }
    } else {
      ++reads;
      if (f[3] != "PERMISSION_DENIED" && f[3] != "UNAUTHENTICATED") ++reads_ok;
      EXPECT_NE(f[3], "PERMISSION_DENIED") << rpc << " is a gateway read";
    }
    if (f[5] != "-") {
      EXPECT_EQ(f[5], "authorised") << rpc << " with the operator token";
    }
  }
  EXPECT_EQ(writes, 10);
  EXPECT_EQ(reads, 8);
  EXPECT_EQ(reads_ok, reads);

  const size_t deliveries = sent_.size();
  std::cout << "gateway-e2e: deliveries=" << deliveries << " events=" << times_seen.size()
            << " fields_complete=" << fields_complete << " scoped_denied=" << scoped_denied
            << " dave_routed_ms=" << absl::ToInt64Milliseconds(dave_after)
            << " worst_event_latency_ms=" << worst_latency_ms
            << " events_after_ledger_kill=" << resumed << std::endl;
  EXPECT_EQ(fields_complete, static_cast<int>(deliveries));
  EXPECT_EQ(scoped_denied, writes);
}

}  // namespace
}  // namespace pocketmail::testing
