/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Atomic replacement of a file: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory. A crash at any
// point leaves either the old file or the new one, never a torn one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vs {

// Calls write(tmp_path) to produce the new content at tmp_path, then renames
// it over path. tmp_path is a new, empty file of this call's own, named
// path + ".tmp.<pid>.<random>", so that writers in one process or in several
// never share one. The temporary is removed if write throws. Throws vs::Error.
void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string& tmp_path)>& write);

// One file of a set written by replace_files_atomically.
struct FileReplacement {
  std::string path;
  std::function<void(const std::string& tmp_path)> write;
};

// replace_file_atomically for files that belong together (an index and its
// catalog): every temporary is written (in order) and flushed before the
// first rename, so a failure or a kill while writing leaves all the old files
// in place and only the renames, microseconds apart, can separate the set.
// Throws vs::Error saying which files, if any, were already replaced.
void replace_files_atomically(const std::vector<FileReplacement>& files);

// Removes the temporaries that replace_file(s)_atomically left beside path
// when its writer died mid-write (path + ".tmp.<pid>" or ".tmp.<pid>.<random>"
// whose process no longer exists) and returns how many. A process in another
// PID namespace looks dead from here: call this only while holding a lock that
// every writer of path takes. Throws vs::Error when the directory is unreadable.
int remove_stale_temporaries(const std::string& path);

// fsync a file or directory by path. Throws vs::Error.
void fsync_path(const std::string& path);

// The directory part of path ("." when it has none).
std::string directory_of(const std::string& path);

// The file a path names, following symbolic links in its last component (a
// link to a link, relative or absolute; one that leads nowhere yet names the
// file to create), so that a writer replaces that file rather than the link,
// and writers through several names of one file share its lock. path itself
// when it is no link, or when the links loop.
std::string follow_links(const std::string& path);

// Opens path for reading, close-on-exec, unless it is something other than a
// regular file: a FIFO or a device would block the reader or never end.
// Returns the descriptor, or -1 with errno set when open(2) fails. Throws
// vs::Error, calling the file `what` ("index", "catalog"), when it is not a
// regular file.
int open_regular_file(const std::string& path, const std::string& what);

// open_regular_file, throwing vs::Error when it fails: a missing file is
// said to be missing, and how it is made when `missing_advice` is given.
int open_regular_file_or_throw(const std::string& path, const std::string& what,
                               const std::string& missing_advice = "");

// The whole content of the regular file at path (see open_regular_file).
// Throws vs::Error naming the file as `what`; a missing file says so and how
// it is made when `missing_advice` is given ("build it first with ...").
std::vector<uint8_t> read_regular_file(const std::string& path, const std::string& what,
                                       const std::string& missing_advice = "");

}  // namespace vs
