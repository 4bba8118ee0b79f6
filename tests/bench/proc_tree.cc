#include "tests/bench/proc_tree.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace pocketmail::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The numeric entries of a /proc directory (pids, or tids under task/).
std::vector<pid_t> NumericEntries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int n = 0;
    if (absl::SimpleAtoi(e->d_name, &n)) out.push_back(n);
  }
  closedir(d);
  return out;
}

// The fields of a stat file after "pid (comm) ": [0] = state, [1] = ppid,
// [11] = utime, [12] = stime.
std::vector<std::string> StatFields(const std::string& path) {
  std::string stat = Slurp(path);
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 > stat.size()) return {};
  return absl::StrSplit(stat.substr(rp + 2), ' ');
}

// utime + stime, plus with `children` cutime + cstime (children waited for).
double StatCpuMs(const std::string& path, bool children) {
  std::vector<std::string> f = StatFields(path);
  long long ut = 0, st = 0, cut = 0, cst = 0;
  if (f.size() < 15 || !absl::SimpleAtoi(f[11], &ut) || !absl::SimpleAtoi(f[12], &st) ||
      !absl::SimpleAtoi(f[13], &cut) || !absl::SimpleAtoi(f[14], &cst)) {
    return 0;
  }
  return (ut + st + (children ? cut + cst : 0)) * 1000.0 / sysconf(_SC_CLK_TCK);
}

// A "Name: value ..." line of a status file, as a number (0 when absent).
long long StatusValue(const std::string& status, absl::string_view field) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, field) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    long long v = 0;
    absl::SimpleAtoi(line.substr(0, line.find(' ')), &v);
    return v;
  }
  return 0;
}

std::string Comm(const std::string& dir) {
  return std::string(absl::StripTrailingAsciiWhitespace(Slurp(dir + "/comm")));
}

std::string BlockedIn(const std::string& task_dir) {
  std::string sc = Slurp(task_dir + "/syscall");
  if (sc.empty() || sc[0] == 'r' || sc[0] == '-') return "";  // "running", or in user space
  long n = -1;
  if (!absl::SimpleAtoi(sc.substr(0, sc.find(' ')), &n)) return "";
  return SyscallName(n);
}

ThreadSample SampleThread(const std::string& service, const std::string& process,
                          const std::string& task_dir) {
  ThreadSample t;
  t.service = service;
  t.process = process;
  t.comm = Comm(task_dir);
  std::string status = Slurp(task_dir + "/status");
  t.switches = StatusValue(status, "voluntary_ctxt_switches") +
               StatusValue(status, "nonvoluntary_ctxt_switches");
  t.cpu_ms = StatCpuMs(task_dir + "/stat", /*children=*/false);
  t.blocked_in = BlockedIn(task_dir);
  return t;
}

void SampleProcess(const std::string& service, pid_t pid, TreeSample* out) {
  const std::string dir = absl::StrCat("/proc/", pid);
  const std::string process = Comm(dir);
  if (process.empty()) return;  // exited
  ++out->processes;
  out->cpu_ms += ProcessCpuMs(pid);
  out->rss_kb += StatusValue(Slurp(dir + "/status"), "VmRSS");
  for (pid_t tid : NumericEntries(dir + "/task")) {
    out->threads[tid] = SampleThread(service, process, absl::StrCat(dir, "/task/", tid));
  }
}

std::string GroupName(const ThreadSample& t) {
  return absl::StrCat(t.service, "/", t.process, "/", t.comm);
}

}  // namespace

std::vector<pid_t> ProcessTree(pid_t root) {
  if (root <= 0) return {};
  std::map<pid_t, std::vector<pid_t>> children;
  for (pid_t pid : NumericEntries("/proc")) {
    std::vector<std::string> f = StatFields(absl::StrCat("/proc/", pid, "/stat"));
    int ppid = 0;
    if (f.size() > 1 && absl::SimpleAtoi(f[1], &ppid)) children[ppid].push_back(pid);
  }
  std::vector<pid_t> out = {root};
  for (size_t i = 0; i < out.size(); ++i) {
    for (pid_t c : children[out[i]]) out.push_back(c);
  }
  return out;
}

double ProcessCpuMs(pid_t pid) {
  return pid > 0 ? StatCpuMs(absl::StrCat("/proc/", pid, "/stat"), /*children=*/true) : 0;
}

double TreeCpuMs(pid_t root) {
  double sum = 0;
  for (pid_t p : ProcessTree(root)) sum += ProcessCpuMs(p);
  return sum;
}

long TreeRssKb(pid_t root) {
  long sum = 0;
  for (pid_t p : ProcessTree(root)) {
    sum += StatusValue(Slurp(absl::StrCat("/proc/", p, "/status")), "VmRSS");
  }
  return sum;
}

TreeSample SampleTrees(const std::map<std::string, pid_t>& roots) {
  TreeSample s;
  s.at = absl::Now();
  for (const auto& [service, root] : roots) {
    for (pid_t p : ProcessTree(root)) SampleProcess(service, p, &s);
  }
  return s;
}

IdleWindow Compare(const TreeSample& before, const TreeSample& after) {
  IdleWindow w;
  w.seconds = absl::ToDoubleSeconds(after.at - before.at);
  w.cpu_ms = after.cpu_ms - before.cpu_ms;
  w.threads_start = static_cast<int>(before.threads.size());
  w.threads_end = static_cast<int>(after.threads.size());
  std::map<std::string, ThreadGroup> groups;
  int64_t switches = 0;
  for (const auto& [tid, t] : after.threads) {
    auto was = before.threads.find(tid);
    int64_t d = t.switches - (was == before.threads.end() ? 0 : was->second.switches);
    double cpu = t.cpu_ms - (was == before.threads.end() ? 0 : was->second.cpu_ms);
    ThreadGroup& g = groups[GroupName(t)];
    g.name = GroupName(t);
    ++g.threads;
    g.wakeups_per_s += w.seconds > 0 ? d / w.seconds : 0;
    g.cpu_ms += cpu;
    if (!t.blocked_in.empty()) ++g.blocked_in[t.blocked_in];
    switches += d;
  }
  w.wakeups_per_s = w.seconds > 0 ? switches / w.seconds : 0;
  for (auto& [name, g] : groups) w.groups.push_back(std::move(g));
  std::sort(w.groups.begin(), w.groups.end(), [](const ThreadGroup& a, const ThreadGroup& b) {
    return a.wakeups_per_s != b.wakeups_per_s ? a.wakeups_per_s > b.wakeups_per_s : a.name < b.name;
  });
  return w;
}

std::string SyscallName(long number) {
  static const std::map<long, std::string> kNames = {
      {SYS_futex, "futex"},
      {SYS_epoll_pwait, "epoll_pwait"},
      {SYS_ppoll, "ppoll"},
      {SYS_pselect6, "pselect6"},
      {SYS_clock_nanosleep, "clock_nanosleep"},
      {SYS_read, "read"},
      {SYS_recvmsg, "recvmsg"},
      {SYS_recvfrom, "recvfrom"},
      {SYS_accept4, "accept4"},
      {SYS_wait4, "wait4"},
      {SYS_waitid, "waitid"},
      {SYS_nanosleep, "nanosleep"},
      {SYS_write, "write"},
#ifdef SYS_poll
      {SYS_poll, "poll"},
#endif
#ifdef SYS_epoll_wait
      {SYS_epoll_wait, "epoll_wait"},
#endif
#ifdef SYS_select
      {SYS_select, "select"},
#endif
#ifdef SYS_accept
      {SYS_accept, "accept"},
#endif
  };
  auto it = kNames.find(number);
  return it != kNames.end() ? it->second : absl::StrCat("syscall ", number);
}

}  // namespace pocketmail::testing
