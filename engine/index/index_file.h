/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Reads FAISS index files without trusting them.
//
// FAISS 1.7.3's reader sizes every vector from the file before reading it and
// never checks the ids it loads: a 45-byte file can make it allocate 4 GB, and
// a flipped HNSW link or inverted-list id crashes the first search. Here the
// file is read whole (regular files only), its structure is walked over the
// bytes exactly as faiss/impl/index_read.cpp will read them, every declared
// length is held against the bytes that remain and every id, link, size and
// dimension against the rest of the index. Stored float vectors (Flat, IVF
// Flat) must be finite with a squared length a float can hold: a NaN or 1e38
// row would otherwise load and poison or top every search. Only then does
// FAISS read the same bytes. Index types the walk does not know are refused,
// so what loads has been checked.
//
// The file is mapped, not read: the walk touches only the parts it checks
// (headers, ids, links, float vectors), and FAISS's copy is made from the
// mapping with the pages behind it let go, so a load holds the index once.
// The file must not be rewritten in place while it is mapped (writers here
// rename a new file over it, which is safe).
//
// Memory: what FAISS allocates for the file is linear in the file's size (the
// declared vectors at most the bytes that hold them, list and map overhead a
// small multiple), and the two tables it derives while loading (an IVFPQ's
// precomputed table, an HNSW-PQ's SDC table) at most 256 times it, which PQ
// codes of up to 8 bits never exceed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}

namespace vs {

constexpr const char* kMissingIndexAdvice = "build it first with faissindexer or cifarindexer.";

enum class IndexLoadMode {
  Copy,  // FAISS's own structures in memory, the file closed after the load
  // The stored vectors searched in place from the file's pages, which the
  // kernel shares between processes that map the same file; no copy is made
  // (the file is still read once, for its digest). Flat, also inside
  // IndexIDMap or IndexIDMap2, is searched by MappedFlat (index_file.cpp,
  // FAISS 1.7.3 cannot map it), the inverted lists of IVF types by FAISS's
  // IO_FLAG_MMAP, and the re-ranking vectors of a refine stage over flat
  // vectors (PCA128,HNSW32,RFlat) by MappedFlat, FAISS reading only the
  // base. Other types (HNSW, PQ, SQ, transforms) load as Copy.
  Map,
};

struct IndexFile {
  std::unique_ptr<faiss::Index> index;
  // Size and CRC-32 of every byte of the file.
  int64_t bytes = 0;
  uint32_t crc32 = 0;
  // Whether the index searches the file's pages (IndexLoadMode::Map on a
  // type that allows it).
  bool mapped = false;
};

// Throws vs::Error naming the file, what is wrong with it and what to do.
IndexFile read_index_file(const std::string& path, IndexLoadMode mode);

// The vectors of a Flat index read with IndexLoadMode::Map, in place; nullptr
// for any other index.
const float* mapped_flat_vectors(const faiss::Index* index);

// The same checks and a copy for a file already in memory; name stands for
// the file in messages.
std::unique_ptr<faiss::Index> read_index_bytes(std::vector<uint8_t> bytes, const std::string& name);

}  // namespace vs
