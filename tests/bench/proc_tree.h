// Benchmark support: what a service costs, read from /proc for a whole
// process tree, so a service run under a wrapper (proot, whose tracer does
// the ptrace work in its own process) is counted with everything it spawned.
//
// A sample is a snapshot; two samples make a window (IdleWindow): CPU,
// wake-ups (voluntary + nonvoluntary context switches of every thread) and
// the threads that account for them. Threads are matched across samples by
// tid; one that appeared inside the window counts from zero, one that ended
// inside it is lost (its switches are not in any later /proc file).
//
// Plain functions over /proc; nothing is cached. Not thread-safe only in that
// /proc changes under it: a process that exits mid-read is skipped.
#ifndef POCKETMAIL_TESTS_BENCH_PROC_TREE_H_
#define POCKETMAIL_TESTS_BENCH_PROC_TREE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace pocketmail::testing {

// `root` and every live descendant of it (by PPid), root first.
std::vector<pid_t> ProcessTree(pid_t root);

// user + sys CPU of one process (all its threads, live and exited) and of the
// children it has waited for (e.g. the router's account command), in ms: so
// a child that exits between two samples moves into its parent's figure
// instead of vanishing.
double ProcessCpuMs(pid_t pid);
// The same, summed over ProcessTree(root).
double TreeCpuMs(pid_t root);
// VmRSS summed over ProcessTree(root), in KiB.
long TreeRssKb(pid_t root);

// One thread at one moment.
struct ThreadSample {
  std::string service;   // the label of the tree it was found in
  std::string process;   // comm of its process (e.g. "proot", "fetcher")
  std::string comm;      // comm of the thread (gRPC names its own)
  int64_t switches = 0;  // voluntary + nonvoluntary context switches so far
  double cpu_ms = 0;
  std::string blocked_in;  // the system call it sits in, e.g. "futex" ("" when running)
};

// Every thread of several labelled trees, plus their totals.
struct TreeSample {
  absl::Time at;
  std::map<pid_t, ThreadSample> threads;  // by tid
  double cpu_ms = 0;                      // per-process totals (exited threads included)
  long rss_kb = 0;
  int processes = 0;
};

// label -> root pid (e.g. "fetcher" -> the pid the harness started).
TreeSample SampleTrees(const std::map<std::string, pid_t>& roots);

// What one group of same-named threads did in a window.
struct ThreadGroup {
  std::string name;  // "<service>/<process>/<thread comm>"
  int threads = 0;
  double wakeups_per_s = 0;
  double cpu_ms = 0;
  std::map<std::string, int> blocked_in;  // syscall -> threads sitting in it at the end
};

// The difference between two samples of the same trees.
struct IdleWindow {
  double seconds = 0;
  double cpu_ms = 0;
  double wakeups_per_s = 0;
  int threads_start = 0, threads_end = 0;
  std::vector<ThreadGroup> groups;  // most wake-ups first
};

IdleWindow Compare(const TreeSample& before, const TreeSample& after);

// "futex(…)" style name of an x86-64 / aarch64 syscall number for the
// common blocking calls, else "syscall <n>".
std::string SyscallName(long number);

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_BENCH_PROC_TREE_H_
