/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Embeddings must be finite: one NaN makes every distance to the vector NaN,
// so an index would hold garbage and a search would silently find nothing.
#pragma once

#include <cmath>
#include <cstddef>

namespace vs {

// Index of the first NaN or infinite value, or n when all are finite.
inline size_t first_non_finite(const float* values, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i])) return i;
  return n;
}

}  // namespace vs
