// pipeline_bench: the performance figures of docs/PERFORMANCE.md, measured
// against the real peers (moto S3 over HTTPS with SigV4, the SMTP peer) and the
// four service binaries, each its own process (tests/e2e/pipeline_harness.h);
// then, in a second pass, the combined binary (services/pocketmaild) for the
// figures one process changes, named <figure>_combined (start-up, throughput
// in both profiles, CPU, memory).
//
// Every figure is printed on stdout as
//   bench: <name>=<value> <unit> [ceiling=<value>] [ratio=<value>]
// and written, with its goal and the run's settings, as JSON (--json PATH,
// relative paths resolve against BUILD_WORKSPACE_DIRECTORY under `bazel run`).
//
// Ceilings are measured in the same run, against the same peers:
//   S3:   our S3Client doing GET + COPY(processed/) + DELETE on pre-PUT objects
//         from FETCH_CONCURRENCY threads, through the same network profile;
//   SMTP: a minimal raw SMTP client sending one message after another over one
//         authenticated connection.
//
// Flags: --json PATH  --quick (small counts, for development)
//        --concurrency=N (FETCH_CONCURRENCY, default: the fetcher's, 16)  --skip-mobile
//        --no-combined (skip the second pass)  --combined-only (only it)
//        --only=startup,loopback,cost,memory,latency,mobile,idle,proot (SMTP ceiling always)
//        --no-proot (skip the two passes under proot)
//
// Issue 12's phone figures: each pass ends with a short backlog and an idle
// window at the installer's defaults (idle_*: wake-ups, CPU per hour, threads,
// RSS, LISTs; idle_wakeups_by_thread lines say which threads wake), and two
// more passes run both layouts under proot (figures suffixed _proot).
//        --service-env K=V (repeatable: extra environment for the four services,
//        for experiments such as MALLOC_ARENA_MAX=2; recorded in the JSON)
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/s3/s3_client.h"
#include "common/server/health_client.h"
#include "common/server/service_host.h"
#include "services/fetcher/fetcher_defaults.h"
#include "tests/bench/proc_tree.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/peers/fault_proxy/fault_proxy.h"
#include "tests/peers/peer_process.h"
#include "tests/peers/s3/s3_peer.h"

namespace pocketmail::testing {
namespace {

// ---------------------------------------------------------------- settings

struct Counts {
  int small = 2000;         // 4 KiB backlog messages
  int large = 200;          // 100 KiB backlog messages
  int ceiling_small = 400;  // S3 / SMTP ceiling samples (rates, so a subset suffices)
  int ceiling_large = 40;
  int latency_messages = 200;
  double latency_mean_gap_s = 0.25;  // exponential inter-arrival times
  int huge = 10;                     // 25 MiB messages for the memory peak
  int nocopy = 200;                  // 4 KiB messages drained with KEEP_PROCESSED_COPY=0
  int idle_window_s = 20;            // idle LIST count window (MAIL_POLL=2 there)
  int startup_repeats = 3;
  int phone_backlog = 300;  // 4 KiB messages drained before the idle window (and under proot)
  int phone_idle_s = 60;    // the idle window at the defaults
};

constexpr size_t kSmall = 4 << 10;
constexpr size_t kLarge = 100 << 10;
constexpr size_t kHuge = 25 << 20;
constexpr char kWakeSecret[] = "bench-wake-secret-0123456789abcdef";
const std::vector<std::string> kRecipients = {"alice@example.org", "bob@example.org",
                                              "carol@example.org", "admin@example.org",
                                              "inbox@example.org"};

// ---------------------------------------------------------------- figures

struct Figure {
  std::string name;
  double value = 0;
  std::string unit;
  std::optional<double> ceiling;
  std::optional<double> ratio;
  std::string goal;  // human text, JSON only
  std::optional<bool> met;
  std::string note;             // JSON only
  std::optional<double> floor;  // a lower-bound goal, printed as floor=
};

std::vector<Figure> g_figures;
std::vector<std::string> g_errors;
// The second pass measures the combined binary (services/pocketmaild): every
// service name then means that one process, and figure names get this suffix.
bool g_combined = false;
std::string g_suffix;
// The proot passes run the services under proot (kProotWrapper): figure names
// then carry _proot before any _combined.
bool g_proot = false;
// The installer's default layout (deploy/install-email.sh: POCKETMAIL_COMBINED
// defaults to true, pocketmaild): the one issue 12's tighter CPU goal is for.
constexpr bool kDefaultLayoutCombined = true;
// proot as proot-distro runs it, minus its Termux-only flags (--kill-on-exit,
// --link2symlink, --sysvipc): fake root, the host's / as the guest root, and
// /dev, /proc, /sys bound in. Every system call of the service is traced.
const std::vector<std::string> kProotWrapper = {"/usr/bin/proot", "-0", "-b",  "/dev", "-b",
                                                "/proc",          "-b", "/sys"};
// Per-thread wake-up rows of each idle window, for the JSON.
std::vector<std::string> g_thread_rows;

std::string Num(double v) {
  if (std::isnan(v)) return "nan";
  double a = std::fabs(v);
  if (a >= 1000) return absl::StrFormat("%.0f", v);
  if (a >= 100) return absl::StrFormat("%.1f", v);
  if (a >= 1) return absl::StrFormat("%.2f", v);
  return absl::StrFormat("%.3f", v);
}

void Emit(Figure f) {
  f.name += g_suffix;
  std::string line = absl::StrCat("bench: ", f.name, "=", Num(f.value), " ", f.unit);
  if (f.ceiling) absl::StrAppend(&line, " ceiling=", Num(*f.ceiling));
  if (f.ratio) absl::StrAppend(&line, " ratio=", Num(*f.ratio));
  if (f.floor) absl::StrAppend(&line, " floor=", Num(*f.floor));
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  g_figures.push_back(std::move(f));
}

void Log(const std::string& s) {
  std::fprintf(stderr, "[bench %s] %s\n",
               absl::FormatTime("%H:%M:%S", absl::Now(), absl::UTCTimeZone()).c_str(), s.c_str());
}

void Error(const std::string& s) {
  Log("ERROR: " + s);
  g_errors.push_back(s);
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------- /proc

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Children of this process whose command line contains `needle`.
std::vector<pid_t> ChildPids(const std::string& needle) {
  std::vector<pid_t> out;
  pid_t self = getpid();
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    size_t rp = stat.rfind(')');
    if (rp == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(rp + 2), ' ');
    int ppid = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &ppid) || ppid != self) continue;
    std::string cmd = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (absl::StrContains(cmd, needle)) out.push_back(pid);
  }
  closedir(d);
  return out;
}

// The process serving `name`: its own, or pocketmaild in the combined pass.
std::string ProcessName(const std::string& name) { return g_combined ? "pocketmaild" : name; }

pid_t ServicePid(const std::string& name) {
  const std::string process = ProcessName(name);
  auto pids = ChildPids(absl::StrCat("services/", process, "/", process));
  return pids.empty() ? -1 : pids[0];
}

// The service processes, each once: four, or the one combined process.
std::vector<std::string> ServiceProcesses() {
  if (g_combined) return {"pocketmaild"};
  return std::vector<std::string>(std::begin(PipelineHarness::kServices),
                                  std::end(PipelineHarness::kServices));
}

// user + sys CPU of `pid`, in ms.
double CpuMs(pid_t pid) {
  if (pid <= 0) return 0;
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos) return 0;
  std::vector<std::string> f = absl::StrSplit(stat.substr(rp + 2), ' ');
  // After "pid (comm) ": state=0 ... utime=11 stime=12.
  long long ut = 0, st = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &ut) || !absl::SimpleAtoi(f[12], &st)) return 0;
  return (ut + st) * 1000.0 / sysconf(_SC_CLK_TCK);
}

// A "VmRSS" / "VmHWM" line of /proc/<pid>/status, in KiB.
long StatusKb(pid_t pid, const std::string& field) {
  if (pid <= 0) return 0;
  std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, field + ":")) {
      line = absl::StripAsciiWhitespace(line);
      long kb = 0;
      absl::SimpleAtoi(line.substr(0, line.find(' ')), &kb);
      return kb;
    }
  }
  return 0;
}

std::vector<pid_t> AllServicePids() {
  std::vector<pid_t> out;
  for (const std::string& s : ServiceProcesses()) out.push_back(ServicePid(s));
  return out;
}

std::string PerServiceCpu() {
  std::string out;
  for (const std::string& s : ServiceProcesses()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", s, "=", Num(CpuMs(ServicePid(s))));
  }
  return out;
}

// Proportional set size (shared library pages split between the processes that map them), KiB.
long PssKb(pid_t pid) {
  if (pid <= 0) return 0;
  std::string rollup = ReadFile(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  for (absl::string_view line : absl::StrSplit(rollup, '\n')) {
    if (absl::ConsumePrefix(&line, "Pss:")) {
      line = absl::StripAsciiWhitespace(line);
      long kb = 0;
      absl::SimpleAtoi(line.substr(0, line.find(' ')), &kb);
      return kb;
    }
  }
  return 0;
}

// Whole process trees: a wrapper (proot) and whatever a service spawned count too.
double SumCpuMs() {
  double sum = 0;
  for (pid_t p : AllServicePids()) sum += TreeCpuMs(p);
  return sum;
}

double SumKb(const std::string& field) {
  double sum = 0;
  for (pid_t p : AllServicePids()) sum += StatusKb(p, field);
  return sum;
}

// ---------------------------------------------------------------- messages

std::string MakeMessage(const std::string& tag, int n, const std::string& to, size_t bytes,
                        std::mt19937& rng) {
  std::string raw = absl::StrFormat(
      "From: Bench Sender <sender%d@outside.test>\r\nTo: %s\r\nSubject: bench %s %d\r\n"
      "Date: Tue, 24 Nov 2026 05:00:00 +0000\r\nMessage-ID: <bench-%s-%d-%u@outside.test>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
      n, to, tag, n, tag, n, static_cast<unsigned>(rng()));
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 ,;-";
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  std::string line(72, 'x');
  while (raw.size() + 74 <= bytes) {
    for (char& c : line) c = kAlphabet[pick(rng)];
    raw += line;
    raw += "\r\n";
  }
  while (raw.size() < bytes) raw.insert(raw.size() - (raw.size() > 2 ? 2 : 0), "z");
  return raw;
}

std::unique_ptr<s3::S3Client> MakeClient(const std::map<std::string, std::string>& env,
                                         const std::string& endpoint, int idle) {
  s3::ClientOptions o;
  o.endpoint = endpoint;
  o.bucket = env.at("R2_BUCKET");
  o.access_key_id = env.at("R2_ACCESS_KEY_ID");
  o.secret_access_key = env.at("R2_SECRET_ACCESS_KEY");
  o.ca_file = env.at("R2_CA_FILE");
  o.max_idle_connections = idle;
  auto c = s3::S3Client::Create(o);
  if (!c.ok()) {
    Error("S3 client: " + c.status().ToString());
    std::exit(2);
  }
  return std::move(*c);
}

std::string PendingKey(const std::string& raw, const std::string& to) {
  return absl::StrCat("pending/", Sha256Hex(raw), "-",
                      Sha256Hex(absl::AsciiStrToLower(to)).substr(0, 16), ".eml");
}

absl::Status PutMessage(s3::S3Client& c, const std::string& key, const std::string& raw,
                        const std::string& to) {
  std::map<std::string, std::string> md = {
      {"to", to},
      {"from", "sender@outside.test"},
      {"sha256", Sha256Hex(raw)},
      {"rawsize", std::to_string(raw.size())},
      {"receivedms", std::to_string(absl::ToUnixMillis(absl::Now()))}};
  absl::Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    s = c.PutObject(key, raw, md, false, "message/rfc822");
    if (s.ok()) return s;
  }
  return s;
}

// PUTs `n` messages of `bytes` into pending/ (the bucket contract's key and
// metadata) from `threads` threads. Returns the keys.
std::vector<std::string> PutBacklog(s3::S3Client& c, const std::string& tag, int n, size_t bytes,
                                    int threads, const std::string& prefix = "pending/") {
  std::vector<std::string> keys(n);
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(1234 + t * 7919 + std::hash<std::string>()(tag));
      for (int i = next++; i < n; i = next++) {
        const std::string& to = kRecipients[i % kRecipients.size()];
        std::string raw = MakeMessage(tag, i, to, bytes, rng);
        std::string key = PendingKey(raw, to);
        if (prefix != "pending/") key = prefix + key.substr(8);
        if (!PutMessage(c, key, raw, to).ok()) ++failed;
        keys[i] = key;
      }
    });
  }
  for (auto& t : ts) t.join();
  if (failed > 0) Error(absl::StrCat(failed.load(), " PUTs failed for ", tag));
  return keys;
}

// ---------------------------------------------------------------- SMTP

int64_t SmtpStat(PipelineHarness& h, const std::string& name) {
  auto r = h.SmtpControl("STATS");
  if (!r.ok()) return -1;
  for (absl::string_view w : absl::StrSplit(*r, ' ')) {
    if (absl::ConsumePrefix(&w, name + "=")) {
      int64_t v = 0;
      absl::SimpleAtoi(w, &v);
      return v;
    }
  }
  return -1;
}

// Waits until the SMTP peer has delivered `target` messages in total; returns
// the time the count was first seen there (polling every 20 ms), or nullopt.
std::optional<absl::Time> WaitDelivered(PipelineHarness& h, int64_t target, absl::Duration timeout,
                                        const std::function<void()>& tick = nullptr) {
  absl::Time deadline = absl::Now() + timeout;
  int64_t last = -1;
  absl::Time last_change = absl::Now();
  while (absl::Now() < deadline) {
    int64_t d = SmtpStat(h, "delivered");
    if (d >= target) return absl::Now();
    if (d != last) {
      last = d;
      last_change = absl::Now();
    }
    if (tick) tick();
    absl::SleepFor(absl::Milliseconds(tick ? 5 : 20));
  }
  Error(absl::StrCat("timed out waiting for delivery: ", last, " of ", target, " (no progress for ",
                     absl::FormatDuration(absl::Now() - last_change), ")"));
  return std::nullopt;
}

bool WaitPendingEmpty(PipelineHarness& h, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto keys = h.ListKeys("pending/");
    if (keys.ok() && keys->empty()) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  Error("pending/ not empty in time");
  return false;
}

class RawSmtp {
 public:
  bool Connect(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return Reply()[0] == '2';
  }
  ~RawSmtp() {
    if (fd_ >= 0) close(fd_);
  }
  bool Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(fd_, s.data() + off, s.size() - off);
      if (n <= 0) return false;
      off += n;
    }
    return true;
  }
  // The last line of a (multi-line) reply; "" on error.
  std::string Reply() {
    while (true) {
      size_t eol;
      while ((eol = buf_.find("\r\n")) == std::string::npos) {
        char b[4096];
        ssize_t n = read(fd_, b, sizeof b);
        if (n <= 0) return " ";
        buf_.append(b, n);
      }
      std::string line = buf_.substr(0, eol);
      buf_.erase(0, eol + 2);
      if (line.size() >= 4 && line[3] == '-') continue;
      return line.empty() ? " " : line;
    }
  }
  bool Cmd(const std::string& c, char expect) { return Send(c + "\r\n") && Reply()[0] == expect; }

 private:
  int fd_ = -1;
  std::string buf_;
};

// Messages/s the SMTP peer accepts over one connection, for `n` messages of `bytes`.
double SmtpCeiling(int port, int n, size_t bytes) {
  RawSmtp c;
  if (!c.Connect(port) || !c.Cmd("EHLO bench.test", '2')) {
    Error("SMTP ceiling: cannot connect");
    return 0;
  }
  std::string plain =
      std::string("\0", 1) + "pocketmail-inject" + std::string("\0", 1) + "inject-secret-for-tests";
  if (!c.Cmd("AUTH PLAIN " + absl::Base64Escape(plain), '2')) {
    Error("SMTP ceiling: AUTH failed");
    return 0;
  }
  std::mt19937 rng(99);
  std::vector<std::string> msgs;
  for (int i = 0; i < n; ++i) {
    msgs.push_back(MakeMessage("smtp-ceiling", i, kRecipients[i % kRecipients.size()], bytes, rng));
  }
  absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    const std::string& to = kRecipients[i % kRecipients.size()];
    if (!c.Cmd("MAIL FROM:<sender@outside.test>", '2') || !c.Cmd("RCPT TO:<" + to + ">", '2') ||
        !c.Cmd("DATA", '3') || !c.Send(msgs[i]) || !c.Cmd(".", '2')) {
      Error("SMTP ceiling: transaction failed");
      return 0;
    }
  }
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  c.Cmd("QUIT", '2');
  return n / secs;
}

// ---------------------------------------------------------------- S3 ceiling

// Sequences/s of GET + COPY(processed/) + DELETE over `keys`, `threads` at once.
double S3Ceiling(s3::S3Client& c, const std::vector<std::string>& keys, int threads) {
  std::atomic<size_t> next{0};
  std::atomic<int> failed{0};
  absl::Time t0 = absl::Now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (size_t i = next++; i < keys.size(); i = next++) {
        const std::string& k = keys[i];
        auto obj = c.GetObject(k);
        if (!obj.ok()) {
          ++failed;
          continue;
        }
        if (!c.CopyObject(k, "processed/" + k.substr(k.find('/') + 1)).ok()) ++failed;
        if (!c.DeleteObject(k).ok()) ++failed;
      }
    });
  }
  for (auto& t : ts) t.join();
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (failed > 0) Error(absl::StrCat("S3 ceiling: ", failed.load(), " requests failed"));
  return keys.size() / secs;
}

// The rate of a mix of `a` items at rate ra and `b` at rate rb, done one after another.
double MixRate(int a, double ra, int b, double rb) {
  if (ra <= 0 || rb <= 0) return 0;
  return (a + b) / (a / ra + b / rb);
}

// ---------------------------------------------------------------- service control

std::map<std::string, int64_t> S3Stats(PipelineHarness& h) {
  auto body = S3PeerStats(h.s3_env().at("R2_ENDPOINT"), h.s3_env().at("R2_CA_FILE"));
  if (!body.ok()) return {};
  auto parsed = ParseS3PeerStats(*body);
  return parsed.ok() ? *parsed : std::map<std::string, int64_t>{};
}

int64_t Delta(const std::map<std::string, int64_t>& a, const std::map<std::string, int64_t>& b,
              const std::string& k) {
  auto ia = a.find(k), ib = b.find(k);
  return (ib == b.end() ? 0 : ib->second) - (ia == a.end() ? 0 : ia->second);
}

// Restarts the fetcher with `env` on top of the base settings.
bool RestartFetcher(PipelineHarness& h, const std::map<std::string, std::string>& env) {
  if (h.ServiceRunning("fetcher")) {
    absl::Status s = h.StopService("fetcher");
    if (!s.ok()) Log("fetcher stop: " + s.ToString());
  }
  for (const auto& [k, v] : env) h.SetServiceEnv(k, v);
  absl::Status s = h.StartService("fetcher");
  if (!s.ok()) {
    Error("fetcher start: " + s.ToString());
    return false;
  }
  return true;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return 0;  // the wake listener's bind then fails with a clear error
  }
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int PortOf(const std::string& endpoint) {
  int port = 0;
  absl::SimpleAtoi(endpoint.substr(endpoint.rfind(':') + 1), &port);
  return port;
}

// ---------------------------------------------------------------- wake ping

std::string HmacHex(const std::string& key, const std::string& msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

// POSTs the signed ping exactly as the Worker does; true on a 2xx.
bool SendWake(int port, const std::string& key) {
  std::string ts = std::to_string(absl::ToUnixSeconds(absl::Now()));
  std::string body = absl::StrCat("{\"key\":\"", key, "\",\"ts\":", ts, "}");
  std::string req = absl::StrCat(
      "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "x-pocketmail-timestamp: ",
      ts, "\r\nx-pocketmail-signature: ", HmacHex(kWakeSecret, absl::StrCat(ts, "\n", key)),
      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return false;
  }
  (void)!write(fd, req.data(), req.size());
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 12 && buf[9] == '2';
}

// ---------------------------------------------------------------- Maildir

// trace key → mtime of the delivered file (the peer writes it right before its 250).
std::map<std::string, absl::Time> DeliveryTimes(const std::string& maildir) {
  std::map<std::string, absl::Time> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(maildir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || it->path().parent_path().filename() != "new") continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string l1, l2, l3;
    std::getline(in, l1);
    std::getline(in, l2);
    std::getline(in, l3);
    absl::string_view v = absl::StripSuffix(l3, "\r");
    if (!absl::ConsumePrefix(&v, "X-Pocketmail-Key: ")) continue;
    struct stat st;
    if (stat(it->path().c_str(), &st) != 0) continue;
    out[std::string(v)] = absl::TimeFromTimespec(st.st_mtim);
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double rank = p / 100.0 * (v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

// ---------------------------------------------------------------- the bench

struct Bench {
  Counts n;
  int concurrency = fetcher::kDefaultFetchConcurrency;
  bool skip_mobile = false;
  std::set<std::string> only;                    // sections to run (empty: all)
  std::map<std::string, std::string> extra_env;  // --service-env K=V (experiments)
  std::vector<std::string> wrapper;              // service command prefix (the proot passes)
  bool Want(const std::string& section) const { return only.empty() || only.count(section) > 0; }
  std::unique_ptr<PipelineHarness> h;
  std::unique_ptr<s3::S3Client> direct;  // our own client, straight to moto
  std::string maildir;
  int tag_counter = 0;

  // Figures kept for the memory / CPU / cost sections.
  std::map<std::string, std::string> settings;

  bool Start() {
    HarnessOptions o;
    o.start_services = false;
    o.s3_count_requests = true;
    o.fetch_concurrency = concurrency;
    o.poll_seconds = 180;  // the default MAIL_POLL
    o.combined = g_combined;
    o.service_wrapper = wrapper;
    auto started = PipelineHarness::Start(o);
    if (!started.ok()) {
      Error("harness: " + started.status().ToString());
      return false;
    }
    h = std::move(*started);
    maildir = h->scratch() + "/maildir";
    // The harness's fast retries are for tests; the benchmark keeps defaults
    // except where a section says otherwise.
    h->SetServiceEnv("RETRY_BASE_S", "30");
    h->SetServiceEnv("RETRY_MAX_S", "3600");
    h->SetServiceEnv("POCKETMAIL_LOG_LEVEL", "warn");
    // The installer points the router at Maddy's imapsql.db; here the account
    // list is the stand-in's file.
    h->SetServiceEnv("MAIL_ACCOUNTS_WATCH", h->scratch() + "/accounts.txt");
    if (!wrapper.empty()) settings["service_wrapper"] = absl::StrJoin(wrapper, " ");
    for (const auto& [k, v] : extra_env) {
      h->SetServiceEnv(k, v);
      settings["service_env." + k] = v;
    }
    direct = MakeClient(h->s3_env(), h->s3_env().at("R2_ENDPOINT"), 2 * concurrency);
    return true;
  }

  // ---- 6. start-up (first, so nothing else has warmed the services)
  void StartupSection() {
    Log("start-up: each service from exec to health SERVING");
    // Combined: the one process, up once all four sockets answer (the
    // harness's StartService waits for each; the loop below sees the first).
    std::vector<std::string> names = {"ledger", "router", "injector", "fetcher"};
    if (g_combined) names = {"fetcher"};
    for (const std::string& name : names) {
      std::vector<double> ms;
      for (int r = 0; r < n.startup_repeats; ++r) {
        if (h->ServiceRunning(name)) (void)h->StopService(name);
        absl::Status started;
        absl::Time t0 = absl::Now();
        std::thread th([&] { started = h->StartService(name); });
        std::optional<absl::Time> serving;
        while (absl::Now() - t0 < absl::Seconds(20)) {
          // A fresh channel with its own subchannel pool each time: the shared
          // pool would make us wait out a reconnect backoff (100 ms) instead.
          grpc::ChannelArguments args;
          args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
          auto ch =
              grpc::CreateCustomChannel(absl::StrCat("unix:", h->runtime_dir(), "/", name, ".sock"),
                                        grpc::InsecureChannelCredentials(), args);
          auto health = server::CheckHealth(ch, "", absl::Milliseconds(200));
          if (health.ok() && *health == server::Health::kServing) {
            serving = absl::Now();
            break;
          }
          absl::SleepFor(absl::Milliseconds(1));
        }
        th.join();
        if (!started.ok() || !serving) {
          Error(absl::StrCat(name, " did not start: ", started.ToString()));
          continue;
        }
        ms.push_back(absl::ToDoubleMilliseconds(*serving - t0));
      }
      if (ms.empty()) continue;
      Figure f{absl::StrCat("startup_", g_combined ? "pocketmaild" : name), Percentile(ms, 50),
               "ms"};
      f.goal = "<= 100 ms";
      f.met = f.value <= 100;
      f.note = absl::StrCat(
          "median of ", ms.size(), " starts: ",
          absl::StrJoin(ms, ", ", [](std::string* o, double v) { absl::StrAppend(o, Num(v)); }),
          " ms");
      Emit(f);
    }
  }

  // ---- 1. backlog throughput (+ 3. idle RSS, 4. CPU, 5. R2 cost on loopback)
  struct DrainResult {
    double seconds = 0;
    double cpu_ms = 0;
    int delivered = 0;
    std::map<std::string, int64_t> s3_before, s3_after;
    double moto_cpu_ms = 0;
    std::string cpu_each;
  };

  // With the fetcher stopped, PUTs the backlog, starts the fetcher and waits
  // for the SMTP peer to accept all of it; then waits for pending/ to empty.
  DrainResult Drain(const std::string& tag, int count, size_t bytes,
                    const std::map<std::string, std::string>& fetcher_env,
                    const std::function<void()>& tick = nullptr) {
    DrainResult r;
    if (h->ServiceRunning("fetcher")) (void)h->StopService("fetcher");
    Log(absl::StrCat(tag, ": PUT ", count, " x ", bytes, " B"));
    PutBacklog(*direct, tag, count, bytes, 4);
    int64_t base = SmtpStat(*h, "delivered");
    pid_t moto = -1;
    for (pid_t p : ChildPids("s3_peer.py")) moto = p;
    double moto0 = CpuMs(moto);
    r.s3_before = S3Stats(*h);
    double cpu0 = SumCpuMs();
    std::string cpu0_each = PerServiceCpu();
    Log(absl::StrCat(tag, ": draining"));
    absl::Time t0 = absl::Now();
    // The count is watched from before the fetcher starts: StartService
    // returns only once the harness's health check answers, which can take
    // longer than a small drain (the check's channel waits out a reconnect
    // backoff on the restarted service's socket), and a drain timed from its
    // return would read that wait instead.
    std::atomic<bool> stop_watching{false};
    std::optional<absl::Time> all_seen;  // the watcher's, read after join()
    std::thread watcher([&] {
      while (!stop_watching.load()) {
        if (SmtpStat(*h, "delivered") >= base + count) {
          all_seen = absl::Now();
          return;
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
    auto stop_watcher = [&] {
      stop_watching.store(true);
      watcher.join();
    };
    for (const auto& [k, v] : fetcher_env) h->SetServiceEnv(k, v);
    if (absl::Status s = h->StartService("fetcher"); !s.ok()) {
      stop_watcher();
      Error("fetcher start: " + s.ToString());
      return r;
    }
    auto done = WaitDelivered(*h, base + count, absl::Seconds(900), tick);
    stop_watcher();
    if (!done) return r;
    r.seconds = absl::ToDoubleSeconds(std::min(all_seen.value_or(*done), *done) - t0);
    r.delivered = count;
    WaitPendingEmpty(*h, absl::Seconds(120));
    absl::SleepFor(absl::Milliseconds(300));
    r.cpu_ms = SumCpuMs() + 0 - cpu0;  // the fetcher started at 0
    r.cpu_each =
        absl::StrCat("before: ", cpu0_each, "; after: ", PerServiceCpu(), " (ms, cumulative)");
    r.s3_after = S3Stats(*h);
    r.moto_cpu_ms = CpuMs(moto) - moto0;
    Log(absl::StrCat(tag, ": ", count, " in ", Num(r.seconds), " s = ", Num(count / r.seconds),
                     " msg/s; services CPU ", Num(r.cpu_ms), " ms; moto CPU ", Num(r.moto_cpu_ms),
                     " ms"));
    return r;
  }

  void ThroughputSection(const std::string& profile, const std::string& fetcher_endpoint,
                         double smtp_ceiling, FaultProxy* proxy) {
    std::map<std::string, std::string> env = {{"R2_ENDPOINT", fetcher_endpoint},
                                              {"FETCH_CONCURRENCY", std::to_string(concurrency)},
                                              {"KEEP_PROCESSED_COPY", "1"}};
    // The fetcher's CPU is counted from its own start, the others' from here.
    if (h->ServiceRunning("fetcher")) (void)h->StopService("fetcher");
    DrainResult small = Drain(profile + "-4k", n.small, kSmall, env);
    DrainResult large = Drain(profile + "-100k", n.large, kLarge, env);
    if (small.delivered == 0 || large.delivered == 0) return;
    double rate = (small.delivered + large.delivered) / (small.seconds + large.seconds);

    // The S3 ceiling: our client, same concurrency, same network path.
    Log(profile + ": S3 ceiling");
    auto ceiling_client = MakeClient(h->s3_env(), fetcher_endpoint, 2 * concurrency);
    auto k_small =
        PutBacklog(*direct, profile + "-ceil-4k", n.ceiling_small, kSmall, 4, "ceiling/");
    auto k_large =
        PutBacklog(*direct, profile + "-ceil-100k", n.ceiling_large, kLarge, 4, "ceiling/");
    auto s3_before = S3Stats(*h);
    double s3_small = S3Ceiling(*ceiling_client, k_small, concurrency);
    double s3_large = S3Ceiling(*ceiling_client, k_large, concurrency);
    double s3_ceiling = MixRate(n.small, s3_small, n.large, s3_large);
    double lower = std::min(s3_ceiling, smtp_ceiling);
    (void)s3_before;

    Figure f{absl::StrCat("throughput_", profile), rate, "msg/s", lower, rate / lower};
    f.goal = "ratio >= 0.9 of the lower ceiling";
    f.met = rate / lower >= 0.9;
    f.note = absl::StrCat(n.small, " x 4 KiB then ", n.large,
                          " x 100 KiB, 5 recipients, FETCH_CONCURRENCY=", concurrency,
                          "; ceiling = min(S3 sequence ceiling, SMTP ceiling)");
    Emit(f);
    if (profile == "mobile") EmitMobileGoal(rate);
    Emit({absl::StrCat("throughput_", profile, "_4k"), small.delivered / small.seconds, "msg/s",
          std::min(s3_small, smtp_ceiling),
          (small.delivered / small.seconds) / std::min(s3_small, smtp_ceiling)});
    Emit({absl::StrCat("throughput_", profile, "_100k"), large.delivered / large.seconds, "msg/s",
          std::min(s3_large, smtp_ceiling),
          (large.delivered / large.seconds) / std::min(s3_large, smtp_ceiling)});
    Emit({absl::StrCat("s3_ceiling_", profile), s3_ceiling, "msg/s"});
    Emit({absl::StrCat("s3_ceiling_", profile, "_4k"), s3_small, "msg/s"});
    Emit({absl::StrCat("s3_ceiling_", profile, "_100k"), s3_large, "msg/s"});
    Emit({absl::StrCat("moto_cpu_per_msg_", profile), small.moto_cpu_ms / small.delivered, "ms",
          std::nullopt, std::nullopt, "", std::nullopt,
          "CPU of the S3 peer (moto) per 4 KiB message during the drain: the peer's own cost"});
    if (proxy != nullptr) {
      auto st = proxy->Stats();
      if (st.ok()) {
        Log(absl::StrCat(profile, ": proxy connections=", (*st)["connections"]));
      }
    }

    if (profile == "loopback") {
      // 4. CPU per 4 KiB message, summed over the four services.
      Figure cpu{"cpu_per_msg_4k", small.cpu_ms / small.delivered, "ms"};
      cpu.goal = "<= 2 ms";
      cpu.met = cpu.value <= 2;
      cpu.note = absl::StrCat(
          "user+sys from /proc/<pid>/stat of ", g_combined ? "pocketmaild" : "the four services",
          " over the 4 KiB drain (includes the fetcher's start); ", small.cpu_each);
      Emit(cpu);
      // 5. R2 requests per delivered message (processed/ copy on).
      int total = small.delivered + large.delivered;
      for (const char* k : {"LIST", "GET", "COPY", "DELETE", "HEAD", "PUT"}) {
        double v = static_cast<double>(Delta(small.s3_before, small.s3_after, k) +
                                       Delta(large.s3_before, large.s3_after, k)) /
                   total;
        if ((std::string(k) == "HEAD" || std::string(k) == "PUT") && v == 0) continue;
        Emit({absl::StrCat("r2_", absl::AsciiStrToLower(k), "_per_msg"), v, "req"});
      }
      // 3. idle RSS after the backlog.
      absl::SleepFor(absl::Seconds(2));
      Figure idle{"rss_idle", SumKb("VmRSS") / 1024.0, "MiB"};
      idle.goal = "<= 40 MiB";
      idle.met = idle.value <= 40;
      idle.note = absl::StrCat(
          g_combined ? "VmRSS of pocketmaild (the four services in one process)"
                     : "sum of VmRSS of the four services",
          ", 2 s after the backlog; per process (KiB): ",
          absl::StrJoin(AllServicePids(), " ",
                        [](std::string* o, pid_t p) { absl::StrAppend(o, StatusKb(p, "VmRSS")); }));
      Emit(idle);
      double pss = 0;
      for (pid_t p : AllServicePids()) pss += PssKb(p);
      Figure pf{"pss_idle", pss / 1024.0, "MiB"};
      pf.note =
          "sum of Pss (smaps_rollup): like rss_idle, but the shared libraries (OpenSSL, libstdc++, "
          "libc, SQLite, curl) the four processes map are counted once, split between them";
      Emit(pf);
    }
  }

  // ---- 5b. cost without the processed/ copy, and LISTs per idle day
  void CostSection() {
    std::map<std::string, std::string> env = {{"R2_ENDPOINT", h->s3_env().at("R2_ENDPOINT")},
                                              {"KEEP_PROCESSED_COPY", "0"}};
    DrainResult r = Drain("nocopy-4k", n.nocopy, kSmall, env);
    if (r.delivered > 0) {
      for (const char* k : {"LIST", "GET", "COPY", "DELETE"}) {
        Emit({absl::StrCat("r2_", absl::AsciiStrToLower(k), "_per_msg_nocopy"),
              static_cast<double>(Delta(r.s3_before, r.s3_after, k)) / r.delivered, "req"});
      }
    }
    // Idle: how many LISTs one idle poll costs, measured with a short MAIL_POLL,
    // then scaled to the default MAIL_POLL (180 s) for a day.
    const int poll = 2;
    RestartFetcher(
        *h,
        {{"MAIL_POLL", std::to_string(poll)}, {"FAST_POLL_S", "0"}, {"KEEP_PROCESSED_COPY", "1"}});
    absl::SleepFor(absl::Seconds(1));
    auto a = S3Stats(*h);
    absl::SleepFor(absl::Seconds(n.idle_window_s));
    auto b = S3Stats(*h);
    double lists = Delta(a, b, "LIST");
    double other =
        Delta(a, b, "GET") + Delta(a, b, "COPY") + Delta(a, b, "DELETE") + Delta(a, b, "HEAD");
    double per_poll = lists / (n.idle_window_s / static_cast<double>(poll));
    Figure f{"r2_list_per_idle_day", per_poll * 86400.0 / 180.0, "req"};
    f.note = absl::StrCat(
        "measured ", lists, " LIST (and ", other, " other requests) in ", n.idle_window_s,
        " s idle at MAIL_POLL=", poll, " FAST_POLL_S=0 (", Num(per_poll),
        " LIST per idle poll), scaled to the default MAIL_POLL=180: 86400/180 polls a day. "
        "Adaptive polling adds ACTIVE_WINDOW_S/FAST_POLL_S = 100 LISTs after each burst of "
        "activity.");
    Emit(f);
    RestartFetcher(*h, {{"MAIL_POLL", "180"}, {"FAST_POLL_S", "3"}});
  }

  // ---- 3b. peak RSS while draining 25 MiB messages
  void MemorySection() {
    std::map<std::string, std::string> env = {{"R2_ENDPOINT", h->s3_env().at("R2_ENDPOINT")},
                                              {"KEEP_PROCESSED_COPY", "1"}};
    double peak_kb = 0;
    std::map<std::string, long> peak_each;
    std::map<std::string, pid_t> pids;
    auto tick = [&] {
      if (pids.empty() || pids[ProcessName("fetcher")] <= 0) {
        for (const std::string& s : ServiceProcesses()) pids[s] = ServicePid(s);
      }
      double sum = 0;
      for (const std::string& s : ServiceProcesses()) {
        long kb = StatusKb(pids[s], "VmRSS");
        peak_each[s] = std::max(peak_each[s], kb);
        sum += kb;
      }
      peak_kb = std::max(peak_kb, sum);
    };
    DrainResult r = Drain("huge-25m", n.huge, kHuge, env, tick);
    if (r.delivered == 0) return;
    double hwm = SumKb("VmHWM") / 1024.0;
    double goal = 64 + 2 * 25;
    Figure f{"rss_peak_25m", peak_kb / 1024.0, "MiB"};
    f.goal = absl::StrCat("<= ", goal, " MiB (64 MiB + 2 x 25 MiB)");
    f.met = f.value <= goal;
    f.note = absl::StrCat("max over samples (every ~10 ms) of the summed VmRSS while draining ",
                          n.huge, " x 25 MiB; per-service peaks (KiB): ",
                          absl::StrJoin(peak_each, " ", absl::PairFormatter("=")),
                          "; sum of VmHWM afterwards: ", Num(hwm), " MiB");
    Emit(f);
    Figure g{"rss_peak_25m_hwm_sum", hwm, "MiB"};
    g.note =
        "sum of each service's VmHWM (its own peak, not necessarily simultaneous): an upper bound";
    Emit(g);
  }

  // ---- 2. latency PUT → 250
  void LatencySection(const std::string& mode) {
    std::map<std::string, std::string> env = {{"R2_ENDPOINT", h->s3_env().at("R2_ENDPOINT")},
                                              {"KEEP_PROCESSED_COPY", "1"},
                                              {"WAKE_LISTEN", ""}};
    int wake_port = 0;
    std::string desc;
    if (mode == "wake") {
      wake_port = FreePort();
      env["WAKE_LISTEN"] = absl::StrCat("127.0.0.1:", wake_port);
      env["WAKE_SECRET"] = kWakeSecret;
      env["MAIL_POLL"] = "180";
      env["FAST_POLL_S"] = "0";
      desc =
          "wake ping after each PUT; MAIL_POLL=180, FAST_POLL_S=0 (polling alone would give "
          "minutes)";
    } else if (mode == "adaptive") {
      env["MAIL_POLL"] = "180";
      env["FAST_POLL_S"] = "3";
      env["ACTIVE_WINDOW_S"] = "300";
      desc =
          "no ping; MAIL_POLL=180 FAST_POLL_S=3 ACTIVE_WINDOW_S=300, within the active window (a "
          "warm-up "
          "message drained first); the first message after an idle period still waits up to "
          "MAIL_POLL";
    } else {
      env["MAIL_POLL"] = "10";
      env["FAST_POLL_S"] = "0";
      desc =
          "no ping; MAIL_POLL=10 (shortened from 180 to fit the run; expected p50 ~ MAIL_POLL/2), "
          "FAST_POLL_S=0";
    }
    Log("latency " + mode + ": " + desc);
    if (mode == "adaptive") {
      // A message waiting when the fetcher starts: its start-up pass finds it,
      // which opens the active window. (A DrainNow would not do: its activity
      // does not cut short the poller's wait, already computed as MAIL_POLL.)
      if (h->ServiceRunning("fetcher")) (void)h->StopService("fetcher");
      int64_t base = SmtpStat(*h, "delivered");
      PutBacklog(*direct, "latency-warmup", 1, kSmall, 1);
      if (!RestartFetcher(*h, env)) return;
      if (!WaitDelivered(*h, base + 1, absl::Seconds(60))) return;
    } else if (!RestartFetcher(*h, env)) {
      return;
    }
    absl::SleepFor(absl::Milliseconds(500));
    int64_t base = SmtpStat(*h, "delivered");
    std::mt19937 rng(4242);
    std::exponential_distribution<double> gap(1.0 / n.latency_mean_gap_s);
    std::map<std::string, absl::Time> put_done;
    int failed_pings = 0;
    for (int i = 0; i < n.latency_messages; ++i) {
      absl::SleepFor(absl::Seconds(gap(rng)));
      const std::string& to = kRecipients[i % kRecipients.size()];
      std::string raw = MakeMessage("latency-" + mode, i, to, kSmall, rng);
      std::string key = PendingKey(raw, to);
      if (!PutMessage(*direct, key, raw, to).ok()) {
        Error("latency PUT failed");
        continue;
      }
      put_done[key] = absl::Now();
      if (wake_port != 0 && !SendWake(wake_port, key)) ++failed_pings;
    }
    if (failed_pings > 0) Error(absl::StrCat(failed_pings, " wake pings were refused"));
    WaitDelivered(*h, base + static_cast<int64_t>(put_done.size()), absl::Seconds(600));
    auto delivered = DeliveryTimes(maildir);
    std::vector<double> lat;
    for (const auto& [key, t] : put_done) {
      auto it = delivered.find(key);
      if (it != delivered.end()) lat.push_back(absl::ToDoubleSeconds(it->second - t));
    }
    if (lat.size() < put_done.size()) {
      Error(absl::StrCat("latency ", mode, ": only ", lat.size(), " of ", put_done.size(),
                         " found delivered"));
    }
    Figure p50{absl::StrCat("latency_", mode, "_p50"), Percentile(lat, 50), "s"};
    Figure p99{absl::StrCat("latency_", mode, "_p99"), Percentile(lat, 99), "s"};
    p50.note = p99.note =
        absl::StrCat(lat.size(), " messages, exponential gaps (mean ", n.latency_mean_gap_s,
                     " s); PUT returned -> Maildir file mtime; ", desc);
    if (mode == "wake") {
      p50.goal = "<= 1 s";
      p50.met = p50.value <= 1;
      p99.goal = "<= 3 s";
      p99.met = p99.value <= 3;
    }
    Emit(p50);
    Emit(p99);
    Emit({absl::StrCat("latency_", mode, "_max"),
          lat.empty() ? NAN : *std::max_element(lat.begin(), lat.end()), "s"});
  }

  // ---- 1b. issue 12's absolute goal for the mobile profile
  void EmitMobileGoal(double rate) {
    Figure f{"throughput_mobile_goal", rate, "msg/s"};
    f.floor = 45;
    f.goal = ">= 45 msg/s on the 60 ms mobile profile at the default settings (issue 12)";
    f.met = rate >= 45;
    f.note = absl::StrCat(
        "the throughput_mobile figure against the absolute goal; FETCH_CONCURRENCY=", concurrency,
        concurrency == kDefaultConcurrency
            ? " (the default)"
            : absl::StrCat(" (NOT the default ", kDefaultConcurrency, ")"));
    Emit(f);
  }

  // ---- 7. the phone's day: a short backlog, then idle at the defaults
  // (natively, and in the proot passes under proot: figures suffixed _proot).
  static constexpr int kDefaultConcurrency = fetcher::kDefaultFetchConcurrency;
  static constexpr int kMailPoll = 180;  // the installer's MAIL_POLL
  static constexpr int kFastPoll = 3;    // FAST_POLL_S default
  // ACTIVE_WINDOW_S shortened from 300 so the idle window starts after the
  // fast polls that follow a backlog: it measures the state of most of the day.
  static constexpr int kActiveWindow = 5;

  std::map<std::string, std::string> IdleDefaults() const {
    return {{"R2_ENDPOINT", h->s3_env().at("R2_ENDPOINT")},
            {"KEEP_PROCESSED_COPY", "1"},
            {"MAIL_POLL", std::to_string(kMailPoll)},
            {"FAST_POLL_S", std::to_string(kFastPoll)},
            {"ACTIVE_WINDOW_S", std::to_string(kActiveWindow)},
            {"FETCH_CONCURRENCY", std::to_string(kDefaultConcurrency)},
            {"MAIL_ACCOUNTS_REFRESH_S", "3600"},  // the installer's, next to the watch
            {"WAKE_LISTEN", ""}};
  }

  void PhoneSection() {
    Log(absl::StrCat("phone: ", n.phone_backlog, " x 4 KiB, then ", n.phone_idle_s, " s idle",
                     g_proot ? " (under proot)" : ""));
    DrainResult r = Drain("phone-4k", n.phone_backlog, kSmall, IdleDefaults());
    if (r.delivered == 0) return;
    EmitPhoneCpu(r);
    absl::SleepFor(absl::Seconds(kActiveWindow + kFastPoll + 2));  // the fast polls end
    IdleSection();
  }

  void EmitPhoneCpu(const DrainResult& r) {
    Figure f{"cpu_per_msg_4k_300", r.cpu_ms / r.delivered, "ms"};
    if (g_proot) {
      const bool is_default = g_combined == kDefaultLayoutCombined;
      f.ceiling = is_default ? 6 : 8;
      f.goal =
          absl::StrCat("<= ", Num(*f.ceiling), " ms under proot (issue 12: ",
                       is_default ? "the installer's default layout" : "the other layout", ")");
      f.met = f.value <= *f.ceiling;
    }
    f.note = absl::StrCat(
        r.delivered, " x 4 KiB on loopback at the defaults; user+sys (+ reaped children) of the ",
        g_proot ? "proot tracers and their tracees" : "service processes",
        ", whole process trees, from the fetcher's exec until pending/ was empty; ", r.cpu_each);
    Emit(f);
  }

  std::map<std::string, pid_t> ServiceRoots() const {
    std::map<std::string, pid_t> roots;
    for (const std::string& s : ServiceProcesses()) roots[s] = ServicePid(s);
    return roots;
  }

  void IdleSection() {
    std::map<std::string, pid_t> roots = ServiceRoots();
    Log(absl::StrCat("idle: ", n.phone_idle_s, " s at MAIL_POLL=", kMailPoll));
    auto s3_before = S3Stats(*h);
    TreeSample before = SampleTrees(roots);
    absl::SleepFor(absl::Seconds(n.phone_idle_s));
    TreeSample after = SampleTrees(roots);
    auto s3_after = S3Stats(*h);
    IdleWindow w = Compare(before, after);
    EmitIdle(w, after);
    EmitIdleRequests(w, s3_before, s3_after);
    EmitThreadGroups(w);
  }

  static Figure Goal(Figure f, double ceiling, const std::string& goal) {
    f.ceiling = ceiling;
    f.goal = goal;
    f.met = f.value <= ceiling;
    return f;
  }

  void EmitIdle(const IdleWindow& w, const TreeSample& end) {
    const std::string where = absl::StrCat(
        Num(w.seconds), " s idle after the backlog, MAIL_POLL=", kMailPoll, ", summed over ",
        g_proot ? "the proot tracers and their tracees" : "the service processes", " (",
        end.processes, " processes)");
    Figure wake = Goal({"idle_wakeups_per_s", w.wakeups_per_s, "/s"}, 1, "<= 1 per second, summed");
    wake.note =
        "voluntary + nonvoluntary context switches of every thread (/proc/<pid>/task/*/status), " +
        where;
    Emit(wake);
    Figure cpu =
        Goal({"idle_cpu_ms_per_h", w.cpu_ms * 3600 / w.seconds, "ms/h"}, 1000, "<= 1 s per hour");
    cpu.note = absl::StrCat("user+sys over the window (", Num(w.cpu_ms),
                            " ms), scaled to an hour; ", where);
    Emit(cpu);
    Figure threads{"idle_threads", static_cast<double>(w.threads_end), "threads"};
    threads.note = absl::StrCat("/proc/<pid>/task entries at the end (", w.threads_start,
                                " at the start); ", where);
    Emit(threads);
    Figure rss = Goal({"idle_rss", end.rss_kb / 1024.0, "MiB"}, 40, "<= 40 MiB");
    rss.note = "VmRSS summed at the end of the window; " + where;
    Emit(rss);
  }

  void EmitIdleRequests(const IdleWindow& w, const std::map<std::string, int64_t>& a,
                        const std::map<std::string, int64_t>& b) {
    double lists = Delta(a, b, "LIST");
    double other =
        Delta(a, b, "GET") + Delta(a, b, "COPY") + Delta(a, b, "DELETE") + Delta(a, b, "HEAD");
    Figure f{"idle_list_per_window", lists, "req"};
    f.note =
        absl::StrCat("LISTs the S3 peer served in the ", Num(w.seconds), " s window (and ", other,
                     " other requests); one poll is due every MAIL_POLL=", kMailPoll, " s");
    Emit(f);
    Figure p = Goal({"idle_list_per_mail_poll", lists * kMailPoll / w.seconds, "req"}, 1,
                    "<= 1 LIST per MAIL_POLL");
    p.note = absl::StrCat(
        "idle_list_per_window x MAIL_POLL / window = ", lists, " x ", kMailPoll, " / ",
        Num(w.seconds), "; a window shorter than MAIL_POLL sees 0 or 1 poll, so this is 0 or ",
        Num(kMailPoll / w.seconds), " (r2_list_per_idle_day measures LISTs per poll)");
    Emit(p);
  }

  // Which threads wake: one line per (service, process, thread name).
  void EmitThreadGroups(const IdleWindow& w) {
    const std::string run = g_suffix.empty() ? "native" : g_suffix.substr(1);
    for (const ThreadGroup& g : w.groups) {
      std::string blocked = absl::StrJoin(g.blocked_in, ",", absl::PairFormatter(":"));
      std::printf("bench: idle_wakeups_by_thread%s[%s]=%s /s threads=%d cpu=%s ms blocked_in=%s\n",
                  g_suffix.c_str(), g.name.c_str(), Num(g.wakeups_per_s).c_str(), g.threads,
                  Num(g.cpu_ms).c_str(), blocked.empty() ? "-" : blocked.c_str());
      g_thread_rows.push_back(absl::StrCat(
          "{\"run\": \"", run, "\", \"thread\": \"", JsonEscape(g.name),
          "\", \"threads\": ", g.threads, ", \"wakeups_per_s\": ", Num(g.wakeups_per_s),
          ", \"cpu_ms\": ", Num(g.cpu_ms), ", \"blocked_in\": \"", JsonEscape(blocked), "\"}"));
    }
    std::fflush(stdout);
  }

  void Run() {
    absl::Time t0 = absl::Now();
    if (!Start()) return;
    settings["fetch_concurrency"] = std::to_string(concurrency);
    if (Want("startup")) {
      StartupSection();
    } else {
      for (const char* name : PipelineHarness::kServices) {
        if (absl::Status s = h->StartService(name); !s.ok()) Error(s.ToString());
      }
    }
    // Services are all up now; the backlog runs with default poll settings.
    h->SetServiceEnv("MAIL_POLL", "180");
    h->SetServiceEnv("FAST_POLL_S", "3");

    Log("SMTP ceiling");
    int64_t smtp_before = SmtpStat(*h, "delivered");
    double smtp_small = SmtpCeiling(h->smtp_port(), n.ceiling_small, kSmall);
    double smtp_large = SmtpCeiling(h->smtp_port(), n.ceiling_large, kLarge);
    (void)smtp_before;
    double smtp_ceiling = MixRate(n.small, smtp_small, n.large, smtp_large);
    Emit({"smtp_ceiling", smtp_ceiling, "msg/s"});
    Emit({"smtp_ceiling_4k", smtp_small, "msg/s"});
    Emit({"smtp_ceiling_100k", smtp_large, "msg/s"});

    if (Want("loopback"))
      ThroughputSection("loopback", h->s3_env().at("R2_ENDPOINT"), smtp_ceiling, nullptr);
    if (Want("cost")) CostSection();
    if (Want("memory")) MemorySection();
    if (Want("latency")) {
      for (const char* mode : {"wake", "adaptive", "poll"}) LatencySection(mode);
    }

    if (!skip_mobile && Want("mobile")) {
      auto proxy = FaultProxy::Start(PortOf(h->s3_env().at("R2_ENDPOINT")));
      if (!proxy.ok()) {
        Error("fault proxy: " + proxy.status().ToString());
      } else if (absl::Status s = (*proxy)->Set("latency_ms=30"); !s.ok()) {
        Error("fault proxy: " + s.ToString());
      } else {
        settings["mobile_proxy"] =
            "latency_ms=30 each direction (60 ms RTT) on every S3 byte, TLS included";
        ThroughputSection("mobile", absl::StrCat("https://127.0.0.1:", (*proxy)->port()),
                          smtp_ceiling, proxy->get());
      }
      if (h->ServiceRunning("fetcher")) (void)h->StopService("fetcher");
    }
    if (Want("idle")) PhoneSection();
    settings["runtime_s"] = Num(absl::ToDoubleSeconds(absl::Now() - t0));
    Log("total " + settings["runtime_s"] + " s");
  }
};

std::string Json(const Bench& b, const std::string& started) {
  std::string out = "{\n  \"generated\": \"" + started + "\",\n";
  absl::StrAppend(&out, "  \"machine\": {\"cores\": ", std::thread::hardware_concurrency(), "},\n");
  absl::StrAppend(&out, "  \"counts\": {\"small_4k\": ", b.n.small, ", \"large_100k\": ", b.n.large,
                  ", \"ceiling_4k\": ", b.n.ceiling_small,
                  ", \"ceiling_100k\": ", b.n.ceiling_large,
                  ", \"latency_messages\": ", b.n.latency_messages, ", \"huge_25m\": ", b.n.huge,
                  ", \"phone_backlog_4k\": ", b.n.phone_backlog,
                  ", \"idle_window_s\": ", b.n.phone_idle_s, "},\n");
  out += "  \"settings\": {";
  bool first = true;
  for (const auto& [k, v] : b.settings) {
    absl::StrAppend(&out, first ? "" : ", ", "\"", k, "\": \"", JsonEscape(v), "\"");
    first = false;
  }
  out += "},\n  \"figures\": [\n";
  for (size_t i = 0; i < g_figures.size(); ++i) {
    const Figure& f = g_figures[i];
    absl::StrAppend(&out, "    {\"name\": \"", f.name,
                    "\", \"value\": ", std::isnan(f.value) ? "null" : Num(f.value),
                    ", \"unit\": \"", f.unit, "\"");
    if (f.ceiling) absl::StrAppend(&out, ", \"ceiling\": ", Num(*f.ceiling));
    if (f.ratio) absl::StrAppend(&out, ", \"ratio\": ", Num(*f.ratio));
    if (!f.goal.empty()) absl::StrAppend(&out, ", \"goal\": \"", JsonEscape(f.goal), "\"");
    if (f.floor) absl::StrAppend(&out, ", \"floor\": ", Num(*f.floor));
    if (f.met) absl::StrAppend(&out, ", \"met\": ", *f.met ? "true" : "false");
    if (!f.note.empty()) absl::StrAppend(&out, ", \"note\": \"", JsonEscape(f.note), "\"");
    absl::StrAppend(&out, "}", i + 1 < g_figures.size() ? "," : "", "\n");
  }
  out += "  ],\n  \"idle_wakeups_by_thread\": [\n";
  for (size_t i = 0; i < g_thread_rows.size(); ++i) {
    absl::StrAppend(&out, "    ", g_thread_rows[i], i + 1 < g_thread_rows.size() ? "," : "", "\n");
  }
  out += "  ],\n  \"errors\": [";
  for (size_t i = 0; i < g_errors.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", "\"", JsonEscape(g_errors[i]), "\"");
  }
  out += "]\n}\n";
  return out;
}

// A pass after the first: pocketmaild natively (the sections one process
// changes), or either layout under proot (the phone section only). Its
// settings land in the first pass's, prefixed.
void RunPass(Bench& first, bool combined_layout, bool proot) {
  Bench c;
  c.n = first.n;
  c.concurrency = first.concurrency;
  c.extra_env = first.extra_env;
  c.skip_mobile = first.skip_mobile;
  const std::vector<std::string> sections =
      proot ? std::vector<std::string>{"idle"}
            : std::vector<std::string>{"startup", "loopback", "memory", "mobile", "idle"};
  for (const std::string& section : sections) {
    if (first.Want(section) || proot) c.only.insert(section);
  }
  if (c.only.empty()) return;
  if (proot) c.wrapper = kProotWrapper;
  g_combined = combined_layout;
  g_proot = proot;
  g_suffix = absl::StrCat(proot ? "_proot" : "", combined_layout ? "_combined" : "");
  Log(absl::StrCat("pass: ", combined_layout ? "pocketmaild" : "four processes",
                   proot ? ", under proot" : ""));
  c.Run();
  c.h.reset();
  for (const auto& [k, v] : c.settings) first.settings[g_suffix.substr(1) + "." + k] = v;
  g_combined = g_proot = false;
  g_suffix.clear();
}

// Under `bazel run` the cwd is the runfiles tree; run directly, find it.
void LocateRunfiles(const char* argv0) {
  if (std::getenv("TEST_SRCDIR") != nullptr) return;
  if (std::filesystem::exists("tests/peers/s3/s3_peer.py")) return;
  std::string rf = std::string(argv0) + ".runfiles";
  if (const char* d = std::getenv("RUNFILES_DIR")) rf = d;
  setenv("TEST_SRCDIR", rf.c_str(), 1);
  setenv("TEST_WORKSPACE", "pocketmail", 1);
}

int BenchMain(int argc, char** argv) {
  std::string json_path;
  Bench b;
  bool four = true, combined = true, proot = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (absl::StartsWith(a, "--json=")) {
      json_path = a.substr(7);
    } else if (a == "--quick") {
      b.n = Counts{200, 20, 100, 10, 40, 0.25, 3, 50, 10, 2, 100, 12};
    } else if (absl::StartsWith(a, "--only=")) {
      for (absl::string_view part : absl::StrSplit(a.substr(7), ','))
        b.only.insert(std::string(part));
    } else if (a == "--service-env" && i + 1 < argc) {
      std::string kv = argv[++i];
      size_t eq = kv.find('=');
      if (eq == std::string::npos) return 2;
      b.extra_env[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (a == "--combined-only") {
      four = false;
    } else if (a == "--no-combined") {
      combined = false;
    } else if (a == "--no-proot") {
      proot = false;
    } else if (a == "--skip-mobile") {
      b.skip_mobile = true;
    } else if (absl::StartsWith(a, "--concurrency=")) {
      absl::SimpleAtoi(a.substr(14), &b.concurrency);
    } else {
      std::fprintf(
          stderr,
          "usage: pipeline_bench [--json PATH] [--quick] [--skip-mobile] [--concurrency=N]\n"
          "       [--only=startup,loopback,cost,memory,latency,mobile,idle,proot] [--service-env "
          "K=V]...\n"
          "       [--no-combined | --combined-only] [--no-proot]\n");
      return 2;
    }
  }
  LocateRunfiles(argv[0]);
  if (!json_path.empty() && json_path[0] != '/') {
    if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"))
      json_path = std::string(ws) + "/" + json_path;
  }
  std::string started = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  if (four) {
    b.Run();
    b.h.reset();
  }
  // Second pass: the combined binary, for the figures it changes (start-up,
  // throughput in both profiles, CPU, idle and peak memory, the idle window),
  // suffixed _combined. Latency and R2 requests run the same code either way.
  if (combined) RunPass(b, /*combined_layout=*/true, /*proot=*/false);
  // Then both layouts under proot: the short backlog and the idle window.
  if (proot && b.Want("proot")) {
    if (!std::filesystem::exists(kProotWrapper[0])) {
      Error(kProotWrapper[0] +
            " is missing (Debian's proot package; ./pocketmail bench installs it)");
    } else {
      if (four) RunPass(b, /*combined_layout=*/false, /*proot=*/true);
      if (combined) RunPass(b, /*combined_layout=*/true, /*proot=*/true);
    }
  }
  if (!json_path.empty()) {
    std::filesystem::create_directories(std::filesystem::path(json_path).parent_path());
    std::ofstream(json_path) << Json(b, started);
    Log("wrote " + json_path);
  }
  if (!g_errors.empty()) {
    Log(absl::StrCat(g_errors.size(), " errors"));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace pocketmail::testing

int main(int argc, char** argv) { return pocketmail::testing::BenchMain(argc, argv); }
