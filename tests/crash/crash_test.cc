// The crash test: a backlog drains through the four service processes while
// a randomly chosen service is SIGKILLed at random moments and restarted —
// including inside the window between the injector's final "." and the
// server's reply (the SMTP peer holds that reply). Afterwards every message is
// counted in the IMAP store (Dovecot over the Maildirs the SMTP peer wrote).
//
// With CRASH_MAILSTORE=maddy the mail store is real Maddy (set up by the
// installer, delivered into over LMTP) instead of the SMTP stand-in and
// Dovecot. The injector then reaches Maddy's socket through the fault proxy,
// which holds the reply to the final dot (hold_after_dot_ms) for the window
// kills, and Maddy itself is among the victims.
//
// Prints one line:
//   crash-test: messages=N kills=K lost=L duplicates=D ambiguous=A probed=P
//   (maddy-crash-test: ... with CRASH_MAILSTORE=maddy)
// where ambiguous counts deliveries the ledger could not confirm directly and
// probed those the delivery probe settled. Every mailbox has probe
// credentials here, so the goal is lost=0 and duplicates=0.
//
// Size: CRASH_MESSAGES / CRASH_KILLS (environment); the README test command
// runs the short form, `crash_test_long` the full 1,000 messages / 60 kills.
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/imap/imap_client.h"
#include "gtest/gtest.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/peers/fault_proxy/fault_proxy.h"

namespace pocketmail::testing {
namespace {

namespace ledgerpb = ::pocketmail::ledger::v1;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  int out;
  return v != nullptr && absl::SimpleAtoi(v, &out) ? out : fallback;
}

// How many times each trace key appears in each mailbox's INBOX, over IMAP.
absl::StatusOr<std::map<std::string, int>> CountInImap(const PipelineHarness& h,
                                                       const std::vector<std::string>& mailboxes) {
  std::map<std::string, int> counts;
  for (const std::string& mailbox : mailboxes) {
    imap::ClientOptions o;
    o.port = h.imap_port();
    auto client = imap::ImapClient::Connect(o, absl::Now() + absl::Minutes(2));
    if (!client.ok()) return client.status();
    if (absl::Status s = (*client)->Login(mailbox, h.ImapPassword(mailbox)); !s.ok()) return s;
    auto info = (*client)->Examine("INBOX");
    if (!info.ok()) return info.status();
    if (info->exists == 0) continue;
    auto seqs = (*client)->SearchHeader("X-Pocketmail-Key", "pending/");
    if (!seqs.ok()) return seqs.status();
    if (seqs->size() != info->exists) {
      return absl::DataLossError(absl::StrCat(mailbox, ": ", info->exists, " messages but ",
                                              seqs->size(), " carry a trace header"));
    }
    auto headers = (*client)->FetchHeaderField(*seqs, "X-Pocketmail-Key");
    if (!headers.ok()) return headers.status();
    for (const auto& [seq, raw] : *headers) {
      absl::string_view v = absl::StripAsciiWhitespace(raw);
      absl::ConsumePrefix(&v, "X-Pocketmail-Key:");
      ++counts[std::string(absl::StripAsciiWhitespace(v))];
    }
    (void)(*client)->Logout();
  }
  return counts;
}

std::vector<ledgerpb::Message> AllLedgerRows(PipelineHarness& h) {
  auto stub = ledgerpb::Ledger::NewStub(h.Channel("ledger"));
  std::vector<ledgerpb::Message> rows;
  std::string token;
  do {
    grpc::ClientContext ctx;
    ledgerpb::ListRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    ledgerpb::ListResponse resp;
    if (!stub->List(&ctx, req, &resp).ok()) break;
    for (const auto& m : resp.messages()) rows.push_back(m);
    token = resp.next_page_token();
  } while (!token.empty());
  return rows;
}

TEST(CrashTest, EveryMessageArrivesExactlyOnceDespiteKills) {
  const int messages = EnvInt("CRASH_MESSAGES", 300);
  const int target_kills = EnvInt("CRASH_KILLS", 20);
  HarnessOptions options;
  options.with_imap = true;
  // CRASH_COMBINED=1: the one pocketmaild process instead of four; every
  // kill below then takes all four services down at once.
  options.combined = EnvInt("CRASH_COMBINED", 0) != 0;
  const char* store = std::getenv("CRASH_MAILSTORE");
  const bool maddy = store != nullptr && std::string(store) == "maddy";
  options.mail_store = maddy ? MailStore::kMaddyLmtp : MailStore::kSmtpStandIn;
  options.start_services = !maddy;  // with Maddy: the proxy goes in between first
  options.service_env = {{"RETRY_BASE_S", "0.2"},
                         {"RETRY_MAX_S", "2"},
                         {"PROBE_DELAY_S", "1"},
                         {"MAIL_INJECT_TIMEOUT_S", "5"},
                         {"FETCH_CONCURRENCY", "4"}};
  auto started = PipelineHarness::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  PipelineHarness& h = **started;
  std::unique_ptr<FaultProxy> lmtp_proxy;
  if (maddy) {
    auto proxy = FaultProxy::StartUnix(h.maddy()->lmtp_socket(), h.scratch() + "/lmtp-proxy.sock");
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    lmtp_proxy = std::move(*proxy);
    h.SetServiceEnv("MAIL_LMTP_SOCKET", lmtp_proxy->socket_path());
    for (const char* name : PipelineHarness::kServices)
      ASSERT_TRUE(h.StartService(name).ok()) << name;
  }
  // Holds (seconds > 0) or releases (0) the store's reply to the final dot.
  auto hold_final_reply = [&](double seconds) {
    if (lmtp_proxy) {
      ASSERT_TRUE(
          lmtp_proxy->Set(absl::StrCat("hold_after_dot_ms=", static_cast<int>(seconds * 1000)))
              .ok());
    } else {
      ASSERT_EQ(*h.SmtpControl(absl::StrCat("SET hold_s=", seconds)), "OK");
    }
  };

  std::mt19937 rng(EnvInt("CRASH_SEED", 1124));
  const std::vector<std::string> recipients = {"alice@example.org", "bob@example.org",
                                               "carol+x@example.org", "postmaster@example.org",
                                               "stranger@example.org"};
  std::vector<std::string> keys;
  int next = 0;
  auto put_some = [&](int n) {
    for (int i = 0; i < n && next < messages; ++i, ++next) {
      std::string raw = absl::StrFormat(
          "From: s%d@outside.test\r\nTo: x@example.org\r\nSubject: crash %d\r\nMessage-ID: "
          "<c%d@outside.test>\r\n\r\n",
          next, next, next);
      for (int lines = 8 + rng() % 200; lines > 0; --lines)
        raw += std::string(76, 'a' + next % 26) + "\r\n";
      auto m = h.PutPending(raw, recipients[next % recipients.size()],
                            absl::StrCat("s", next, "@outside.test"));
      ASSERT_TRUE(m.ok()) << m.status();
      keys.push_back(m->key);
    }
  };

  // Chaos: keep mail flowing and kill something every few hundred ms.
  int kills = 0;
  int window_kills = 0;
  int maddy_kills = 0;
  put_some(messages / 4);
  const char* victims[] = {"fetcher", "injector", "ledger", "router"};
  while (kills < target_kills) {
    put_some(std::max(1, (messages - messages / 4) / target_kills));
    absl::SleepFor(absl::Milliseconds(100 + rng() % 400));
    std::string victim;
    if (kills % 4 == 3) {
      // Inside "DATA ." → reply: the store has delivered and its 250 is held.
      hold_final_reply(1.5);
      absl::SleepFor(absl::Milliseconds(400));
      victim = rng() % 2 ? "injector" : "fetcher";
      ++window_kills;
    } else if (maddy && kills % 7 == 5) {
      victim = "maddy";  // the store itself dies mid-delivery
    } else {
      victim = victims[rng() % 4];
    }
    if (victim == "maddy") {
      h.maddy()->Kill();
      ++maddy_kills;
    } else {
      h.KillService(victim);
    }
    ++kills;
    if (kills % 4 == 0) hold_final_reply(0);
    absl::SleepFor(absl::Milliseconds(rng() % 300));
    if (victim == "maddy") {
      ASSERT_TRUE(h.maddy()->Restart().ok()) << "restart maddy: " << h.maddy()->Log();
    } else {
      ASSERT_TRUE(h.StartService(victim).ok()) << "restart " << victim;
    }
  }
  hold_final_reply(0);
  put_some(messages);  // whatever is left
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(10)).ok());

  std::vector<std::string> mailboxes = {"inbox@example.org", "admin@example.org",
                                        "alice@example.org", "bob@example.org",
                                        "carol@example.org"};
  auto counts = CountInImap(h, mailboxes);
  ASSERT_TRUE(counts.ok()) << counts.status();
  int lost = 0, duplicates = 0;
  for (const std::string& key : keys) {
    int n = (*counts)[key];
    if (n == 0) ++lost;
    if (n > 1) duplicates += n - 1;
    if (n != 1) std::cerr << "key " << key << " arrived " << n << " times\n";
  }
  int ambiguous = 0, probed = 0, found_by_probe = 0;
  for (const auto& row : AllLedgerRows(h)) {
    switch (row.delivery_path()) {
      case ledgerpb::DELIVERY_PATH_PROBE_FOUND:
        ++found_by_probe;
        [[fallthrough]];
      case ledgerpb::DELIVERY_PATH_PROBED_AND_INJECTED:
        ++probed;
        ++ambiguous;
        break;
      case ledgerpb::DELIVERY_PATH_REINJECTED:
        ++ambiguous;
        break;
      default:
        break;
    }
  }
  std::cout << (maddy ? "maddy-crash-test: " : "crash-test: ")
            << (options.combined ? "combined " : "")
            << (maddy ? absl::StrCat("maddy=", h.maddy()->version(), " ") : "")
            << "messages=" << keys.size() << " kills=" << kills << " lost=" << lost
            << " duplicates=" << duplicates << " ambiguous=" << ambiguous << " probed=" << probed
            << std::endl;
  std::cerr << "(kills inside the DATA-reply window: " << window_kills
            << "; of Maddy: " << maddy_kills << "; probe found " << found_by_probe
            << " already delivered, " << probed - found_by_probe << " absent and injected)\n";
  EXPECT_EQ(static_cast<int>(keys.size()), messages);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_GE(kills, target_kills);
}

}  // namespace
}  // namespace pocketmail::testing
