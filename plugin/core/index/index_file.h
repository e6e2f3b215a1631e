// Reads FAISS index files without trusting them.
//
// FAISS 1.7.3's reader sizes every vector from the file before reading it and
// never checks the ids it loads: a 45-byte file can make it allocate 4 GB, and
// a flipped HNSW link or inverted-list id crashes the first search. Here the
// file is read whole (regular files only), its structure is walked over the
// bytes exactly as faiss/impl/index_read.cpp will read them, every declared
// length is held against the bytes that remain and every id, link, size and
// dimension against the rest of the index. Only then does FAISS read the same
// bytes, from memory. Index types the walk does not know are refused, so what
// loads has been checked.
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

// Checks the bytes of an index file, then has FAISS read them; name stands
// for the file in messages. Throws vs::Error naming the file, what is wrong
// with it and what to do.
std::unique_ptr<faiss::Index> read_index_bytes(std::vector<uint8_t> bytes, const std::string& name);

}  // namespace vs
