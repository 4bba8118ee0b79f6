// End to end into real Maddy (0.8.1, set up by the installer): 200 messages,
// the realistic and the sloppy, through the four processes and again through
// pocketmaild, delivered over LMTP (the installer's default). Every message is
// read back from Maddy over IMAP (FETCH BODY[]) and must equal, byte for byte,
// the fields Maddy adds on delivery (Delivered-To, Return-Path: by name and
// value), the trace header, then the original.
//
// Prints, per layout:
//   maddy-e2e: [combined ]maddy=0.8.1 messages=N delivered=N lost=0 duplicates=0 altered=0
//   records_complete=N
//
// Also here: an account created while the services run receives mail within
// 2 s (MAIL_ACCOUNTS_WATCH on the real imapsql.db), and the delivery probe
// answers from Maddy's IMAP.
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "pocketmail/injector/v1/injector.grpc.pb.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "pocketmail/router/v1/router.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {

namespace ledgerpb = ::pocketmail::ledger::v1;
namespace {

const std::vector<std::pair<std::string, std::string>> kRecipients = {
    {"alice@example.org", "alice@example.org"},              // exact
    {"Bob@Example.ORG", "bob@example.org"},                  // exact, case-insensitive
    {"alice+newsletters@example.org", "alice@example.org"},  // subaddress
    {"postmaster@example.org", "admin@example.org"},         // role alias
    {"nobody-here@example.org", "inbox@example.org"},        // unknown → catch-all
    {"carol@example.org", "carol@example.org"},
};

// Header blocks of real-world shapes, several of which Maddy's submission
// endpoint (Go's net/mail) refuses: LMTP must deliver them all as they are.
const std::vector<std::string> kHeaderShapes = {
    // well-formed
    // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one header block per element
    "From: Sender <sender@outside.test>\r\nTo: {to}\r\nSubject: plain {n}\r\n"
    "Date: Tue, 24 Nov 2026 05:00:00 +0000\r\nMessage-ID: <m{n}@outside.test>\r\nMIME-Version: "
    "1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n",
    // display name with an unquoted special, and an unparseable Date
    "From: Acme, Inc. <news@outside.test>\r\nTo: {to}\r\nSubject: sloppy from {n}\r\n"
    "Date: Tuesday 24th of November\r\nMessage-ID: <s{n}@outside.test>\r\n",
    // an address net/mail refuses outright; no Date, no Message-ID
    "From: \"Support\" <support@@outside.test>\r\nTo: undisclosed-recipients:;\r\nSubject: broken "
    "addr {n}\r\n",
    // raw UTF-8 in headers (RFC 6532), folded with a tab
    "From: J\xc3\xbcrgen M\xc3\xbcller <juergen@outside.test>\r\nTo: {to}\r\n"
    "Subject: Gr\xc3\xbc\xc3\x9f"
    "e aus M\xc3\xbcnchen {n},\r\n\tfolded\r\nDate: Tue, 24 Nov 2026 05:00:00 +0100\r\n",
    // RFC 2047 encoded words and a Reply-To net/mail can't parse
    "From: =?UTF-8?B?w4lsb2R5?= <elody@outside.test>\r\nReply-To: <<reply>>\r\nTo: {to}\r\n"
    "Subject: =?ISO-8859-1?Q?caf=E9?= {n}\r\nDate: Tue, 24 Nov 2026 05:00:00 GMT\r\n",
    // no From at all (the submission endpoint's 5.6.0)
    "To: {to}\r\nSubject: no from {n}\r\nDate: Tue, 24 Nov 2026 05:00:00 +0000\r\n",
};

// The subject each header shape should leave in the ledger's record: unfolded,
// RFC 2047-decoded, one line.
const std::vector<std::string> kRecordedSubjects = {
    "plain {n}",
    "sloppy from {n}",
    "broken addr {n}",
    // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): split so \x9f ends before the "e"
    "Gr\xc3\xbc\xc3\x9f"
    "e aus M\xc3\xbcnchen {n}, folded",
    "caf\xc3\xa9 {n}",
    "no from {n}",
};

std::string Fill(std::string text, const std::string& to, int n) {
  for (auto [tag, value] :
       {std::pair<std::string, std::string>{"{to}", to}, {"{n}", std::to_string(n)}}) {
    for (size_t at; (at = text.find(tag)) != std::string::npos;)
      text.replace(at, tag.size(), value);
  }
  return text;
}

// What is wrong with the ledger's record of a delivered message, for the
// gateway: empty when every field says what the Worker stored.
std::string RecordProblems(const ledgerpb::Message& row, const StoredMessage& m,
                           const std::string& mailbox, const std::string& subject) {
  std::string problems;
  auto want = [&](const char* field, const std::string& got, const std::string& expected) {
    if (got != expected)
      absl::StrAppend(&problems, " ", field, "=\"", got, "\" (want \"", expected, "\")");
  };
  want("state", ledgerpb::State_Name(row.state()), "STATE_DONE");
  want("recipient", row.recipient(), m.to);
  want("sender", row.sender(), m.from);
  want("subject", row.subject(), subject);
  want("sha256", row.sha256(), m.key.substr(8, 64));
  want("mailbox", row.mailbox(), mailbox);
  if (row.received_ms() <= 0) absl::StrAppend(&problems, " received_ms=", row.received_ms());
  if (row.size_bytes() != static_cast<int64_t>(m.raw.size()))
    absl::StrAppend(&problems, " size=", row.size_bytes());
  return problems;
}

std::string MakeMessage(int n, const std::string& to, size_t body_bytes, std::mt19937& rng) {
  std::string raw = Fill(kHeaderShapes[n % kHeaderShapes.size()], to, n) + "\r\n";
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 .,;-";
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  // Some bodies carry one line far over RFC 5322's 998 octets.
  if (n % 17 == 5) raw += std::string(20000 + n, 'w') + "\r\n";
  std::string line;
  while (raw.size() < body_bytes) {
    line.clear();
    for (int i = 0; i < 76; ++i) line.push_back(kAlphabet[pick(rng)]);
    if (rng() % 50 == 0) line[0] = '.';  // must survive dot-stuffing
    if (rng() % 97 == 0) line = ".";     // a lone dot is not the end
    if (n % 11 == 3 && rng() % 7 == 0) line += "\xe2\x82\xac \xc3\xa9";  // 8-bit body
    raw += line;
    raw += "\r\n";
  }
  return raw;
}

struct Counts {
  int delivered = 0, lost = 0, duplicates = 0, altered = 0;
};

// Four processes (false) or the combined pocketmaild (true).
class MaddyE2E : public ::testing::TestWithParam<bool> {};

INSTANTIATE_TEST_SUITE_P(ProcessLayout, MaddyE2E, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Combined" : "FourProcesses";
                         });

TEST_P(MaddyE2E, DeliversEveryMessageExactlyOnceByteForByteOverLmtp) {
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  options.combined = GetParam();
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;

  std::mt19937 rng(20261207);
  std::vector<size_t> sizes;
  for (int i = 0; i < 192; ++i) sizes.push_back(600 + rng() % (size_t{64} * 1024));
  for (int i = 0; i < 5; ++i) sizes.push_back((1 + rng() % 3) << 20);
  sizes.push_back(5 << 20);
  sizes.push_back(12 << 20);
  sizes.push_back((25 << 20) - 4096);  // Email Routing's limit, less room for its own headers

  std::map<std::string, StoredMessage> stored;
  std::map<std::string, std::string> expected_mailbox;
  std::map<std::string, std::string> expected_subject;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto& [to, mailbox] = kRecipients[i % kRecipients.size()];
    auto m = h.PutPending(MakeMessage(static_cast<int>(i), to, sizes[i], rng), to,
                          absl::StrCat("sender", i, "@outside.test"), /*legacy_key=*/i % 40 == 0);
    ASSERT_TRUE(m.ok()) << m.status();
    expected_mailbox[m->key] = mailbox;
    expected_subject[m->key] =
        Fill(kRecordedSubjects[i % kRecordedSubjects.size()], to, static_cast<int>(i));
    stored[m->key] = std::move(*m);
  }
  ASSERT_EQ(stored.size(), 200u);
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(8)).ok());

  Counts counts;
  std::map<std::string, int> seen;
  for (const DeliveredMessage& d : h.Delivered()) {
    auto it = stored.find(d.trace_key);
    if (it == stored.end()) {
      ++counts.altered;
      ADD_FAILURE() << "a message nobody stored, in " << d.mailbox << ": " << d.data.substr(0, 200);
      continue;
    }
    if (++seen[d.trace_key] > 1) continue;  // counted as a duplicate below
    ++counts.delivered;
    const std::string expected =
        absl::StrCat("X-Pocketmail-Key: ", d.trace_key, "\r\n", it->second.raw);
    const std::vector<std::string> maddy_fields = {"Delivered-To", "Return-Path"};
    bool same = d.data == expected && d.mailbox == expected_mailbox[d.trace_key] &&
                d.return_path == it->second.from && d.added_fields == maddy_fields;
    if (!same) {
      ++counts.altered;
      ADD_FAILURE() << d.trace_key << " altered: mailbox " << d.mailbox << " (want "
                    << expected_mailbox[d.trace_key] << "), return path " << d.return_path << ", "
                    << d.added_fields.size() << " added fields, " << d.data.size()
                    << " bytes (want " << expected.size() << ")";
    }
  }
  int records_complete = 0;
  auto ledger = ledgerpb::Ledger::NewStub(h.Channel("ledger"));
  for (const auto& [key, m] : stored) {
    int n = seen[key];
    if (n == 0) ++counts.lost;
    if (n > 1) counts.duplicates += n - 1;
    grpc::ClientContext ctx;
    ledgerpb::GetRequest get;
    get.set_key(key);
    ledgerpb::GetResponse row;
    grpc::Status st = ledger->Get(&ctx, get, &row);
    std::string problems =
        st.ok() ? RecordProblems(row.message(), m, expected_mailbox[key], expected_subject[key])
                : " Get: " + st.error_message();
    if (problems.empty()) {
      ++records_complete;
    } else {
      ADD_FAILURE() << key << " record:" << problems;
    }
  }
  std::cout << "maddy-e2e: " << (GetParam() ? "combined " : "") << "maddy=" << h.maddy()->version()
            << " messages=" << stored.size() << " delivered=" << counts.delivered
            << " lost=" << counts.lost << " duplicates=" << counts.duplicates
            << " altered=" << counts.altered << " records_complete=" << records_complete
            << std::endl;
  EXPECT_EQ(records_complete, 200);
  EXPECT_EQ(counts.delivered, 200);
  EXPECT_EQ(counts.lost, 0);
  EXPECT_EQ(counts.duplicates, 0);
  EXPECT_EQ(counts.altered, 0);
  auto pending = h.ListKeys("pending/");
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

TEST(MaddyE2E, AMailboxCreatedWhileRunningReceivesMailWithinTwoSeconds) {
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  std::mt19937 rng(5);
  // Before dave exists, his mail goes to the catch-all, as documented, and
  // stays there.
  auto early = h.PutPending(MakeMessage(0, "dave@example.org", 900, rng), "dave@example.org",
                            "s@outside.test");
  ASSERT_TRUE(early.ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  // The gateway's way: create the mailbox in Maddy, call nothing else. The
  // router notices the change of imapsql.db (MAIL_ACCOUNTS_WATCH).
  ASSERT_TRUE(h.AddMailbox("dave@example.org").ok());
  const absl::Time created = absl::Now();
  auto router = pocketmail::router::v1::Router::NewStub(h.Channel("router"));
  absl::Duration routed_after = absl::InfiniteDuration();
  while (absl::Now() < created + absl::Seconds(10)) {
    grpc::ClientContext ctx;
    pocketmail::router::v1::ResolveRequest req;
    req.set_address("dave@example.org");
    pocketmail::router::v1::ResolveResponse resp;
    ASSERT_TRUE(router->Resolve(&ctx, req, &resp).ok());
    if (resp.mailbox() == "dave@example.org") {
      routed_after = absl::Now() - created;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::cerr << "(dave routed " << routed_after << " after his mailbox was created)\n";
  EXPECT_LE(routed_after, absl::Seconds(2));

  auto later = h.PutPending(MakeMessage(1, "dave@example.org", 900, rng), "dave@example.org",
                            "s@outside.test");
  ASSERT_TRUE(later.ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
  std::map<std::string, std::string> mailbox_of;
  for (const DeliveredMessage& d : h.Delivered()) mailbox_of[d.trace_key] = d.mailbox;
  EXPECT_EQ(mailbox_of.size(), 2u);
  EXPECT_EQ(mailbox_of[early->key], "inbox@example.org");
  EXPECT_EQ(mailbox_of[later->key], "dave@example.org");
}

TEST(MaddyE2E, DeliveryProbeAnswersFromMaddysImap) {
  HarnessOptions options;
  options.mail_store = MailStore::kMaddyLmtp;
  options.with_imap = true;
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  std::mt19937 rng(9);
  auto m = h.PutPending(MakeMessage(0, "bob@example.org", 2000, rng), "bob@example.org",
                        "s@outside.test");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());

  auto injector = pocketmail::injector::v1::Injector::NewStub(h.Channel("injector"));
  auto probe = [&](const std::string& key, const std::string& mailbox) {
    grpc::ClientContext ctx;
    pocketmail::injector::v1::ProbeRequest req;
    req.set_key(key);
    req.set_mailbox(mailbox);
    pocketmail::injector::v1::ProbeResponse resp;
    grpc::Status s = injector->Probe(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.result();
  };
  EXPECT_EQ(probe(m->key, "bob@example.org"), pocketmail::injector::v1::PROBE_RESULT_FOUND);
  EXPECT_EQ(probe(m->key, "alice@example.org"), pocketmail::injector::v1::PROBE_RESULT_NOT_FOUND);
  EXPECT_EQ(probe("pending/0000-never-delivered.eml", "bob@example.org"),
            pocketmail::injector::v1::PROBE_RESULT_NOT_FOUND);
  // The installer's catch-all credentials reach the probe too.
  EXPECT_EQ(probe(m->key, "inbox@example.org"), pocketmail::injector::v1::PROBE_RESULT_NOT_FOUND);
}

}  // namespace
}  // namespace pocketmail::testing
