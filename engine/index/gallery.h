/* SPDX-License-Identifier: LGPL-2.1-or-later */
// A searchable gallery: a FAISS index and the catalog beside it, loaded
// together and checked against each other, so that every hit can be named
// (label, source) and a query from the wrong embedder is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/index/catalog.h"
#include "engine/index/index_store.h"

namespace vs {

// One vocabulary for scores, shared by faisssearch's max-distance, the
// server's API and find-duplicates (docs/scores.md). A score is what
// FAISS ranks by, as Neighbor::distance and the neighbours meta carry it: the
// inner product for ip, the squared L2 distance for l2.
//
// The distance, smaller is closer: 1 - the inner product for ip (the cosine
// distance of unit vectors); the squared L2 distance itself for l2.
double distance_of(Metric metric, double score);
// The similarity, larger is closer: the inner product for ip (the cosine of
// unit vectors); 1 - score / 2 for l2, which is the cosine for unit vectors
// (|a - b|^2 = 2 - 2 cos), as the embedder's normalised embeddings are.
double similarity_of(Metric metric, double score);

struct Neighbor {
  int64_t id;
  float distance;           // the score, as FAISS returns it (see distance_of)
  const CatalogItem* item;  // nullptr when the catalog does not know the id
};

// An index and its catalog as read from disk, checked to belong together.
struct IndexWithCatalog {
  IndexStore index;
  Catalog catalog;
};

// Loads index_path and catalog_path_for(index_path). Throws vs::Error naming
// the file when either is missing or corrupt, or when they disagree: dims,
// metric, number of items, or the index digest the catalog records (a catalog
// without one, from before schema version 2, is not checked: see
// IndexFacts::index_digest). A pair read while a writer replaced it is read
// again.
// mode: see IndexStore::load.
IndexWithCatalog load_index_with_catalog(const std::string& index_path,
                                         IndexLoadMode mode = IndexLoadMode::Copy);

// Replaces index_path and its catalog atomically (replace_files_atomically),
// the catalog recording the digest of the index written with it. facts.count
// and facts.index_digest are filled in here. keep_thumbnails_from and
// rejected: see Catalog::write.
void write_index_with_catalog(const std::string& index_path, const IndexStore& index,
                              IndexFacts facts, const std::vector<CatalogItem>& items,
                              const std::string& keep_thumbnails_from = "",
                              const std::vector<RejectedFile>& rejected = {});

class Gallery {
 public:
  // load_index_with_catalog(index_path, mode), kept for searching.
  static Gallery load(const std::string& index_path, IndexLoadMode mode = IndexLoadMode::Copy);

  const std::string& index_path() const { return index_path_; }
  // facts().index_digest is nullopt when the catalog is too old to bind the
  // index to it.
  const IndexFacts& facts() const { return catalog_.facts(); }
  Metric metric() const { return index_.metric(); }
  int64_t size() const { return index_.size(); }
  int dims() const { return index_.dims(); }
  bool mapped() const { return index_.mapped(); }
  std::string search_path() const { return index_.search_path(); }
  // The index and catalog themselves, for a caller that reads items or
  // vectors (visualsearch-server's item pages and "more like this").
  const IndexStore& index() const { return index_; }
  const Catalog& catalog() const { return catalog_; }

  // Throws vs::Error, saying which model built the index and which one
  // produced the query, unless embeddings made by this model and
  // preprocessing can be searched here. Cheap when they can: called per frame.
  void check_query(const char* model_id, const char* preprocessing_id, int dims) const;

  // Up to k neighbours of one query of dims() floats, nearest first. With
  // max_distance, drops those whose distance_of() is above it. out is reused
  // to spare the caller an allocation per query.
  void search(const float* query, int k, const SearchParams& params,
              std::optional<float> max_distance, std::vector<Neighbor>* out) const;
  // search() for n queries, one after another in queries, in few FAISS calls;
  // (*out)[i] is exactly what search() gives query i.
  void search_batch(const float* queries, int64_t n, int k, const SearchParams& params,
                    std::optional<float> max_distance,
                    std::vector<std::vector<Neighbor>>* out) const;

 private:
  Gallery(std::string index_path, IndexStore index, Catalog catalog);
  void name_hits(const std::vector<Hit>& hits, std::optional<float> max_distance,
                 std::vector<Neighbor>* out) const;

  std::string index_path_;
  IndexStore index_;
  Catalog catalog_;
};

// Identity of a file on disk (device, inode, size, mtime): a rename over the
// path, as atomic writers do, changes it.
struct FileStamp {
  bool exists = false;
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;

  static FileStamp of(const std::string& path);
  bool operator==(const FileStamp& other) const;
  bool operator!=(const FileStamp& other) const { return !(*this == other); }
};

}  // namespace vs
