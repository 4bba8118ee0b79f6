#include "services/router/directory_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdint>

namespace pocketmail::router {
namespace {

std::string DirectoryOf(const std::string& file) {
  size_t slash = file.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : file.substr(0, slash);
}

// Reads everything queued, so one burst of writes is one wake-up.
void Drain(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

}  // namespace

std::unique_ptr<DirectoryWatch> DirectoryWatch::ForFile(const std::string& file) {
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0) return nullptr;
  constexpr uint32_t kChanges =
      IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_ATTRIB;
  if (inotify_add_watch(in, DirectoryOf(file).c_str(), kChanges) < 0) {
    ::close(in);
    return nullptr;
  }
  int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    ::close(in);
    return nullptr;
  }
  return std::unique_ptr<DirectoryWatch>(new DirectoryWatch(in, wake));
}

DirectoryWatch::~DirectoryWatch() {
  ::close(inotify_fd_);
  ::close(wake_fd_);
}

bool DirectoryWatch::Wait(absl::Duration timeout) {
  pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  int64_t ms = absl::ToInt64Milliseconds(timeout);
  int n = ::poll(fds, 2, static_cast<int>(ms < 0 ? 0 : ms > 0x7fffffff ? 0x7fffffff : ms));
  if (n <= 0) return false;
  if (fds[1].revents != 0) {
    Drain(wake_fd_);
    return false;
  }
  Drain(inotify_fd_);
  return true;
}

void DirectoryWatch::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

}  // namespace pocketmail::router
