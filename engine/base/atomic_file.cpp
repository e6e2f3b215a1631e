// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

#include "engine/base/error.h"

namespace vs {

namespace {

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr char kTmpInfix[] = ".tmp.";
constexpr size_t kRandomLength = 6;

// Like mkstemp, but the file gets the mode a plain fopen would give it
// (0666 less the umask) rather than 0600: it is renamed into place, and the
// index must stay readable by whoever could read the old one.
std::string create_temporary(const std::string& path) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof kAlphabet - 2);
  const std::string prefix = path + kTmpInfix + std::to_string(::getpid()) + ".";
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string tmp = prefix;
    for (size_t i = 0; i < kRandomLength; ++i) tmp.push_back(kAlphabet[pick(rng)]);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      return tmp;
    }
    if (errno != EEXIST)
      throw Error(ErrorKind::Write, "Cannot create a temporary file beside " + path + ": " +
                                        std::strerror(errno) +
                                        ". Its directory must exist and be writable.");
  }
  throw Error(ErrorKind::Write, "Cannot find a free temporary file name beside " + path + ".");
}

// The writer's pid when name is one of path's temporaries, else 0.
pid_t temporary_owner(const std::string& name, const std::string& target) {
  const std::string prefix = target + kTmpInfix;
  if (name.compare(0, prefix.size(), prefix) != 0) return 0;
  size_t i = prefix.size();
  pid_t pid = 0;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    if (pid > 100000000) return 0;
    pid = pid * 10 + (name[i] - '0');
  }
  if (i == prefix.size()) return 0;
  if (i == name.size()) return pid;  // written before temporaries had a random part
  if (name[i] != '.' || name.size() - i - 1 != kRandomLength) return 0;
  for (++i; i < name.size(); ++i)
    if (!std::isalnum(static_cast<unsigned char>(name[i]))) return 0;
  return pid;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string follow_links(const std::string& path) {
  // As many links as the kernel follows before ELOOP.
  constexpr int kMaxLinks = 40;
  std::string current = path;
  for (int i = 0; i < kMaxLinks; ++i) {
    struct stat st;
    if (::lstat(current.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return current;
    std::vector<char> target(static_cast<size_t>(st.st_size > 0 ? st.st_size : PATH_MAX) + 1);
    const ssize_t n = ::readlink(current.c_str(), target.data(), target.size());
    if (n < 0 || static_cast<size_t>(n) >= target.size()) return current;
    const std::string next(target.data(), static_cast<size_t>(n));
    current = next[0] == '/' ? next : directory_of(current) + "/" + next;
  }
  return path;
}

int open_regular_file(const std::string& path, const std::string& what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(ErrorKind::Read,
                "Cannot examine the " + what + " " + path + ": " + std::strerror(err) + ".");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorKind::Read, "The " + what + " " + path + " is " + file_kind(st.st_mode) +
                                     ", not a regular file; point to the " + what +
                                     " file itself.");
  }
  // Reads of a regular file never block; clear the flag for those who poll.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

int open_regular_file_or_throw(const std::string& path, const std::string& what,
                               const std::string& missing_advice) {
  const int fd = open_regular_file(path, what);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT && !missing_advice.empty())
      throw Error(ErrorKind::NotFound,
                  "The " + what + " file " + path + " does not exist; " + missing_advice);
    throw Error(ErrorKind::Read,
                "Cannot open the " + what + " file " + path + ": " + std::strerror(err) + ".");
  }
  return fd;
}

std::vector<uint8_t> read_regular_file(const std::string& path, const std::string& what,
                                       const std::string& missing_advice) {
  const int fd = open_regular_file_or_throw(path, what, missing_advice);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0)
    throw Error(ErrorKind::Read,
                "Cannot examine the " + what + " " + path + ": " + std::strerror(errno) + ".");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(ErrorKind::Read,
                  "Cannot read the " + what + " file " + path + ": " + std::strerror(errno) + ".");
    if (n == 0)
      throw Error(ErrorKind::Read, "The " + what + " file " + path +
                                       " shrank while it was read; is it being "
                                       "rewritten? Try again once the writer has finished.");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(ErrorKind::Write, "Cannot open " + path + " to flush it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories; the rename is still atomic.
  if (rc != 0 && err != EINVAL && err != EROFS)
    throw Error(ErrorKind::Write, "Cannot flush " + path + " to disk: " + std::strerror(err));
}

void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string&)>& write) {
  replace_files_atomically({{path, write}});
}

void replace_files_atomically(const std::vector<FileReplacement>& links) {
  std::vector<FileReplacement> files = links;
  for (FileReplacement& file : files) file.path = follow_links(file.path);
  std::vector<std::string> tmps;
  auto remove_tmps = [&tmps] {
    for (const auto& tmp : tmps) std::remove(tmp.c_str());
  };
  try {
    for (const auto& file : files) {
      tmps.push_back(create_temporary(file.path));
      file.write(tmps.back());
      fsync_path(tmps.back());
    }
  } catch (const Error& e) {
    remove_tmps();
    throw Error(e.kind(), std::string(e.what()) + " Nothing was replaced: the previous " +
                              (files.size() > 1 ? "files are" : "file is") + " intact.");
  } catch (...) {
    remove_tmps();
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (std::rename(tmps[i].c_str(), files[i].path.c_str()) != 0) {
      int err = errno;
      tmps.erase(tmps.begin(), tmps.begin() + i);
      remove_tmps();
      std::string replaced;
      for (size_t j = 0; j < i; ++j) replaced += (j ? ", " : "") + files[j].path;
      throw Error(ErrorKind::Write,
                  "Cannot move the new file into place at " + files[i].path + ": " +
                      std::strerror(err) + "." +
                      (i == 0 ? " Nothing was replaced: the previous files are intact."
                              : " " + replaced +
                                    " already holds the new content, so the set "
                                    "no longer belongs together: write it again."));
    }
  }
  for (const auto& file : files) fsync_path(directory_of(file.path));
}

int remove_stale_temporaries(const std::string& path) {
  const std::string dir = directory_of(path);
  const std::string target = base_name(path);
  std::unique_ptr<DIR, DirCloser> listing(::opendir(dir.c_str()));
  if (!listing)
    throw Error(ErrorKind::Read,
                "Cannot list the directory " + dir + ": " + std::strerror(errno) + ".");
  int removed = 0;
  while (const dirent* entry = ::readdir(listing.get())) {
    const pid_t owner = temporary_owner(entry->d_name, target);
    if (owner <= 0 || owner == ::getpid() || process_exists(owner)) continue;
    if (::unlink((dir + "/" + entry->d_name).c_str()) == 0) ++removed;
  }
  return removed;
}

}  // namespace vs
