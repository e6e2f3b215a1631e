/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The one exception type the engine (engine/) throws. Its message is a sentence a
// person can act on (what failed, which file, what to do); its kind says what
// sort of failure it is, so that an application can react without parsing
// the sentence. Elements catch it at the GObject boundary and post it with
// the GStreamer error domain and code of its kind (ext/visualsearch/element_error.h).
#pragma once

#include <stdexcept>
#include <string>

namespace vs {

enum class ErrorKind {
  Failed,    // none of the below (a library call failed); GST_LIBRARY_ERROR_FAILED
  NotFound,  // a file, folder, model or module that should exist does not; RESOURCE NOT_FOUND
  Read,      // it exists but cannot be opened or read (permissions, I/O); RESOURCE OPEN_READ
  Write,     // a file cannot be created or written; RESOURCE WRITE
  Busy,      // another process holds it (a writer's lock); RESOURCE BUSY
  Corrupt,   // its bytes are damaged or truncated; STREAM DECODE
  Format,    // readable, but not a kind of file or content we handle; STREAM FORMAT
  Settings,  // a property value is invalid, or contradicts another or a file; RESOURCE SETTINGS
  Mismatch,  // the data was made by another embedder than this pipeline's; STREAM WRONG_TYPE
  Module,    // a part of visualsearch itself cannot be loaded; LIBRARY INIT
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : Error(ErrorKind::Failed, message) {}
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace vs
