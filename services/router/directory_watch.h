// Sleeps until a file's directory changes, a timeout passes, or Wake().
//
// The router notices a mailbox created in Maddy by watching imapsql.db (and
// its -wal). Polling its mtime every second cost a wake-up a second all day;
// under proot every one of those is a traced system call. inotify on the
// file's directory (a SQLite file is rewritten, renamed and joined by
// -wal/-journal files, so the directory is what to watch) costs nothing
// while Maddy is quiet.
#ifndef POCKETMAIL_SERVICES_ROUTER_DIRECTORY_WATCH_H_
#define POCKETMAIL_SERVICES_ROUTER_DIRECTORY_WATCH_H_

#include <memory>
#include <string>

#include "absl/time/time.h"

namespace pocketmail::router {

class DirectoryWatch {
 public:
  // nullptr when inotify is not available here (then the caller polls).
  static std::unique_ptr<DirectoryWatch> ForFile(const std::string& file);
  ~DirectoryWatch();
  DirectoryWatch(const DirectoryWatch&) = delete;
  DirectoryWatch& operator=(const DirectoryWatch&) = delete;

  // Returns when something in the directory changed (true), or after
  // `timeout` or a Wake() (false). Thread-safe with Wake().
  bool Wait(absl::Duration timeout);
  // Makes a running or the next Wait return at once.
  void Wake();

 private:
  DirectoryWatch(int inotify_fd, int wake_fd) : inotify_fd_(inotify_fd), wake_fd_(wake_fd) {}
  const int inotify_fd_;
  const int wake_fd_;  // an eventfd
};

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_DIRECTORY_WATCH_H_
