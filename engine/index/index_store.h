/* SPDX-License-Identifier: LGPL-2.1-or-later */
// A FAISS index held in memory, built through index_factory, saved with
// faiss::write_index so that Python faiss reads it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/index/index_file.h"

namespace faiss {
struct Index;
}

namespace vs {

class VisitedCache;

enum class Metric { InnerProduct, L2 };

// "ip" / "l2", the spelling of properties and of the catalog.
const char* metric_name(Metric metric);
// Throws vs::Error for anything but "ip" or "l2".
Metric metric_from_name(const std::string& name);

// Per-search knobs, also behind a transform (OPQ, PCA) and for an IVF's HNSW
// quantizer; an index type that has no use for one (Flat, or a refine stage
// on top) ignores it.
struct SearchParams {
  int nprobe = 0;           // IVF; 0 keeps the index's own
  int ef_search = 0;        // HNSW; 0 keeps the index's own
  float refine_factor = 0;  // a refine stage (",RFlat"): candidates per hit; 0 keeps its own
};

struct Hit {
  int64_t id;
  float distance;  // as FAISS returns it
};

// Size and CRC-32 of an index file's bytes. The catalog records the digest of
// the index written with it, so that an index and a catalog that were not
// written together (a writer killed between the two renames, two writers at
// once) are told apart at load instead of giving wrong names.
struct IndexDigest {
  int64_t bytes = 0;
  uint32_t crc32 = 0;

  bool operator==(const IndexDigest& other) const {
    return bytes == other.bytes && crc32 == other.crc32;
  }
  bool operator!=(const IndexDigest& other) const { return !(*this == other); }
  // "1234 bytes, CRC-32 0a1b2c3d", for messages.
  std::string describe() const;
};

class IndexStore {
 public:
  ~IndexStore();
  IndexStore(IndexStore&&) noexcept;
  IndexStore& operator=(IndexStore&&) noexcept;

  // An empty index of the given index_factory type. Throws vs::Error for an
  // unknown factory string.
  // ef_construction: the candidate queue while an HNSW graph is built
  // (FAISS's efConstruction, 40 when 0); larger builds a better graph,
  // slower. refine_factor: the k_factor written into a refine stage
  // (",RFlat"), how many candidates a hit the first stage passes on (FAISS's
  // 1 when 0). Both ignored by types that have no such part.
  static IndexStore create(const std::string& index_type, int dims, Metric metric,
                           int ef_construction = 0, float refine_factor = 0);
  // Throws vs::Error naming the file for a missing or corrupt index, or a
  // path that is not a regular file (a FIFO would block the read for good).
  // With IndexLoadMode::Map the types index_file.h names search the file's
  // pages in place (mapped()); the others are loaded as with Copy.
  static IndexStore load(const std::string& path, IndexLoadMode mode = IndexLoadMode::Copy);
  // Whether the index searches its file's pages in place; such an index
  // cannot be changed.
  bool mapped() const { return mapped_; }
  // How search() runs on this index, in a sentence for the log: our AVX2
  // path (fast_search.h) or FAISS's search, and why; for our path, what of
  // it a load put on huge pages (use_huge_pages).
  std::string search_path() const;

  int dims() const;
  int64_t size() const;
  Metric metric() const;
  bool needs_training() const;
  // Minimum number of training vectors the type needs (0 when untrained types).
  int64_t min_training_vectors() const;
  // Below this FAISS's k-means has fewer than 39 points per centroid and
  // clusters poorly (0 when untrained types); worth a warning, not an error.
  int64_t recommended_training_vectors() const;

  // Throws vs::Error naming min_training_vectors() when n is below it.
  void train(const float* vectors, int64_t n);
  void add(const float* vectors, int64_t n);  // ids continue from size()
  // An index with an id map (index type "IDMap2,..."; galleryindexer's) takes
  // the ids given, removes by id, and keeps the ids of the rest.
  bool has_id_map() const;
  void add_with_ids(const float* vectors, int64_t n, const int64_t* ids);
  // Types whose storage compacts (Flat, PQ, SQ, behind any transform) remove
  // in place; the others (IVF, HNSW, refine) are refilled from their own
  // vectors, keeping their training: exact for Flat storage, the decoded
  // codes re-encoded for compressed ones. Throws vs::Error without an id map.
  void remove_ids(const std::vector<int64_t>& ids);
  // n queries of dims() floats; at most k hits each, nearest first; FAISS's
  // -1 padding (k > size) is dropped. Safe to call from several threads at
  // once: params travel with the call; HNSW searches are serialised (see
  // index_store.cpp).
  std::vector<std::vector<Hit>> search(const float* queries, int64_t n, int k,
                                       const SearchParams& params) const;
  // Every stored vector within radius of each of n queries, as FAISS's range
  // search counts it (similarity above radius for inner product, squared L2
  // below it for l2), nearest first. Types without a range search of their
  // own in FAISS 1.7.3 (HNSW, PQ, SQ) are searched exactly over their
  // reconstructed vectors. Throws vs::Error.
  std::vector<std::vector<Hit>> range_search(const float* queries, int64_t n, float radius) const;
  // search() for n queries, whose hits are exactly those search() gives each
  // query alone, also where FAISS's own batches would round otherwise (see
  // index_store.cpp). Flat indexes read their vectors once per batch rather
  // than once per query.
  std::vector<std::vector<Hit>> search_batch(const float* queries, int64_t n, int k,
                                             const SearchParams& params) const;
  // IVF indexes keep a direct map so that this works for them too. id is a
  // position, or an id of the id map.
  std::vector<float> reconstruct(int64_t id) const;

  // Plain write, for callers that replace several files as one
  // (replace_files_atomically); everyone else wants save_atomically. Returns
  // the digest of the bytes written.
  IndexDigest write(const std::string& path) const;
  void save_atomically(const std::string& path) const;

  // The digest of the file load() read, whole; nullopt for a created index.
  // It describes the file, not vectors added since.
  const std::optional<IndexDigest>& file_digest() const { return file_digest_; }

 private:
  IndexStore(std::unique_ptr<faiss::Index> index, std::string description);
  std::unique_ptr<faiss::Index> index_;
  std::string description_;  // the factory string, or the file it came from
  std::unique_ptr<std::mutex> hnsw_mutex_;
  mutable std::unique_ptr<VisitedCache> visited_;  // under hnsw_mutex_
  std::optional<IndexDigest> file_digest_;
  bool mapped_ = false;
  std::string huge_pages_;
};

}  // namespace vs
