// The one exception type plugin/core throws. Its message is a sentence a
// person can act on (what failed, which file, what to do); elements catch it
// at the GObject boundary and turn it into GST_ELEMENT_ERROR.
#pragma once

#include <stdexcept>
#include <string>

namespace vs {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace vs
