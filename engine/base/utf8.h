/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Text that crosses into GStreamer (metas, bus messages), SQLite or JSON must
// be valid UTF-8: label names come from files (CIFAR's batches.meta, a
// catalog) as raw bytes, and PyGObject or a JSON reader fails on anything else.
#pragma once

#include <string>
#include <string_view>

namespace vs {

// The text with each invalid or truncated UTF-8 sequence replaced by U+FFFD;
// valid text comes back unchanged. Overlong forms, surrogates and code points
// past U+10FFFF count as invalid, as they do for g_utf8_validate.
std::string valid_utf8(std::string_view text);

bool is_valid_utf8(std::string_view text);

}  // namespace vs
