// The SQLite catalog stored beside an index (index path + ".db"): what each
// index id is (label, label name, source) and how the index was built, so a
// search with a different embedder fails with a clear message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/index_store.h"

namespace vs {

struct CatalogItem {
  int64_t id = -1;  // position in the FAISS index
  int label = -1;   // 32 bits, as in the metas; a catalog with larger ones is refused
  std::string label_name;
  std::string source;
  // JPEG to write with the item (Catalog::write); empty: none. Catalog::load
  // leaves it empty: thumbnails are read one at a time (Catalog::thumbnail).
  std::vector<uint8_t> thumbnail;
};

struct IndexFacts {
  std::string model_id;
  std::string preprocessing_id;
  int dims = 0;
  std::string metric;      // "ip" or "l2"
  std::string index_type;  // FAISS index_factory string
  int64_t count = 0;
  std::string created;     // ISO 8601 UTC
  // The index file written with this catalog; nullopt in catalogs of schema
  // version 1, which predate it (they load, unchecked).
  std::optional<IndexDigest> index_digest;
  // The embedder's whole configuration, a serialised GstStructure (see
  // elements/embedder_settings.h) that `embedder index=` adopts; empty when
  // unknown: catalogs before schema version 4, or embeddings that did not
  // come from an embedder.
  std::string embedder_config;
};

std::string catalog_path_for(const std::string& index_path);

// Now, as IndexFacts::created wants it: "2026-11-21T19:40:00Z".
std::string utc_timestamp_now();

// Throws vs::Error naming both sides when the embeddings `incoming` describes
// (what an embedder produces, or an index about to be appended) do not live in
// the same space as the catalog's `stored` facts: different model id,
// preprocessing id, dims or metric. Empty strings and 0 dims in `incoming` are
// not compared (a query has no metric). `catalog_path` goes into the message.
void check_same_embedding_space(const IndexFacts& stored, const IndexFacts& incoming,
                                const std::string& catalog_path);

// File layout (schema version 4, PRAGMA user_version = 4):
//   items(id INTEGER PRIMARY KEY, label INTEGER, label_name TEXT, source TEXT)
//     one row per index id, 0..count-1; label -1 and NULL strings when unknown;
//     labels fit 32 bits;
//   index_facts(model_id TEXT, preprocessing_id TEXT, dims INTEGER, metric TEXT,
//               index_type TEXT, count INTEGER, created TEXT,
//               index_bytes INTEGER, index_crc32 INTEGER, embedder_config TEXT)
//     exactly one row; index_bytes and index_crc32 (the IndexDigest of the
//     index written with the catalog) and embedder_config are NULL when
//     unknown;
//   thumbnails(id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL)
//     a JPEG of the item with index id `id` (faissindexer's thumbnail-size
//     on its longer side); items without a row have none.
// Version 3 lacks embedder_config; version 2 also lacks the thumbnails table;
// version 1 also lacks index_bytes and index_crc32; version 0 is version 1
// written before the version was recorded. All are read.

// The thumbnails of one catalog file, read one at a time from a handle kept
// open, so a gallery of a million items costs no memory until one is shown,
// and a catalog renamed over this one by a writer does not mix in.
class CatalogThumbnails {
 public:
  // nullptr when the catalog has no thumbnails (older schema, or
  // thumbnail-size=0). Throws vs::Error when the file cannot be read.
  static std::shared_ptr<CatalogThumbnails> open(const std::string& path);
  ~CatalogThumbnails();

  // The JPEG bytes of item id; empty when it has none. Throws vs::Error.
  // Safe to call from several threads.
  std::vector<uint8_t> get(int64_t id) const;
  const std::string& path() const { return path_; }

  // An open connection; only catalog.cpp makes one.
  struct Handle;
  CatalogThumbnails(std::string path, std::unique_ptr<Handle> handle);

 private:
  std::string path_;
  std::unique_ptr<Handle> handle_;
};

class Catalog {
 public:
  // Reads the whole catalog into memory; label names and sources come back
  // as valid UTF-8 (invalid bytes become U+FFFD). Throws vs::Error.
  static Catalog load(const std::string& path);
  // Only the index facts, without reading the items. Throws vs::Error.
  static IndexFacts load_facts(const std::string& path);
  // Writes a complete catalog atomically (temp file, fsync, rename).
  static void write_atomically(const std::string& path, const IndexFacts& facts,
                               const std::vector<CatalogItem>& items);
  // Plain write of a new file at path, for replace_files_atomically. The
  // thumbnails of the catalog at keep_thumbnails_from (an appender's previous
  // catalog; empty: none) are copied over by SQLite, never all in memory.
  static void write(const std::string& path, const IndexFacts& facts,
                    const std::vector<CatalogItem>& items,
                    const std::string& keep_thumbnails_from = "");

  const IndexFacts& facts() const { return facts_; }
  const std::vector<CatalogItem>& items() const { return items_; }
  // nullptr when id is unknown.
  const CatalogItem* item(int64_t id) const;
  // How many gallery items carry this label (the denominator of Recall@k).
  int64_t count_label(int label) const;
  // The JPEG thumbnail of item id, read from the file now; empty when it has
  // none. Throws vs::Error.
  std::vector<uint8_t> thumbnail(int64_t id) const;
  // nullptr when the catalog holds no thumbnails.
  const std::shared_ptr<CatalogThumbnails>& thumbnails() const { return thumbnails_; }

 private:
  IndexFacts facts_;
  std::vector<CatalogItem> items_;  // items_[i].id == i
  std::unordered_map<int, int64_t> label_counts_;
  std::shared_ptr<CatalogThumbnails> thumbnails_;
};

}  // namespace vs
