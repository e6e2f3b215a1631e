/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The files under a folder in a stable order (sorted by name, depth first),
// for every domain that reads a folder (dataset's ImageFolder, model's int8
// calibration). The walk follows symbolic links but enters each directory
// once (tracked by device and inode), so a link loop cannot make it run
// forever; a link back to a folder on the current path is reported as a
// loop, a second link to a folder walked already is passed over. Entries
// whose names start with '.' (.git, .DS_Store, ._photo.jpg) are never listed.
#pragma once

#include <string>
#include <vector>

namespace vs {

struct WalkedFile {
  std::string path;      // to open: root + "/" + relative
  std::string relative;  // '/'-separated from the root, bytes as on disk
};

// Something in the tree that is not a file to read, and why.
struct SkippedEntry {
  std::string relative;
  std::string reason;  // follows the path in a sentence: "is a broken symbolic link"
  // It could not be read (a folder that cannot be opened or listed, an entry
  // that cannot be examined): what is under it is unknown, not gone.
  bool unread = false;
};

struct FolderListing {
  std::vector<WalkedFile> files;
  // Symbolic link loops, broken links, FIFOs, sockets, devices, folders that
  // cannot be opened: in walk order.
  std::vector<SkippedEntry> skipped;
};

// Walks root (recursive: into sub-folders too), leaving out the file
// excluded_file names, if any. Throws vs::Error when root is not a readable
// directory.
FolderListing walk_folder(const std::string& root, bool recursive,
                          const std::string& excluded_file = "");

// The sorted names in dir, without '.'-names; throws the reason as a
// std::string when dir cannot be opened or listed.
std::vector<std::string> list_folder(const std::string& dir);

}  // namespace vs
