// The hostile-input corpus: objects and listings an attacker, a buggy Worker
// or a flaky store could produce, each with the outcome it must get. Nothing
// may crash, nothing may be lost, every case ends with a recorded outcome
// (delivered to a stated mailbox, or in failed/ with a reason, or retried and
// then delivered). The mail store is real Maddy over LMTP, as installed, so
// each outcome is what a phone does. Prints `hostile-test: cases=N passed=M`.
#include <functional>
#include <iostream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "pocketmail/ledger/v1/ledger.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/peers/s3/s3_peer.h"

namespace pocketmail::testing {
namespace {

namespace ledgerpb = ::pocketmail::ledger::v1;
namespace fetcherpb = ::pocketmail::fetcher::v1;

std::string Mail(const std::string& tag, const std::string& extra_headers = "") {
  return absl::StrCat(
      "From: Someone <someone@outside.test>\r\nTo: you@example.org\r\nSubject: ", tag,
      "\r\nMessage-ID: <", tag, "@outside.test>\r\n", extra_headers, "\r\nbody of ", tag, "\r\n");
}

std::string PendingKey(const std::string& raw, const std::string& to) {
  return absl::StrCat("pending/", Sha256Hex(raw), "-",
                      Sha256Hex(absl::AsciiStrToLower(to)).substr(0, 16), ".eml");
}

// Outcome checks. Each returns "" when the case got its stated outcome, else
// what happened instead.
class Outcomes {
 public:
  explicit Outcomes(PipelineHarness& h) : h_(h), delivered_(h.Delivered()) {}

  ledgerpb::Message Row(const std::string& key) {
    auto stub = ledgerpb::Ledger::NewStub(h_.Channel("ledger"));
    grpc::ClientContext ctx;
    ledgerpb::GetRequest req;
    req.set_key(key);
    ledgerpb::GetResponse resp;
    stub->Get(&ctx, req, &resp);
    return resp.message();
  }

  std::string Delivered(const std::string& key, const std::string& mailbox,
                        const std::string& raw = "", const std::string& return_path = "") {
    int n = 0;
    std::string problems;
    for (const auto& d : delivered_) {
      if (d.trace_key != key) continue;
      ++n;
      if (d.mailbox != mailbox) absl::StrAppend(&problems, " landed in ", d.mailbox);
      if (!raw.empty() && d.data != absl::StrCat("X-Pocketmail-Key: ", key, "\r\n", raw)) {
        absl::StrAppend(&problems, " bytes differ (", d.data.size(), " bytes)");
      }
      if (!return_path.empty() && d.return_path != return_path) {
        absl::StrAppend(&problems, " MAIL FROM was <", d.return_path, ">");
      }
    }
    if (n != 1) absl::StrAppend(&problems, " delivered ", n, " times");
    auto row = Row(key);
    if (row.state() != ledgerpb::STATE_DONE)
      absl::StrAppend(&problems, " ledger ", ledgerpb::State_Name(row.state()));
    return problems;
  }

  std::string DeadLettered(const std::string& key, const std::string& reason_part) {
    std::string problems;
    for (const auto& d : delivered_) {
      if (d.trace_key == key) absl::StrAppend(&problems, " was delivered to ", d.mailbox);
    }
    auto failed = h_.bucket().GetObject(absl::StrCat("failed/", key.substr(8)));
    if (!failed.ok()) {
      absl::StrAppend(&problems, " not in failed/: ", failed.status().message());
    } else if (!absl::StrContains(failed->head.metadata["reason"], reason_part)) {
      absl::StrAppend(&problems, " reason \"", failed->head.metadata["reason"], "\" lacks \"",
                      reason_part, "\"");
    }
    auto row = Row(key);
    if (row.state() != ledgerpb::STATE_DEAD_LETTERED) {
      absl::StrAppend(&problems, " ledger ", ledgerpb::State_Name(row.state()));
    }
    return problems;
  }

 private:
  PipelineHarness& h_;
  std::vector<DeliveredMessage> delivered_;
};

struct Case {
  std::string name;
  std::string expected;
  std::function<absl::StatusOr<std::string>(PipelineHarness&)> put;  // returns the key
  std::function<std::string(Outcomes&, const std::string& key)> check;
};

std::vector<Case> StaticCases() {
  std::vector<Case> cases;
  auto put_to = [](const std::string& tag, const std::string& to,
                   const std::string& from = "someone@outside.test", std::string raw = "") {
    return [=](PipelineHarness& h) -> absl::StatusOr<std::string> {
      std::string body = raw.empty() ? Mail(tag) : raw;
      auto m = h.PutPending(body, to, from);
      if (!m.ok()) return m.status();
      return m->key;
    };
  };
  auto put_raw = [](const std::string& key, const std::string& body,
                    std::map<std::string, std::string> meta) {
    return [=](PipelineHarness& h) -> absl::StatusOr<std::string> {
      absl::Status s = h.PutRaw(key, body, meta);
      if (!s.ok()) return s;
      return key;
    };
  };
  auto dead = [](const std::string& reason) {
    return [=](Outcomes& o, const std::string& key) { return o.DeadLettered(key, reason); };
  };
  auto to_box = [](const std::string& mailbox) {
    return [=](Outcomes& o, const std::string& key) { return o.Delivered(key, mailbox); };
  };

  // --- the envelope recipient (`to` metadata) ---
  cases.push_back({"to-crlf-rcpt-injection", "dead-lettered: invalid recipient",
                   put_to("t1", "alice@example.org>\r\nRCPT TO:<evil@attacker.test"),
                   dead("invalid recipient")});
  cases.push_back({"to-bare-rcpt-injection", "dead-lettered: invalid recipient",
                   put_to("t2", ">\r\nRCPT TO:<x@example.org>"), dead("invalid recipient")});
  cases.push_back({"to-nul", "dead-lettered: invalid recipient",
                   put_to("t3", std::string("alice@example.org\0bob@example.org", 33)),
                   dead("invalid recipient")});
  cases.push_back({"to-lf-only", "dead-lettered: invalid recipient",
                   put_to("t4", "alice@example.org\nDATA"), dead("invalid recipient")});
  cases.push_back({"to-angle-brackets-no-newline", "dead-lettered: invalid recipient",
                   put_to("t5", "alice@example.org> RCPT TO:<evil@attacker.test"),
                   dead("invalid recipient")});
  cases.push_back({"to-space-inside", "dead-lettered: invalid recipient",
                   put_to("t6", "alice @example.org"), dead("invalid recipient")});
  cases.push_back({"to-overlong", "dead-lettered: invalid recipient",
                   put_to("t7", std::string(300, 'a') + "@example.org"),
                   dead("invalid recipient")});
  cases.push_back({"to-foreign-domain", "dead-lettered: invalid recipient",
                   put_to("t8", "alice@elsewhere.test"), dead("invalid recipient")});
  cases.push_back({"to-idn-foreign-domain", "dead-lettered: IDN domain is not MAIL_DOMAIN",
                   put_to("t9",
                          "alice@b\xC3\xBC"
                          "cher.example"),
                   dead("invalid recipient")});
  cases.push_back({"to-utf8-localpart-unknown",
                   "delivered to the catch-all inbox (RFC 6531 localpart)",
                   put_to("t10", "j\xC3\xBCrgen@example.org"), to_box("inbox@example.org")});
  cases.push_back({"to-uppercase", "delivered to alice (case-insensitive)",
                   put_to("t11", "ALICE@EXAMPLE.ORG"), to_box("alice@example.org")});
  cases.push_back({"to-role-with-tag", "delivered to admin",
                   put_to("t12", "postmaster+dmarc@example.org"), to_box("admin@example.org")});
  cases.push_back({"to-missing", "delivered to the catch-all inbox",
                   put_raw(absl::StrCat("pending/", Sha256Hex(Mail("t13")), ".eml"), Mail("t13"),
                           {{"from", "someone@outside.test"}}),
                   to_box("inbox@example.org")});
  cases.push_back(
      {"metadata-missing-entirely", "delivered to the catch-all inbox from ingest@",
       put_raw(absl::StrCat("pending/", Sha256Hex(Mail("t14")), ".eml"), Mail("t14"), {}),
       [](Outcomes& o, const std::string& key) {
         return o.Delivered(key, "inbox@example.org", "", "ingest@example.org");
       }});
  cases.push_back({"to-empty", "delivered to the catch-all inbox",
                   put_raw(absl::StrCat("pending/", Sha256Hex(Mail("t15")), ".eml"), Mail("t15"),
                           {{"to", ""}, {"from", "someone@outside.test"}}),
                   to_box("inbox@example.org")});

  // --- the envelope sender (`from` metadata) ---
  cases.push_back(
      {"from-crlf-injection", "delivered; MAIL FROM falls back to ingest@",
       put_to("f1", "alice@example.org", "x@outside.test>\r\nRCPT TO:<evil@attacker.test"),
       [](Outcomes& o, const std::string& key) {
         return o.Delivered(key, "alice@example.org", "", "ingest@example.org");
       }});
  cases.push_back({"from-empty", "delivered; MAIL FROM falls back to ingest@",
                   put_to("f2", "alice@example.org", ""), [](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", "", "ingest@example.org");
                   }});
  cases.push_back({"from-utf8-rfc2047-through-s3",
                   "delivered; the UTF-8 sender survives RFC 2047 round trip",
                   put_to("f3", "alice@example.org", "j\xC3\xBCrgen@outside.test"),
                   [](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", "", "j\xC3\xBCrgen@outside.test");
                   }});

  // --- keys ---
  cases.push_back({"key-dot-dot", "dead-lettered: unrecognised key",
                   put_raw("pending/../" + std::string(64, 'a') + ".eml", Mail("k1"),
                           {{"to", "alice@example.org"}}),
                   dead("unrecognised key")});
  cases.push_back({"key-spaces", "dead-lettered: unrecognised key",
                   put_raw("pending/holiday photos.eml", Mail("k2"), {{"to", "alice@example.org"}}),
                   dead("unrecognised key")});
  cases.push_back(
      {"key-unicode", "dead-lettered: unrecognised key",
       put_raw("pending/na\xC3\xAFve-\xE2\x9C\x89.eml", Mail("k3"), {{"to", "alice@example.org"}}),
       dead("unrecognised key")});
  cases.push_back({"key-wrong-suffix", "dead-lettered: unrecognised key",
                   put_raw("pending/" + Sha256Hex(Mail("k4")) + ".txt", Mail("k4"),
                           {{"to", "alice@example.org"}}),
                   dead("unrecognised key")});
  cases.push_back({"key-uppercase-hex", "dead-lettered: unrecognised key",
                   put_raw("pending/" + absl::AsciiStrToUpper(Sha256Hex(Mail("k5"))) + ".eml",
                           Mail("k5"), {{"to", "alice@example.org"}}),
                   dead("unrecognised key")});
  cases.push_back({"key-legacy-format", "delivered (the original worker's key format)",
                   [](PipelineHarness& h) -> absl::StatusOr<std::string> {
                     auto m =
                         h.PutPending(Mail("k6"), "bob@example.org", "someone@outside.test", true);
                     if (!m.ok()) return m.status();
                     return m->key;
                   },
                   to_box("bob@example.org")});

  // --- the bytes are not what the object claims (docs/DESIGN.md: the key names sha256(raw)) ---
  // Each is downloaded CONTENT_MISMATCH_MAX_ATTEMPTS times (a damaged transfer
  // would pass on a later try), then dead-lettered; none may reach a mailbox.
  cases.push_back({"object-bytes-replaced-after-upload",
                   "dead-lettered: content hash mismatch, never delivered",
                   [](PipelineHarness& h) -> absl::StatusOr<std::string> {
                     const std::string original = Mail("c1");
                     auto m = h.PutPending(original, "alice@example.org", "someone@outside.test");
                     if (!m.ok()) return m.status();
                     // Same key, same metadata, other bytes: what a forger with
                     // write access to the bucket, or a broken copy, leaves behind.
                     absl::Status s =
                         h.PutRaw(m->key, Mail("c1", "X-Injected: wire $1000 today\r\n"),
                                  {{"to", "alice@example.org"},
                                   {"from", "someone@outside.test"},
                                   {"sha256", Sha256Hex(original)},
                                   {"rawsize", std::to_string(original.size())}});
                     if (!s.ok()) return s;
                     return m->key;
                   },
                   dead("content hash mismatch")});
  cases.push_back({"metadata-sha256-disagrees", "dead-lettered: content hash mismatch",
                   put_raw(absl::StrCat("pending/", Sha256Hex(Mail("c2")), ".eml"), Mail("c2"),
                           {{"to", "alice@example.org"}, {"sha256", Sha256Hex(Mail("c2-other"))}}),
                   dead("content hash mismatch")});
  cases.push_back({"metadata-rawsize-disagrees", "dead-lettered: content hash mismatch",
                   put_raw(absl::StrCat("pending/", Sha256Hex(Mail("c3")), ".eml"), Mail("c3"),
                           {{"to", "alice@example.org"}, {"rawsize", "17"}}),
                   dead("content hash mismatch")});

  // --- message bytes ---
  const std::string no_from =
      "To: alice@example.org\r\nSubject: no from\r\nMessage-ID: <nf@x.test>\r\n\r\nx\r\n";
  // Over LMTP Maddy checks no headers (its submission endpoint would refuse
  // both with 554 5.6.0): what the Worker accepted is what the mailbox gets.
  cases.push_back({"message-without-from", "delivered byte for byte (LMTP checks no headers)",
                   put_to("m1", "alice@example.org", "someone@outside.test", no_from),
                   [no_from](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", no_from);
                   }});
  cases.push_back(
      {"zero-byte-object", "delivered: only the trace header (no headers at all)",
       put_raw(absl::StrCat("pending/", Sha256Hex(""), ".eml"), "", {{"to", "alice@example.org"}}),
       [](Outcomes& o, const std::string& key) {
         return o.Delivered(key, "alice@example.org", "");
       }});
  const std::string bare_lf =
      "From: a@outside.test\nTo: alice@example.org\nSubject: bare lf\n\nline one\nline two\n";
  cases.push_back({"bare-lf-line-endings", "delivered, line endings normalised to CRLF",
                   put_to("m2", "alice@example.org", "a@outside.test", bare_lf),
                   [](Outcomes& o, const std::string& key) {
                     return o.Delivered(
                         key, "alice@example.org",
                         "From: a@outside.test\r\nTo: alice@example.org\r\nSubject: bare lf\r\n\r\n"
                         "line one\r\nline two\r\n");
                   }});
  const std::string dots = Mail("m3") + ".\r\n..\r\n.leading dot\r\n";
  cases.push_back({"lone-dot-lines", "delivered byte for byte (dot-stuffing undone by the server)",
                   put_to("m3", "alice@example.org", "someone@outside.test", dots),
                   [dots](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", dots);
                   }});
  const std::string eight_bit = Mail("m4",
                                     "X-Note: Gr\xC3\xBC\xC3\x9F"
                                     "e \xE6\x9D\xB1\xE4\xBA\xAC\r\n");
  cases.push_back({"eight-bit-headers", "delivered byte for byte",
                   put_to("m4", "alice@example.org", "someone@outside.test", eight_bit),
                   [eight_bit](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", eight_bit);
                   }});
  const std::string nul_body = Mail("m5") + std::string("binary\0junk\r\n", 13);
  cases.push_back({"nul-in-body", "delivered byte for byte",
                   put_to("m5", "alice@example.org", "someone@outside.test", nul_body),
                   [nul_body](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", nul_body);
                   }});
  std::string big = Mail("m6");
  while (big.size() < (26u << 20)) big += std::string(998, 'x') + "\r\n";  // over 25 MiB, under 32
  std::string long_line = Mail("m8") + std::string(100000, 'z') + "\r\n";
  // RFC 5321 caps lines at 1000 octets, real mail doesn't; the installer
  // raises Maddy's smtp_max_line_length (its default answers 554 5.0.0).
  cases.push_back({"line-over-rfc5321-limit", "delivered byte for byte (a 100 kB line)",
                   put_to("m8", "alice@example.org", "someone@outside.test", long_line),
                   [long_line](Outcomes& o, const std::string& key) {
                     return o.Delivered(key, "alice@example.org", long_line);
                   }});
  cases.push_back({"object-over-25-mib", "delivered (under Maddy's 32 MiB max_message_size)",
                   put_to("m6", "alice@example.org", "someone@outside.test", big),
                   to_box("alice@example.org")});
  std::string huge = Mail("m7");
  huge.resize(33u << 20, 'y');
  huge += "\r\n";
  cases.push_back({"object-over-32-mib", "dead-lettered: Maddy's 552 5.3.4",
                   put_to("m7", "alice@example.org", "someone@outside.test", huge),
                   dead("552 5.3.4")});
  return cases;
}

class HostileInput : public ::testing::Test {
 protected:
  void SetUp() override {
    HarnessOptions options;
    options.mail_store = MailStore::kMaddyLmtp;
    options.service_env = {{"RETRY_BASE_S", "1"}, {"RETRY_MAX_S", "2"}};
    auto h = PipelineHarness::Start(options);
    ASSERT_TRUE(h.ok()) << h.status();
    harness_ = std::move(*h);
  }

  absl::Status Faults(const std::string& json) {
    return SetS3PeerFaults(harness_->s3_env().at("R2_ENDPOINT"),
                           harness_->s3_env().at("R2_CA_FILE"), json);
  }

  fetcherpb::PassSummary DrainOnce() {
    auto stub = fetcherpb::Fetcher::NewStub(harness_->Channel("fetcher"));
    grpc::ClientContext ctx;
    fetcherpb::DrainNowRequest req;
    req.set_wait(true);
    fetcherpb::DrainNowResponse resp;
    stub->DrainNow(&ctx, req, &resp);
    return resp.pass();
  }

  void Record(const std::string& name, const std::string& expected, const std::string& problem) {
    ++cases_;
    if (problem.empty()) {
      ++passed_;
    } else {
      ADD_FAILURE() << name << " (expected: " << expected << "):" << problem;
    }
    std::cerr << (problem.empty() ? "  ok    " : "  FAIL  ") << name << " — " << expected << "\n";
  }

  std::unique_ptr<PipelineHarness> harness_;
  int cases_ = 0;
  int passed_ = 0;
};

TEST_F(HostileInput, EveryCaseGetsItsStatedOutcome) {
  PipelineHarness& h = *harness_;
  std::vector<Case> cases = StaticCases();
  std::vector<std::string> keys;
  for (const Case& c : cases) {
    auto key = c.put(h);
    keys.push_back(key.ok() ? *key : "");
    if (!key.ok()) std::cerr << "put failed for " << c.name << ": " << key.status() << "\n";
  }
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(3)).ok());
  {
    Outcomes outcomes(h);
    for (size_t i = 0; i < cases.size(); ++i) {
      Record(cases[i].name, cases[i].expected,
             keys[i].empty() ? " could not be stored" : cases[i].check(outcomes, keys[i]));
    }
  }

  // --- the store misbehaves ---
  {  // a listing that names the same key twice
    ASSERT_TRUE(Faults(R"({"listing": "duplicate"})").ok());
    std::vector<std::string> dup_keys;
    for (int i = 0; i < 3; ++i)
      dup_keys.push_back(
          h.PutPending(Mail(absl::StrCat("d", i)), "bob@example.org", "s@outside.test")->key);
    DrainOnce();
    ASSERT_TRUE(Faults("{}").ok());
    ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
    Outcomes o(h);
    std::string problems;
    for (const auto& k : dup_keys) absl::StrAppend(&problems, o.Delivered(k, "bob@example.org"));
    Record("listing-repeats-a-key", "each message delivered exactly once", problems);
  }
  for (const char* mode : {"malformed", "truncated"}) {  // listing XML the parser must refuse
    std::string key =
        h.PutPending(Mail(absl::StrCat("x-", mode)), "carol@example.org", "s@outside.test")->key;
    ASSERT_TRUE(Faults(absl::StrCat(R"({"listing": ")", mode, R"("})")).ok());
    fetcherpb::PassSummary pass = DrainOnce();
    std::string problems;
    if (pass.error().empty()) absl::StrAppend(&problems, " the pass reported no error");
    if (pass.delivered() != 0) absl::StrAppend(&problems, " delivered from a broken listing");
    ASSERT_TRUE(Faults("{}").ok());
    ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
    Outcomes o(h);
    absl::StrAppend(&problems, o.Delivered(key, "carol@example.org"));
    Record(absl::StrCat("listing-xml-", mode),
           "pass fails with a clear error; the mail is delivered later", problems);
  }
  {  // an S3 403 on one object must not hold up the others
    std::string denied = h.PutPending(Mail("denied"), "alice@example.org", "s@outside.test")->key;
    std::string fine = h.PutPending(Mail("fine"), "bob@example.org", "s@outside.test")->key;
    ASSERT_TRUE(Faults(absl::StrCat(R"({"deny_keys": [")", denied, R"("]})")).ok());
    DrainOnce();
    Outcomes during(h);
    std::string problems = during.Delivered(fine, "bob@example.org");
    ledgerpb::Message row = during.Row(denied);
    if (row.state() != ledgerpb::STATE_RETRY_WAIT)
      absl::StrAppend(&problems, " denied object is ", ledgerpb::State_Name(row.state()));
    if (!absl::StrContains(row.last_error(), "403") &&
        !absl::StrContains(row.last_error(), "AccessDenied")) {
      absl::StrAppend(&problems, " error not recorded: ", row.last_error());
    }
    ASSERT_TRUE(Faults("{}").ok());
    ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(1)).ok());
    Outcomes after(h);
    absl::StrAppend(&problems, after.Delivered(denied, "alice@example.org"));
    Record("s3-403-on-one-object",
           "others delivered; it retries with the error recorded, then is delivered", problems);
  }

  std::cout << "hostile-test: cases=" << cases_ << " passed=" << passed_ << std::endl;
  EXPECT_GE(cases_, 30);
  EXPECT_EQ(passed_, cases_);
}

}  // namespace
}  // namespace pocketmail::testing
