// The SQLite catalog stored beside an index (index path + ".db"): what each
// index id is (label, label name, source) and how the index was built, so a
// search with a different embedder fails with a clear message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vs {

struct CatalogItem {
  int64_t id = -1;  // position in the FAISS index
  int label = -1;
  std::string label_name;
  std::string source;
};

struct IndexFacts {
  std::string model_id;
  std::string preprocessing_id;
  int dims = 0;
  std::string metric;      // "ip" or "l2"
  std::string index_type;  // FAISS index_factory string
  int64_t count = 0;
  std::string created;     // ISO 8601 UTC
};

std::string catalog_path_for(const std::string& index_path);

class Catalog {
 public:
  // Reads the whole catalog into memory. Throws vs::Error.
  static Catalog load(const std::string& path);
  // Writes a complete catalog atomically (temp file, fsync, rename).
  static void write_atomically(const std::string& path, const IndexFacts& facts,
                               const std::vector<CatalogItem>& items);

  const IndexFacts& facts() const { return facts_; }
  const std::vector<CatalogItem>& items() const { return items_; }
  // nullptr when id is unknown.
  const CatalogItem* item(int64_t id) const;
  // How many gallery items carry this label (the denominator of Recall@k).
  int64_t count_label(int label) const;

 private:
  IndexFacts facts_;
  std::vector<CatalogItem> items_;  // items_[i].id == i
};

}  // namespace vs
