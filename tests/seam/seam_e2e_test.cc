// The Worker ↔ phone seam, end to end: mail dispatched into the real Email
// Worker under miniflare (real workerd and its R2 simulator) is delivered by
// the four C++ services.
//
// tests/seam/dispatch.mjs runs the Worker, dispatches the messages and exports
// every object it wrote to R2 (key, bytes, customMetadata, contentType). This
// test PUTs exactly those into the S3 peer (moto, SigV4 over HTTPS; non-ASCII
// metadata goes over the wire RFC 2047-encoded, the way R2 presents it), runs
// the services and checks what reaches the SMTP peer. The one copy step is the
// only thing between the two sides: nothing is re-derived or normalised.
//
// The second test sends the Worker's real signed wake-up ping from inside
// workerd to the fetcher's C++ listener and checks that it makes a fetcher
// with a one-hour poll interval deliver at once.
//
// Needs node on PATH and the repo's worker/ with node_modules (npm ci); the
// worker dir comes from PM_WORKER_DIR (./pocketmail test passes it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "tests/e2e/pipeline_harness.h"

namespace pocketmail::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr char kDomain[] = "mail.example";  // the fixture's recipients' domain
constexpr char kWakeSecret[] = "seam-wake-secret-0123456789abcdef";

// Envelope recipient → the mailbox it must land in, by hand from the routing
// rules (exact match, case-insensitive), not by asking the router.
const std::map<std::string, std::string> kMailboxFor = {
    {"bob@mail.example", "bob@mail.example"},
    {"carol.smith@mail.example", "carol.smith@mail.example"},
};

std::string LowercaseDomain(const std::string& address) {
  size_t at = address.rfind('@');
  if (at == std::string::npos) return address;
  return address.substr(0, at + 1) + absl::AsciiStrToLower(address.substr(at + 1));
}

HarnessOptions SeamOptions() {
  HarnessOptions o;
  o.mail_domain = kDomain;
  o.mail_store = MailStore::kMaddyLmtp;
  o.mailboxes = {"bob@mail.example", "carol.smith@mail.example", "admin@mail.example",
                 "inbox@mail.example"};
  return o;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The repo's worker/ directory: PM_WORKER_DIR, else found next to the real
// location of this test's dispatch.mjs (runfiles are symlinks into the repo).
std::string WorkerDir() {
  const char* env = std::getenv("PM_WORKER_DIR");
  if (env != nullptr && *env != '\0') return env;
  std::error_code ec;
  auto script = std::filesystem::canonical(RunfilePath("tests/seam/dispatch.mjs"), ec);
  if (ec) return "";
  return (script.parent_path().parent_path().parent_path() / "worker").string();
}

std::string Field(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? "" : it->second.string_value();
}

absl::StatusOr<Struct> LoadJson(const std::string& path) {
  Struct out;
  auto status = google::protobuf::util::JsonStringToMessage(ReadFile(path), &out);
  if (!status.ok()) return absl::InternalError(absl::StrCat(path, ": ", status.ToString()));
  return out;
}

// One object as the Worker wrote it to R2.
struct Exported {
  std::string key;
  std::string body;
  std::map<std::string, std::string> metadata;
  std::string content_type;
};

// One delivery dispatched into the Worker.
struct Dispatched {
  std::string name, from, to, raw;
  int status = 0;
};

struct DispatchRun {
  std::vector<Dispatched> dispatches;
  std::vector<Exported> objects;
  std::vector<std::string> logs;  // the Worker's log lines
};

// Runs dispatch.mjs (node, from PATH) into `out`; `names` empty = every message.
absl::StatusOr<DispatchRun> RunDispatch(const std::string& out,
                                        const std::vector<std::string>& names,
                                        const std::string& wake_url = "",
                                        const std::string& wake_secret = "") {
  std::string worker_dir = WorkerDir();
  if (worker_dir.empty() || !std::filesystem::exists(worker_dir + "/node_modules/miniflare")) {
    return absl::FailedPreconditionError(
        absl::StrCat("no worker/node_modules/miniflare at \"", worker_dir,
                     "\": set --test_env=PM_WORKER_DIR=<repo>/worker and run npm ci there"));
  }
  if (std::system("command -v node >/dev/null 2>&1") != 0) {
    return absl::FailedPreconditionError("node is not on PATH");
  }
  std::filesystem::create_directories(out);
  std::string contract_dir =
      std::filesystem::path(RunfilePath("tests/contract/cases.json")).parent_path();
  std::string cmd = absl::StrCat(
      "env PM_WORKER_DIR=", ShellQuote(worker_dir), " PM_CONTRACT_DIR=", ShellQuote(contract_dir),
      " TMPDIR=", ShellQuote(out), " WAKE_URL=", ShellQuote(wake_url),
      " WAKE_SECRET=", ShellQuote(wake_secret), " node ",
      ShellQuote(RunfilePath("tests/seam/dispatch.mjs")), " ", ShellQuote(out));
  for (const auto& n : names) absl::StrAppend(&cmd, " ", ShellQuote(n));
  absl::StrAppend(&cmd, " >", ShellQuote(out + "/dispatch.log"), " 2>&1");
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("dispatch.mjs exited with ", rc, ":\n", ReadFile(out + "/dispatch.log")));
  }
  auto manifest = LoadJson(out + "/manifest.json");
  if (!manifest.ok()) return manifest.status();
  DispatchRun run;
  for (const Value& v : manifest->fields().at("dispatches").list_value().values()) {
    const Struct& d = v.struct_value();
    run.dispatches.push_back({Field(d, "name"), Field(d, "from"), Field(d, "to"),
                              ReadFile(out + "/" + Field(d, "raw")),
                              static_cast<int>(d.fields().at("status").number_value())});
  }
  for (const Value& v : manifest->fields().at("objects").list_value().values()) {
    const Struct& o = v.struct_value();
    auto meta = LoadJson(out + "/" + Field(o, "json"));
    if (!meta.ok()) return meta.status();
    Exported e;
    e.key = Field(*meta, "key");
    e.body = ReadFile(out + "/" + Field(o, "eml"));
    e.content_type = Field(*meta, "contentType");
    for (const auto& [k, val] : meta->fields().at("customMetadata").struct_value().fields()) {
      e.metadata[k] = val.string_value();
    }
    run.objects.push_back(std::move(e));
  }
  for (const Value& v : manifest->fields().at("logs").list_value().values()) {
    run.logs.push_back(v.string_value());
  }
  return run;
}

std::string ExpectedKey(const std::string& raw, const std::string& to) {
  return absl::StrCat("pending/", Sha256Hex(raw), "-",
                      Sha256Hex(absl::AsciiStrToLower(to)).substr(0, 16), ".eml");
}

// The copy step: exactly the exported bytes, metadata and content type.
absl::Status CopyIntoS3(PipelineHarness& h, const Exported& e) {
  return h.bucket().PutObject(e.key, e.body, e.metadata, /*if_none_match=*/false, e.content_type);
}

TEST(SeamE2E, MailDispatchedIntoTheWorkerIsDeliveredOnceByTheServices) {
  ScratchDir scratch;
  auto run = RunDispatch(scratch.path() + "/export", {});
  ASSERT_TRUE(run.ok()) << run.status();

  // What must come out, worked out from the inputs alone: one delivery per
  // distinct (message, recipient).
  struct Expect {
    std::string raw, from, mailbox;
    std::set<std::string> names;
  };
  std::map<std::string, Expect> expected;
  for (const Dispatched& d : run->dispatches) {
    ASSERT_EQ(d.status, 200) << d.name;
    ASSERT_FALSE(d.raw.empty()) << d.name;
    ASSERT_TRUE(kMailboxFor.count(absl::AsciiStrToLower(d.to))) << d.name << " " << d.to;
    Expect& e = expected[ExpectedKey(d.raw, d.to)];
    e.raw = d.raw;
    e.from = d.from;
    e.mailbox = kMailboxFor.at(absl::AsciiStrToLower(d.to));
    e.names.insert(d.name);
  }
  ASSERT_EQ(run->dispatches.size(),
            11u);                   // 6 fixture cases + 2 recipients + 2 tries + huge subject
  ASSERT_EQ(expected.size(), 10u);  // the retry is the same object

  // The Worker wrote one object per expected key, with the raw bytes.
  ASSERT_EQ(run->objects.size(), expected.size());
  for (const Exported& o : run->objects) {
    ASSERT_TRUE(expected.count(o.key)) << o.key;
    EXPECT_EQ(o.body, expected[o.key].raw) << o.key;
    EXPECT_EQ(o.content_type, "message/rfc822") << o.key;
    EXPECT_EQ(o.metadata.at("from"), expected[o.key].from) << o.key;
  }

  HarnessOptions options = SeamOptions();
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;
  for (const Exported& o : run->objects) ASSERT_TRUE(CopyIntoS3(h, o).ok()) << o.key;
  ASSERT_TRUE(h.DrainUntilEmpty(absl::Minutes(2)).ok());

  auto pending = h.ListKeys("pending/");
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty()) << absl::StrJoin(*pending, ", ");

  std::map<std::string, int> seen;
  std::map<std::string, int> per_name;
  for (const DeliveredMessage& m : h.Delivered()) {
    ++seen[m.trace_key];
    auto it = expected.find(m.trace_key);
    ASSERT_NE(it, expected.end()) << "unexpected delivery, key " << m.trace_key;
    EXPECT_EQ(m.mailbox, it->second.mailbox) << m.trace_key;
    // Maddy writes Return-Path with the domain lowercased (domains are
    // case-insensitive); the localpart must be exactly the sender's.
    EXPECT_EQ(m.return_path, LowercaseDomain(it->second.from)) << m.trace_key;
    EXPECT_TRUE(m.data == absl::StrCat("X-Pocketmail-Key: ", m.trace_key, "\r\n", it->second.raw))
        << m.trace_key << ": delivered bytes differ (" << m.data.size() << " bytes)";
    for (const auto& n : it->second.names) ++per_name[n];
  }
  for (const auto& [key, e] : expected) {
    EXPECT_EQ(seen[key], 1) << key << " (" << absl::StrJoin(e.names, ",") << ")";
  }
  EXPECT_EQ(h.Delivered().size(), expected.size());
  // The same message to two recipients: one copy each, in two mailboxes.
  EXPECT_EQ(per_name["two-recipients-bob"], 1);
  EXPECT_EQ(per_name["two-recipients-carol"], 1);
  // A retry of the same delivery: once.
  EXPECT_EQ(per_name["retry-first"], 1);
  EXPECT_EQ(per_name["retry-again"], 1);  // the same single delivery as retry-first
  EXPECT_EQ(per_name["huge-subject"], 1);
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool LogsContain(const DispatchRun& run, const std::string& event) {
  for (const auto& line : run.logs) {
    if (absl::StrContains(line, absl::StrCat("\"event\":\"", event, "\""))) return true;
  }
  return false;
}

// Design: the Worker pings right after its put, before anything could copy the
// object into the S3 peer. The object key is a pure function of the raw bytes
// and the recipient, so: (1) a run without a wake URL exports the object; (2)
// it is copied into S3 while the fetcher sleeps (MAIL_POLL=3600, its start-up
// pass already done) and stays undelivered; (3) the same message is dispatched
// again into a fresh Worker that now has WAKE_URL/WAKE_SECRET: it stores the
// same key and sends the real signed ping from workerd to the C++ listener.
// Nobody calls DrainNow after the copy, so only the ping can deliver it.
TEST(SeamE2E, TheWorkersWakePingMakesASleepingFetcherDeliverNow) {
  ScratchDir scratch;
  const std::string kName = "utf8-subject";
  auto exported = RunDispatch(scratch.path() + "/export", {kName});
  ASSERT_TRUE(exported.ok()) << exported.status();
  ASSERT_EQ(exported->objects.size(), 1u);
  const Exported object = exported->objects[0];
  const Dispatched sent = exported->dispatches[0];
  ASSERT_FALSE(LogsContain(*exported, "wake_ping_failed"));  // no ping configured: none tried

  int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  HarnessOptions options = SeamOptions();
  options.poll_seconds = 3600;
  options.service_env["WAKE_LISTEN"] = absl::StrCat("127.0.0.1:", port);
  options.service_env["WAKE_SECRET"] = kWakeSecret;
  auto harness = PipelineHarness::Start(options);
  ASSERT_TRUE(harness.ok()) << harness.status();
  PipelineHarness& h = **harness;

  // Let the fetcher's start-up pass (and this one) finish on the empty bucket:
  // from here on it sleeps for MAIL_POLL.
  {
    auto stub = pocketmail::fetcher::v1::Fetcher::NewStub(h.Channel("fetcher"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    pocketmail::fetcher::v1::DrainNowRequest req;
    req.set_wait(true);
    pocketmail::fetcher::v1::DrainNowResponse resp;
    ASSERT_TRUE(stub->DrainNow(&ctx, req, &resp).ok());
  }
  absl::SleepFor(absl::Seconds(1));

  ASSERT_TRUE(CopyIntoS3(h, object).ok());
  // Control: without a ping the object just sits there.
  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(h.Delivered().empty()) << "delivered without a ping: the control is broken";

  const std::string wake_url = absl::StrCat("http://127.0.0.1:", port, "/wake");
  // A ping signed with another secret reaches the listener, is refused, and wakes nothing.
  auto forged =
      RunDispatch(scratch.path() + "/forged", {kName}, wake_url, "not-the-secret-0123456789abcdef");
  ASSERT_TRUE(forged.ok()) << forged.status();
  EXPECT_TRUE(LogsContain(*forged, "wake_ping_rejected")) << absl::StrJoin(forged->logs, "\n");
  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(h.Delivered().empty()) << "a ping with the wrong secret woke the fetcher";
  auto still = h.ListKeys("pending/");
  ASSERT_TRUE(still.ok());
  ASSERT_EQ(*still, std::vector<std::string>{object.key});

  // The real thing.
  auto woken = RunDispatch(scratch.path() + "/wake", {kName}, wake_url, kWakeSecret);
  ASSERT_TRUE(woken.ok()) << woken.status();
  ASSERT_EQ(woken->dispatches[0].status, 200);
  ASSERT_EQ(woken->objects.size(), 1u);
  EXPECT_EQ(woken->objects[0].key, object.key);  // the ping names the object in S3
  EXPECT_FALSE(LogsContain(*woken, "wake_ping_failed")) << absl::StrJoin(woken->logs, "\n");
  EXPECT_FALSE(LogsContain(*woken, "wake_ping_rejected")) << absl::StrJoin(woken->logs, "\n");

  // Generous: this checks that the wake path works, not how fast.
  std::vector<DeliveredMessage> delivered;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    delivered = h.Delivered();
    if (!delivered.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(delivered.size(), 1u) << "no delivery within 20 s of the ping";
  EXPECT_EQ(delivered[0].trace_key, object.key);
  EXPECT_EQ(delivered[0].mailbox, "bob@mail.example");
  EXPECT_EQ(delivered[0].return_path, sent.from);
  EXPECT_TRUE(delivered[0].data ==
              absl::StrCat("X-Pocketmail-Key: ", object.key, "\r\n", sent.raw));

  // The fetcher finishes the object (moves it out of pending/) in the same pass.
  deadline = absl::Now() + absl::Seconds(20);
  std::vector<std::string> left = {object.key};
  while (absl::Now() < deadline && !left.empty()) {
    auto keys = h.ListKeys("pending/");
    if (keys.ok()) left = *keys;
    if (!left.empty()) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(left.empty()) << absl::StrJoin(left, ", ");
  EXPECT_EQ(h.Delivered().size(), 1u);
}

}  // namespace
}  // namespace pocketmail::testing
