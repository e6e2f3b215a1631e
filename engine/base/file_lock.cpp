// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"

namespace vs {

namespace {

// flock cannot wait with a timeout; polling this often costs nothing and
// hands the lock over quickly.
constexpr std::chrono::milliseconds kPollInterval(50);

}  // namespace

FileLock::FileLock(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ >= 0) return;
  const int err = errno;
  const std::string dir = directory_of(path_);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    throw Error(ErrorKind::NotFound,
                "The directory " + dir + " does not exist (" + std::strerror(errno) +
                    "): create it, or choose a location in an existing directory.");
  if (!S_ISDIR(st.st_mode))
    throw Error(ErrorKind::Write, dir + " is not a directory: choose a location in a directory.");
  throw Error(ErrorKind::Write, "Cannot write in the directory " + dir + " (creating " + path_ +
                                    ": " + std::strerror(err) +
                                    "): make it writable, or choose another location.");
}

FileLock::~FileLock() {
  // Closing the last descriptor of the open file releases the flock.
  if (fd_ >= 0) ::close(fd_);
}

void FileLock::lock(std::chrono::milliseconds timeout, const std::function<void()>& on_wait) {
  if (locked_) return;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool waited = false;
  while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK)
      throw Error("Cannot lock " + path_ + ": " + std::strerror(errno) + ".");
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error(ErrorKind::Busy,
                  "Another writer has held the lock " + path_ + " for more than " +
                      std::to_string(timeout.count() / 1000) +
                      " s. Wait until it has finished (its pipeline reached EOS), then run again.");
    if (!waited && on_wait) on_wait();
    waited = true;
    std::this_thread::sleep_for(kPollInterval);
  }
  locked_ = true;
}

}  // namespace vs
