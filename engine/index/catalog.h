/* SPDX-License-Identifier: LGPL-2.1-or-later */
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

#include "engine/base/image_sources.h"
#include "engine/index/index_store.h"

namespace vs {

// The file a gallery item came from, so that an update (galleryindexer) can
// tell unchanged files from changed ones without decoding them.
struct FileIdentity {
  std::string path;      // relative to the gallery root, bytes as on disk
  int64_t size = -1;     // bytes; -1 marks a file whose items are incomplete
  int64_t mtime_ns = 0;  // modification time, ns since the epoch
  double time = -1;      // seconds into a video; -1 for a still picture
};

struct CatalogItem {
  // The vector's id in the FAISS index: 0..n-1 by position, or any ids in
  // increasing order for an index with an id map (IDMap2; galleryindexer).
  int64_t id = -1;
  int label = -1;  // 32 bits, as in the metas; a catalog with larger ones is refused
  std::string label_name;
  std::string source;
  // JPEG to write with the item (Catalog::write); empty: none. Catalog::load
  // leaves it empty: thumbnails are read one at a time (Catalog::thumbnail).
  std::vector<uint8_t> thumbnail;
  std::optional<FileIdentity> file;  // nullopt: not from a gallery folder
};

// A file of the gallery folder that gave no item because it is no readable
// picture or video (a notes.txt, a truncated JPEG), with the walk's one
// sentence on why, so that an update skips it while it stays unchanged
// instead of probing it again.
struct RejectedFile {
  FileIdentity file;  // path, size and mtime_ns; time unused
  std::string reason;
};

struct IndexFacts {
  std::string model_id;
  std::string preprocessing_id;
  int dims = 0;
  std::string metric;      // "ip" or "l2"
  std::string index_type;  // FAISS index_factory string
  int64_t count = 0;
  std::string created;  // ISO 8601 UTC
  // The index file written with this catalog; nullopt in catalogs of schema
  // version 1, which predate it (they load, unchecked).
  std::optional<IndexDigest> index_digest;
  // The embedder's whole configuration, a serialised GstStructure (see
  // ext/visualsearch/embedder_settings.h) that `embedder index=` adopts; empty when
  // unknown: catalogs before schema version 4, or embeddings that did not
  // come from an embedder.
  std::string embedder_config;
  // The folder whose files the items' sources are relative to (an absolute
  // path, bytes as on disk), so that originals can be read back wherever the
  // reader runs; empty when the items are not files of one folder, and in
  // catalogs before schema version 6.
  std::string gallery_root;
};

// The catalog beside an index: its file + ".db", a symbolic link to the
// index followed (see follow_links), so that every name of an index finds the
// catalog its writer wrote.
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

// File layout (schema version 6, PRAGMA user_version = 6):
//   items(id INTEGER PRIMARY KEY, label INTEGER, label_name TEXT, source TEXT)
//     one row per index id (0..count-1, or the ids of an IDMap2 index);
//     label -1 and NULL strings when unknown; labels fit 32 bits;
//   index_facts(model_id TEXT, preprocessing_id TEXT, dims INTEGER, metric TEXT,
//               index_type TEXT, count INTEGER, created TEXT,
//               index_bytes INTEGER, index_crc32 INTEGER, embedder_config TEXT,
//               gallery_root BLOB)
//     exactly one row; index_bytes and index_crc32 (the IndexDigest of the
//     index written with the catalog), embedder_config and gallery_root are
//     NULL when unknown;
//   thumbnails(id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL)
//     a JPEG of the item with index id `id` (faissindexer's thumbnail-size
//     on its longer side); items without a row have none;
//   files(id INTEGER PRIMARY KEY, path BLOB NOT NULL, size INTEGER NOT NULL,
//         mtime_ns INTEGER NOT NULL, time REAL)
//     the FileIdentity of item `id` (time NULL for a still); items without a
//     row did not come from a gallery folder;
//   rejected_files(path BLOB PRIMARY KEY, size INTEGER NOT NULL,
//                  mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL)
//     the files of the gallery folder found unreadable (RejectedFile). An
//     addition to version 6 that needs no new version: readers that predate
//     it ignore it, and a catalog without it (older writers) has none, which
//     costs an update no more than probing those files again.
// Version 5 lacks gallery_root; version 4 also lacks the files table; version 3 also lacks
// embedder_config; version 2 also lacks the thumbnails table; version 1 also lacks index_bytes and
// index_crc32; version 0 is version 1 written before the version was recorded. All are read.

// The thumbnails of one catalog file, read one at a time from a handle kept
// open, so a gallery of a million items costs no memory until one is shown,
// and a catalog renamed over this one by a writer does not mix in.
class CatalogThumbnails : public StoredThumbnails {
 public:
  // nullptr when the catalog has no thumbnails (older schema, or
  // thumbnail-size=0). Throws vs::Error when the file cannot be read.
  static std::shared_ptr<CatalogThumbnails> open(const std::string& path);
  ~CatalogThumbnails() override;

  // The JPEG bytes of item id; empty when it has none. Throws vs::Error.
  // Safe to call from several threads.
  std::vector<uint8_t> get(int64_t id) const override;
  const std::string& path() const override { return path_; }

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
                               const std::vector<CatalogItem>& items,
                               const std::vector<RejectedFile>& rejected = {});
  // Plain write of a new file at path, for replace_files_atomically. The
  // thumbnails of the catalog at keep_thumbnails_from (an appender's previous
  // catalog; empty: none) are copied over by SQLite, never all in memory.
  // rejected: the files found unreadable (at most one entry per path).
  static void write(const std::string& path, const IndexFacts& facts,
                    const std::vector<CatalogItem>& items,
                    const std::string& keep_thumbnails_from = "",
                    const std::vector<RejectedFile>& rejected = {});

  const IndexFacts& facts() const { return facts_; }
  // In increasing id order.
  const std::vector<CatalogItem>& items() const { return items_; }
  // The files found unreadable, by path; empty in catalogs without the table.
  const std::vector<RejectedFile>& rejected_files() const { return rejected_; }
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
  std::vector<CatalogItem> items_;  // ids increasing, not necessarily 0..n-1
  std::unordered_map<int, int64_t> label_counts_;
  std::vector<RejectedFile> rejected_;
  std::shared_ptr<CatalogThumbnails> thumbnails_;
};

}  // namespace vs
