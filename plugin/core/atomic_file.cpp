#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace vs {

namespace {

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error("Cannot open " + path + " to flush it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories; the rename is still atomic.
  if (rc != 0 && err != EINVAL && err != EROFS)
    throw Error("Cannot flush " + path + " to disk: " + std::strerror(err));
}

void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string&)>& write) {
  replace_files_atomically({{path, write}});
}

void replace_files_atomically(const std::vector<FileReplacement>& files) {
  std::vector<std::string> tmps;
  auto remove_tmps = [&tmps] {
    for (const auto& tmp : tmps) std::remove(tmp.c_str());
  };
  try {
    for (const auto& file : files) {
      tmps.push_back(file.path + ".tmp." + std::to_string(::getpid()));
      file.write(tmps.back());
      fsync_path(tmps.back());
    }
  } catch (...) {
    remove_tmps();
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (std::rename(tmps[i].c_str(), files[i].path.c_str()) != 0) {
      int err = errno;
      tmps.erase(tmps.begin(), tmps.begin() + i);
      remove_tmps();
      throw Error("Cannot move the new file into place at " + files[i].path + ": " +
                  std::strerror(err));
    }
  }
  for (const auto& file : files) fsync_path(parent_dir(file.path));
}

}  // namespace vs
