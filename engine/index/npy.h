/* SPDX-License-Identifier: LGPL-2.1-or-later */
// NumPy .npy files (format version 1.0, little-endian, C order), the way
// earlier Python image-search apps keep their gallery embeddings and labels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vs {

// rows x cols float32 matrix, dtype '<f4'. Atomic (temp file, fsync, rename).
void write_npy_atomically(const std::string& path, const float* values, int64_t rows, int64_t cols);
// One-dimensional int64 vector, dtype '<i8'. Atomic.
void write_npy_atomically(const std::string& path, const std::vector<int64_t>& values);

}  // namespace vs
