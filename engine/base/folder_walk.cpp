// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/folder_walk.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "engine/base/error.h"

namespace vs {

std::vector<std::string> list_folder(const std::string& dir) {
  DIR* handle = opendir(dir.c_str());
  if (!handle) throw std::string("cannot be opened as a folder: ") + std::strerror(errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = readdir(handle)) {
    if (entry->d_name[0] != '.') names.emplace_back(entry->d_name);
  }
  const int error = errno;
  closedir(handle);
  if (error) throw std::string("cannot be listed as a folder: ") + std::strerror(error);
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

using DirId = std::pair<uint64_t, uint64_t>;  // device, inode

class Walker {
 public:
  Walker(bool recursive, DirId excluded_file, std::vector<WalkedFile>* files,
         std::vector<SkippedEntry>* skipped)
      : recursive_(recursive), excluded_file_(excluded_file), files_(files), skipped_(skipped) {}

  void walk(const std::string& dir, const std::string& prefix, const struct stat& dir_stat) {
    const DirId id{dir_stat.st_dev, dir_stat.st_ino};
    visited_.insert(id);
    path_.push_back(id);
    std::vector<std::string> names;
    try {
      names = list_folder(dir);
    } catch (const std::string& reason) {
      skipped_->push_back(
          {prefix.empty() ? "." : prefix.substr(0, prefix.size() - 1), reason, true});
    }
    for (const std::string& name : names) visit(dir + "/" + name, prefix + name);
    path_.pop_back();
  }

 private:
  void visit(const std::string& path, const std::string& relative) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      struct stat link;
      const int error = errno;
      if (error == ELOOP)
        skipped_->push_back({relative, "is a symbolic link loop"});
      else if (lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode))
        skipped_->push_back({relative, "is a broken symbolic link"});
      else  // gone since the listing (ENOENT), or there but out of reach
        skipped_->push_back({relative, std::string("cannot be examined: ") + std::strerror(error),
                             error != ENOENT});
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!recursive_) return;
      const DirId id{st.st_dev, st.st_ino};
      if (std::find(path_.begin(), path_.end(), id) != path_.end())
        skipped_->push_back({relative,
                             "is a symbolic link loop (it leads back to a folder that "
                             "contains it)"});
      else if (!visited_.count(id))
        walk(path, relative + "/", st);
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      skipped_->push_back({relative, "is not a regular file (a FIFO, socket or device)"});
      return;
    }
    if (DirId{st.st_dev, st.st_ino} == excluded_file_) return;
    files_->push_back({path, relative});
  }

  bool recursive_;
  DirId excluded_file_;
  std::vector<WalkedFile>* files_;
  std::vector<SkippedEntry>* skipped_;
  std::set<DirId> visited_;
  std::vector<DirId> path_;
};

DirId file_id(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return {0, 0};
  return {st.st_dev, st.st_ino};
}

}  // namespace

FolderListing walk_folder(const std::string& root_path, bool recursive,
                          const std::string& excluded_file) {
  std::string root = root_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat st;
  if (stat(root.c_str(), &st) != 0)
    throw Error(errno == ENOENT ? ErrorKind::NotFound : ErrorKind::Read,
                "the gallery folder " + root + " cannot be read: " + std::strerror(errno) +
                    "; set location to an existing folder");
  if (!S_ISDIR(st.st_mode))
    throw Error(ErrorKind::Settings, "the gallery location " + root +
                                         " is not a folder; set location to the folder "
                                         "that holds the pictures and videos");
  if (access(root.c_str(), R_OK | X_OK) != 0)
    throw Error(ErrorKind::Read, "the gallery folder " + root + " cannot be read: " +
                                     std::strerror(errno) + "; check its permissions");
  FolderListing listing;
  // A file inside the folder that is no part of it (a labels CSV).
  const DirId excluded = excluded_file.empty() ? DirId{0, 0} : file_id(excluded_file);
  Walker(recursive, excluded, &listing.files, &listing.skipped).walk(root, "", st);
  return listing;
}

}  // namespace vs
