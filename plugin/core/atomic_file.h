// Atomic replacement of a file: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory. A crash at any
// point leaves either the old file or the new one, never a torn one.
#pragma once

#include <functional>
#include <string>

namespace vs {

// Calls write(tmp_path) to produce the new content at tmp_path, then renames
// it over path. The temporary is removed if write throws. Throws vs::Error.
void replace_file_atomically(const std::string& path,
                             const std::function<void(const std::string& tmp_path)>& write);

// fsync a file or directory by path. Throws vs::Error.
void fsync_path(const std::string& path);

}  // namespace vs
