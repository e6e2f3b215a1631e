/* SPDX-License-Identifier: LGPL-2.1-or-later */
// An exclusive flock(2) on a lock file beside the files it guards, so that
// writers of one index (in one process or several) take turns at its
// read-modify-write instead of overwriting each other's work.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace vs {

class FileLock {
 public:
  // Opens path, creating it if needed, without locking it yet: this is also
  // the check that its directory exists and is writable. The file stays on
  // disk for good (removing a lock file races with the next locker). Throws
  // vs::Error naming the directory.
  explicit FileLock(std::string path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Takes the lock, waiting up to timeout while another holder has it;
  // on_wait is called once, before waiting. Throws vs::Error when the
  // timeout passes.
  void lock(std::chrono::milliseconds timeout, const std::function<void()>& on_wait);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool locked_ = false;
};

}  // namespace vs
