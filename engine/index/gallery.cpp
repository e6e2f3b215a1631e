// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/gallery.h"

#include <sys/stat.h>

#include <utility>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"

namespace vs {

Gallery::Gallery(std::string index_path, IndexStore index, Catalog catalog)
    : index_path_(std::move(index_path)), index_(std::move(index)), catalog_(std::move(catalog)) {}

namespace {

// Throws vs::Error unless the index and the catalog read from these paths
// were written together.
void check_pair(const IndexStore& index, const Catalog& catalog, const std::string& index_path,
                const std::string& catalog_path) {
  const IndexFacts& facts = catalog.facts();
  if (facts.dims != index.dims()) {
    throw Error(ErrorKind::Corrupt,
                "The catalog " + catalog_path + " describes " + std::to_string(facts.dims) +
                    "-dimensional embeddings but the index " + index_path + " holds " +
                    std::to_string(index.dims()) + "-dimensional ones; rebuild both together.");
  }
  if (facts.metric != metric_name(index.metric())) {
    throw Error(ErrorKind::Corrupt, "The catalog " + catalog_path + " says metric '" +
                                        facts.metric + "' but the index " + index_path + " uses '" +
                                        metric_name(index.metric()) + "'; rebuild both together.");
  }
  if (static_cast<int64_t>(catalog.items().size()) != index.size()) {
    throw Error(ErrorKind::Corrupt, "The catalog " + catalog_path + " lists " +
                                        std::to_string(catalog.items().size()) +
                                        " items but the index " + index_path + " holds " +
                                        std::to_string(index.size()) +
                                        " vectors; they were not written together, rebuild both.");
  }
  // Without an id map the index's ids are positions: the catalog's must be too.
  if (!index.has_id_map() && !catalog.items().empty() &&
      catalog.items().back().id != static_cast<int64_t>(catalog.items().size()) - 1) {
    throw Error(ErrorKind::Corrupt,
                "The catalog " + catalog_path + " lists items by ids of an id map (up to " +
                    std::to_string(catalog.items().back().id) + ") but the index " + index_path +
                    " has none; they were not written together, rebuild both.");
  }
  if (facts.index_digest && index.file_digest() && *facts.index_digest != *index.file_digest()) {
    throw Error(ErrorKind::Corrupt,
                "The index " + index_path + " (" + index.file_digest()->describe() +
                    ") is not the one its catalog " + catalog_path + " was written with (" +
                    facts.index_digest->describe() +
                    "): a writer was stopped between replacing the two, or several wrote at "
                    "once. Run the indexer again to rewrite both.");
  }
}

}  // namespace

IndexWithCatalog load_index_with_catalog(const std::string& index_path, IndexLoadMode mode) {
  const std::string catalog_path = catalog_path_for(index_path);
  // A writer renames the index, then the catalog: a reader between the two
  // renames sees a mismatch, and a changed file on disk, and reads again.
  for (int attempt = 1;; ++attempt) {
    const FileStamp index_before = FileStamp::of(index_path);
    const FileStamp catalog_before = FileStamp::of(catalog_path);
    IndexStore index = IndexStore::load(index_path, mode);
    Catalog catalog = Catalog::load(catalog_path);
    try {
      check_pair(index, catalog, index_path, catalog_path);
      return IndexWithCatalog{std::move(index), std::move(catalog)};
    } catch (const Error&) {
      const bool replaced = FileStamp::of(index_path) != index_before ||
                            FileStamp::of(catalog_path) != catalog_before;
      if (!replaced || attempt == 3) throw;
    }
  }
}

void write_index_with_catalog(const std::string& index_path, const IndexStore& index,
                              IndexFacts facts, const std::vector<CatalogItem>& items,
                              const std::string& keep_thumbnails_from,
                              const std::vector<RejectedFile>& rejected) {
  facts.count = index.size();
  // The index is written first (replace_files_atomically keeps the order), so
  // its digest is known when the catalog is.
  replace_files_atomically(
      {{index_path, [&](const std::string& tmp) { facts.index_digest = index.write(tmp); }},
       {catalog_path_for(index_path), [&](const std::string& tmp) {
          Catalog::write(tmp, facts, items, keep_thumbnails_from, rejected);
        }}});
}

Gallery Gallery::load(const std::string& index_path, IndexLoadMode mode) {
  IndexWithCatalog pair = load_index_with_catalog(index_path, mode);
  return Gallery(index_path, std::move(pair.index), std::move(pair.catalog));
}

void Gallery::check_query(const char* model_id, const char* preprocessing_id, int dims) const {
  const IndexFacts& facts = catalog_.facts();
  model_id = model_id ? model_id : "";
  preprocessing_id = preprocessing_id ? preprocessing_id : "";
  if (facts.model_id == model_id && facts.preprocessing_id == preprocessing_id &&
      facts.dims == dims)
    return;
  IndexFacts query;
  // An empty id must still count as a difference, so name it.
  query.model_id = *model_id ? model_id : "(none)";
  query.preprocessing_id = *preprocessing_id ? preprocessing_id : "(none)";
  query.dims = dims;
  query.metric = facts.metric;  // a query is searched in the index's metric
  check_same_embedding_space(facts, query, catalog_path_for(index_path_));
}

void Gallery::search(const float* query, int k, const SearchParams& params,
                     std::optional<float> max_distance, std::vector<Neighbor>* out) const {
  name_hits(index_.search(query, 1, k, params).front(), max_distance, out);
}

void Gallery::search_batch(const float* queries, int64_t n, int k, const SearchParams& params,
                           std::optional<float> max_distance,
                           std::vector<std::vector<Neighbor>>* out) const {
  const std::vector<std::vector<Hit>> hits = index_.search_batch(queries, n, k, params);
  out->resize(n);
  for (int64_t q = 0; q < n; ++q) name_hits(hits[q], max_distance, &(*out)[q]);
}

double distance_of(Metric metric, double score) {
  return metric == Metric::InnerProduct ? 1.0 - score : score;
}

double similarity_of(Metric metric, double score) {
  return metric == Metric::InnerProduct ? score : 1.0 - score / 2.0;
}

void Gallery::name_hits(const std::vector<Hit>& hits, std::optional<float> max_distance,
                        std::vector<Neighbor>* out) const {
  out->clear();
  const Metric metric = index_.metric();
  for (const Hit& hit : hits) {
    // Hits come nearest first: everything after the first one past is too.
    if (max_distance && distance_of(metric, hit.distance) > *max_distance) break;
    out->push_back(Neighbor{hit.id, hit.distance, catalog_.item(hit.id)});
  }
}

FileStamp FileStamp::of(const std::string& path) {
  FileStamp stamp;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return stamp;
  stamp.exists = true;
  stamp.device = st.st_dev;
  stamp.inode = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return stamp;
}

bool FileStamp::operator==(const FileStamp& other) const {
  return exists == other.exists && device == other.device && inode == other.inode &&
         size == other.size && mtime_ns == other.mtime_ns;
}

}  // namespace vs
