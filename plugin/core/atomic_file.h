// Atomic replacement of a file: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory. A crash at any
// point leaves either the old file or the new one, never a torn one.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace vs {

// Calls write(tmp_path) to produce the new content at tmp_path, then renames
// it over path. The temporary is removed if write throws. Throws vs::Error.
void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string& tmp_path)>& write);

// One file of a set written by replace_files_atomically.
struct FileReplacement {
  std::string path;
  std::function<void(const std::string& tmp_path)> write;
};

// replace_file_atomically for files that belong together (an index and its
// catalog): every temporary is written and flushed before the first rename,
// so a failure or a kill while writing leaves all the old files in place and
// only the renames, microseconds apart, can separate the set. Throws vs::Error.
void replace_files_atomically(const std::vector<FileReplacement>& files);

// fsync a file or directory by path. Throws vs::Error.
void fsync_path(const std::string& path);

}  // namespace vs
