/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The structural check of a FAISS index file (index_file_check.cpp), pinned
// to FAISS 1.7.3's reader: what index_file.cpp's loader needs of it. Internal
// to engine/index; see index_file.h for what is checked and why.
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace vs {
namespace index_check {

using idx_t = faiss::Index::idx_t;

constexpr uint32_t fourcc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

inline bool is_flat(uint32_t type) {
  return type == fourcc("IxF2") || type == fourcc("IxFI") || type == fourcc("IxFl");
}

// A vector stored in the file, read in place (the bytes need not be aligned).
template <class T>
struct Stored {
  const uint8_t* data = nullptr;
  uint64_t size = 0;

  T operator[](uint64_t i) const {
    T value;
    std::memcpy(&value, data + i * sizeof(T), sizeof(T));
    return value;
  }
};

struct Pq {
  uint64_t d = 0, M = 0, nbits = 0, ksub = 0, code_size = 0;
};

// What the parent of an index needs to know about it.
struct Node {
  uint32_t type;
  int64_t d;
  int64_t ntotal;
  bool is_trained;
  int32_t metric;
  Pq pq;  // an IndexPQ's quantizer
};

// What loading an index in IndexLoadMode::Map needs of the walk.
struct IndexLayout {
  Node root{};
  // The last flat index's vectors, and the last id map's ids: those of the
  // root's when it is Flat or an id map over Flat.
  Stored<float> flat_vectors;
  Stored<idx_t> id_map_ids;
  uint32_t root_inner_type = 0;
  bool has_inverted_lists = false;
  // A root IndexRefine: its base index's bytes [refine_base_begin,
  // refine_base_end), the refinement index after them (`refined`, whose
  // vectors are flat_vectors when it is flat) and its k factor; all zero
  // for other roots.
  uint64_t refine_base_begin = 0, refine_base_end = 0;
  Node refined{};
  float refine_k_factor = 0;
};

inline constexpr char kRebuildAdvice[] = " Rebuild the index with faissindexer or cifarindexer.";

// Walks data the way faiss::read_index will read it, turning its findings
// into vs::Errors naming the file (name). The stored vectors, most of a
// file, are read once (for values no distance can use); done, when given,
// is told each range of bytes [begin, end) the walk has finished reading
// them in, so that a mapped file's pages can be let go of as it goes.
using Done = std::function<void(size_t, size_t)>;
IndexLayout check_index_bytes(const uint8_t* data, size_t size, const std::string& name,
                              const Done& done = {});

}  // namespace index_check
}  // namespace vs
